/*
 * wirecompat: compare the project's own .proto files with upstream Envoy.
 *
 * Usage: wirecompat OURS.pb UPSTREAM.pb
 *
 * Both arguments are FileDescriptorSets written by protoc --include_imports
 * (tests/wirecompat.sh builds them). Every message, field, enum, enum value
 * and service method defined in OURS, except in the google/protobuf
 * well-known files that come from protoc itself, must exist in UPSTREAM
 * with the same wire facts: full name and defining file; for fields the
 * number, name, type, label, type name, oneof and proto3 `optional`; for
 * messages whether they are map entries; for enum values the number; for
 * methods the input and output types and streaming flags. Fields that we
 * leave out are fine; fields that we have and upstream lacks are not.
 *
 * One line is printed per difference, then a summary line. Exit status: 0
 * when there is no difference, 1 when there is one or more, 2 on a usage,
 * I/O, memory or parse error.
 *
 * A few definitions are newer than the pinned upstream snapshot. They are
 * listed in WIRECOMPAT_ALLOW_FIELDS and WIRECOMPAT_ALLOW_ENUM_VALUES, each
 * with its expected number and type, so that a wrong allow-listed definition
 * still fails. Every entry must be used: when the snapshot catches up and
 * defines the item itself, the stale entry is reported and has to go.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

/* Largest descriptor set read. It guards against a wrong path naming some
 * huge file; upstream's set is about 150 KiB. */
#define WIRECOMPAT_FILE_MAX (64u * 1024u * 1024u)

#define WIRECOMPAT_EXIT_DIFF 1
#define WIRECOMPAT_EXIT_ERROR 2

#define WIRECOMPAT_TYPE(t) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__##t
#define WIRECOMPAT_LABEL(l) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__##l

/* A field we define that the upstream snapshot does not have yet. */
struct allow_field {
  const char *field; /* full name: package.Message.field */
  int32_t number;
  Google__Protobuf__FieldDescriptorProto__Type type;
  Google__Protobuf__FieldDescriptorProto__Label label;
  const char *type_name; /* as in descriptors (leading dot); NULL: scalar */
  const char *oneof;     /* NULL: not in a oneof */
};

/* An enum value we define that the upstream snapshot does not have yet. */
struct allow_enum_value {
  const char *enum_name; /* full name: package.Enum */
  const char *value;
  int32_t number;
};

static const struct allow_field WIRECOMPAT_ALLOW_FIELDS[] = {
    /* PluginConfig.failure_policy, field 7, an enum. Envoy added it in
     * October 2024 (envoyproxy/envoy#36456, Envoy 1.33) to replace the
     * boolean fail_open (5); @grpc/grpc-js-xds 1.14.1's snapshot predates it.
     * Number and type checked against envoyproxy/data-plane-api. wasmxds
     * needs it to ask for FAIL_OPEN / FAIL_CLOSED explicitly. */
    {"envoy.extensions.wasm.v3.PluginConfig.failure_policy", 7,
     WIRECOMPAT_TYPE(TYPE_ENUM), WIRECOMPAT_LABEL(LABEL_OPTIONAL),
     ".envoy.extensions.wasm.v3.FailurePolicy", NULL},
};

static const struct allow_enum_value WIRECOMPAT_ALLOW_ENUM_VALUES[] = {
    /* envoy.extensions.wasm.v3.FailurePolicy, a file-level enum added with
     * PluginConfig.failure_policy above (envoyproxy/envoy#36456), so absent
     * from the snapshot. Upstream order: FAIL_RELOAD is 1, FAIL_CLOSED 2,
     * FAIL_OPEN 3. */
    {"envoy.extensions.wasm.v3.FailurePolicy", "UNSPECIFIED", 0},
    {"envoy.extensions.wasm.v3.FailurePolicy", "FAIL_RELOAD", 1},
    {"envoy.extensions.wasm.v3.FailurePolicy", "FAIL_CLOSED", 2},
    {"envoy.extensions.wasm.v3.FailurePolicy", "FAIL_OPEN", 3},
};

#define WIRECOMPAT_N_ALLOW_FIELDS                                              \
  (sizeof(WIRECOMPAT_ALLOW_FIELDS) / sizeof(WIRECOMPAT_ALLOW_FIELDS[0]))
