/*
 * etcd_proto.c: wire helpers for the etcd v3 JSON gateway (no I/O).
 *
 * The gateway is grpc-gateway over etcd's gRPC API: request and response
 * bodies are protobuf JSON with the original field names, bytes in base64,
 * 64-bit integers as strings, and zero values (false, 0, PUT) left out.
 */
#include "store/etcd_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *p, size_t n) {
  const unsigned char *in = p;
  char *out, *o;

  if (n > (SIZE_MAX / 4) * 3 - 3)
    return NULL;
  out = xds_malloc((n + 2) / 3 * 4 + 1);
  if (out == NULL)
    return NULL;
  o = out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;

    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    *o++ = b64_alphabet[(v >> 18) & 63];
    *o++ = b64_alphabet[(v >> 12) & 63];
    *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
    *o++ = i + 2 < n ? b64_alphabet[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

int etcd_b64_decode(const char *s, char **out, size_t *len) {
  size_t n = strlen(s), o = 0;
  uint32_t acc = 0;
  int bits = 0;
  char *buf;

  *out = NULL;
  *len = 0;
  while (n > 0 && s[n - 1] == '=')
    n--;
  buf = xds_malloc(n / 4 * 3 + 4);
  if (buf == NULL)
    return XDS_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value(s[i]);

    if (v < 0) {
      xds_free(buf);
      return XDS_EPARSE;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      buf[o++] = (char)((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) { /* a single leftover character is not base64 */
    xds_free(buf);
    return XDS_EPARSE;
  }
  buf[o] = '\0';
  *out = buf;
  *len = o;
  return 0;
}

char *etcd_prefix_end(const char *prefix, size_t n, size_t *end_len) {
  char *end;

  while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
    n--;
  if (n == 0) {
    end = xds_malloc(2);
    if (end != NULL) {
      end[0] = '\0';
      end[1] = '\0';
    }
    *end_len = 1;
    return end;
  }
  end = xds_malloc(n + 1);
  if (end == NULL)
    return NULL;
  memcpy(end, prefix, n);
  end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
  end[n] = '\0';
  *end_len = n;
  return end;
}

int etcd_json_int64(const json_t *v, int64_t *out) {
  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    long long x;

    errno = 0;
    x = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0)
      return XDS_EPARSE;
    *out = (int64_t)x;
    return 0;
  }
  return XDS_EPARSE;
}

int etcd_json_uint64(const json_t *v, uint64_t *out) {
  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  if (json_is_integer(v)) {
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    unsigned long long x;

    errno = 0;
    x = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0)
      return XDS_EPARSE;
    *out = (uint64_t)x;
    return 0;
  }
  return XDS_EPARSE;
}

int etcd_parse_header(const json_t *obj, struct etcd_header *h) {
  const json_t *hd = json_object_get(obj, "header");

  memset(h, 0, sizeof(*h));
  if (hd == NULL)
    return 0;
  if (!json_is_object(hd))
    return XDS_EPARSE;
  if (etcd_json_int64(json_object_get(hd, "revision"), &h->revision) < 0 ||
      etcd_json_uint64(json_object_get(hd, "cluster_id"), &h->cluster_id) < 0 ||
      etcd_json_uint64(json_object_get(hd, "member_id"), &h->member_id) < 0)
    return XDS_EPARSE;
  return 0;
}

void etcd_kv_cleanup(struct etcd_kv *kv) {
  xds_free(kv->key);
  xds_free(kv->value);
  memset(kv, 0, sizeof(*kv));
}

static int b64_field(const json_t *obj, const char *name, char **out,
                     size_t *len, struct xds_err *err) {
  const json_t *v = json_object_get(obj, name);
  int rc;

  if (v == NULL) {
    /* An empty bytes field is left out. */
    *out = xds_strdup("");
    *len = 0;
    return *out == NULL ? XDS_ENOMEM : 0;
  }
  if (!json_is_string(v))
    return xds_err_set(err, XDS_EPARSE, "etcd: kv.%s is not a string", name);
  rc = etcd_b64_decode(json_string_value(v), out, len);
  if (rc == XDS_EPARSE)
    return xds_err_set(err, rc, "etcd: kv.%s is not base64", name);
  return rc;
}

