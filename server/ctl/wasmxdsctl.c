/*
 * wasmxdsctl.c: the operator's tool for the etcd store.
 *
 *   wasmxdsctl [--store URL] [--etcd-*] apply -f FILE_OR_DIR... [--dry-run]
 *   wasmxdsctl [--store URL] [--etcd-*] get REF... [--raw]
 *   wasmxdsctl [--store URL] [--etcd-*] delete REF [--revision N]
 *   wasmxdsctl [--store URL] [--etcd-*] list [KIND]
 *   wasmxdsctl validate PATH | --store URL
 *   wasmxdsctl render ...          (runs `wasmxds render ...`)
 *   wasmxdsctl status [PROXY] ...  (over CSDS: server/ctl/status.c)
 *
 * apply validates with exactly the server's code (file_store_load_ex()
 * with the server's template check, encode_check_template()) and writes
 * nothing when any document has an error, or when the store's other keys
 * and the documents together have an error the store alone does not
 * (check_with_store()). Then every document goes to its canonical key
 * (store/etcd_store.h) in ONE transaction (write_items()) that compares
 * each key's mod_revision: 0 to create, the revision the listing read (or
 * the one a "# mod_revision: N" comment in the document names, as `get`
 * prints it) to update. So a concurrent writer is never silently
 * overwritten, and an apply writes all its documents or none: at most
 * ETCD_MAX_TXN_OPS of them. --dry-run does everything but the write and
 * says what each document would do (created / configured / unchanged).
 *
 * Exit codes: 0 done; 1 invalid or clashing documents (nothing written);
 * 2 usage; 3 a conflict (another writer changed a key first); 4 not found;
 * 5 etcd failed (unreachable, authentication, TLS, permission).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/build_info.h"
#include "base/err.h"
#include "base/log.h"
#include "server/compose/encode.h"
#include "server/ctl/status.h"
#include "store/catalog.h"
#include "store/decode.h"
#include "store/etcd_client.h"
#include "store/etcd_config.h"
#include "store/etcd_load.h"
#include "store/etcd_store.h"
#include "store/file_store.h"
#include "store/problems.h"
#include "store/ydoc.h"

enum {
  EXIT_OK = 0,
  EXIT_INVALID = 1,
  EXIT_USAGE = 2,
  EXIT_CONFLICT = 3,
  EXIT_NOTFOUND = 4,
  EXIT_ETCD = 5
};

/* The comment lines `get` prints above a value, which apply reads back. */
#define MARK_KEY "# key: "
#define MARK_REV "# mod_revision: "
/* The line `get` prints before the status written back to etcd, which
 * apply drops with everything after it, to the end of the document: the
 * status is not part of the spec. */
#define MARK_STATUS "# status written back by wasmxds (apply drops it): "
/* Most files named with -f. */
#define CTL_MAX_FILES 64

static void usage(FILE *f) {
  fprintf(f,
          "Usage: wasmxdsctl [--store URL] [OPTION]... COMMAND [ARG]...\n"
          "Manage the WasmExtension and ListenerTemplate documents of a "
          "wasmxds etcd store.\n"
          "\n"
          "Commands:\n"
          "  apply -f FILE_OR_DIR [-f ...] [--dry-run]\n"
          "                 validate every document as the server does, "
          "alone and with the\n"
          "                 store's other keys; write them all in one "
          "transaction (each\n"
          "                 compared on its mod_revision), or none if any "
          "is invalid,\n"
          "                 clashes or conflicts (at most 128 documents); "
          "--dry-run says\n"
          "                 what each would do (created, configured, "
          "unchanged)\n"
          "  get REF... [--raw]\n"
          "                 print each resource's document (with its key "
          "and mod_revision,\n"
          "                 and the status: servers with --write-status "
          "wrote),\n"
          "                 separated by \"---\" lines\n"
          "  delete REF [--revision N]\n"
          "                 delete a resource (if still at revision N)\n"
          "  list [KIND]      list the keys of the store (of one kind: "
          "WasmExtension or\n"
          "                 ListenerTemplate)\n"
          "  validate PATH    check a file store (as `wasmxds validate`);\n"
          "  validate         with --store, check what the etcd store holds\n"
          "  render ARG...    run `wasmxds render ARG...` with --store "
          "(and --etcd-*)\n"
          "  status [PROXY] [--server HOST:PORT]... [-o wide|json|yaml]\n"
          "                 the proxies connected to the servers and their "
          "sync state\n"
          "                 (over CSDS; `wasmxdsctl status --help`)\n"
          "\n"
          "REF is WasmExtension/ORG/NAME, ListenerTemplate/NAME or "
          "organizations/ORG/extensions/NAME.\n"
          "\n"
          "Options:\n"
          "  --store URL               etcd://HOST:PORT[,HOST:PORT...]"
          "[/PREFIX] (etcds:// for TLS;\n"
          "                            default "
          "$WASMXDS_STORE)\n" ETCD_CONFIG_FLAGS_HELP
          "  --status-prefix PATH      where servers write status (default "
          "<prefix>-status)\n"
          "  -h, --help                this help\n"
          "  -V, --version             print the version and commit, and exit\n"
          "\n"
          "Exit status: 0 done, 1 invalid or clashing documents (nothing "
          "written), 2 usage,\n"
          "3 conflict with another writer, 4 not found, 5 etcd error.\n");
}

static const struct store_hooks hooks = {encode_store_check, NULL};

static void print_problem(const struct problem *pr, FILE *out) {
  struct xds_buf line;

  xds_buf_init(&line, 8192);
  if (problem_format(pr, &line) == 0)
    fprintf(out, "%s%s", line.data,
            line.len > 0 && line.data[line.len - 1] == '\n' ? "" : "\n");
  xds_buf_cleanup(&line);
}