#define WIRECOMPAT_N_ALLOW_ENUM_VALUES                                         \
  (sizeof(WIRECOMPAT_ALLOW_ENUM_VALUES) /                                      \
   sizeof(WIRECOMPAT_ALLOW_ENUM_VALUES[0]))

/* One named definition of the upstream set, found by full name. */
struct index_entry {
  char *name;       /* owned; full name without the leading dot */
  const void *desc; /* borrowed from the unpacked upstream set */
  const char *file; /* borrowed: the defining file's name */
};

/* A growable array of entries, sorted by name once filled. */
struct index {
  struct index_entry *v;
  size_t n;
  size_t cap;
};

/* Everything the comparison needs. */
struct wirecompat {
  struct index up_files;
  struct index up_messages;
  struct index up_enums;
  struct index up_services;
  bool used_fields[WIRECOMPAT_N_ALLOW_FIELDS];
  bool used_values[WIRECOMPAT_N_ALLOW_ENUM_VALUES];
  size_t n_messages;
  size_t n_fields;
  size_t n_enums;
  size_t n_methods;
  size_t n_allowed;
  size_t n_diffs;
};

/* Prints one difference and counts it. */
static void diff(struct wirecompat *wc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void diff(struct wirecompat *wc, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  wc->n_diffs++;
}

/* Returns "prefix.name" (or "name" when prefix is empty) in a new string,
 * or NULL when out of memory. */
static char *join(const char *prefix, const char *name) {
  size_t lp = strlen(prefix);
  size_t ln = strlen(name);
  char *s = malloc(lp + 1 + ln + 1);

  if (s == NULL)
    return NULL;
  if (lp == 0) {
    memcpy(s, name, ln + 1);
  } else {
    memcpy(s, prefix, lp);
    s[lp] = '.';
    memcpy(s + lp + 1, name, ln + 1);
  }
  return s;
}

/* Frees the entries' names and the array; the descriptors are borrowed. */
static void index_cleanup(struct index *idx) {
  size_t i;

  for (i = 0; i < idx->n; i++)
    free(idx->v[i].name);
  free(idx->v);
  idx->v = NULL;
  idx->n = idx->cap = 0;
}

/* Adds an entry; takes ownership of name, even on failure. Returns 0, or
 * -1 when out of memory. */
static int index_add(struct index *idx, char *name, const void *desc,
                     const char *file) {
  if (name == NULL)
    return -1;
  if (idx->n == idx->cap) {
    size_t cap = idx->cap ? idx->cap * 2 : 256;
    struct index_entry *v = realloc(idx->v, cap * sizeof(*v));

    if (v == NULL) {
      free(name);
      return -1;
    }
    idx->v = v;
    idx->cap = cap;
  }
  idx->v[idx->n].name = name;
  idx->v[idx->n].desc = desc;
  idx->v[idx->n].file = file;
  idx->n++;
  return 0;
}

/* qsort/bsearch order: by full name. */
static int entry_cmp(const void *a, const void *b) {
  const struct index_entry *ea = a;
  const struct index_entry *eb = b;

  return strcmp(ea->name, eb->name);
}

static void index_sort(struct index *idx) {
  if (idx->n > 1)
    qsort(idx->v, idx->n, sizeof(idx->v[0]), entry_cmp);
}

/* Returns the entry named name, or NULL. */
static const struct index_entry *index_find(const struct index *idx,
                                            const char *name) {
  struct index_entry key;

  if (idx->n == 0)
    return NULL;
  key.name = (char *)name;
  return bsearch(&key, idx->v, idx->n, sizeof(idx->v[0]), entry_cmp);
}

/* Indexes a message, its nested messages and its nested enums. Returns 0,
 * or -1 when out of memory. */
static int index_message(struct wirecompat *wc, const char *prefix,
                         const struct Google__Protobuf__DescriptorProto *m,
                         const char *file) {
  char *name = join(prefix, m->name);
  size_t i;
  int rc;

  if (name == NULL)
    return -1;
  for (i = 0; i < m->n_enum_type; i++) {
    rc = index_add(&wc->up_enums, join(name, m->enum_type[i]->name),
                   m->enum_type[i], file);
    if (rc < 0)
      goto fail;
  }
  for (i = 0; i < m->n_nested_type; i++) {
    rc = index_message(wc, name, m->nested_type[i], file);
    if (rc < 0)
      goto fail;
  }
  /* index_add takes ownership of name. */
  return index_add(&wc->up_messages, name, m, file);

fail:
  free(name);
  return -1;
}

/* Indexes every file, message, enum and service of the upstream set.
 * Returns 0, or -1 when out of memory. */
static int
index_upstream(struct wirecompat *wc,
               const struct Google__Protobuf__FileDescriptorSet *set) {
  size_t i, j;
  int rc;

  for (i = 0; i < set->n_file; i++) {
    const struct Google__Protobuf__FileDescriptorProto *f = set->file[i];
    const char *pkg = f->package ? f->package : "";

    rc = index_add(&wc->up_files, join("", f->name), f, f->name);
    if (rc < 0)
      return -1;
    for (j = 0; j < f->n_message_type; j++) {
      rc = index_message(wc, pkg, f->message_type[j], f->name);
      if (rc < 0)
        return -1;
    }
    for (j = 0; j < f->n_enum_type; j++) {
      rc = index_add(&wc->up_enums, join(pkg, f->enum_type[j]->name),
                     f->enum_type[j], f->name);
      if (rc < 0)
        return -1;
    }
    for (j = 0; j < f->n_service; j++) {
      rc = index_add(&wc->up_services, join(pkg, f->service[j]->name),
                     f->service[j], f->name);
      if (rc < 0)
        return -1;
    }
  }
  index_sort(&wc->up_files);
  index_sort(&wc->up_messages);
  index_sort(&wc->up_enums);
  index_sort(&wc->up_services);
  return 0;
}

/* Small helpers for optional strings and enum names in messages. */
static const char *str_or(const char *s, const char *dflt) {
  return s ? s : dflt;
}

static bool str_eq(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return a == b;
  return strcmp(a, b) == 0;
}

static const char *type_str(Google__Protobuf__FieldDescriptorProto__Type t) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &google__protobuf__field_descriptor_proto__type__descriptor, (int)t);

  return v ? v->name : "TYPE_?";
}

