/*
 * ads_csds.c: a stream as the Client Status Discovery Service reports it:
 * the proxy's node (rebuilt from what wasmxds read of it), node matchers,
 * and per resource of each served type its GenericXdsConfig.
 */
#include "server/ads/ads_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "server/compose/identity.h"
#include "server/compose/stats.h"

#include "envoy/service/status/v3/csds.pb-c.h"

/* Fields of the node's metadata: tenant, organization, mode, labels and
 * the wasmxds.csds status. */
#define NODE_FIELDS_MAX 5
/* Most node matchers in a request, and metadata matchers in each. */
#define CSDS_MATCHERS_MAX 64
/* Longest StructMatcher path (the node's metadata nests 2 deep). */
#define CSDS_PATH_MAX 8
/* Fields of the wasmxds.csds struct. */
#define CSDS_FIELDS 3

/* --- matchers ----------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix, int icase) {
  size_t ls = strlen(s), lx = strlen(suffix);

  if (lx > ls)
    return 0;
  return icase ? strcasecmp(s + ls - lx, suffix) == 0
               : strcmp(s + ls - lx, suffix) == 0;
}

static int contains(const char *s, const char *part, int icase) {
  size_t lp = strlen(part);

  if (!icase)
    return strstr(s, part) != NULL;
  for (; *s != '\0'; s++)
    if (strncasecmp(s, part, lp) == 0)
      return 1;
  return lp == 0;
}

static int string_match(const Envoy__Type__Matcher__V3__StringMatcher *m,
                        const char *s) {
  int ic = m->ignore_case;

  switch (m->match_pattern_case) {
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
    return ic ? strcasecmp(s, m->exact) == 0 : strcmp(s, m->exact) == 0;
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
    return ic ? strncasecmp(s, m->prefix, strlen(m->prefix)) == 0
              : strncmp(s, m->prefix, strlen(m->prefix)) == 0;
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
    return ends_with(s, m->suffix, ic);
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
    return contains(s, m->contains, ic);
  default:
    return 0; /* refused by ads_csds_check_request */
  }
}

static int value_match(const Envoy__Type__Matcher__V3__ValueMatcher *m,
                       const Google__Protobuf__Value *v);

static int list_match(const Envoy__Type__Matcher__V3__ListMatcher *m,
                      const Google__Protobuf__Value *v) {
  if (v == NULL || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE ||
      v->list_value == NULL || m->one_of == NULL)
    return 0;
  for (size_t i = 0; i < v->list_value->n_values; i++)
    if (value_match(m->one_of, v->list_value->values[i]))
      return 1;
  return 0;
}

static int value_match(const Envoy__Type__Matcher__V3__ValueMatcher *m,
                       const Google__Protobuf__Value *v) {
  int kind = v != NULL ? (int)v->kind_case : 0;

  switch (m->match_pattern_case) {
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_NULL_MATCH:
    return v == NULL || kind == GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_DOUBLE_MATCH: {
    const Envoy__Type__Matcher__V3__DoubleMatcher *d = m->double_match;
    if (kind != GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE || d == NULL)
      return 0;
    if (d->match_pattern_case ==
        ENVOY__TYPE__MATCHER__V3__DOUBLE_MATCHER__MATCH_PATTERN_EXACT)
      return v->number_value == d->exact;
    if (d->match_pattern_case ==
            ENVOY__TYPE__MATCHER__V3__DOUBLE_MATCHER__MATCH_PATTERN_RANGE &&
        d->range != NULL)
      return v->number_value >= d->range->start &&
             v->number_value < d->range->end;
    return 0;
  }
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_STRING_MATCH:
    return kind == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE &&
           m->string_match != NULL &&
           string_match(m->string_match, v->string_value);
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_BOOL_MATCH:
    return kind == GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE &&
           !v->bool_value == !m->bool_match;
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_PRESENT_MATCH:
    return (v != NULL && kind != GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE) ==
           !!m->present_match;
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_LIST_MATCH:
    return m->list_match != NULL && list_match(m->list_match, v);
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_OR_MATCH:
    for (size_t i = 0; m->or_match != NULL && i < m->or_match->n_value_matchers;
         i++)
      if (value_match(m->or_match->value_matchers[i], v))
        return 1;
    return 0;
  default:
    return 0;
  }
}

