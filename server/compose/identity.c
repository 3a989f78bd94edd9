/*
 * identity.c: Node -> struct proxy_id, and the grammar of identity strings.
 */
#include "server/compose/identity.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"

#include "google/protobuf/struct.pb-c.h"

/* Most labels a proxy may declare; a node with more is refused, which
 * bounds the work of matching selectors. */
#define IDENTITY_LABELS_MAX 64

int identity_name_ok(const char *s, size_t len) {
  if (len == 0 || len > IDENTITY_NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
      return 0;
  }
  return 1;
}

int identity_token_ok(const char *s, size_t len, size_t min, size_t max) {
  if (len < min || len > max)
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

int identity_parse_tenant(const char *s, char **org) {
  static const char p1[] = "organizations/", p2[] = "/tenants/";
  const char *o = s + sizeof(p1) - 1, *slash, *t;

  if (strncmp(s, p1, sizeof(p1) - 1) != 0)
    return XDS_EINVAL;
  slash = strchr(o, '/');
  if (slash == NULL || !identity_name_ok(o, (size_t)(slash - o)))
    return XDS_EINVAL;
  if (strncmp(slash, p2, sizeof(p2) - 1) != 0)
    return XDS_EINVAL;
  t = slash + sizeof(p2) - 1;
  if (!identity_name_ok(t, strlen(t)))
    return XDS_EINVAL;
  if (org != NULL) {
    *org = xds_strndup(o, (size_t)(slash - o));
    if (*org == NULL)
      return XDS_ENOMEM;
  }
  return 0;
}

int identity_meta_find(const Google__Protobuf__Struct *st, const char *key,
                       const Google__Protobuf__Value **out) {
  size_t n = 0;

  *out = NULL;
  for (size_t i = 0; st != NULL && i < st->n_fields; i++) {
    if (st->fields[i]->key == NULL || strcmp(st->fields[i]->key, key) != 0)
      continue;
    if (n++ > 0) {
      *out = NULL;
      return -1;
    }
    *out = st->fields[i]->value;
  }
  return n == 1 ? 1 : 0;
}

/* 1 when key is in st, once or more. */
static int meta_has(const Google__Protobuf__Struct *st, const char *key) {
  const Google__Protobuf__Value *v;

  return identity_meta_find(st, key, &v) != 0;
}

/* The string value of key; *out is NULL when the key is absent. XDS_EINVAL
 * when present but not a string, or present twice. */
static int meta_string(const Google__Protobuf__Struct *st, const char *key,
                       const char **out) {
  const Google__Protobuf__Value *v;
  int found = identity_meta_find(st, key, &v);

  *out = NULL;
  if (found == 0)
    return 0;
  /* A map entry may come without its value (protobuf's default Value,
   * kind not set): not a string either. */
  if (found < 0 || v == NULL ||
      v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
    return XDS_EINVAL;
  *out = v->string_value;
  return 0;
}

static int label_cmp(const void *a, const void *b) {
  return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

static int read_labels(const char *id, const char *key,
                       const Google__Protobuf__Value *v, struct proxy_id *out,
                       struct xds_err *err) {
  const Google__Protobuf__Struct *st;

  if (v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE)
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata %s must be a map of strings", id,
                       key);
  st = v->struct_value;
  if (st->n_fields > IDENTITY_LABELS_MAX)
    return xds_err_set(
        err, XDS_EINVAL,
        "node %s: metadata %s has %zu labels, more than the limit of %d", id,
        key, st->n_fields, IDENTITY_LABELS_MAX);
  out->labels = xds_calloc(st->n_fields, sizeof(*out->labels));
  if (out->labels == NULL)
    return xds_err_set(err, XDS_ENOMEM, "node %s: out of memory", id);
  for (size_t i = 0; i < st->n_fields; i++) {
    const Google__Protobuf__Value *lv = st->fields[i]->value;
    const char *lk = st->fields[i]->key != NULL ? st->fields[i]->key : "";
    if (!identity_token_ok(lk, strlen(lk), 1, IDENTITY_LABEL_MAX))
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: label key \"%s\" in metadata %s is not 1 "
                         "to %d printable ASCII characters without spaces",
                         id, lk, key, IDENTITY_LABEL_MAX);
    if (lv == NULL ||
        lv->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: label %s in metadata %s is not a string", id,
                         lk, key);
    if (!identity_token_ok(lv->string_value, strlen(lv->string_value), 0,
                           IDENTITY_LABEL_MAX))
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: label %s in metadata %s has the value "
                         "\"%s\", not 0 to %d printable ASCII characters "
                         "without spaces",
                         id, lk, key, lv->string_value, IDENTITY_LABEL_MAX);
    out->labels[i].key = xds_strdup(lk);
    out->labels[i].value = xds_strdup(lv->string_value);
    out->n_labels++;
    if (out->labels[i].key == NULL || out->labels[i].value == NULL)
      return xds_err_set(err, XDS_ENOMEM, "node %s: out of memory", id);
  }
  qsort(out->labels, out->n_labels, sizeof(*out->labels), label_cmp);
  for (size_t i = 1; i < out->n_labels; i++)
    if (strcmp(out->labels[i - 1].key, out->labels[i].key) == 0)
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: label %s appears twice in metadata %s", id,
                         out->labels[i].key, key);
  return 0;
}

