/*
 * ads_precheck.c: the name limits, checked on a request's bytes before
 * they are unpacked. Unpacking allocates every string of every repeated
 * field, so a 4 MiB request of 350,000 names would cost the serving thread
 * far more than refusing it; this walk reads only the top-level field
 * keys and lengths, allocates nothing, and takes time linear in the bytes.
 */
#include "server/ads/ads_impl.h"

/* Field numbers of the repeated fields that carry names (discovery.proto):
 * DiscoveryRequest resource_names 3, resource_locators 7;
 * DeltaDiscoveryRequest resource_names_subscribe 3, _unsubscribe 4,
 * initial_resource_versions 5, resource_locators_subscribe 8,
 * _unsubscribe 9. */
#define FIELDS_MAX 10

/* Reads a varint at *p (before end). Returns 0, or -1 when malformed. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;

  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

int ads_stream_precheck(const struct ads_stream *s, const uint8_t *p,
                        size_t len, struct ads_close *close) {
  static const int sotw_fields[] = {3, 7, 0};
  static const int delta_fields[] = {3, 4, 5, 8, 9, 0};
  const int *fields = s->mode == ADS_DELTA ? delta_fields : sotw_fields;
  size_t count[FIELDS_MAX] = {0};
  const uint8_t *end = p + len;

  ADS_CHECK(s);
  while (p < end) {
    uint64_t key, v;
    uint32_t field;

    if (read_varint(&p, end, &key) < 0)
      return 0; /* malformed: the unpack says so */
    field = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
      if (read_varint(&p, end, &v) < 0)
        return 0;
      break;
    case 1:
      if ((size_t)(end - p) < 8)
        return 0;
      p += 8;
      break;
    case 2:
      if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
        return 0;
      p += v;
      for (int i = 0; fields[i] != 0; i++)
        if ((uint32_t)fields[i] == field &&
            ++count[field] > (size_t)ADS_NAMES_MAX)
          return ads_close_with(close, ADS_STATUS_RESOURCE_EXHAUSTED,
                                "node %s: more than %d resource names in "
                                "one request (field %u), the limit",
                                ads_node_name(s), ADS_NAMES_MAX, field);
      break;
    case 5:
      if ((size_t)(end - p) < 4)
        return 0;
      p += 4;
      break;
    default:
      return 0; /* groups: not in these messages */
    }
  }
  return 0;
}