/* The value at path in st, or NULL. */
static const Google__Protobuf__Value *
struct_path(const Google__Protobuf__Struct *st,
            const Envoy__Type__Matcher__V3__StructMatcher *m) {
  const Google__Protobuf__Value *v = NULL;

  for (size_t i = 0; i < m->n_path; i++) {
    const char *key = m->path[i]->key;
    if (st == NULL || key == NULL)
      return NULL;
    v = NULL;
    for (size_t j = 0; j < st->n_fields; j++)
      if (strcmp(st->fields[j]->key, key) == 0)
        v = st->fields[j]->value;
    if (v == NULL)
      return NULL;
    st = v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE
             ? v->struct_value
             : NULL;
  }
  return v;
}

static int node_match(const Envoy__Type__Matcher__V3__NodeMatcher *m,
                      const Envoy__Config__Core__V3__Node *node) {
  if (m->node_id != NULL && !string_match(m->node_id, node->id))
    return 0;
  for (size_t i = 0; i < m->n_node_metadatas; i++) {
    const Envoy__Type__Matcher__V3__StructMatcher *sm = m->node_metadatas[i];
    if (sm->value == NULL ||
        !value_match(sm->value, struct_path(node->metadata, sm)))
      return 0;
  }
  return 1;
}

static int check_string(const Envoy__Type__Matcher__V3__StringMatcher *m,
                        const char *where, char *why, size_t size) {
  if (m == NULL)
    return 0;
  switch (m->match_pattern_case) {
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_EXACT:
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_PREFIX:
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SUFFIX:
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_CONTAINS:
    return 0;
  case ENVOY__TYPE__MATCHER__V3__STRING_MATCHER__MATCH_PATTERN_SAFE_REGEX:
    snprintf(why, size, "%s: safe_regex is not supported", where);
    return -1;
  default:
    snprintf(why, size, "%s: a StringMatcher without a pattern", where);
    return -1;
  }
}

static int check_value(const Envoy__Type__Matcher__V3__ValueMatcher *m,
                       const char *where, int depth, char *why, size_t size) {
  if (m == NULL) {
    snprintf(why, size, "%s: a StructMatcher without a value", where);
    return -1;
  }
  if (depth > 8) {
    snprintf(why, size, "%s: value matchers nested more than 8 deep", where);
    return -1;
  }
  switch (m->match_pattern_case) {
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_STRING_MATCH:
    return check_string(m->string_match, where, why, size);
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_LIST_MATCH:
    return check_value(m->list_match != NULL ? m->list_match->one_of : NULL,
                       where, depth + 1, why, size);
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN_OR_MATCH:
    if (m->or_match != NULL &&
        m->or_match->n_value_matchers > CSDS_MATCHERS_MAX) {
      snprintf(why, size, "%s: an or_match of more than %d matchers", where,
               CSDS_MATCHERS_MAX);
      return -1;
    }
    for (size_t i = 0; m->or_match != NULL && i < m->or_match->n_value_matchers;
         i++)
      if (check_value(m->or_match->value_matchers[i], where, depth + 1, why,
                      size) < 0)
        return -1;
    return 0;
  case ENVOY__TYPE__MATCHER__V3__VALUE_MATCHER__MATCH_PATTERN__NOT_SET:
    snprintf(why, size, "%s: a ValueMatcher without a pattern", where);
    return -1;
  default:
    return 0;
  }
}

int ads_csds_check_request(
    const Envoy__Service__Status__V3__ClientStatusRequest *req, char *why,
    size_t size) {
  char where[96];

  /* Each proxy is tried against every matcher: bounded, so one request
   * cannot hold the serving loop for long. */
  if (req->n_node_matchers > CSDS_MATCHERS_MAX) {
    snprintf(why, size, "node_matchers: more than %d", CSDS_MATCHERS_MAX);
    return -1;
  }
  for (size_t i = 0; i < req->n_node_matchers; i++) {
    const Envoy__Type__Matcher__V3__NodeMatcher *m = req->node_matchers[i];
    snprintf(where, sizeof(where), "node_matchers[%zu].node_id", i);
    if (check_string(m->node_id, where, why, size) < 0)
      return -1;
    for (size_t j = 0; j < m->n_node_metadatas; j++) {
      snprintf(where, sizeof(where), "node_matchers[%zu].node_metadatas[%zu]",
               i, j);
      if (j >= CSDS_MATCHERS_MAX) {
        snprintf(why, size, "node_matchers[%zu].node_metadatas: more than %d",
                 i, CSDS_MATCHERS_MAX);
        return -1;
      }
      if (m->node_metadatas[j]->n_path == 0) {
        snprintf(why, size, "%s: an empty path", where);
        return -1;
      }
      if (m->node_metadatas[j]->n_path > CSDS_PATH_MAX) {
        snprintf(why, size, "%s: a path of more than %d keys", where,
                 CSDS_PATH_MAX);
        return -1;
      }
      if (check_value(m->node_metadatas[j]->value, where, 0, why, size) < 0)
        return -1;
    }
  }
  return 0;
}