int etcd_parse_kv(const json_t *obj, struct etcd_kv *kv, struct xds_err *err) {
  int rc;

  memset(kv, 0, sizeof(*kv));
  if (!json_is_object(obj))
    return xds_err_set(err, XDS_EPARSE, "etcd: a kv is not an object");
  rc = b64_field(obj, "key", &kv->key, &kv->key_len, err);
  if (rc == 0)
    rc = b64_field(obj, "value", &kv->value, &kv->value_len, err);
  if (rc < 0)
    return rc;
  if (etcd_json_int64(json_object_get(obj, "create_revision"),
                      &kv->create_revision) < 0 ||
      etcd_json_int64(json_object_get(obj, "mod_revision"), &kv->mod_revision) <
          0 ||
      etcd_json_int64(json_object_get(obj, "version"), &kv->version) < 0)
    return xds_err_set(err, XDS_EPARSE,
                       "etcd: a kv revision is not an "
                       "integer");
  if (kv->key_len != strlen(kv->key))
    return xds_err_set(err, XDS_EPARSE, "etcd: a key holds a NUL byte");
  return 0;
}

int etcd_error_of(const json_t *obj, int *code, const char **msg) {
  const json_t *e = json_object_get(obj, "error");
  int64_t c = 0;

  if (e == NULL)
    return 0;
  if (json_is_object(e)) {
    const json_t *m = json_object_get(e, "message");

    if (etcd_json_int64(json_object_get(e, "grpc_code"), &c) < 0)
      c = 2;
    *code = (int)c;
    *msg = json_is_string(m) ? json_string_value(m) : "unknown error";
    return 1;
  }
  if (etcd_json_int64(json_object_get(obj, "code"), &c) < 0)
    c = 2;
  *code = (int)c;
  *msg = json_is_string(e) ? json_string_value(e) : "unknown error";
  return 1;
}

void etcd_splitter_init(struct etcd_splitter *s, size_t max) {
  memset(s, 0, sizeof(*s));
  xds_buf_init(&s->buf, max);
}

void etcd_splitter_cleanup(struct etcd_splitter *s) {
  xds_buf_cleanup(&s->buf);
  memset(s, 0, sizeof(*s));
}

size_t etcd_splitter_pending(const struct etcd_splitter *s) {
  return s->buf.len;
}

int etcd_splitter_feed(struct etcd_splitter *s, const char *p, size_t n,
                       etcd_msg_fn fn, void *ctx) {
  size_t start = 0;
  int rc;

  for (size_t i = 0; i < n; i++) {
    char c = p[i];

    if (s->depth == 0 && s->buf.len == 0 && i == start) {
      /* Between messages: only whitespace may appear. */
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        start = i + 1;
        continue;
      }
      if (c != '{')
        return XDS_EPARSE;
    }
    if (s->in_str) {
      if (s->esc)
        s->esc = 0;
      else if (c == '\\')
        s->esc = 1;
      else if (c == '"')
        s->in_str = 0;
      continue;
    }
    if (c == '"') {
      s->in_str = 1;
    } else if (c == '{' || c == '[') {
      s->depth++;
    } else if (c == '}' || c == ']') {
      if (--s->depth == 0) {
        size_t len = i + 1 - start;

        if (s->buf.len > 0) {
          rc = xds_buf_append(&s->buf, p + start, len);
          if (rc < 0)
            return rc;
          rc = fn(ctx, s->buf.data, s->buf.len);
          xds_buf_reset(&s->buf);
        } else {
          if (len > s->buf.max)
            return XDS_ETOOBIG;
          rc = fn(ctx, p + start, len);
        }
        if (rc < 0)
          return rc;
        start = i + 1;
      }
    }
  }
  if (start < n) {
    rc = xds_buf_append(&s->buf, p + start, n - start);
    if (rc < 0)
      return rc;
  }
  return 0;
}