static int identity_common(const Envoy__Config__Core__V3__Node *node,
                           const struct identity_istio *ist,
                           const struct proxy_id *verified,
                           struct proxy_id *out, struct xds_err *err);

int identity_from_node(const Envoy__Config__Core__V3__Node *node,
                       struct proxy_id *out, struct xds_err *err) {
  return identity_from_node_verified(node, NULL, out, err);
}

int identity_from_node_verified(const Envoy__Config__Core__V3__Node *node,
                                const struct proxy_id *verified,
                                struct proxy_id *out, struct xds_err *err) {
  const Google__Protobuf__Struct *md;
  const char *id, *cluster;
  struct identity_istio ist;
  int rc;

  memset(out, 0, sizeof(*out));
  if (node == NULL || node->id == NULL || node->id[0] == '\0')
    return xds_err_set(err, XDS_EINVAL,
                       "node without an id: set node.id in the Envoy "
                       "bootstrap");
  id = node->id;
  /* Nothing of the node is printed before its id is known to be clean. */
  if (!identity_token_ok(id, strlen(id), 1, IDENTITY_ID_MAX))
    return xds_err_set(err, XDS_EINVAL,
                       "node id \"%s\" is not 1 to %d printable ASCII "
                       "characters without spaces",
                       id, IDENTITY_ID_MAX);
  cluster = node->cluster != NULL ? node->cluster : "";
  if (!identity_token_ok(cluster, strlen(cluster), 0, IDENTITY_ID_MAX))
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: cluster \"%s\" is not 0 to %d printable "
                       "ASCII characters without spaces",
                       id, cluster, IDENTITY_ID_MAX);
  md = node->metadata;
  rc = identity_istio_read(node, &ist, err);
  if (rc < 0) {
    identity_istio_cleanup(&ist);
    return rc;
  }
  rc = identity_common(node, &ist, verified, out, err);
  if (rc < 0) {
    identity_istio_cleanup(&ist);
    proxy_id_cleanup(out);
    return rc;
  }
  /* An Istio node's mode comes from its id, its labels from LABELS; the
   * wasmxds keys may say the same but not something else. */
  if (ist.has_mode && meta_has(md, IDENTITY_KEY_MODE) &&
      out->mode != ist.mode) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "node %s: metadata " IDENTITY_KEY_MODE
                     " disagrees with the Istio node type of the id",
                     id);
    goto fail_ist;
  }
  if (ist.has_mode)
    out->mode = ist.mode;
  if (ist.labels != NULL && meta_has(md, IDENTITY_KEY_LABELS)) {
    rc = xds_err_set(
        err, XDS_EINVAL,
        "node %s: set labels in one of metadata " IDENTITY_KEY_LABELS
        " or " IDENTITY_ISTIO_LABELS ", not both",
        id);
    goto fail_ist;
  }
  if (ist.labels != NULL) {
    rc = read_labels(id, IDENTITY_ISTIO_LABELS, ist.labels, out, err);
    if (rc < 0)
      goto fail_ist;
  }
  out->namespace = ist.namespace;
  ist.namespace = NULL;
  identity_istio_cleanup(&ist);
  return 0;
fail_ist:
  identity_istio_cleanup(&ist);
  proxy_id_cleanup(out);
  return rc;
}

/* The wasmxds metadata keys (identity.h). With an Istio identity (ist)
 * the organization is optional: such a proxy without one belongs to no
 * organization ("") and receives WasmPlugins only. With a certificate's
 * identity (verified, nullable), a node that names no organization takes
 * the certificate's. */