static void print_problems(const struct problems *pb, FILE *out) {
  for (size_t i = 0; i < problems_count(pb); i++)
    print_problem(problems_at(pb, i), out);
  if (pb->dropped > 0)
    fprintf(out, "... and %zu more problems\n", pb->dropped);
}

/* ---- documents of a file ---- */

struct doc_span {
  size_t region; /* where its text begins (after the previous one) */
  size_t end;    /* one past its last byte */
  size_t line;   /* 1-based line where its content begins */
};

/* Finds each document's byte range with libyaml's event marks. Returns
 * the count (at most max), or -1 when the text is not YAML (the loader
 * has reported that already). */
static long split_docs(const char *text, size_t len, struct doc_span *v,
                       size_t max) {
  yaml_parser_t p;
  yaml_event_t ev;
  size_t n = 0, prev_end = 0;
  int done = 0;

  if (!yaml_parser_initialize(&p))
    return -1;
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  while (!done) {
    if (!yaml_parser_parse(&p, &ev)) {
      yaml_parser_delete(&p);
      return -1;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT && n < max) {
      v[n].region = prev_end;
      v[n].line = ev.start_mark.line + 1;
    } else if (ev.type == YAML_DOCUMENT_END_EVENT && n < max) {
      v[n].end = ev.end_mark.index;
      prev_end = ev.end_mark.index;
      n++;
    } else if (ev.type == YAML_STREAM_END_EVENT) {
      done = 1;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return (long)n;
}

/* What apply writes for one resource. */
struct item {
  char *key;
  char *id; /* fqn or template name */
  const char *kind;
  char *value; /* the document, marker lines dropped */
  size_t len;
  int64_t pinned;  /* a "# mod_revision: N" seen; -1 when none */
  int64_t cur_rev; /* the key's mod_revision in the store; 0: absent */
  int same;        /* the store holds these very bytes */
};

/* Whether the n bytes of line l are a bare document start marker "---"
 * (the separator of a stream such as `get A B` prints), which belongs to
 * the stream, not to the document. */
static int is_doc_start(const char *l, size_t n) {
  if (n < 3 || strncmp(l, "---", 3) != 0)
    return 0;
  for (size_t i = 3; i < n; i++)
    if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n')
      return 0;
  return 1;
}

/* Copies text[a, b) without the marker lines (and a document start
 * marker); reads the pinned revision. */
static int doc_value(const char *text, size_t a, size_t b, struct item *it) {
  struct xds_buf out;
  size_t i = a;

  it->pinned = -1;
  xds_buf_init(&out, YDOC_MAX_FILE_BYTES);
  while (i < b) {
    const char *nl = memchr(text + i, '\n', b - i);
    size_t e = nl != NULL ? (size_t)(nl - text) + 1 : b;
    const char *l = text + i;

    if (strncmp(l, MARK_STATUS, strlen(MARK_STATUS)) == 0)
      break; /* the status get printed, to the end of the document */
    if (strncmp(l, MARK_REV, strlen(MARK_REV)) == 0 && e - i < 40) {
      it->pinned = strtoll(l + strlen(MARK_REV), NULL, 10);
    } else if (strncmp(l, MARK_KEY, strlen(MARK_KEY)) != 0 &&
               !is_doc_start(l, e - i)) {
      if (xds_buf_append(&out, l, e - i) < 0) {
        xds_buf_cleanup(&out);
        return XDS_ENOMEM;
      }
    }
    i = e;
  }
  /* A value ending without a newline gets one, as files usually do. */
  if (out.len > 0 && out.data[out.len - 1] != '\n' &&
      xds_buf_putc(&out, '\n') < 0) {
    xds_buf_cleanup(&out);
    return XDS_ENOMEM;
  }
  if (out.data == NULL && xds_buf_puts(&out, "") < 0)
    return XDS_ENOMEM;
  it->value = xds_buf_steal(&out, &it->len);
  return 0;
}

/* Finds the document of a record (its file and first line). */
/* A resource that is an item of a List document (kubectl get -o yaml)
 * has no text of its own: its value is the item as JSON (which every
 * store reads as YAML). Returns 1 when loc is such an item (it->value
 * set), 0 when it is not, or a negative error. */
static int list_item_text(const struct src_loc *loc, const struct xds_buf *text,
                          struct item *it) {
  struct xds_err err = {0, ""};
  struct ydoc *d = NULL;
  int rc, found = 0;

  rc = ydoc_parse(loc->source, text->data != NULL ? text->data : "", text->len,
                  &d, &err);
  for (size_t i = 0; rc >= 0 && !found && i < ydoc_count(d); i++) {
    const struct ynode *items;
    struct problems pb;

    problems_init(&pb, 1);
    if (decode_list(ydoc_root(d, i), &pb, &items) == 1)
      for (size_t k = 0; !found && k < ynode_len(items); k++) {
        const struct ynode *x = ynode_seq_item(items, k);

        if (ynode_line(x) != loc->line || ynode_column(x) != loc->column)
          continue;
        found = 1;
        rc = decode_json(x, YDOC_MAX_FILE_BYTES, &it->value, &err);
        if (rc == 0) {
          it->len = strlen(it->value);
          it->pinned = -1;
        } else {
          fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
        }
      }
    problems_cleanup(&pb);
  }
  ydoc_free(d);
  return rc < 0 ? rc : found;
}

static int item_text(const struct src_loc *loc, struct item *it) {
  struct xds_err err = {0, ""};
  struct doc_span spans[1024];
  struct xds_buf text;
  long n, pick = -1;
  int rc;

  rc = ydoc_read_file(loc->source, &text, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    return rc;
  }
  rc = list_item_text(loc, &text, it);
  if (rc != 0) {
    xds_buf_cleanup(&text);
    return rc < 0 ? rc : 0;
  }
  n = split_docs(text.data != NULL ? text.data : "", text.len, spans, 1024);
  for (long i = 0; i < n; i++)
    if (spans[i].line <= (size_t)loc->line)
      pick = i;
  if (pick < 0) {
    xds_buf_cleanup(&text);
    fprintf(stderr,
            "wasmxdsctl: %s:%d: cannot find the document again "
            "(more than 1024 documents in one file?)\n",
            loc->source, loc->line);
    return XDS_EIO;
  }
  rc = doc_value(text.data, spans[pick].region, spans[pick].end, it);
  xds_buf_cleanup(&text);
  return rc;
}

/* ---- etcd ---- */

static int exit_for(int rc) {
  switch (rc) {
  case XDS_ECONFLICT:
    return EXIT_CONFLICT;
  case XDS_ENOTFOUND:
    return EXIT_NOTFOUND;
  case XDS_EINVAL:
    return EXIT_INVALID;
  default:
    return EXIT_ETCD;
  }
}

static int connect_store(struct etcd_config *cfg, struct etcd_client **c) {
  struct xds_err err = {0, ""};
  int rc = etcd_config_finish(cfg, &err);

  if (rc == 0)
    rc = etcd_client_new(cfg, c, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n",
            err.msg[0] ? err.msg : xds_strerror(rc));
    return rc == XDS_EINVAL ? EXIT_USAGE : EXIT_ETCD;
  }
  return 0;
}

static void items_free(struct item *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    xds_free(v[i].key);
    xds_free(v[i].id);
    xds_free(v[i].value);
  }
  xds_free(v);
}

