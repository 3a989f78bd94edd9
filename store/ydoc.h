/*
 * ydoc.h: YAML text -> a tree of struct ynode, one tree per document.
 *
 * libyaml parses; this module composes its events into trees that keep what
 * the store needs and libyaml's own document API loses or hides: mappings
 * with their keys in document order, each scalar's style and tag (so "123"
 * can be told from 123), and the source, line and column (1-based) of every
 * node. Aliases are resolved by copying the anchored node (the copy keeps
 * the anchor's location); YAML 1.1 merge keys (`<<: *base`) are applied,
 * explicit keys winning. JSON documents are YAML flow documents and load the
 * same way.
 *
 * Limits (each a named constant below) bound the file size, the nesting
 * depth and the nodes that aliases may create, so a hostile file cannot
 * exhaust memory or the stack (an "alias bomb").
 *
 * Trees are immutable once built. The trees of a ydoc live in one arena
 * and are freed with it by ydoc_free(); a tree made by ynode_clone() or
 * ydoc_take_root() is the caller's and is freed by ynode_free() on its
 * root. The nodes reached through the accessors are borrowed from their
 * tree. Trees may be read from any thread; freeing is the owner's business.
 */
#ifndef XDS_STORE_YDOC_H
#define XDS_STORE_YDOC_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/* Largest file (or text) accepted: protects memory from a runaway file. */
#define YDOC_MAX_FILE_BYTES (16u * 1024u * 1024u)
/* Deepest nesting of collections: protects the stack of the recursive
 * composer, copier and freer. */
#define YDOC_MAX_DEPTH 64
/* Most nodes that alias expansion may create in one file: the alias-bomb
 * guard ("a: &a [x, x]  b: &b [*a, *a] ..." grows exponentially). */
#define YDOC_MAX_ALIAS_NODES 100000
/* Most structural problems (duplicate keys, bad keys) kept per document. */
#define YDOC_MAX_ISSUES 16
/* Longest issue or error message kept, including the terminator. */
#define YDOC_MSG_MAX 256

struct ynode;
struct ydoc;

enum ynode_kind {
  YNODE_NULL = 0,   /* a plain ~, null, Null, NULL, empty, or !!null */
  YNODE_SCALAR = 1, /* any other scalar */
  YNODE_MAPPING = 2,
  YNODE_SEQUENCE = 3
};

/* How a scalar was written. Only PLAIN scalars are typed by the YAML 1.2
 * core schema; every other style is a string unless explicitly tagged. */
enum ynode_style {
  YNODE_PLAIN = 0,
  YNODE_SINGLE_QUOTED = 1,
  YNODE_DOUBLE_QUOTED = 2,
  YNODE_LITERAL = 3, /* | */
  YNODE_FOLDED = 4,  /* > */
  YNODE_FLOW = 5,    /* a collection written [..] or {..} */
  YNODE_BLOCK = 6    /* a collection written in block style */
};

/* What a scalar means under the YAML 1.2 core schema (plain scalars) or its
 * explicit standard tag (!!str, !!int, !!float, !!bool, !!null). */
enum yscalar_type {
  YSCALAR_NOT_SCALAR = 0, /* a mapping or a sequence */
  YSCALAR_NULL = 1,
  YSCALAR_BOOL = 2,
  YSCALAR_INT = 3,   /* decimal, 0o octal or 0x hex */
  YSCALAR_FLOAT = 4, /* including .inf, -.inf and .nan */
  YSCALAR_STR = 5,
  YSCALAR_INVALID = 6 /* an unknown tag, or a tagged value that does not
                         fit its tag (e.g. !!int abc) */
};

/* One structural problem of a document that did parse: it names where. */
struct ydoc_issue {
  int line;
  int column;
  char msg[YDOC_MSG_MAX];
};

/*
 * Parses len bytes of text (need not be NUL-terminated) named source (a
 * file path or etcd key, copied) into documents.
 *
 * Returns 0 when the whole text parsed. Returns XDS_EPARSE (not YAML) or
 * XDS_ETOOBIG (a limit above was exceeded) with *out still set: it holds
 * the documents completed before the error, and ydoc_error() tells where
 * the error is. Returns XDS_ENOMEM with *out NULL. err (nullable) gets
 * "source:line:column: reason". The caller frees *out with ydoc_free().
 */
int ydoc_parse(const char *source, const char *text, size_t len,
               struct ydoc **out, struct xds_err *err);

/*
 * Reads the file at path (at most YDOC_MAX_FILE_BYTES) and parses it as
 * ydoc_parse() does, with path as the source. Also returns XDS_EIO (cannot
 * read), or XDS_ETOOBIG for a file over the limit, both with *out NULL and
 * err saying why.
 */
