/*
 * ads_wire.c: a request given as its encoded bytes.
 *
 * Most requests a proxy sends are ACKs: the response's nonce and version,
 * the type, the subscription unchanged (SotW) or no names at all (delta),
 * and a node that is absent or the one the stream already accepted.
 * Unpacking one with protobuf-c allocates every string and the whole node
 * (its metadata Struct, tens of allocations) only to find that nothing but
 * the ACK itself changes. The fast path reads such a request in one pass
 * over its bytes, without allocating, and applies it with the same code as
 * an unpacked request (ads_sotw_apply, ads_delta_apply), so the outcome is
 * the same by construction; everything it does not recognise goes the slow
 * way: the name limits on the bytes (ads_stream_precheck), no NUL byte in
 * any string and nesting at most WIRECHECK_DEPTH_MAX deep (wirecheck), the
 * unpack, ads_stream_on_request / ads_stream_on_delta_request.
 *
 * What the fast path takes, each a check the slow path makes too:
 * - a stream that already has a node, whose request carries none or a node
 *   byte for byte equal (same length, same SHA-256) to one the slow path
 *   accepted on this stream: the same bytes unpack to the same node, hence
 *   the same identity (ads_node_check would find it equal);
 * - only the fields an ACK has (SotW: version_info, node, resource_names,
 *   type_url, response_nonce; delta: node, type_url, response_nonce), each
 *   singular one at most once, all length-delimited, read strictly
 *   (wire_next_strict: what every protobuf reader reads alike);
 * - no NUL byte in a string it reads; names at most ADS_NAME_LEN_MAX bytes
 *   and at most ADS_NAMES_MAX of them; the nonce and version short enough
 *   to copy (WIRE_NONCE_MAX, WIRE_VERSION_MAX);
 * - a served type the stream's service carries;
 * - SotW: a stale nonce (only its ACK counts), or names that leave the
 *   subscription as it is (names_unchanged, decided before anything is
 *   applied).
 * A NACK (error_detail), resource locators, delta names and unknown fields
 * go the slow way.
 */
#include "server/ads/ads_impl.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/log.h"
#include "server/pb/wire.h"
#include "server/pb/wirecheck.h"

/* The longest response_nonce and version_info the fast path copies (a
 * nonce wasmxds sent is at most 20 digits; a version with slot holdings
 * a few hundred bytes). Longer ones go the slow way. */
#define WIRE_NONCE_MAX 63
#define WIRE_VERSION_MAX 1024

/* A length-delimited field read from the bytes. */
struct wire_str {
  const uint8_t *p;
  size_t len;
  int seen;
};

/* What the fast path reads of a request. */
struct wire_req {
  struct wire_str version, node, type, nonce;
  size_t n_names;
  const uint8_t *names_at; /* SotW: where the first name's field starts */
};

/* The request's field numbers, by mode. */
enum {
  S_VERSION = 1,
  S_NODE = 2,
  S_NAMES = 3,
  S_TYPE = 4,
  S_NONCE = 5,
  D_NODE = 1,
  D_TYPE = 2,
  D_NONCE = 6
};

static int take(struct wire_str *w, const struct wire_field *f) {
  if (w->seen)
    return 0; /* twice: protobuf takes the last (merges a message) */
  w->p = f->data;
  w->len = f->len;
  w->seen = 1;
  return 1;
}

static int no_nul(const struct wire_str *w) {
  return memchr(w->p, '\0', w->len) == NULL;
}

/* Reads the request's bytes into *w. Returns 1 when it is of the form the
 * fast path takes (see the top of the file), 0 otherwise. */