struct list_ctx {
  const char *prefix;
  size_t n;
  struct etcd_store *store;  /* apply: the store as it is; nullable */
  struct etcd_store *store2; /* apply: a second copy; nullable */
  struct item **by_key;      /* apply: the items sorted by key; nullable */
  size_t n_items;
};

static int list_one(void *ctx, const struct etcd_kv *kv);

/* 1 when pb holds an error at the same place for the same reason as pr. */
static int has_error(const struct problems *pb, const struct problem *pr) {
  for (size_t i = 0; i < problems_count(pb); i++) {
    const struct problem *q = problems_at(pb, i);

    if (q->severity == PROBLEM_ERROR && q->line == pr->line &&
        q->column == pr->column && strcmp(q->source, pr->source) == 0 &&
        strcmp(q->path, pr->path) == 0 && strcmp(q->msg, pr->msg) == 0)
      return 1;
  }
  return 0;
}

static int item_key_cmp(const void *a, const void *b) {
  const struct item *const *x = a, *const *y = b;

  return strcmp((*x)->key, (*y)->key);
}

/* The item whose key is key, or NULL. */
static struct item *item_find(const struct list_ctx *l, const char *key) {
  struct item probe = {.key = (char *)key}, *pp = &probe, **hit;

  if (l->by_key == NULL)
    return NULL;
  hit = bsearch(&pp, l->by_key, l->n_items, sizeof(*l->by_key), item_key_cmp);
  return hit != NULL ? *hit : NULL;
}

/*
 * What the store would hold with the items written: lists every key under
 * the prefix (one listing, at one revision: *revision), notes for each
 * item what its key holds (cur_rev, same), builds the catalog as it is
 * now (before) and with the items in place (after), exactly as a server
 * would, and reports each error of after that before does not have: a
 * listener port two templates would share on one proxy, a resource
 * another key already defines. Errors the store has already are not the
 * items' doing and do not stop them.
 * Returns EXIT_OK, EXIT_INVALID (reported: nothing must be written) or the
 * exit status of an etcd or memory failure (reported).
 */
static int check_with_store(struct etcd_config *cfg, struct etcd_client *c,
                            struct item *items, size_t n_items,
                            int64_t *revision) {
  struct list_ctx l = {.prefix = cfg->prefix, .n_items = n_items};
  struct xds_err err = {0, ""};
  struct catalog *before = NULL, *after = NULL;
  struct problems pb0, pb1;
  struct etcd_header h = {0};
  size_t conflicts = 0;
  char *dir = xds_asprintf("%s/", cfg->prefix);
  int rc = XDS_ENOMEM, status = EXIT_OK;

  problems_init(&pb0, PROBLEMS_DEFAULT_MAX);
  problems_init(&pb1, PROBLEMS_DEFAULT_MAX);
  l.store = etcd_store_new(cfg->prefix, &hooks);
  l.store2 = etcd_store_new(cfg->prefix, &hooks);
  l.by_key = xds_calloc(n_items > 0 ? n_items : 1, sizeof(*l.by_key));
  if (l.by_key != NULL) {
    for (size_t i = 0; i < n_items; i++) {
      items[i].cur_rev = 0;
      items[i].same = 0;
      l.by_key[i] = &items[i];
    }
    qsort(l.by_key, n_items, sizeof(*l.by_key), item_key_cmp);
  }
  if (dir != NULL && l.store != NULL && l.store2 != NULL && l.by_key != NULL)
    rc = etcd_client_list(c, dir, cfg->page_size, list_one, &l, &h, &err);
  *revision = h.revision;
  for (size_t i = 0; rc == 0 && i < n_items; i++)
    rc = etcd_store_put(l.store2, items[i].key, items[i].value, items[i].len,
                        h.revision + 1);
  if (rc == 0)
    rc = etcd_store_build(l.store, &before, &pb0);
  if (rc == 0)
    rc = etcd_store_build(l.store2, &after, &pb1);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n",
            err.msg[0] ? err.msg : xds_strerror(rc));
    status = exit_for(rc);
    goto out;
  }
  for (size_t i = 0; i < problems_count(&pb1); i++) {
    const struct problem *pr = problems_at(&pb1, i);

    if (pr->severity != PROBLEM_ERROR || has_error(&pb0, pr))
      continue;
    print_problem(pr, stderr);
    conflicts++;
  }
  if (conflicts > 0) {
    fprintf(stderr,
            "wasmxdsctl: %zu conflicts with what the store holds (revision "
            "%lld); nothing was written\n",
            conflicts, (long long)h.revision);
    status = EXIT_INVALID;
  }