static const char *label_str(Google__Protobuf__FieldDescriptorProto__Label l) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &google__protobuf__field_descriptor_proto__label__descriptor, (int)l);

  return v ? v->name : "LABEL_?";
}

/* The name of the oneof a field belongs to, or NULL. */
static const char *
field_oneof(const struct Google__Protobuf__DescriptorProto *m,
            const struct Google__Protobuf__FieldDescriptorProto *f) {
  if (!f->has_oneof_index || f->oneof_index < 0 ||
      (size_t)f->oneof_index >= m->n_oneof_decl)
    return NULL;
  return m->oneof_decl[f->oneof_index]->name;
}

static bool
field_proto3_optional(const struct Google__Protobuf__FieldDescriptorProto *f) {
  return f->has_proto3_optional && f->proto3_optional;
}

static bool
message_is_map_entry(const struct Google__Protobuf__DescriptorProto *m) {
  return m->options != NULL && m->options->has_map_entry &&
         m->options->map_entry;
}

static const struct Google__Protobuf__FieldDescriptorProto *
field_by_name(const struct Google__Protobuf__DescriptorProto *m,
              const char *name) {
  size_t i;

  for (i = 0; i < m->n_field; i++)
    if (strcmp(m->field[i]->name, name) == 0)
      return m->field[i];
  return NULL;
}

static const struct Google__Protobuf__FieldDescriptorProto *
field_by_number(const struct Google__Protobuf__DescriptorProto *m,
                int32_t number) {
  size_t i;

  for (i = 0; i < m->n_field; i++)
    if (m->field[i]->number == number)
      return m->field[i];
  return NULL;
}