static int wire_scan(enum ads_mode mode, const uint8_t *p, size_t len,
                     struct wire_req *w) {
  const uint8_t *end = p + len;
  struct wire_field f;
  int rc;

  memset(w, 0, sizeof(*w));
  for (const uint8_t *at = p; (rc = wire_next_strict(&p, end, &f)) == 1;
       at = p) {
    struct wire_str *dst = NULL;

    if (f.type != 2)
      return 0;
    if (mode == ADS_SOTW) {
      switch (f.number) {
      case S_VERSION:
        dst = &w->version;
        break;
      case S_NODE:
        dst = &w->node;
        break;
      case S_NAMES:
        if (f.len > ADS_NAME_LEN_MAX || ++w->n_names > ADS_NAMES_MAX ||
            memchr(f.data, '\0', f.len) != NULL)
          return 0;
        if (w->names_at == NULL)
          w->names_at = at;
        continue;
      case S_TYPE:
        dst = &w->type;
        break;
      case S_NONCE:
        dst = &w->nonce;
        break;
      default:
        return 0; /* error_detail, resource_locators, unknown */
      }
    } else {
      switch (f.number) {
      case D_NODE:
        dst = &w->node;
        break;
      case D_TYPE:
        dst = &w->type;
        break;
      case D_NONCE:
        dst = &w->nonce;
        break;
      default:
        return 0; /* names, initial versions, error_detail, unknown */
      }
    }
    if (!take(dst, &f))
      return 0;
  }
  if (rc < 0)
    return 0;
  return (!w->version.seen ||
          (w->version.len <= WIRE_VERSION_MAX && no_nul(&w->version))) &&
         (!w->nonce.seen ||
          (w->nonce.len <= WIRE_NONCE_MAX && no_nul(&w->nonce))) &&
         (!w->type.seen || no_nul(&w->type));
}

/* SHA-256, fetched once: EVP_sha256() would look the implementation up
 * again on every digest, which costs as much as the digest of a node. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* NULL: the fetch failed; EVP_sha256() then */

static void sha256_fetch(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The SHA-256 of the n bytes at p. Returns 0, or -1 (out of memory). */
static int node_digest(const uint8_t *p, size_t n,
                       unsigned char out[ADS_NODE_DIGEST_LEN]) {
  unsigned int len = 0;

  pthread_once(&sha256_once, sha256_fetch);
  if (EVP_Digest(p, n, out, &len, sha256_md != NULL ? sha256_md : EVP_sha256(),
                 NULL) != 1 ||
      len != ADS_NODE_DIGEST_LEN)
    return -1;
  return 0;
}

/* Whether the node's bytes are those of a node this stream accepted. */
static int node_known(const struct ads_stream *s, const struct wire_str *n) {
  unsigned char d[ADS_NODE_DIGEST_LEN];

  if (!s->node_known || n->len != s->node_len)
    return 0;
  if (node_digest(n->p, n->len, d) < 0)
    return 0;
  return memcmp(d, s->node_sha, sizeof(d)) == 0;
}

/* The served type named by the request, if its service carries it; -1
 * otherwise (the slow path decides what to do with it). */
static int wire_type(const struct ads_stream *s, const struct wire_str *t) {
  for (int i = 0; i < ADS_T_N; i++) {
    size_t n = strlen(ads_type_urls[i]);

    if (t->len != n || memcmp(t->p, ads_type_urls[i], n) != 0)
      continue;
    if ((s->svc == ADS_SVC_LDS && i != ADS_T_LDS) ||
        (s->svc == ADS_SVC_ECDS && i != ADS_T_ECDS))
      return -1;
    return i;
  }
  return -1;
}

static void copy_str(char *dst, const struct wire_str *w) {
  if (w->seen)
    memcpy(dst, w->p, w->len);
  dst[w->seen ? w->len : 0] = '\0';
}

int ads_wire_fast(struct ads_stream *s, const uint8_t *p, size_t len,
                  struct ads_close *close, int *rc) {
  char nonce[WIRE_NONCE_MAX + 1], version[WIRE_VERSION_MAX + 1];
  struct wire_req w;
  int idx;

  ADS_CHECK_SETTLED(s);
  if (!s->has_node || !wire_scan(s->mode, p, len, &w))
    return 0;
  if (w.node.seen && !node_known(s, &w.node))
    return 0;
  if (!w.type.seen || (idx = wire_type(s, &w.type)) < 0)
    return 0;
  copy_str(nonce, &w.nonce);
  if (s->mode == ADS_SOTW) {
    struct ads_names_src src;

    copy_str(version, &w.version);
    /* The names are read again from the first one on. */
    if (w.names_at != NULL)
      ads_names_src_wire(&src, w.names_at, len - (size_t)(w.names_at - p),
                         w.n_names);
    else
      ads_names_src_wire(&src, p, 0, 0);
    *rc = ads_sotw_apply(s, idx, nonce, version, NULL, &src, close);
    if (*rc == ADS_NEED_UNPACK)
      return 0; /* nothing was applied */
  } else {
    *rc = ads_delta_apply(s, idx, nonce, NULL, close);
  }
  ads_stream_after(s);
  return 1;
}

/* After the slow path accepted a request: remembers the bytes of its node
 * (when it carried exactly one, read strictly) as a node of this stream. */
static void remember_node(struct ads_stream *s, const uint8_t *p, size_t len) {
  const uint8_t *end = p + len, *node = NULL;
  uint32_t field = s->mode == ADS_SOTW ? S_NODE : D_NODE;
  struct wire_field f;
  size_t node_len = 0;
  int rc, count = 0;

  while ((rc = wire_next_strict(&p, end, &f)) == 1)
    if (f.number == field) {
      node = f.data;
      node_len = f.len;
      count++;
    }
  if (rc < 0 || count != 1 || node_len > UINT32_MAX)
    return; /* the node remembered before (if any) still holds */
  s->node_known = 0;
  if (node_digest(node, node_len, s->node_sha) < 0)
    return;
  s->node_len = (uint32_t)node_len;
  s->node_known = 1;
}

/* Closes with INVALID_ARGUMENT for a string holding a NUL byte or
 * messages nested too deeply. Returns 0 (neither), or -1. */
static int refuse_strings(struct ads_stream *s, const uint8_t *p, size_t len,
                          struct ads_close *close) {
  const char *msg = "", *field = "", *node = ads_stream_node_id(s);
  int rc = wirecheck_strings(
      s->mode == ADS_DELTA
          ? &envoy__service__discovery__v3__delta_discovery_request__descriptor
          : &envoy__service__discovery__v3__discovery_request__descriptor,
      p, len, &msg, &field);

  if (rc == XDS_EINVAL) {
    XDS_LOGW("stream from %s (node %s): field %s.%s of the request holds a "
             "NUL byte; closing",
             s->peer, node != NULL ? node : "unknown", msg, field);
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                          "a string of the request holds a NUL byte");
  }
  if (rc == XDS_ETOOBIG) {
    XDS_LOGW("stream from %s (node %s): the request nests messages deeper "
             "than %d; closing",
             s->peer, node != NULL ? node : "unknown", WIRECHECK_DEPTH_MAX);
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                          "the request nests messages too deeply");
  }
  return 0; /* XDS_EPARSE: unpacking says so next */
}

