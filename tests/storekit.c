/*
 * storekit.c: the shared store fixtures of the Istio and Gloo tests
 * (contracts in storekit.h).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "server/compose/encode.h"
#include "server/compose/identity.h"
#include "server/compose/snapshot.h"
#include "store/catalog.h"
#include "store/etcd_store.h"
#include "store/file_store.h"
#include "store/problems.h"

#include "check_istio.h"
#include "storekit.h"

char *sk_load_yaml(const char *yaml, struct catalog **cat) {
  char path[] = "/tmp/wasmxds-storekit-XXXXXX.yaml";
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf all, out;
  int fd = mkstemps(path, 5);
  size_t plen = strlen(path);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  problems_init(&pb, 200);
  ck_assert_int_eq(file_store_load(path, NULL, cat, &pb, &err), 0);
  unlink(path);
  xds_buf_init(&all, 1 << 20);
  for (size_t i = 0; i < problems_count(&pb); i++)
    problem_format(problems_at(&pb, i), &all);
  problems_cleanup(&pb);
  xds_buf_init(&out, 1 << 20);
  for (const char *p = all.data != NULL ? all.data : ""; *p != '\0';) {
    if (strncmp(p, path, plen) == 0) {
      xds_buf_putc(&out, 'F');
      p += plen;
    } else {
      xds_buf_putc(&out, *p++);
    }
  }
  xds_buf_putc(&out, '\0');
  xds_buf_cleanup(&all);
  return xds_buf_steal(&out, NULL);
}

void sk_load_store(const char *dir, size_t n_exts, const char *warn,
                   struct catalog **cat, struct encode_opts *opts,
                   struct snapshot **snap) {
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf text;

  problems_init(&pb, 100);
  ck_assert_int_eq(file_store_load(dir, NULL, cat, &pb, &err), 0);
  xds_buf_init(&text, 1 << 16);
  for (size_t i = 0; i < problems_count(&pb); i++)
    problem_format(problems_at(&pb, i), &text);
  if (warn == NULL)
    ck_assert_msg(problems_count(&pb) == 0, "%s", text.data);
  else
    ck_assert_msg(problems_count(&pb) == 1 &&
                      problems_at(&pb, 0)->severity == PROBLEM_WARNING &&
                      strstr(text.data, warn) != NULL,
                  "want one warning with \"%s\", got: %s", warn,
                  text.data != NULL ? text.data : "");
  xds_buf_cleanup(&text);
  problems_cleanup(&pb);
  ck_assert_uint_eq(catalog_ext_count(*cat), n_exts);
  encode_opts_default(opts);
  ck_assert_int_eq(snapshot_build(*cat, opts, 1, snap, &err), 0);
}

struct catalog *sk_etcd_build(struct etcd_store *s, struct problems *pb) {
  struct catalog *c = NULL;

  problems_reset(pb);
  ck_assert_int_eq(etcd_store_build(s, &c, pb), 0);
  return c;
}

void sk_identify(const struct sk_proxy *k, struct proxy_id *p) {
  struct tnode t;
  struct xds_err err = {0, ""};

  tnode_init(&t, k->id);
  for (size_t i = 0; k->meta[i] != NULL; i += 2)
    tnode_str(&t, k->meta[i], k->meta[i + 1]);
  if (k->labels[0] != NULL)
    tnode_labels(&t, "LABELS", k->labels[0], k->labels[1], k->labels[2],
                 k->labels[3], NULL);
  ck_assert_msg(identity_from_node(&t.node, p, &err) == 0, "%s", err.msg);
}

HCM_T *sk_hcm_of(const Envoy__Config__Listener__V3__Listener *l) {
  const Envoy__Config__Listener__V3__Filter *f =
      l->filter_chains[0]->filters[0];

  return envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
      NULL, f->typed_config->value.len, f->typed_config->value.data);
}

void sk_check_render(struct snapshot *snap, const struct sk_proxy *k,
                     void (*render)(const struct xds_class *c,
                                    const struct proxy_id *p,
                                    struct xds_buf *b)) {
  const struct xds_class *c;
  struct proxy_id p;
  struct xds_buf b;

  sk_identify(k, &p);
  ck_assert_int_eq(snapshot_class(snap, &p, &c), 0);
  xds_buf_init(&b, 1 << 16);
  render(c, &p, &b);
  ck_assert_msg(strcmp(b.data, k->want) == 0, "%s:\n got  %s\n want %s",
                k->what, b.data, k->want);
  xds_buf_cleanup(&b);
  proxy_id_cleanup(&p);
}

int sk_run(const char *suite, int argc, char **argv,
           const struct sk_case *cases, size_t n) {
  Suite *s = suite_create(suite);
  SRunner *sr;
  int failed;

  for (size_t i = 0; i < n; i++) {
    int want = argc <= 1;

    for (int a = 1; a < argc && !want; a++)
      want = strcmp(argv[a], cases[i].name) == 0;
    if (want)
      suite_add_tcase(s, cases[i].make());
  }
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
