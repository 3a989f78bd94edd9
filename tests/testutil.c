/*
 * testutil.c: see testutil.h.
 */
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "store/file_store.h"
#include "store/problems.h"

struct catalog *tu_catalog(const char *yaml) {
  char path[] = "/tmp/wasmxds-test-XXXXXX.yaml";
  struct catalog *cat = NULL;
  struct problems pb;
  struct xds_err err = {0, ""};
  struct xds_buf line;
  int fd = mkstemps(path, 5);
  int rc;

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  problems_init(&pb, 100);
  rc = file_store_load(path, NULL, &cat, &pb, &err);
  unlink(path);
  xds_buf_init(&line, 4096);
  for (size_t i = 0; i < problems_count(&pb); i++) {
    problem_format(problems_at(&pb, i), &line);
    xds_buf_putc(&line, '\n');
  }
  ck_assert_msg(rc == 0 && problems_count(&pb) == 0, "store problems: %s %s",
                err.msg, line.data != NULL ? line.data : "");
  xds_buf_cleanup(&line);
  problems_cleanup(&pb);
  return cat;
}

static int label_cmp(const void *a, const void *b) {
  return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

void tu_proxy(struct proxy_id *p, const char *id, const char *org,
              const char *tenant, enum proxy_mode mode, const char *labels) {
  memset(p, 0, sizeof(*p));
  p->node_id = xds_strdup(id);
  p->cluster = xds_strdup("");
  p->organization = xds_strdup(org);
  p->tenant = tenant != NULL ? xds_strdup(tenant) : NULL;
  p->mode = mode;
  if (labels != NULL) {
    char *copy = xds_strdup(labels), *save = NULL;
    p->labels = xds_calloc(16, sizeof(*p->labels));
    for (char *kv = strtok_r(copy, ",", &save); kv != NULL;
         kv = strtok_r(NULL, ",", &save)) {
      char *eq = strchr(kv, '=');
      ck_assert_ptr_nonnull(eq);
      *eq = '\0';
      p->labels[p->n_labels].key = xds_strdup(kv);
      p->labels[p->n_labels].value = xds_strdup(eq + 1);
      p->n_labels++;
    }
    qsort(p->labels, p->n_labels, sizeof(*p->labels), label_cmp);
    xds_free(copy);
  }
}

const char *const tu_ads_stores[3] = {
    TU_EXT("a", ", phase: AUTHN, config: {v: 1}") TU_EXT("b", ", phase: AUTHZ")
        TU_EXT("secret", ", allowedIn: [organizations/acme/tenants/payments]")
            TU_TMPL,
    TU_EXT("a", ", phase: AUTHN, config: {v: 2}") TU_EXT("b", ", phase: AUTHZ")
        TU_EXT("secret", ", allowedIn: [organizations/acme/tenants/payments]")
            TU_TMPL,
    TU_EXT("a", ", phase: AUTHN, config: {v: 2}") TU_EXT("b", ", phase: AUTHZ")
        TU_EXT("c", ", phase: STATS") TU_EXT(
            "secret", ", allowedIn: [organizations/acme/tenants/payments]")
            TU_TMPL};

void tu_node_init(struct tu_node *h, const char *id, const char *tenant) {
  envoy__config__core__v3__node__init(&h->node);
  google__protobuf__struct__init(&h->md);
  google__protobuf__struct__fields_entry__init(&h->e_tenant);
  google__protobuf__struct__fields_entry__init(&h->e_org);
  google__protobuf__value__init(&h->v_tenant);
  google__protobuf__value__init(&h->v_org);
  h->node.id = (char *)id;
  h->node.metadata = &h->md;
  h->v_org.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  h->v_org.string_value = "acme";
  h->e_org.key = "wasmxds.organization";
  h->e_org.value = &h->v_org;
  h->entries[0] = &h->e_org;
  h->md.n_fields = 1;
  if (tenant != NULL) {
    h->v_tenant.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    h->v_tenant.string_value = (char *)tenant;
    h->e_tenant.key = "wasmxds.tenant";
    h->e_tenant.value = &h->v_tenant;
    h->entries[1] = &h->e_tenant;
    h->md.n_fields = 2;
  }
  h->md.fields = h->entries;
}