int ads_wire_slow(struct ads_stream *s, const uint8_t *p, size_t len,
                  struct snapshot *snap, struct ads_close *close) {
  Envoy__Service__Discovery__V3__DiscoveryRequest *req = NULL;
  Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *dreq = NULL;
  int rc, delta = s->mode == ADS_DELTA, with_node;

  /* Over the name limits: refused before unpacking costs anything. */
  if (ads_stream_precheck(s, p, len, close) < 0) {
    XDS_LOGW("stream from %s: %s; closing", s->peer,
             close != NULL ? close->msg : "over the limits");
    return -1;
  }
  if (refuse_strings(s, p, len, close) < 0)
    return -1;
  if (delta)
    dreq = envoy__service__discovery__v3__delta_discovery_request__unpack(
        NULL, len, p);
  else
    req =
        envoy__service__discovery__v3__discovery_request__unpack(NULL, len, p);
  if (req == NULL && dreq == NULL) {
    const char *node =
        ads_stream_node_id(s) != NULL ? ads_stream_log_name(s) : "unknown";

    XDS_LOGW("stream from %s (node %s): malformed %sDiscoveryRequest; closing",
             s->peer, node, delta ? "Delta" : "");
    return ads_close_with(close, ADS_STATUS_INVALID_ARGUMENT,
                          delta ? "malformed DeltaDiscoveryRequest"
                                : "malformed DiscoveryRequest");
  }
  if (delta) {
    with_node = dreq->node != NULL;
    rc = ads_stream_on_delta_request(s, dreq, snap, close);
    envoy__service__discovery__v3__delta_discovery_request__free_unpacked(dreq,
                                                                          NULL);
  } else {
    with_node = req->node != NULL;
    rc = ads_stream_on_request(s, req, snap, close);
    envoy__service__discovery__v3__discovery_request__free_unpacked(req, NULL);
  }
  if (rc == 0 && with_node && s->has_node)
    remember_node(s, p, len);
  return rc;
}

int ads_stream_on_request_bytes(struct ads_stream *s, const uint8_t *p,
                                size_t len, struct snapshot *snap,
                                struct ads_close *close) {
  int rc;

  if (ads_wire_fast(s, p, len, close, &rc))
    return rc;
  return ads_wire_slow(s, p, len, snap, close);
}
