/*
 * alloc.h: every allocation of wasmxds goes through these wrappers, so a
 * test can make the Nth allocation fail (xds_alloc_fail_at) and check that
 * each failure path is clean. They behave like their libc namesakes;
 * xds_free(NULL) is a no-op. Thread-safe.
 */
#ifndef XDS_BASE_ALLOC_H
#define XDS_BASE_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

/* malloc, calloc, realloc and free through the failure hook: NULL (and
 * for xds_realloc, p left alone) when out of memory or when the hook fails
 * this allocation. The caller frees with xds_free; xds_free(NULL) is a
 * no-op. */
void *xds_malloc(size_t n);
void *xds_calloc(size_t nmemb, size_t size);
void *xds_realloc(void *p, size_t n);
void xds_free(void *p);

/* Returns a new copy of s (caller frees), or NULL on allocation failure. */
char *xds_strdup(const char *s);
/* Copies at most n bytes of s and terminates the copy. */
char *xds_strndup(const char *s, size_t n);
/* Returns a new formatted string (caller frees), or NULL on failure. */
char *xds_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xds_vasprintf(const char *fmt, va_list ap);

/* A copy of the n strings of src (caller frees with xds_strv_free); *dst
 * is NULL when n is 0. Returns 0 or XDS_ENOMEM (*dst NULL). */
int xds_strv_dup(char *const *src, size_t n, char ***dst);
/* Frees n strings and their array. NULL: no-op. */
void xds_strv_free(char **v, size_t n);

/*
 * Test hook: from now on, the nth allocation (1-based, counted across all
 * threads) and only it returns NULL. n = 0 turns the hook off. Returns the
 * number of allocations counted since the previous call.
 */
long xds_alloc_fail_at(long n);

#endif