out:
  catalog_unref(before);
  catalog_unref(after);
  problems_cleanup(&pb0);
  problems_cleanup(&pb1);
  etcd_store_free(l.store);
  etcd_store_free(l.store2);
  xds_free(l.by_key);
  xds_free(dir);
  return status;
}

/* The revision an item's write is compared with: the one its document
 * names, else the one its key had when listed (0: must not exist). */
static int64_t item_expect(const struct item *it) {
  return it->pinned >= 0 ? it->pinned : it->cur_rev;
}

/* What writing an item does to its key, as the listing saw it. */
static const char *item_action(const struct item *it) {
  if (it->cur_rev == 0)
    return "created";
  return it->same ? "unchanged" : "configured";
}

static void print_conflict(const struct item *it, int64_t expect, int64_t now) {
  struct xds_err err = {0, ""};

  etcd_conflict_explain(it->key, expect, now, &err);
  fprintf(stderr, "wasmxdsctl: %s %s: %s\n", it->kind, it->id, err.msg);
}

/*
 * Writes the items in ONE etcd transaction, each compared on its
 * mod_revision (item_expect()), unchanged ones compared only: all or
 * none. Reports each item's outcome. Returns an exit status.
 */
static int write_items(struct etcd_client *c, struct item *items,
                       size_t n_items) {
  struct etcd_put_if *v = xds_calloc(n_items > 0 ? n_items : 1, sizeof(*v));
  struct xds_err err = {0, ""};
  int64_t rev = 0;
  int rc;

  if (v == NULL) {
    fprintf(stderr, "wasmxdsctl: %s\n", xds_strerror(XDS_ENOMEM));
    return EXIT_ETCD;
  }
  for (size_t i = 0; i < n_items; i++) {
    v[i].key = items[i].key;
    v[i].expect = item_expect(&items[i]);
    if (!items[i].same) {
      v[i].value = items[i].value;
      v[i].len = items[i].len;
    }
  }
  rc = etcd_client_put_all_if(c, v, n_items, &rev, &err);
  if (rc == XDS_ECONFLICT) {
    for (size_t i = 0; i < n_items; i++)
      if (v[i].conflict)
        print_conflict(&items[i], v[i].expect, v[i].now);
    fprintf(stderr, "wasmxdsctl: nothing was written\n");
  } else if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s; nothing was written\n", err.msg);
    if (strstr(err.msg, "too large") != NULL)
      fprintf(stderr, "wasmxdsctl: one apply is one etcd request, bounded "
                      "by etcd's --max-request-bytes (1.5 MiB by default): "
                      "apply fewer documents at a time\n");
  } else {
    for (size_t i = 0; i < n_items; i++)
      printf("%s %s %s (key %s, mod_revision %lld)\n", items[i].kind,
             items[i].id, item_action(&items[i]), items[i].key,
             (long long)(items[i].same ? items[i].cur_rev : rev));
  }
  xds_free(v);
  return rc < 0 ? exit_for(rc) : EXIT_OK;
}

