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

/*
 * Shared lists of interned strings: thousands of streams of one proxy
 * class subscribe to the same sorted list of names. xds_intern_list()
 * returns the shared, immutable copy of the n pointers in v (each one
 * xds_intern() returned; the caller keeps its own references) with one new
 * reference: equal lists (the same pointers in the same order) give the
 * same copy while any reference lives, and the copy holds a reference to
 * each name. NULL when out of memory. Thread-safe (the same mutex).
 */
const char *const *xds_intern_list(const char *const *v, size_t n);
/* Drops one reference to a list xds_intern_list() returned; the last
 * release frees it and releases its names. NULL: no-op. */
void xds_intern_list_release(const char *const *list);
/* Number of distinct lists held (tests). */
size_t xds_intern_list_count(void);

#endif