/* Checks a field upstream lacks against the allow-list. */
static void
check_new_field(struct wirecompat *wc, const char *fname,
                const struct Google__Protobuf__DescriptorProto *m,
                const struct Google__Protobuf__FieldDescriptorProto *f,
                const struct Google__Protobuf__DescriptorProto *um) {
  const struct Google__Protobuf__FieldDescriptorProto *clash;
  const struct allow_field *a = NULL;
  size_t i;

  clash = field_by_number(um, f->number);
  for (i = 0; i < WIRECOMPAT_N_ALLOW_FIELDS; i++) {
    if (strcmp(WIRECOMPAT_ALLOW_FIELDS[i].field, fname) == 0) {
      a = &WIRECOMPAT_ALLOW_FIELDS[i];
      wc->used_fields[i] = true;
      break;
    }
  }
  if (a == NULL) {
    if (clash != NULL)
      diff(wc, "%s: missing upstream (number %d is %s upstream)", fname,
           f->number, clash->name);
    else
      diff(wc, "%s: missing upstream (number %d)", fname, f->number);
    return;
  }
  /* Allow-listed: it must match the entry exactly. */
  if (clash != NULL)
    diff(wc, "%s: allow-listed, but number %d is %s upstream", fname, f->number,
         clash->name);
  if (f->number != a->number)
    diff(wc, "%s: number %d here, %d in the allow-list", fname, f->number,
         a->number);
  if (f->type != a->type)
    diff(wc, "%s: type %s here, %s in the allow-list", fname, type_str(f->type),
         type_str(a->type));
  if (f->label != a->label)
    diff(wc, "%s: label %s here, %s in the allow-list", fname,
         label_str(f->label), label_str(a->label));
  if (!str_eq(f->type_name, a->type_name))
    diff(wc, "%s: type_name %s here, %s in the allow-list", fname,
         str_or(f->type_name, "(none)"), str_or(a->type_name, "(none)"));
  if (!str_eq(field_oneof(m, f), a->oneof))
    diff(wc, "%s: oneof %s here, %s in the allow-list", fname,
         str_or(field_oneof(m, f), "(none)"), str_or(a->oneof, "(none)"));
  if (field_proto3_optional(f))
    diff(wc, "%s: proto3 optional here, not in the allow-list", fname);
  wc->n_allowed++;
  printf("allowed: %s (number %d, %s), newer than the upstream snapshot\n",
         fname, f->number, type_str(f->type));
}

/* Compares one of our fields with upstream's field of the same name in the
 * same message (um); a field upstream lacks goes to the allow-list. */
static void check_field(struct wirecompat *wc, const char *mname,
                        const struct Google__Protobuf__DescriptorProto *m,
                        const struct Google__Protobuf__FieldDescriptorProto *f,
                        const struct Google__Protobuf__DescriptorProto *um) {
  const struct Google__Protobuf__FieldDescriptorProto *uf;
  const char *oneof, *uoneof;
  char *fname = join(mname, f->name);

  wc->n_fields++;
  if (fname == NULL) {
    diff(wc, "%s.%s: out of memory", mname, f->name);
    return;
  }
  uf = field_by_name(um, f->name);
  if (uf == NULL) {
    check_new_field(wc, fname, m, f, um);
    free(fname);
    return;
  }
  if (f->number != uf->number)
    diff(wc, "%s: number %d here, %d upstream", fname, f->number, uf->number);
  if (f->type != uf->type)
    diff(wc, "%s: type %s here, %s upstream", fname, type_str(f->type),
         type_str(uf->type));
  if (f->label != uf->label)
    diff(wc, "%s: label %s here, %s upstream", fname, label_str(f->label),
         label_str(uf->label));
  if (!str_eq(f->type_name, uf->type_name))
    diff(wc, "%s: type_name %s here, %s upstream", fname,
         str_or(f->type_name, "(none)"), str_or(uf->type_name, "(none)"));
  oneof = field_oneof(m, f);
  uoneof = field_oneof(um, uf);
  if (!str_eq(oneof, uoneof))
    diff(wc, "%s: oneof %s here, %s upstream", fname, str_or(oneof, "(none)"),
         str_or(uoneof, "(none)"));
  if (field_proto3_optional(f) != field_proto3_optional(uf))
    diff(wc, "%s: proto3 optional %s here, %s upstream", fname,
         field_proto3_optional(f) ? "yes" : "no",
         field_proto3_optional(uf) ? "yes" : "no");
  free(fname);
}