static int identity_common(const Envoy__Config__Core__V3__Node *node,
                           const struct identity_istio *ist,
                           const struct proxy_id *verified,
                           struct proxy_id *out, struct xds_err *err) {
  const Google__Protobuf__Struct *md = node->metadata;
  const Google__Protobuf__Value *labels;
  const char *tenant, *org, *mode, *id = node->id;
  char *tenant_org = NULL;
  int rc;

  if (meta_string(md, IDENTITY_KEY_TENANT, &tenant) < 0)
    return xds_err_set(
        err, XDS_EINVAL,
        "node %s: metadata " IDENTITY_KEY_TENANT " must be one string", id);
  if (meta_string(md, IDENTITY_KEY_ORGANIZATION, &org) < 0)
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata " IDENTITY_KEY_ORGANIZATION
                       " must be one string",
                       id);
  if (meta_string(md, IDENTITY_KEY_MODE, &mode) < 0)
    return xds_err_set(
        err, XDS_EINVAL,
        "node %s: metadata " IDENTITY_KEY_MODE " must be one string", id);
  if (org != NULL && org[0] != '\0' && !identity_name_ok(org, strlen(org)))
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata " IDENTITY_KEY_ORGANIZATION
                       " \"%s\" is not a name (1 to %d letters, digits, "
                       "'-', '_' or '.', starting with a letter or digit)",
                       id, org, IDENTITY_NAME_MAX);
  if (tenant != NULL && tenant[0] != '\0') {
    rc = identity_parse_tenant(tenant, &tenant_org);
    if (rc == XDS_ENOMEM)
      return xds_err_set(err, rc, "node %s: out of memory", id);
    if (rc < 0)
      return xds_err_set(err, XDS_EINVAL,
                         "node %s: metadata " IDENTITY_KEY_TENANT
                         " is \"%s\", expected "
                         "organizations/<org>/tenants/<tenant> (names of "
                         "letters, digits, '-', '_' or '.')",
                         id, tenant);
    if (org != NULL && org[0] != '\0' && strcmp(org, tenant_org) != 0) {
      xds_err_set(err, XDS_EINVAL,
                  "node %s: metadata " IDENTITY_KEY_ORGANIZATION
                  " \"%s\" disagrees with tenant \"%s\"",
                  id, org, tenant);
      xds_free(tenant_org);
      return XDS_EINVAL;
    }
  } else if ((org == NULL || org[0] == '\0') && verified != NULL &&
             verified->organization != NULL &&
             verified->organization[0] != '\0') {
    /* With mutual TLS the certificate names the organization. */
    org = verified->organization;
  } else if ((org == NULL || org[0] == '\0') && ist->present) {
    org = "";
  } else if (org == NULL || org[0] == '\0') {
    return xds_err_set(
        err, XDS_EINVAL,
        "node %s: no organization: set metadata " IDENTITY_KEY_TENANT
        " or " IDENTITY_KEY_ORGANIZATION,
        id);
  }
  if (mode == NULL || mode[0] == '\0' || strcasecmp(mode, "SIDECAR") == 0) {
    out->mode = PROXY_MODE_SIDECAR;
  } else if (strcasecmp(mode, "GATEWAY") == 0) {
    out->mode = PROXY_MODE_GATEWAY;
  } else {
    xds_free(tenant_org);
    return xds_err_set(err, XDS_EINVAL,
                       "node %s: metadata " IDENTITY_KEY_MODE
                       " is \"%s\", expected SIDECAR or GATEWAY",
                       id, mode);
  }
  out->node_id = xds_strdup(id);
  out->cluster = xds_strdup(node->cluster != NULL ? node->cluster : "");
  out->organization = tenant_org != NULL ? tenant_org : xds_strdup(org);
  out->tenant = tenant_org != NULL ? xds_strdup(tenant) : NULL;
  if (out->node_id == NULL || out->cluster == NULL ||
      out->organization == NULL ||
      (tenant_org != NULL && out->tenant == NULL)) {
    rc = xds_err_set(err, XDS_ENOMEM, "node %s: out of memory", id);
    goto fail;
  }
  if (identity_meta_find(md, IDENTITY_KEY_LABELS, &labels) < 0) {
    rc = xds_err_set(err, XDS_EINVAL,
                     "node %s: metadata " IDENTITY_KEY_LABELS " appears twice",
                     id);
    goto fail;
  }
  if (labels != NULL) {
    rc = read_labels(id, IDENTITY_KEY_LABELS, labels, out, err);
    if (rc < 0)
      goto fail;
  }
  return 0;
fail:
  proxy_id_cleanup(out);
  return rc;
}

static int str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