/* --- the node ----------------------------------------------------------- */

/* A Node and the storage its fields point into. */
struct csds_node {
  Envoy__Config__Core__V3__Node node;
  Google__Protobuf__Struct md;
  Google__Protobuf__Struct__FieldsEntry fe[NODE_FIELDS_MAX];
  Google__Protobuf__Struct__FieldsEntry *fp[NODE_FIELDS_MAX];
  Google__Protobuf__Value fv[NODE_FIELDS_MAX];
  Google__Protobuf__Struct labels;
  Google__Protobuf__Struct__FieldsEntry **lfp; /* n_labels entries */
  Google__Protobuf__Struct__FieldsEntry *lfe;
  Google__Protobuf__Value *lfv;
  Google__Protobuf__Struct csds;
  Google__Protobuf__Struct__FieldsEntry ce[CSDS_FIELDS];
  Google__Protobuf__Struct__FieldsEntry *cp[CSDS_FIELDS];
  Google__Protobuf__Value cv[CSDS_FIELDS];
  char since[32];
};

static void set_str(Google__Protobuf__Struct__FieldsEntry *e,
                    Google__Protobuf__Value *v, const char *key,
                    const char *s) {
  google__protobuf__struct__fields_entry__init(e);
  google__protobuf__value__init(v);
  e->key = (char *)key;
  e->value = v;
  v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v->string_value = (char *)s;
}

static void csds_node_cleanup(struct csds_node *n) {
  xds_free(n->lfp);
  xds_free(n->lfe);
  xds_free(n->lfv);
}

/* The node as wasmxds read it: id, cluster and the wasmxds.* metadata it
 * understood (not the proxy's other metadata, which it does not keep). */
static int csds_node_build(const struct ads_stream *s, struct csds_node *n) {
  const struct proxy_id *p = &s->pid;
  size_t k = 0;

  memset(n, 0, sizeof(*n));
  envoy__config__core__v3__node__init(&n->node);
  google__protobuf__struct__init(&n->md);
  n->node.id = p->node_id;
  n->node.cluster = p->cluster;
  if (p->tenant != NULL)
    set_str(&n->fe[k], &n->fv[k], IDENTITY_KEY_TENANT, p->tenant), k++;
  set_str(&n->fe[k], &n->fv[k], IDENTITY_KEY_ORGANIZATION, p->organization);
  k++;
  set_str(&n->fe[k], &n->fv[k], IDENTITY_KEY_MODE,
          p->mode == PROXY_MODE_GATEWAY ? "GATEWAY" : "SIDECAR");
  k++;
  if (p->n_labels > 0) {
    n->lfp = xds_calloc(p->n_labels, sizeof(*n->lfp));
    n->lfe = xds_calloc(p->n_labels, sizeof(*n->lfe));
    n->lfv = xds_calloc(p->n_labels, sizeof(*n->lfv));
    if (n->lfp == NULL || n->lfe == NULL || n->lfv == NULL) {
      csds_node_cleanup(n);
      return XDS_ENOMEM;
    }
    google__protobuf__struct__init(&n->labels);
    for (size_t i = 0; i < p->n_labels; i++) {
      set_str(&n->lfe[i], &n->lfv[i], p->labels[i].key, p->labels[i].value);
      n->lfp[i] = &n->lfe[i];
    }
    n->labels.n_fields = p->n_labels;
    n->labels.fields = n->lfp;
    google__protobuf__struct__fields_entry__init(&n->fe[k]);
    google__protobuf__value__init(&n->fv[k]);
    n->fe[k].key = IDENTITY_KEY_LABELS;
    n->fe[k].value = &n->fv[k];
    n->fv[k].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    n->fv[k].struct_value = &n->labels;
    k++;
  }
  for (size_t i = 0; i < k; i++)
    n->fp[i] = &n->fe[i];
  n->md.n_fields = k;
  n->md.fields = n->fp;
  n->node.metadata = &n->md;
  return 0;
}

/* Adds the wasmxds.csds struct (how the proxy is connected) to the node's
 * metadata. After matching, so matchers see only the proxy's own node. */