static int cmd_apply(struct etcd_config *cfg, char **files, size_t n_files,
                     int dry_run) {
  struct etcd_client *c = NULL;
  struct catalog *all[CTL_MAX_FILES] = {0};
  struct item *items = NULL;
  size_t n_items = 0, cap = 0, errors = 0, stale = 0;
  int64_t revision = 0;
  int status = EXIT_OK, rc = 0;

  /* 1. Validate everything, exactly as the server loads a file store. */
  for (size_t f = 0; f < n_files; f++) {
    struct xds_err err = {0, ""};
    struct problems pb;

    problems_init(&pb, PROBLEMS_DEFAULT_MAX);
    rc = file_store_load_ex(files[f], &hooks, NULL, NULL, &all[f], &pb, &err);
    if (rc < 0) {
      fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
      errors++;
    }
    print_problems(&pb, stderr);
    errors += pb.n_errors;
    problems_cleanup(&pb);
  }
  if (errors > 0) {
    fprintf(stderr, "wasmxdsctl: %zu errors; nothing was written\n", errors);
    status = EXIT_INVALID;
    goto out;
  }
  /* 2. One item per record, with its document's text. */
  for (size_t f = 0; f < n_files; f++) {
    size_t ne = catalog_ext_count(all[f]), nt = catalog_tmpl_count(all[f]);

    for (size_t i = 0; i < ne + nt; i++) {
      const struct wasm_ext *e = i < ne ? catalog_ext_at(all[f], i) : NULL;
      const struct listener_tmpl *t =
          i < ne ? NULL : catalog_tmpl_at(all[f], i - ne);
      struct item *it;

      /* A WasmDeployment is one key however many filters it has. */
      if (e != NULL && e->kind == WASM_KIND_DEPLOYMENT && e->filter_index > 0)
        continue;
      if (n_items == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        struct item *v = xds_realloc(items, ncap * sizeof(*v));

        if (v == NULL) {
          status = EXIT_ETCD;
          goto out;
        }
        items = v;
        cap = ncap;
      }
      it = &items[n_items];
      memset(it, 0, sizeof(*it));
      it->kind = e != NULL ? wasm_ext_kind_name(e) : "ListenerTemplate";
      it->id = xds_strdup(e != NULL ? wasm_ext_resource_id(e) : t->name);
      it->key = e != NULL ? etcd_store_key_of_ext(cfg->prefix, e)
                          : etcd_store_key_tmpl(cfg->prefix, t->name);
      n_items++;
      if (it->id == NULL || it->key == NULL ||
          item_text(e != NULL ? &e->loc : &t->loc, it) < 0) {
        status = EXIT_INVALID;
        goto out;
      }
      for (size_t k = 0; k + 1 < n_items; k++)
        if (strcmp(items[k].key, it->key) == 0) {
          fprintf(stderr,
                  "wasmxdsctl: %s \"%s\" is defined twice; nothing "
                  "was written\n",
                  it->kind, it->id);
          status = EXIT_INVALID;
          goto out;
        }
    }
  }
  /* All documents go in one transaction, which etcd bounds. */
  if (n_items > ETCD_MAX_TXN_OPS) {
    fprintf(stderr,
            "wasmxdsctl: %zu documents; one apply is one etcd transaction "
            "of at most %d (etcd's --max-txn-ops default): apply them in "
            "several parts; nothing was written\n",
            n_items, ETCD_MAX_TXN_OPS);
    status = EXIT_USAGE;
    goto out;
  }
  /* 3. Nothing that clashes with the other keys of the store. */
  if ((status = connect_store(cfg, &c)) != 0 ||
      (status = check_with_store(cfg, c, items, n_items, &revision)) != 0)
    goto out;
  for (size_t i = 0; i < n_items; i++) {
    struct item *it = &items[i];

    /* A byte-identical value only counts as unchanged at the revision
     * the document expects. */
    if (item_expect(it) != it->cur_rev) {
      it->same = 0;
      print_conflict(it, item_expect(it), it->cur_rev);
      stale++;
    }
  }
  if (stale > 0) {
    fprintf(stderr, "wasmxdsctl: nothing was written\n");
    status = EXIT_CONFLICT;
    goto out;
  }
  /* 4. What each would do (--dry-run), or write them all, or none. */
  if (dry_run) {
    for (size_t i = 0; i < n_items; i++)
      printf("%s %s %s (dry run; key %s, store at revision %lld)\n",
             items[i].kind, items[i].id, item_action(&items[i]), items[i].key,
             (long long)revision);
    goto out;
  }
  status = write_items(c, items, n_items);
out:
  etcd_client_free(c);
  items_free(items, n_items);
  for (size_t f = 0; f < n_files; f++)
    catalog_unref(all[f]);
  return status;
}

/* What get and delete share: ref to its key, a connection, and the key's
 * current value. Returns 0 with everything set (kv, c and key for the
 * caller to release), or an exit status after saying why; on a status,
 * nothing is left to release. */
static int read_ref(struct etcd_config *cfg, const char *ref,
                    struct etcd_client **c, char **key, struct etcd_kv *kv) {
  struct xds_err err = {0, ""};
  int64_t rev;
  int found = 0, status, rc;

  *c = NULL;
  *key = NULL;
  memset(kv, 0, sizeof(*kv));
  if (etcd_store_key_of_ref(cfg->prefix, ref, key, &err) < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    return EXIT_USAGE;
  }
  if ((status = connect_store(cfg, c)) != 0) {
    xds_free(*key);
    return status;
  }
  rc = etcd_client_get(*c, *key, kv, &found, &rev, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    status = exit_for(rc);
  } else if (!found) {
    fprintf(stderr, "wasmxdsctl: %s: not found (key %s)\n", ref, *key);
    status = EXIT_NOTFOUND;
  }
  if (status != 0) {
    etcd_kv_cleanup(kv);
    etcd_client_free(*c);
    xds_free(*key);
    *c = NULL;
    *key = NULL;
  }
  return status;
}

/* 1 when the document text is a flow (JSON) mapping: it starts, past
 * blank and comment lines, with '{'. */
static int is_flow_doc(const char *v, size_t n) {
  size_t i = 0;

  while (i < n) {
    if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
      i++;
    } else if (v[i] == '#') {
      while (i < n && v[i] != '\n')
        i++;
    } else {
      return v[i] == '{';
    }
  }
  return 0;
}

/* After the document of key (value doc), the status servers with
 * --write-status wrote for it under sp, as a `status:` section (YAML
 * takes its JSON as a flow mapping); for a document that is itself a flow
 * mapping, as comment lines. Nothing when there is none. Returns 0 or an
 * etcd error (said on stderr). */
static int print_status(struct etcd_client *c, const char *prefix,
                        const char *sp, const char *key,
                        const struct etcd_kv *doc) {
  struct xds_err err = {0, ""};
  struct etcd_kv kv;
  json_error_t je;
  json_t *j;
  char *skey, *text;
  int64_t rev;
  int found = 0, rc, flow;

  if (strncmp(key, prefix, strlen(prefix)) != 0)
    return 0;
  skey = xds_asprintf("%s%s", sp, key + strlen(prefix));
  if (skey == NULL)
    return XDS_ENOMEM;
  memset(&kv, 0, sizeof(kv));
  rc = etcd_client_get(c, skey, &kv, &found, &rev, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: status of %s: %s\n", key, err.msg);
    xds_free(skey);
    etcd_kv_cleanup(&kv);
    return rc;
  }
  if (!found) {
    xds_free(skey);
    etcd_kv_cleanup(&kv);
    return 0;
  }
  j = json_loadb(kv.value != NULL ? kv.value : "", kv.value_len, 0, &je);
  text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  flow = is_flow_doc(doc->value != NULL ? doc->value : "", doc->value_len);
  printf(MARK_STATUS "%s (mod_revision %lld)\n%sstatus:", skey,
         (long long)kv.mod_revision, flow ? "# " : "");
  if (text == NULL) {
    printf(" {}  # not JSON\n");
  } else {
    putchar('\n');
    for (const char *l = text; *l != '\0';) {
      size_t len = strcspn(l, "\n");

      printf("%s  %.*s\n", flow ? "# " : "", (int)len, l);
      l += len;
      if (*l == '\n')
        l++;
    }
  }
  free(text); /* checksrc: allow alloc: jansson's json_dumps */
  json_decref(j);
  xds_free(skey);
  etcd_kv_cleanup(&kv);
  return 0;
}