int identity_equal(const struct proxy_id *a, const struct proxy_id *b) {
  if (!str_eq(a->node_id, b->node_id) || !str_eq(a->cluster, b->cluster) ||
      !str_eq(a->organization, b->organization) ||
      !str_eq(a->tenant, b->tenant) || !str_eq(a->namespace, b->namespace) ||
      a->mode != b->mode || a->n_labels != b->n_labels)
    return 0;
  for (size_t i = 0; i < a->n_labels; i++)
    if (!str_eq(a->labels[i].key, b->labels[i].key) ||
        !str_eq(a->labels[i].value, b->labels[i].value))
      return 0;
  return 1;
}

/* The next '/'-separated segment of [*p, end), advanced past it. */
static int next_segment(const char **p, const char *end, const char **seg,
                        size_t *len) {
  const char *q = *p;

  if (q >= end)
    return 0;
  *seg = q;
  while (q < end && *q != '/')
    q++;
  *len = (size_t)(q - *seg);
  *p = q < end ? q + 1 : q;
  return 1;
}

static int seg_is(const char *seg, size_t len, const char *word) {
  return len == strlen(word) && memcmp(seg, word, len) == 0;
}

/* Istio's spiffe://<td>/ns/<namespace>/sa/<account>, from p (after
 * "ns/"): the namespace is the identity; the organization is none (""). */
static int identity_spiffe_istio(const char *uri, size_t len, const char *p,
                                 const char *end, struct proxy_id *out,
                                 struct xds_err *err) {
  const char *ns, *seg;
  size_t ns_len, seg_len;

  if (!next_segment(&p, end, &ns, &ns_len) ||
      !identity_namespace_valid(ns, ns_len) ||
      !next_segment(&p, end, &seg, &seg_len) || !seg_is(seg, seg_len, "sa") ||
      !next_segment(&p, end, &seg, &seg_len) || seg_len == 0 ||
      memchr(seg, '\0', seg_len) != NULL || p < end)
    return xds_err_set(err, XDS_EINVAL,
                       "certificate URI \"%.*s\" is not Istio's "
                       "spiffe://<trust-domain>/ns/<namespace>/sa/<account>",
                       (int)len, uri);
  out->organization = xds_strdup("");
  out->namespace = xds_strndup(ns, ns_len);
  if (out->organization == NULL || out->namespace == NULL) {
    proxy_id_cleanup(out);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  return 0;
}

int identity_from_spiffe(const char *uri, size_t len, struct proxy_id *out,
                         struct xds_err *err) {
  static const char scheme[] = "spiffe://";
  const char *p = uri, *end = uri + len, *seg, *org, *tenant = NULL;
  size_t seg_len, org_len, tenant_len = 0;

  memset(out, 0, sizeof(*out));
  if (len < sizeof(scheme) - 1 || memcmp(uri, scheme, sizeof(scheme) - 1) != 0)
    return xds_err_set(err, XDS_EINVAL,
                       "certificate URI \"%.*s\" is not spiffe://", (int)len,
                       uri);
  p += sizeof(scheme) - 1;
  if (!next_segment(&p, end, &seg, &seg_len) || seg_len == 0)
    goto bad;
  if (!next_segment(&p, end, &seg, &seg_len))
    goto bad;
  if (seg_is(seg, seg_len, "ns"))
    return identity_spiffe_istio(uri, len, p, end, out, err);
  if (!seg_is(seg, seg_len, "organizations"))
    goto bad;
  if (!next_segment(&p, end, &org, &org_len) || org_len == 0)
    goto bad;
  if (next_segment(&p, end, &seg, &seg_len)) {
    if (!seg_is(seg, seg_len, "tenants") ||
        !next_segment(&p, end, &tenant, &tenant_len) || tenant_len == 0)
      goto bad;
  }
  if (!identity_name_ok(org, org_len) ||
      (tenant != NULL && !identity_name_ok(tenant, tenant_len)))
    goto bad;
  out->organization = xds_strndup(org, org_len);
  if (tenant != NULL)
    out->tenant = xds_asprintf("organizations/%.*s/tenants/%.*s", (int)org_len,
                               org, (int)tenant_len, tenant);
  if (out->organization == NULL || (tenant != NULL && out->tenant == NULL)) {
    proxy_id_cleanup(out);
    return xds_err_set(err, XDS_ENOMEM, "out of memory");
  }
  return 0;
bad:
  return xds_err_set(err, XDS_EINVAL,
                     "certificate URI \"%.*s\" is not "
                     "spiffe://<trust-domain>/organizations/<org>"
                     "[/tenants/<tenant>] (names of letters, digits, '-', "
                     "'_' or '.') or Istio's "
                     "spiffe://<trust-domain>/ns/<namespace>/sa/<account>",
                     (int)len, uri);
}