/* Checks one enum (values by name, then number) against upstream. */
static void check_enum(struct wirecompat *wc, const char *prefix,
                       const struct Google__Protobuf__EnumDescriptorProto *e,
                       const char *file) {
  const struct index_entry *ue;
  const struct Google__Protobuf__EnumDescriptorProto *u = NULL;
  char *ename = join(prefix, e->name);
  size_t i, j, k;

  wc->n_enums++;
  if (ename == NULL) {
    diff(wc, "%s.%s: out of memory", prefix, e->name);
    return;
  }
  ue = index_find(&wc->up_enums, ename);
  if (ue != NULL) {
    u = ue->desc;
    if (strcmp(ue->file, file) != 0)
      diff(wc, "%s: defined in %s here, %s upstream", ename, file, ue->file);
  }
  for (i = 0; i < e->n_value; i++) {
    const struct Google__Protobuf__EnumValueDescriptorProto *v = e->value[i];
    const struct Google__Protobuf__EnumValueDescriptorProto *uv = NULL;

    if (u != NULL) {
      for (j = 0; j < u->n_value; j++) {
        if (strcmp(u->value[j]->name, v->name) == 0) {
          uv = u->value[j];
          break;
        }
      }
    }
    if (uv != NULL) {
      if (uv->number != v->number)
        diff(wc, "%s.%s: number %d here, %d upstream", ename, v->name,
             v->number, uv->number);
      continue;
    }
    for (k = 0; k < WIRECOMPAT_N_ALLOW_ENUM_VALUES; k++) {
      const struct allow_enum_value *a = &WIRECOMPAT_ALLOW_ENUM_VALUES[k];

      if (strcmp(a->enum_name, ename) == 0 && strcmp(a->value, v->name) == 0)
        break;
    }
    if (k == WIRECOMPAT_N_ALLOW_ENUM_VALUES) {
      diff(wc, "%s.%s: missing upstream%s", ename, v->name,
           u == NULL ? " (the whole enum is)" : "");
      continue;
    }
    wc->used_values[k] = true;
    if (WIRECOMPAT_ALLOW_ENUM_VALUES[k].number != v->number) {
      diff(wc, "%s.%s: number %d here, %d in the allow-list", ename, v->name,
           v->number, WIRECOMPAT_ALLOW_ENUM_VALUES[k].number);
      continue;
    }
    wc->n_allowed++;
    printf("allowed: %s.%s = %d, newer than the upstream snapshot\n", ename,
           v->name, v->number);
  }
  free(ename);
}

/* Compares a message, its fields, nested enums and nested messages. */
static void check_message(struct wirecompat *wc, const char *prefix,
                          const struct Google__Protobuf__DescriptorProto *m,
                          const char *file) {
  const struct index_entry *ue;
  const struct Google__Protobuf__DescriptorProto *um;
  char *mname = join(prefix, m->name);
  size_t i;

  wc->n_messages++;
  if (mname == NULL) {
    diff(wc, "%s.%s: out of memory", prefix, m->name);
    return;
  }
  ue = index_find(&wc->up_messages, mname);
  if (ue == NULL) {
    diff(wc, "%s: message missing upstream", mname);
    free(mname);
    return;
  }
  um = ue->desc;
  if (strcmp(ue->file, file) != 0)
    diff(wc, "%s: defined in %s here, %s upstream", mname, file, ue->file);
  if (message_is_map_entry(m) != message_is_map_entry(um))
    diff(wc, "%s: map entry %s here, %s upstream", mname,
         message_is_map_entry(m) ? "yes" : "no",
         message_is_map_entry(um) ? "yes" : "no");
  for (i = 0; i < m->n_field; i++)
    check_field(wc, mname, m, m->field[i], um);
  for (i = 0; i < m->n_enum_type; i++)
    check_enum(wc, mname, m->enum_type[i], file);
  for (i = 0; i < m->n_nested_type; i++)
    check_message(wc, mname, m->nested_type[i], file);
  free(mname);
}

static bool method_flag(protobuf_c_boolean has, protobuf_c_boolean v) {
  return has && v;
}

