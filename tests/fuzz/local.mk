# tests/fuzz/: libFuzzer targets, one per parser of outside input (README,
# "Building and testing", Fuzzing). Built only by
#   CC=clang ./configure --enable-fuzzing
# (every object then carries -fsanitize=fuzzer-no-link,address,undefined);
# each target links -fsanitize=fuzzer. Seeds: tests/fuzz/corpus/<target>/,
# dictionaries: tests/fuzz/<target>.dict.
#   make fuzz-ci                 each target FUZZ_CI_SECONDS (20) on the
#                                committed corpus; what deploy/test.sh runs
#   make fuzz FUZZ_SECONDS=600   the same, longer; new inputs are kept in
#                                fuzz-corpus/<target>/ of the build dir
# FUZZ_JOBS targets run at once (1); FUZZ_TARGETS="a b" picks some.

FUZZ_TARGETS = decode pbyaml ads_sotw ads_delta identity oci unpack creds \
	etcd etcd_split admin
FUZZ_CI_SECONDS = 20
FUZZ_SECONDS = 600
FUZZ_JOBS = 1
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/run.sh tests/fuzz/seeds.sh \
	tests/fuzz/fuzz_decode.c tests/fuzz/fuzz_pbyaml.c tests/fuzz/fuzz_ads.c \
	tests/fuzz/fuzz_identity.c tests/fuzz/fuzz_oci.c tests/fuzz/fuzz_unpack.c \
	tests/fuzz/fuzz_creds.c tests/fuzz/fuzz_etcd.c tests/fuzz/fuzz_etcd_split.c \
	tests/fuzz/fuzz_admin.c tests/fuzz/decode.dict \
	tests/fuzz/pbyaml.dict tests/fuzz/etcd.dict tests/fuzz/oci.dict \
	tests/fuzz/creds.dict tests/fuzz/admin.dict

.PHONY: fuzz fuzz-ci
if FUZZING
FUZZ_CFLAGS = $(TEST_CFLAGS) $(CURL_CFLAGS)
FUZZ_LINK = $(XDS_LIBS) $(XDS_EXT_LIBS)
FUZZ_LINKFLAGS = -fsanitize=fuzzer
noinst_PROGRAMS = tests/fuzz/fuzz_decode tests/fuzz/fuzz_pbyaml \
	tests/fuzz/fuzz_ads_sotw tests/fuzz/fuzz_ads_delta \
	tests/fuzz/fuzz_identity tests/fuzz/fuzz_oci tests/fuzz/fuzz_unpack \
	tests/fuzz/fuzz_creds tests/fuzz/fuzz_etcd tests/fuzz/fuzz_etcd_split \
	tests/fuzz/fuzz_admin
tests_fuzz_fuzz_decode_SOURCES = tests/fuzz/fuzz_decode.c
tests_fuzz_fuzz_decode_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_decode_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_decode_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_pbyaml_SOURCES = tests/fuzz/fuzz_pbyaml.c
tests_fuzz_fuzz_pbyaml_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_pbyaml_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_pbyaml_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_ads_sotw_SOURCES = tests/fuzz/fuzz_ads.c
tests_fuzz_fuzz_ads_sotw_CFLAGS = $(FUZZ_CFLAGS) -DFUZZ_ADS_DELTA=0
tests_fuzz_fuzz_ads_sotw_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_ads_sotw_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_ads_delta_SOURCES = tests/fuzz/fuzz_ads.c
tests_fuzz_fuzz_ads_delta_CFLAGS = $(FUZZ_CFLAGS) -DFUZZ_ADS_DELTA=1
tests_fuzz_fuzz_ads_delta_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_ads_delta_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_identity_SOURCES = tests/fuzz/fuzz_identity.c
tests_fuzz_fuzz_identity_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_identity_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_identity_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_oci_SOURCES = tests/fuzz/fuzz_oci.c
tests_fuzz_fuzz_oci_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_oci_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_oci_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_unpack_SOURCES = tests/fuzz/fuzz_unpack.c
tests_fuzz_fuzz_unpack_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_unpack_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_unpack_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_creds_SOURCES = tests/fuzz/fuzz_creds.c
tests_fuzz_fuzz_creds_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_creds_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_creds_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_etcd_SOURCES = tests/fuzz/fuzz_etcd.c
tests_fuzz_fuzz_etcd_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_etcd_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_etcd_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_etcd_split_SOURCES = tests/fuzz/fuzz_etcd_split.c
tests_fuzz_fuzz_etcd_split_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_etcd_split_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_etcd_split_LDFLAGS = $(FUZZ_LINKFLAGS)
tests_fuzz_fuzz_admin_SOURCES = tests/fuzz/fuzz_admin.c
tests_fuzz_fuzz_admin_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_admin_LDADD = $(FUZZ_LINK)
tests_fuzz_fuzz_admin_LDFLAGS = $(FUZZ_LINKFLAGS)

# Both build only the targets (the generated sources first).
fuzz-ci:
	@$(MAKE) $(AM_MAKEFLAGS) $(BUILT_SOURCES)
	@$(MAKE) $(AM_MAKEFLAGS) $(noinst_PROGRAMS)
	$(SHELL) $(srcdir)/tests/fuzz/run.sh --seconds $(FUZZ_CI_SECONDS) \
	  --jobs $(FUZZ_JOBS) --srcdir $(srcdir) --builddir . --scratch \
	  $(FUZZ_TARGETS)
fuzz:
	@$(MAKE) $(AM_MAKEFLAGS) $(BUILT_SOURCES)
	@$(MAKE) $(AM_MAKEFLAGS) $(noinst_PROGRAMS)
	$(SHELL) $(srcdir)/tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) \
	  --jobs $(FUZZ_JOBS) --srcdir $(srcdir) --builddir . $(FUZZ_TARGETS)
else
fuzz fuzz-ci:
	@echo "$@: the fuzz targets are not built: configure with" \
	  "CC=clang ./configure --enable-fuzzing" >&2; exit 1
endif