static void csds_node_add_status(const struct ads_stream *s,
                                 struct csds_node *n) {
  time_t secs = (time_t)(s->connected_ms / 1000);
  struct tm tm;
  size_t k = n->md.n_fields;

  gmtime_r(&secs, &tm);
  strftime(n->since, sizeof(n->since), "%Y-%m-%dT%H:%M:%SZ", &tm);
  google__protobuf__struct__init(&n->csds);
  set_str(&n->ce[0], &n->cv[0], "connected_since", n->since);
  set_str(&n->ce[1], &n->cv[1], "peer", s->peer);
  set_str(&n->ce[2], &n->cv[2], "protocol",
          s->mode == ADS_DELTA ? "delta" : "sotw");
  for (size_t i = 0; i < CSDS_FIELDS; i++)
    n->cp[i] = &n->ce[i];
  n->csds.n_fields = CSDS_FIELDS;
  n->csds.fields = n->cp;
  google__protobuf__struct__fields_entry__init(&n->fe[k]);
  google__protobuf__value__init(&n->fv[k]);
  n->fe[k].key = ADS_CSDS_STATUS_KEY;
  n->fe[k].value = &n->fv[k];
  n->fv[k].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
  n->fv[k].struct_value = &n->csds;
  n->fp[k] = &n->fe[k];
  n->md.n_fields = k + 1;
}

int ads_stream_csds_match(
    const struct ads_stream *s,
    const Envoy__Service__Status__V3__ClientStatusRequest *req) {
  struct csds_node n;
  int hit = 0;

  if (!s->has_node)
    return 0;
  if (req->n_node_matchers == 0)
    return 1;
  if (csds_node_build(s, &n) < 0)
    return XDS_ENOMEM;
  for (size_t i = 0; !hit && i < req->n_node_matchers; i++)
    hit = node_match(req->node_matchers[i], &n.node);
  csds_node_cleanup(&n);
  return hit;
}

/* --- resources ---------------------------------------------------------- */

/* The resource of type idx named name in the stream's snapshot, whatever
 * its visibility (the proxy was sent it), or NULL. */