/* Prints each resource of refs[0..n), separated by "---" lines so that
 * the output is one YAML stream apply takes back. A missing resource is
 * reported and the others are still printed (exit status 4). */
static int cmd_get(struct etcd_config *cfg, const char *status_prefix,
                   char **refs, size_t n, int raw) {
  struct etcd_client *c = NULL;
  char **keys = xds_calloc(n, sizeof(*keys)), *sp = NULL;
  size_t printed = 0;
  int status = EXIT_OK;

  if (keys == NULL)
    return EXIT_ETCD;
  {
    struct xds_err err = {0, ""};

    if (etcd_status_prefix(cfg->prefix, status_prefix, &sp, &err) < 0) {
      fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
      xds_free(keys);
      return EXIT_USAGE;
    }
  }
  for (size_t i = 0; i < n; i++) {
    struct xds_err err = {0, ""};

    if (etcd_store_key_of_ref(cfg->prefix, refs[i], &keys[i], &err) < 0) {
      fprintf(stderr, "wasmxdsctl: %s\n",
              err.msg[0] ? err.msg : xds_strerror(XDS_ENOMEM));
      status = EXIT_USAGE;
      goto out;
    }
  }
  if ((status = connect_store(cfg, &c)) != 0)
    goto out;
  for (size_t i = 0; i < n; i++) {
    struct xds_err err = {0, ""};
    struct etcd_kv kv;
    int64_t rev;
    int found = 0, rc;

    rc = etcd_client_get(c, keys[i], &kv, &found, &rev, &err);
    if (rc < 0) {
      fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
      etcd_kv_cleanup(&kv);
      status = exit_for(rc);
      break;
    }
    if (!found) {
      fprintf(stderr, "wasmxdsctl: %s: not found (key %s)\n", refs[i], keys[i]);
      status = EXIT_NOTFOUND;
      continue;
    }
    if (printed++ > 0)
      fputs("---\n", stdout);
    if (!raw)
      printf(MARK_KEY "%s\n" MARK_REV "%lld\n", keys[i],
             (long long)kv.mod_revision);
    fwrite(kv.value, 1, kv.value_len, stdout);
    if (kv.value_len > 0 && kv.value[kv.value_len - 1] != '\n')
      putchar('\n');
    if (!raw && (rc = print_status(c, cfg->prefix, sp, keys[i], &kv)) < 0)
      status = exit_for(rc);
    etcd_kv_cleanup(&kv);
  }
out:
  xds_free(sp);
  etcd_client_free(c);
  for (size_t i = 0; i < n; i++)
    xds_free(keys[i]);
  xds_free(keys);
  return status;
}

static int cmd_delete(struct etcd_config *cfg, const char *ref,
                      int64_t revision) {
  struct etcd_client *c;
  struct xds_err err = {0, ""};
  struct etcd_kv kv;
  char *key;
  int status = read_ref(cfg, ref, &c, &key, &kv), rc;

  if (status != 0)
    return status;
  rc = etcd_client_delete_if(c, key, revision > 0 ? revision : kv.mod_revision,
                             &err);
  if (rc == 0) {
    printf("%s deleted (key %s)\n", ref, key);
  } else {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    status = exit_for(rc);
  }
  etcd_kv_cleanup(&kv);
  etcd_client_free(c);
  xds_free(key);
  return status;
}

static int list_one(void *ctx, const struct etcd_kv *kv) {
  struct list_ctx *l = ctx;
  const char *rest = kv->key + strlen(l->prefix) + 1;
  const char *slash = strchr(rest, '/');
  size_t klen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
  char id[600];

  if (l->store != NULL) {
    struct item *it = item_find(l, kv->key);

    if (it != NULL) {
      it->cur_rev = kv->mod_revision;
      it->same = kv->value_len == it->len &&
                 memcmp(kv->value, it->value, it->len) == 0;
    }
    if (etcd_store_put(l->store, kv->key, kv->value, kv->value_len,
                       kv->mod_revision) == XDS_ENOMEM ||
        (l->store2 != NULL &&
         etcd_store_put(l->store2, kv->key, kv->value, kv->value_len,
                        kv->mod_revision) == XDS_ENOMEM))
      return XDS_ENOMEM;
    return 0;
  }
  if (slash != NULL && klen == strlen(ETCD_KIND_EXT_DIR) &&
      strncmp(rest, ETCD_KIND_EXT_DIR, klen) == 0 &&
      strchr(slash + 1, '/') != NULL) {
    const char *s2 = strchr(slash + 1, '/');

    snprintf(id, sizeof(id), "organizations/%.*s/extensions/%s",
             (int)(s2 - slash - 1), slash + 1, s2 + 1);
  } else if (slash != NULL && klen == strlen(ETCD_KIND_PLUGIN_DIR) &&
             strncmp(rest, ETCD_KIND_PLUGIN_DIR, klen) == 0 &&
             strchr(slash + 1, '/') != NULL) {
    const char *s2 = strchr(slash + 1, '/');

    snprintf(id, sizeof(id), WASM_PLUGIN_FQN_PREFIX "%.*s.%s",
             (int)(s2 - slash - 1), slash + 1, s2 + 1);
  } else if (slash != NULL && klen == strlen(ETCD_KIND_DEPLOY_DIR) &&
             strncmp(rest, ETCD_KIND_DEPLOY_DIR, klen) == 0 &&
             strchr(slash + 1, '/') != NULL) {
    const char *s2 = strchr(slash + 1, '/');

    snprintf(id, sizeof(id), WASM_DEPLOY_FQN_PREFIX "%.*s.%s",
             (int)(s2 - slash - 1), slash + 1, s2 + 1);
  } else {
    snprintf(id, sizeof(id), "%s", slash != NULL ? slash + 1 : "-");
  }
  if (l->n == 0)
    printf("%-18s %-56s %8s  %s\n", "KIND", "NAME", "REVISION", "KEY");
  printf("%-18.*s %-56s %8lld  %s\n", (int)klen, rest, id,
         (long long)kv->mod_revision, kv->key);
  l->n++;
  return 0;
}

