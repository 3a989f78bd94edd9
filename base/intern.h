/*
 * intern.h: shared, reference-counted copies of strings.
 *
 * Thousands of streams name the same few hundred resources; each keeps the
 * names it subscribed to and was sent. Interning stores each distinct name
 * once for the whole process: xds_intern() returns the shared copy with
 * one more reference, xds_intern_release() drops one, and the last release
 * frees it. Equal strings give the same pointer while any reference lives.
 * Thread-safe (one mutex; the callers are the serving loop and tests).
 */
#ifndef XDS_BASE_INTERN_H
#define XDS_BASE_INTERN_H

#include <stddef.h>

/* The shared copy of s with one new reference (the caller owns it and
 * releases it), or NULL when out of memory. */
const char *xds_intern(const char *s);
/* Drops one reference to p, a pointer xds_intern() returned. NULL: no-op. */
void xds_intern_release(const char *p);
/* Number of distinct strings held (tests). */
size_t xds_intern_count(void);

#endif