/* Compares a service's methods: types and streaming flags. */
static void
check_service(struct wirecompat *wc, const char *pkg,
              const struct Google__Protobuf__ServiceDescriptorProto *s,
              const char *file) {
  const struct index_entry *ue;
  const struct Google__Protobuf__ServiceDescriptorProto *us;
  char *sname = join(pkg, s->name);
  size_t i, j;

  if (sname == NULL) {
    diff(wc, "%s.%s: out of memory", pkg, s->name);
    return;
  }
  ue = index_find(&wc->up_services, sname);
  if (ue == NULL) {
    diff(wc, "%s: service missing upstream", sname);
    wc->n_methods += s->n_method;
    free(sname);
    return;
  }
  us = ue->desc;
  if (strcmp(ue->file, file) != 0)
    diff(wc, "%s: defined in %s here, %s upstream", sname, file, ue->file);
  for (i = 0; i < s->n_method; i++) {
    const struct Google__Protobuf__MethodDescriptorProto *m = s->method[i];
    const struct Google__Protobuf__MethodDescriptorProto *um = NULL;
    bool cs, ucs, ss, uss;

    wc->n_methods++;
    for (j = 0; j < us->n_method; j++) {
      if (strcmp(us->method[j]->name, m->name) == 0) {
        um = us->method[j];
        break;
      }
    }
    if (um == NULL) {
      diff(wc, "%s.%s: method missing upstream", sname, m->name);
      continue;
    }
    if (!str_eq(m->input_type, um->input_type))
      diff(wc, "%s.%s: input %s here, %s upstream", sname, m->name,
           str_or(m->input_type, "(none)"), str_or(um->input_type, "(none)"));
    if (!str_eq(m->output_type, um->output_type))
      diff(wc, "%s.%s: output %s here, %s upstream", sname, m->name,
           str_or(m->output_type, "(none)"), str_or(um->output_type, "(none)"));
    cs = method_flag(m->has_client_streaming, m->client_streaming);
    ucs = method_flag(um->has_client_streaming, um->client_streaming);
    ss = method_flag(m->has_server_streaming, m->server_streaming);
    uss = method_flag(um->has_server_streaming, um->server_streaming);
    if (cs != ucs)
      diff(wc, "%s.%s: client streaming %s here, %s upstream", sname, m->name,
           cs ? "yes" : "no", ucs ? "yes" : "no");
    if (ss != uss)
      diff(wc, "%s.%s: server streaming %s here, %s upstream", sname, m->name,
           ss ? "yes" : "no", uss ? "yes" : "no");
  }
  free(sname);
}

/* The well-known types come from protoc's own include directory, not from
 * us, so they are not compared. */
static bool is_well_known(const char *file) {
  return strncmp(file, "google/protobuf/", strlen("google/protobuf/")) == 0;
}

/* Compares one of our files with the upstream file of the same path. */
static void check_file(struct wirecompat *wc,
                       const struct Google__Protobuf__FileDescriptorProto *f) {
  const struct index_entry *ue;
  const struct Google__Protobuf__FileDescriptorProto *uf;
  const char *pkg = f->package ? f->package : "";
  size_t i;

  ue = index_find(&wc->up_files, f->name);
  if (ue == NULL) {
    diff(wc, "%s: file missing upstream", f->name);
    return;
  }
  uf = ue->desc;
  if (!str_eq(f->package, uf->package))
    diff(wc, "%s: package %s here, %s upstream", f->name,
         str_or(f->package, "(none)"), str_or(uf->package, "(none)"));
  if (!str_eq(f->syntax, uf->syntax))
    diff(wc, "%s: syntax %s here, %s upstream", f->name,
         str_or(f->syntax, "proto2"), str_or(uf->syntax, "proto2"));
  for (i = 0; i < f->n_message_type; i++)
    check_message(wc, pkg, f->message_type[i], f->name);
  for (i = 0; i < f->n_enum_type; i++)
    check_enum(wc, pkg, f->enum_type[i], f->name);
  for (i = 0; i < f->n_service; i++)
    check_service(wc, pkg, f->service[i], f->name);
}

/* Reports allow-list entries that matched nothing we define as missing
 * upstream: either the entry is wrong, or upstream has caught up. */
static void check_allow_list_used(struct wirecompat *wc) {
  size_t i;

  for (i = 0; i < WIRECOMPAT_N_ALLOW_FIELDS; i++)
    if (!wc->used_fields[i])
      diff(wc,
           "%s: allow-list entry unused (not defined here, or upstream "
           "has it now): remove it",
           WIRECOMPAT_ALLOW_FIELDS[i].field);
  for (i = 0; i < WIRECOMPAT_N_ALLOW_ENUM_VALUES; i++)
    if (!wc->used_values[i])
      diff(wc,
           "%s.%s: allow-list entry unused (not defined here, or "
           "upstream has it now): remove it",
           WIRECOMPAT_ALLOW_ENUM_VALUES[i].enum_name,
           WIRECOMPAT_ALLOW_ENUM_VALUES[i].value);
}