/* Lists every key, or those of one kind (kind nullable). */
static int cmd_list(struct etcd_config *cfg, const char *kind) {
  struct list_ctx l = {.prefix = cfg->prefix};
  struct etcd_client *c = NULL;
  struct xds_err err = {0, ""};
  struct etcd_header h;
  const char *sub = NULL;
  char *dir;
  int status, rc;

  if (kind != NULL && (sub = etcd_store_kind_dir(kind)) == NULL) {
    fprintf(stderr,
            "wasmxdsctl: list: unknown kind \"%s\"; expected " ETCD_KIND_EXT_DIR
            " or " ETCD_KIND_TMPL_DIR "\n",
            kind);
    return EXIT_USAGE;
  }
  if ((status = connect_store(cfg, &c)) != 0)
    return status;
  dir = sub != NULL ? xds_asprintf("%s/%s/", cfg->prefix, sub)
                    : xds_asprintf("%s/", cfg->prefix);
  if (dir == NULL) {
    etcd_client_free(c);
    return EXIT_ETCD;
  }
  rc = etcd_client_list(c, dir, cfg->page_size, list_one, &l, &h, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    status = exit_for(rc);
  }
  xds_free(dir);
  etcd_client_free(c);
  return status;
}

/* validate of a file store: wasmxds validate's report, line for line. */
static int validate_path(const char *path) {
  struct xds_err err = {0, ""};
  struct catalog *cat = NULL;
  struct problems pb;
  int status;

  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  if (file_store_load_ex(path, &hooks, NULL, NULL, &cat, &pb, &err) < 0) {
    fprintf(stderr, "wasmxdsctl: %s: %s\n", path, err.msg);
    problems_cleanup(&pb);
    return EXIT_INVALID;
  }
  print_problems(&pb, stdout);
  printf("%s: %zu extensions, %zu listener templates, %zu errors, %zu "
         "warnings\n",
         path, catalog_ext_count(cat), catalog_tmpl_count(cat), pb.n_errors,
         pb.n_warnings);
  status = pb.n_errors > 0 ? EXIT_INVALID : EXIT_OK;
  problems_cleanup(&pb);
  catalog_unref(cat);
  return status;
}

/* validate of an etcd store: what the server would load from it now. */
static int validate_etcd(struct etcd_config *cfg, const char *url) {
  struct xds_err err = {0, ""};
  struct catalog *cat = NULL;
  struct etcd_load_info info;
  struct problems pb;
  int status, rc;

  if (etcd_config_finish(cfg, &err) < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    return EXIT_USAGE;
  }
  problems_init(&pb, PROBLEMS_DEFAULT_MAX);
  rc = etcd_load(cfg, &hooks, &cat, &pb, &info, &err);
  if (rc < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n",
            err.msg[0] ? err.msg : xds_strerror(rc));
    status = exit_for(rc);
  } else {
    print_problems(&pb, stdout);
    printf("%s (revision %lld): %zu keys, %zu extensions, %zu listener "
           "templates, %zu errors, %zu warnings\n",
           url, (long long)info.revision, info.n_keys, catalog_ext_count(cat),
           catalog_tmpl_count(cat), pb.n_errors, pb.n_warnings);
    status = pb.n_errors > 0 ? EXIT_INVALID : EXIT_OK;
  }
  problems_cleanup(&pb);
  catalog_unref(cat);
  return status;
}

/* render: the server's own command, found next to this program, in
 * $WASMXDS, or on PATH. */
/* argv[at] is "render": the options before it (--store, --etcd-*) and
 * the arguments after it go to `wasmxds render`, with --store
 * $WASMXDS_STORE when neither names a store. */
static int cmd_render(int argc, char **argv, int at) {
  char self[PATH_MAX], path[PATH_MAX + 16];
  const char *bin = getenv("WASMXDS"), *env_store = getenv("WASMXDS_STORE");
  char **args = xds_calloc((size_t)argc + 4, sizeof(*args));
  int k = 2, has_store = 0;
  ssize_t n;

  if (args == NULL)
    return EXIT_ETCD;
  if (bin == NULL) {
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
      char *slash;

      self[n] = '\0';
      slash = strrchr(self, '/');
      if (slash != NULL) {
        *slash = '\0';
        snprintf(path, sizeof(path), "%s/wasmxds", self);
        if (access(path, X_OK) == 0)
          bin = path;
      }
    }
  }
  if (bin == NULL)
    bin = "wasmxds";
  args[0] = (char *)bin;
  args[1] = "render";
  for (int i = 1; i < argc; i++) {
    if (i == at)
      continue;
    if (strcmp(argv[i], "--store") == 0 || strncmp(argv[i], "--store=", 8) == 0)
      has_store = 1;
    args[k++] = argv[i];
  }
  if (!has_store && env_store != NULL && env_store[0] != '\0') {
    args[k++] = "--store";
    args[k++] = (char *)env_store;
  }
  execvp(bin, args);
  fprintf(stderr, "wasmxdsctl: cannot run %s: %s\n", bin, strerror(errno));
  xds_free(args);
  return EXIT_USAGE;
}