static const struct xds_resource *resource_of(const struct ads_stream *s,
                                              int idx, const char *name) {
  size_t lo = 0, hi;

  if (s->snap == NULL)
    return NULL;
  if (idx == ADS_T_ECDS)
    return snapshot_ecds(s->snap, name);
  if (s->cls == NULL)
    return NULL;
  hi = s->cls->n_listeners;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->cls->listeners[mid].name, name);
    if (c == 0)
      return &s->cls->listeners[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* One GenericXdsConfig, with the storage it points into. */
struct csds_res {
  Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig g;
  char version[VERSION_LEN + 1]; /* the version sent, as text */
  Google__Protobuf__Any any;
  Envoy__Admin__V3__UpdateFailureState fail;
};

static void res_fill(const struct ads_stream *s, int idx, const char *name,
                     const struct ads_res *r, const struct xds_resource *now,
                     int contents, struct csds_res *out) {
  const struct ads_type_state *t = &s->t[idx];

  envoy__service__status__v3__client_config__generic_xds_config__init(&out->g);
  out->g.type_url = (char *)ads_type_urls[idx];
  out->g.name = (char *)name;
  if (r == NULL) {
    /* Asked for, nothing sent. */
    out->g.client_status =
        now != NULL ? ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__REQUESTED
                    : ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__DOES_NOT_EXIST;
    out->g.config_status = ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__NOT_SENT;
    return;
  }
  ads_res_version_text(r, out->version);
  out->g.version_info = out->version;
  switch (r->state) {
  case ADS_RES_PENDING:
    out->g.client_status = ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__REQUESTED;
    out->g.config_status = ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__STALE;
    break;
  case ADS_RES_ACKED:
  case ADS_RES_CLIENT:
    out->g.client_status = ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__ACKED;
    out->g.config_status = ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__SYNCED;
    break;
  case ADS_RES_NACKED:
    out->g.client_status = ENVOY__ADMIN__V3__CLIENT_RESOURCE_STATUS__NACKED;
    out->g.config_status = ENVOY__SERVICE__STATUS__V3__CONFIG_STATUS__ERROR;
    envoy__admin__v3__update_failure_state__init(&out->fail);
    out->fail.details = t->nack_error != NULL ? t->nack_error : "";
    out->fail.version_info = out->version;
    out->g.error_state = &out->fail;
    break;
  }
  /* The bytes are those sent when the snapshot still holds that version. */
  if (contents && now != NULL && ads_res_version_is(r, now->version)) {
    google__protobuf__any__init(&out->any);
    out->any.type_url = (char *)ads_type_urls[idx];
    out->any.value.data = now->bytes;
    out->any.value.len = now->len;
    out->g.xds_config = &out->any;
  }
}

/* Appends field `field` (length-delimited) holding msg to out. */
static int append_message(struct xds_buf *out, unsigned field,
                          const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t head[16];
  size_t h = 0;
  uint64_t v = len;
  char *p;
  int rc;

  head[h++] = (uint8_t)(field << 3 | 2);
  do {
    head[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  rc = xds_buf_extend(out, h + len, &p);
  if (rc < 0)
    return rc;
  memcpy(p, head, h);
  p += h;
  protobuf_c_message_pack(msg, (uint8_t *)p);
  return 0;
}

/* Every resource of type idx the stream asked for or was sent: the
 * candidates first (in their order), then what was sent and is no longer
 * a candidate. *n entries in a new array (caller frees). */
static int collect(struct ads_stream *s, int idx, int contents,
                   struct csds_res **out, size_t *n) {
  struct ads_type_state *t = &s->t[idx];
  size_t cand = ads_sub_candidate_count(s, idx);
  size_t max = cand + t->sent.n, k = 0;
  struct xds_map *seen = xds_map_new_borrowed();
  struct csds_res *v = xds_calloc(max > 0 ? max : 1, sizeof(*v));
  int rc = 0;

  *out = NULL;
  *n = 0;
  if (seen == NULL || v == NULL) {
    rc = XDS_ENOMEM;
    goto done;
  }
  for (size_t i = 0; i < cand; i++) {
    const struct xds_resource *r = ads_sub_candidate(s, idx, i, 0);
    const char *name = r != NULL ? r->name : t->names[i];
    if (xds_map_get(seen, name) != NULL)
      continue;
    res_fill(s, idx, name, ads_sent_find(&t->sent, name), r, contents, &v[k++]);
    if (xds_map_put(seen, name, (void *)name, NULL) < 0) {
      rc = XDS_ENOMEM;
      goto done;
    }
  }
  for (uint32_t i = 0; i < t->sent.n; i++) {
    const char *key = t->sent.v[i].name;
    if (xds_map_get(seen, key) != NULL)
      continue;
    res_fill(s, idx, key, &t->sent.v[i], resource_of(s, idx, key), contents,
             &v[k++]);
  }
done:
  xds_map_free(seen, NULL);
  if (rc < 0) {
    xds_free(v);
    return rc;
  }
  *out = v;
  *n = k;
  return 0;
}

int ads_stream_csds_append(struct ads_stream *s, int contents,
                           struct xds_buf *out) {
  Envoy__Service__Status__V3__ClientConfig cc;
  Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig **gp = NULL;
  struct csds_res *res[ADS_T_N] = {NULL};
  size_t n_res[ADS_T_N] = {0}, total = 0, k = 0;
  struct csds_node node;
  int rc;

  ADS_CHECK(s);
  if (!s->has_node)
    return 0;
  rc = csds_node_build(s, &node);
  if (rc < 0)
    return rc;
  csds_node_add_status(s, &node);
  for (int i = 0; rc == 0 && i < ADS_T_N; i++) {
    if (s->t[i].requested)
      rc = collect(s, i, contents, &res[i], &n_res[i]);
    total += n_res[i];
  }
  if (rc == 0 && total > 0 && (gp = xds_calloc(total, sizeof(*gp))) == NULL)
    rc = XDS_ENOMEM;
  if (rc == 0) {
    for (int i = 0; i < ADS_T_N; i++)
      for (size_t j = 0; j < n_res[i]; j++)
        gp[k++] = &res[i][j].g;
    envoy__service__status__v3__client_config__init(&cc);
    cc.node = &node.node;
    cc.n_generic_xds_configs = total;
    cc.generic_xds_configs = gp;
    rc = append_message(out, 1, &cc.base);
  }
  xds_free(gp);
  for (int i = 0; i < ADS_T_N; i++)
    xds_free(res[i]);
  csds_node_cleanup(&node);
  return rc;
}

int ads_stream_sync_state(const struct ads_stream *s) {
  int worst = STATS_SYNCED, any = 0;

  if (!s->has_node)
    return -1;
  for (int i = 0; i < ADS_T_N; i++) {
    const struct ads_type_state *t = &s->t[i];
    int st = t->sent.n_nacked > 0    ? STATS_NACKED
             : t->sent.n_pending > 0 ? STATS_STALE
                                     : STATS_SYNCED;
    if (!t->requested)
      continue;
    any = 1;
    if (st > worst)
      worst = st;
    /* Asked for by name and nothing of it sent: not sent. */
    if (t->sent.n < t->n_names && worst < STATS_NOT_SENT)
      worst = STATS_NOT_SENT;
    if (t->wildcard && !t->sent_once && worst < STATS_NOT_SENT)
      worst = STATS_NOT_SENT;
  }
  return any ? worst : STATS_NOT_SENT;
}