/* Reads a whole file into a new buffer. Returns 0, or -1 after printing
 * why. */
static int read_file(const char *path, uint8_t **out, size_t *out_len) {
  FILE *fp;
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = -1;

  fp = fopen(path, "rb");
  if (fp == NULL) {
    perror(path);
    return -1;
  }
  for (;;) {
    size_t got;

    if (len == cap) {
      uint8_t *nbuf;

      if (cap >= WIRECOMPAT_FILE_MAX) {
        fprintf(stderr, "%s: larger than %u bytes\n", path,
                WIRECOMPAT_FILE_MAX);
        goto fail;
      }
      cap = cap ? cap * 2 : 64 * 1024;
      nbuf = realloc(buf, cap);
      if (nbuf == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        goto fail;
      }
      buf = nbuf;
    }
    got = fread(buf + len, 1, cap - len, fp);
    len += got;
    if (got == 0)
      break;
  }
  if (ferror(fp)) {
    perror(path);
    goto fail;
  }
  *out = buf;
  *out_len = len;
  buf = NULL;
  rc = 0;

fail:
  free(buf);
  if (fclose(fp) != 0 && rc == 0) {
    perror(path);
    free(*out);
    *out = NULL;
    rc = -1;
  }
  return rc;
}

/* Reads and unpacks a FileDescriptorSet. Returns it, or NULL after
 * printing why. */
static struct Google__Protobuf__FileDescriptorSet *load_set(const char *path) {
  struct Google__Protobuf__FileDescriptorSet *set;
  uint8_t *buf = NULL;
  size_t len = 0;

  if (read_file(path, &buf, &len) < 0)
    return NULL;
  set = google__protobuf__file_descriptor_set__unpack(NULL, len, buf);
  free(buf);
  if (set == NULL)
    fprintf(stderr, "%s: not a FileDescriptorSet\n", path);
  else if (set->n_file == 0)
    fprintf(stderr, "%s: warning: no files\n", path);
  return set;
}

int main(int argc, char **argv) {
  struct Google__Protobuf__FileDescriptorSet *ours = NULL;
  struct Google__Protobuf__FileDescriptorSet *upstream = NULL;
  struct wirecompat wc;
  size_t i, n_checked_files = 0;
  int status = WIRECOMPAT_EXIT_ERROR;

  memset(&wc, 0, sizeof(wc));
  if (argc != 3) {
    fprintf(stderr, "usage: %s OURS.pb UPSTREAM.pb\n", argv[0]);
    return WIRECOMPAT_EXIT_ERROR;
  }
  ours = load_set(argv[1]);
  if (ours == NULL)
    goto out;
  upstream = load_set(argv[2]);
  if (upstream == NULL)
    goto out_ours;
  if (index_upstream(&wc, upstream) < 0) {
    fprintf(stderr, "wirecompat: out of memory\n");
    goto out_index;
  }

  for (i = 0; i < ours->n_file; i++) {
    if (is_well_known(ours->file[i]->name))
      continue;
    n_checked_files++;
    check_file(&wc, ours->file[i]);
  }
  if (n_checked_files == 0)
    diff(&wc, "%s: no project files to check", argv[1]);
  check_allow_list_used(&wc);

  printf("wirecompat: %zu files, %zu messages, %zu fields, %zu enums, "
         "%zu methods checked (%zu allow-listed): %zu differences\n",
         n_checked_files, wc.n_messages, wc.n_fields, wc.n_enums, wc.n_methods,
         wc.n_allowed, wc.n_diffs);
  status = wc.n_diffs ? WIRECOMPAT_EXIT_DIFF : 0;

out_index:
  index_cleanup(&wc.up_services);
  index_cleanup(&wc.up_enums);
  index_cleanup(&wc.up_messages);
  index_cleanup(&wc.up_files);
  google__protobuf__file_descriptor_set__free_unpacked(upstream, NULL);
out_ours:
  google__protobuf__file_descriptor_set__free_unpacked(ours, NULL);
out:
  if (fflush(stdout) != 0)
    status = WIRECOMPAT_EXIT_ERROR;
  return status;
}
