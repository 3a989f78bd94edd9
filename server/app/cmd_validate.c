/*
 * cmd_validate.c: wasmxds validate PATH|URL: loads a store exactly as the
 * server does and prints every problem and a summary. Also the store
 * loading shared with render (cmd_load_store).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "server/app/cmd.h"
#include "server/app/flags.h"
#include "server/compose/encode.h"
#include "store/etcd_load.h"
#include "store/file_store.h"
#include "store/problems.h"

int cmd_load_store(const char *path, struct etcd_config *ecfg,
                   struct catalog **cat, FILE *out) {
  struct store_hooks hooks = {encode_store_check, NULL};
  struct etcd_load_info info = {0, 0};
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf line;
  int errors, is_etcd = etcd_config_is_url(path), rc;

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  if (is_etcd) {
    rc = etcd_config_parse_url(path, ecfg, &err);
    if (rc == 0)
      rc = etcd_config_finish(ecfg, &err);
    if (rc == 0)
      rc = etcd_load(ecfg, &hooks, cat, &pb, &info, &err);
  } else {
    rc = file_store_load_ex(path, &hooks, NULL, NULL, cat, &pb, &err);
  }
  if (rc < 0) {
    fprintf(stderr, "wasmxds: %s: %s\n", path, err.msg);
    problems_cleanup(&pb);
    return -1;
  }
  xds_buf_init(&line, 8192);
  for (size_t i = 0; i < problems_count(&pb); i++) {
    xds_buf_reset(&line);
    if (problem_format(problems_at(&pb, i), &line) == 0)
      fputs(line.data, out); /* one line, with its newline */
  }
  xds_buf_cleanup(&line);
  if (pb.dropped > 0)
    fprintf(out, "... and %zu more problems\n", pb.dropped);
  errors = (int)pb.n_errors;
  if (is_etcd)
    fprintf(out, "%s (revision %lld, %zu keys): ", path,
            (long long)info.revision, info.n_keys);
  else
    fprintf(out, "%s: ", path);
  fprintf(out,
          "%zu extensions, %zu listener templates, %zu errors, %zu "
          "warnings\n",
          catalog_ext_count(*cat), catalog_tmpl_count(*cat), pb.n_errors,
          pb.n_warnings);
  problems_cleanup(&pb);
  return errors;
}

int cmd_validate(int argc, char **argv) {
  struct validate_config cfg;
  struct catalog *cat = NULL;
  int errors, status;

  switch (flags_parse_validate(argc, argv, &cfg)) {
  case FLAGS_EXIT:
    status = EXIT_SUCCESS;
    goto out;
  case FLAGS_ERROR:
    status = 2;
    goto out;
  default:
    break;
  }
  errors = cmd_load_store(cfg.store, &cfg.etcd, &cat, stdout);
  catalog_unref(cat);
  status = errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out:
  flags_validate_cleanup(&cfg);
  return status;
}