enum {
  OPT_STORE = 256,
  OPT_ETCD_USER,
  OPT_ETCD_PASSWORD_FILE,
  OPT_ETCD_CA,
  OPT_ETCD_CERT,
  OPT_ETCD_KEY,
  OPT_ETCD_DEBOUNCE,
  OPT_DRY_RUN,
  OPT_RAW,
  OPT_REVISION,
  OPT_STATUS_PREFIX
};

static const struct option opts[] = {
    {"store", required_argument, NULL, OPT_STORE},
    {"etcd-user", required_argument, NULL, OPT_ETCD_USER},
    {"etcd-password-file", required_argument, NULL, OPT_ETCD_PASSWORD_FILE},
    {"etcd-ca", required_argument, NULL, OPT_ETCD_CA},
    {"etcd-cert", required_argument, NULL, OPT_ETCD_CERT},
    {"etcd-key", required_argument, NULL, OPT_ETCD_KEY},
    {"etcd-debounce", required_argument, NULL, OPT_ETCD_DEBOUNCE},
    {"filename", required_argument, NULL, 'f'},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"raw", no_argument, NULL, OPT_RAW},
    {"revision", required_argument, NULL, OPT_REVISION},
    {"status-prefix", required_argument, NULL, OPT_STATUS_PREFIX},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

int main(int argc, char **argv) {
  struct etcd_config cfg;
  struct xds_err err = {0, ""};
  const char *store = getenv("WASMXDS_STORE");
  char *files[CTL_MAX_FILES];
  size_t n_files = 0;
  const char *status_prefix = NULL;
  int dry_run = 0, raw = 0, c, status = EXIT_USAGE;
  long long revision = 0;
  const char *cmd;
  char **rest;
  int n_rest;

  /* render passes everything through to `wasmxds render`. */
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "render") == 0)
      return cmd_render(argc, argv, i);
  /* status has flags of its own and needs no store. */
  if (argc > 1 && strcmp(argv[1], "status") == 0)
    return ctl_status(argc - 1, argv + 1);
  xds_log_set_level(XDS_LOG_WARN);
  etcd_config_init(&cfg);
  while ((c = getopt_long(argc, argv, "f:hV", opts, NULL)) != -1) {
    switch (c) {
    case OPT_STORE:
      store = optarg;
      break;
    case OPT_ETCD_USER:
    case OPT_ETCD_PASSWORD_FILE:
    case OPT_ETCD_CA:
    case OPT_ETCD_CERT:
    case OPT_ETCD_KEY:
    case OPT_ETCD_DEBOUNCE:
      if (etcd_config_set_flag(&cfg, opts[c - OPT_STORE].name, optarg, &err) <
          0) {
        fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
        goto out;
      }
      break;
    case 'f':
      if (n_files == CTL_MAX_FILES) {
        fprintf(stderr, "wasmxdsctl: more than %d -f\n", CTL_MAX_FILES);
        goto out;
      }
      files[n_files++] = optarg;
      break;
    case OPT_DRY_RUN:
      dry_run = 1;
      break;
    case OPT_RAW:
      raw = 1;
      break;
    case OPT_STATUS_PREFIX:
      status_prefix = optarg;
      break;
    case OPT_REVISION: {
      char *end;

      revision = strtoll(optarg, &end, 10);
      if (*end != '\0' || revision <= 0) {
        fprintf(stderr, "wasmxdsctl: --revision: a positive revision\n");
        goto out;
      }
      break;
    }
    case 'h':
      usage(stdout);
      status = EXIT_OK;
      goto out;
    case 'V':
      printf("wasmxdsctl %s (commit %s)\n", xds_build_version(),
             xds_build_commit());
      status = EXIT_OK;
      goto out;
    default:
      usage(stderr);
      goto out;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    goto out;
  }
  cmd = argv[optind];
  rest = argv + optind + 1;
  n_rest = argc - optind - 1;
  if (strcmp(cmd, "validate") == 0 && n_rest == 1 &&
      !etcd_config_is_url(rest[0])) {
    status = validate_path(rest[0]);
    goto out;
  }
  if (strcmp(cmd, "validate") == 0 && n_rest == 1)
    store = rest[0], n_rest = 0;
  if (store == NULL || !etcd_config_is_url(store)) {
    fprintf(stderr,
            "wasmxdsctl: %s needs --store etcd://... (or "
            "$WASMXDS_STORE)\n",
            cmd);
    goto out;
  }
  if (etcd_config_parse_url(store, &cfg, &err) < 0) {
    fprintf(stderr, "wasmxdsctl: %s\n", err.msg);
    goto out;
  }
  if (strcmp(cmd, "apply") == 0 && n_rest == 0 && n_files > 0)
    status = cmd_apply(&cfg, files, n_files, dry_run);
  else if (strcmp(cmd, "get") == 0 && n_rest >= 1)
    status = cmd_get(&cfg, status_prefix, rest, (size_t)n_rest, raw);
  else if (strcmp(cmd, "delete") == 0 && n_rest == 1)
    status = cmd_delete(&cfg, rest[0], revision);
  else if (strcmp(cmd, "list") == 0 && n_rest <= 1)
    status = cmd_list(&cfg, n_rest == 1 ? rest[0] : NULL);
  else if (strcmp(cmd, "validate") == 0 && n_rest == 0)
    status = validate_etcd(&cfg, store);
  else
    usage(stderr);
out:
  etcd_config_cleanup(&cfg);
  return status;
}
