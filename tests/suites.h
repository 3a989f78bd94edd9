/*
 * suites.h: every offline Check suite, one X(name) line each. A suite named
 * foo is defined as `Suite *foo_suite(void)` in tests/check_<module>.c.
 * check_main.c runs them all; `check_unit NAME...` runs only those named.
 */
X(base)
X(chain)
X(encode)
X(ads)
X(ads_oom)
X(compose_oom)
X(ads_limits)
X(ads_sync)
X(etcd_oom)
X(modules_oom)
X(ydoc)
X(store)
X(store_watch)
X(store_walk)
X(modules)
X(unpack)
X(compose)
X(etcd)
X(pbyaml)
X(publisher)
X(store_report)
X(source)
X(proxyid)
X(transport)