int ydoc_load_file(const char *path, struct ydoc **out, struct xds_err *err);

/*
 * Reads the file at path into text (initialised here; at most
 * YDOC_MAX_FILE_BYTES), for callers that look at the bytes before parsing
 * them with ydoc_parse(). Returns 0 (the caller cleans text up), or
 * XDS_EIO, XDS_ETOOBIG or XDS_ENOMEM with text cleaned up and err saying
 * why ("path: reason").
 */
int ydoc_read_file(const char *path, struct xds_buf *text, struct xds_err *err);

/* Frees d and every node of it. NULL: no-op. */
void ydoc_free(struct ydoc *d);

/* The error that stopped parsing: returns 0 (none) or its XDS_E* code and
 * sets the nullable out-parameters; line and column are 1-based. */
int ydoc_error(const struct ydoc *d, int *line, int *column, const char **msg);

/* Number of complete documents; an empty document (nothing but `---` or
 * comments) counts and has a YNODE_NULL root. */
size_t ydoc_count(const struct ydoc *d);
/* The root of document i (borrowed), never NULL for i < ydoc_count(). */
const struct ynode *ydoc_root(const struct ydoc *d, size_t i);
/* Takes the root of document i out of d: the caller owns it (a copy of
 * the tree, which outlives d) and frees it with ynode_free(); d then holds
 * a YNODE_NULL in its place. NULL on allocation failure (d is unchanged). */
struct ynode *ydoc_take_root(struct ydoc *d, size_t i);
/* Structural problems found in document i (duplicate mapping keys,
 * non-scalar keys): a document with issues should be rejected. */
size_t ydoc_issue_count(const struct ydoc *d, size_t i);
const struct ydoc_issue *ydoc_issue(const struct ydoc *d, size_t i, size_t k);

/* Node accessors. All take a non-NULL node and borrow it. */
enum ynode_kind ynode_kind(const struct ynode *n);
enum ynode_style ynode_style(const struct ynode *n);
/* The explicit tag as libyaml resolved it ("tag:yaml.org,2002:str", "!x"),
 * or NULL when there was none. */
const char *ynode_tag(const struct ynode *n);
/* A scalar's text (NUL-terminated; len, if non-NULL, gets its length, which
 * can be less than strlen when the text holds "\0"). "" for a YNODE_NULL;
 * NULL for a collection. */
const char *ynode_text(const struct ynode *n, size_t *len);
enum yscalar_type ynode_scalar_type(const struct ynode *n);
/* A short English name of what n is, for messages: "a mapping", "an
 * integer", "a string"... */
const char *ynode_describe(const struct ynode *n);

/* The value of an integer scalar (YSCALAR_INT): 0, or XDS_EINVAL when n is
 * not an integer, or XDS_ETOOBIG when it does not fit an int64. */
int ynode_int64(const struct ynode *n, int64_t *out);
/* The value of an integer or float scalar: 0 or XDS_EINVAL. */
int ynode_double(const struct ynode *n, double *out);
/* The value of a boolean scalar: 0 or XDS_EINVAL. */
int ynode_bool(const struct ynode *n, int *out);

/* Entries of a mapping or items of a sequence; 0 for a scalar. */
size_t ynode_len(const struct ynode *n);
/* Mapping entry i: its key (a scalar) and value. */
const struct ynode *ynode_map_key(const struct ynode *n, size_t i);
const struct ynode *ynode_map_value(const struct ynode *n, size_t i);
/* The value under the scalar key whose text equals key, or NULL (also
 * NULL when n is not a mapping). */
const struct ynode *ynode_map_get(const struct ynode *n, const char *key);
/* Sequence item i. */
const struct ynode *ynode_seq_item(const struct ynode *n, size_t i);

/* Where the node starts. The source string lives as long as the node. */
const char *ynode_source(const struct ynode *n);
int ynode_line(const struct ynode *n);
int ynode_column(const struct ynode *n);

/* A deep copy of n (sharing the immutable source name), owned by the
 * caller; NULL on allocation failure. */
struct ynode *ynode_clone(const struct ynode *n);
/* Whether two trees hold the same data: same kinds, scalar texts and
 * types, tags, keys in the same order; locations and styles that do not
 * change a value (quoting, flow or block) are ignored. NULL equals only
 * NULL. */
int ynode_equal(const struct ynode *a, const struct ynode *b);
/* Frees a whole tree: a root from ydoc_take_root() or ynode_clone().
 * NULL is a no-op. Never call it on a borrowed node. */
void ynode_free(struct ynode *n);

#endif
