/*
 * loadgen_response.c: loadgen run, decoding what a proxy receives (Listeners,
 * their HTTP connection managers, TypedExtensionConfigs) and the ACK/NACK
 * bookkeeping.
 */
#include "loadgen_run.h"

/* ---- Responses ---- */

static int type_is(const Google__Protobuf__Any *a, const char *url) {
  return a != NULL && a->type_url != NULL && strcmp(a->type_url, url) == 0;
}

/* Decodes one Listener resource into l (l->ecds unnormalized). Returns 0 or
 * -1 with a reason in err. */
static int decode_listener_full(const Google__Protobuf__Any *a, struct lis *l,
                                char *err, size_t errlen) {
  Envoy__Config__Listener__V3__Listener *lst;
  size_t c, f, h, cap = 16;
  int rc = 0;

  l->ecds.v = NULL;
  l->ecds.n = 0;
  if (!type_is(a, TYPE_LISTENER)) {
    snprintf(err, errlen, "LDS resource of type %s",
             a != NULL && a->type_url != NULL ? a->type_url : "(none)");
    return -1;
  }
  lst = envoy__config__listener__v3__listener__unpack(NULL, a->value.len,
                                                      a->value.data);
  if (lst == NULL) {
    snprintf(err, errlen, "Listener does not decode");
    return -1;
  }
  l->name = intern(lst->name);
  l->ecds.v = malloc(cap * sizeof(uint32_t));
  if (l->ecds.v == NULL || l->name == UINT32_MAX)
    abort();
  for (c = 0; c < lst->n_filter_chains + 1 && rc == 0; c++) {
    Envoy__Config__Listener__V3__FilterChain *fc =
        c < lst->n_filter_chains ? lst->filter_chains[c]
                                 : lst->default_filter_chain;

    if (fc == NULL)
      continue;
    for (f = 0; f < fc->n_filters && rc == 0; f++) {
      Envoy__Config__Listener__V3__Filter *flt = fc->filters[f];
      Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpConnectionManager
          *hcm;

      if (flt->config_type_case !=
              ENVOY__CONFIG__LISTENER__V3__FILTER__CONFIG_TYPE_TYPED_CONFIG ||
          !type_is(flt->typed_config, TYPE_HCM))
        continue;
      hcm =
          envoy__extensions__filters__network__http_connection_manager__v3__http_connection_manager__unpack(
              NULL, flt->typed_config->value.len,
              flt->typed_config->value.data);
      if (hcm == NULL) {
        snprintf(err, errlen,
                 "listener %s: HttpConnectionManager does not "
                 "decode",
                 lst->name);
        rc = -1;
        break;
      }
      for (h = 0; h < hcm->n_http_filters; h++) {
        Envoy__Extensions__Filters__Network__HttpConnectionManager__V3__HttpFilter
            *hf = hcm->http_filters[h];
        uint32_t id;

        if (hf->config_type_case !=
            ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_FILTER__CONFIG_TYPE_CONFIG_DISCOVERY)
          continue;
        if (hf->config_discovery == NULL || hf->name == NULL ||
            hf->name[0] == '\0') {
          snprintf(err, errlen,
                   "listener %s: http filter %zu has an empty "
                   "config_discovery",
                   lst->name, h);
          rc = -1;
          break;
        }
        id = intern(hf->name);
        if (id == UINT32_MAX)
          abort();
        if (l->ecds.n == cap) {
          cap *= 2;
          l->ecds.v = realloc(l->ecds.v, cap * sizeof(uint32_t));
          if (l->ecds.v == NULL)
            abort();
        }
        l->ecds.v[l->ecds.n++] = id;
      }
      protobuf_c_message_free_unpacked(&hcm->base, NULL);
    }
  }
  protobuf_c_message_free_unpacked(&lst->base, NULL);
  if (rc < 0) {
    free(l->ecds.v);
    l->ecds.v = NULL;
    return -1;
  }
  idset_normalize(&l->ecds);
  return 0;
}

/* A listener through the cache (only successes are cached). */
static int decode_listener(const Google__Protobuf__Any *a, struct lis *l,
                           char *err, size_t errlen) {
  struct dc_entry *e;
  uint64_t h;

  if (!type_is(a, TYPE_LISTENER))
    return decode_listener_full(a, l, err, errlen);
  h = hash_bytes(a->value.data, a->value.len);
  l->hash = h;
  if (g_dc_off)
    return decode_listener_full(a, l, err, errlen);
  e = dc_find(1, a->value.data, a->value.len, h);
  if (e != NULL) {
    g_dc_hits++;
    l->name = e->name;
    l->ecds.n = e->ecds.n;
    l->ecds.v = malloc((e->ecds.n + 1) * sizeof(uint32_t));
    if (l->ecds.v == NULL)
      abort();
    if (e->ecds.n > 0)
      memcpy(l->ecds.v, e->ecds.v, e->ecds.n * sizeof(uint32_t));
    return 0;
  }
  g_dc_misses++;
  if (decode_listener_full(a, l, err, errlen) < 0)
    return -1;
  dc_put(1, a->value.data, a->value.len, h, l->name, &l->ecds);
  return 0;
}

/* Decodes one TypedExtensionConfig; *name_id is its interned name. */
static int decode_ecds_full(const Google__Protobuf__Any *a, uint32_t *name_id,
                            char *err, size_t errlen) {
  Envoy__Config__Core__V3__TypedExtensionConfig *tec;
  int rc = 0;

  if (!type_is(a, TYPE_ECDS)) {
    snprintf(err, errlen, "ECDS resource of type %s",
             a != NULL && a->type_url != NULL ? a->type_url : "(none)");
    return -1;
  }
  tec = envoy__config__core__v3__typed_extension_config__unpack(
      NULL, a->value.len, a->value.data);
  if (tec == NULL) {
    snprintf(err, errlen, "TypedExtensionConfig does not decode");
    return -1;
  }
  *name_id = intern(tec->name);
  if (type_is(tec->typed_config, TYPE_WASM)) {
    Envoy__Extensions__Filters__Http__Wasm__V3__Wasm *w =
        envoy__extensions__filters__http__wasm__v3__wasm__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);

    if (w == NULL || w->config == NULL) {
      snprintf(err, errlen, "%s: Wasm does not decode", tec->name);
      rc = -1;
    } else if (w->config->configuration != NULL) {
      Google__Protobuf__StringValue *sv;

      if (!type_is(w->config->configuration, TYPE_STRING) ||
          (sv = google__protobuf__string_value__unpack(
               NULL, w->config->configuration->value.len,
               w->config->configuration->value.data)) == NULL) {
        snprintf(err, errlen, "%s: configuration is not a StringValue",
                 tec->name);
        rc = -1;
      } else {
        protobuf_c_message_free_unpacked(&sv->base, NULL);
      }
    }
    if (w != NULL)
      protobuf_c_message_free_unpacked(&w->base, NULL);
  } else if (type_is(tec->typed_config, TYPE_RBAC)) {
    Envoy__Extensions__Filters__Http__Rbac__V3__RBAC *r =
        envoy__extensions__filters__http__rbac__v3__rbac__unpack(
            NULL, tec->typed_config->value.len, tec->typed_config->value.data);

    if (r == NULL) {
      snprintf(err, errlen, "%s: RBAC does not decode", tec->name);
      rc = -1;
    } else {
      protobuf_c_message_free_unpacked(&r->base, NULL);
    }
  } else {
    snprintf(err, errlen, "%s: unsupported filter type %s", tec->name,
             tec->typed_config != NULL && tec->typed_config->type_url != NULL
                 ? tec->typed_config->type_url
                 : "(none)");
    rc = -1;
  }
  protobuf_c_message_free_unpacked(&tec->base, NULL);
  if (*name_id == UINT32_MAX)
    abort();
  return rc;
}

static int decode_ecds(const Google__Protobuf__Any *a, uint32_t *name_id,
                       char *err, size_t errlen) {
  struct dc_entry *e;
  uint64_t h;

  if (g_dc_off || !type_is(a, TYPE_ECDS))
    return decode_ecds_full(a, name_id, err, errlen);
  h = hash_bytes(a->value.data, a->value.len);
  e = dc_find(2, a->value.data, a->value.len, h);
  if (e != NULL) {
    g_dc_hits++;
    *name_id = e->name;
    return 0;
  }
  g_dc_misses++;
  if (decode_ecds_full(a, name_id, err, errlen) < 0)
    return -1;
  dc_put(2, a->value.data, a->value.len, h, *name_id, NULL);
  return 0;
}

/* Counts the drains of p when its listeners old[] (n_old) are replaced by
 * nl[] (n_new): each old listener whose name is gone or whose bytes
 * changed. A new name is not a drain (nothing ran on it). */
static void count_drains(struct proxy *p, const struct lis *old, uint32_t n_old,
                         const struct lis *nl, uint32_t n_new) {
  for (uint32_t j = 0; j < n_old; j++) {
    int drained = 1;

    for (uint32_t i = 0; i < n_new; i++)
      if (nl[i].name == old[j].name) {
        drained = nl[i].hash != old[j].hash;
        break;
      }
    if (drained) {
      g.drains++;
      p->mark_drains++;
    }
  }
}

void free_lis(struct lis *l, uint32_t n) {
  uint32_t i;

  for (i = 0; i < n; i++)
    free(l[i].ecds.v);
  free(l);
}

/* Recomputes want from the listeners, keeping got for retained names; may
 * drop the proxy out of "full". Sets owe_ecds when the set changed. */
static void recompute_want(struct proxy *p, double now) {
  struct idset w = {NULL, 0};
  uint8_t *got;
  uint32_t i, total = 0, k;

  for (i = 0; i < p->nlis; i++)
    total += p->lis[i].ecds.n;
  w.v = malloc((total + 1) * sizeof(uint32_t));
  if (w.v == NULL)
    abort();
  for (i = 0; i < p->nlis; i++) {
    memcpy(w.v + w.n, p->lis[i].ecds.v, p->lis[i].ecds.n * sizeof(uint32_t));
    w.n += p->lis[i].ecds.n;
  }
  idset_normalize(&w);
  if (idset_equal(&w, &p->want)) {
    free(w.v);
    return;
  }
  got = calloc(w.n + 1, 1);
  if (got == NULL)
    abort();
  for (i = 0; i < w.n; i++) {
    k = idset_index(&p->want, w.v[i]);
    got[i] = k != UINT32_MAX ? p->got[k] : 0;
  }
  free(p->want.v);
  free(p->got);
  p->want = w;
  p->got = got;
  p->owe_ecds = 1;
  if (!holds_all(p))
    set_full(p, 0, now);
}

static void nack(struct proxy *p, int lds, const char *why) {
  if (g.nack_logged++ < FAIL_LOG_MAX)
    fprintf(stderr, "loadgen: proxy-%05u NACKs %s: %s\n", p->idx,
            lds ? "LDS" : "ECDS", why);
  g.decode_errors++;
  if (lds) {
    set_str(&p->lds_err, why);
    p->owe_lds = 1;
  } else {
    set_str(&p->ecds_err, why);
    p->owe_ecds = 1;
  }
}

/* --nack-wave: a proxy that holds a full config NACKs an ECDS push during
 * a wave, as Envoy does a config it cannot load: it keeps its last good
 * version (not recorded as got, version not advanced). 1 when it did. */
static int wave_nack(struct proxy *p) {
  if (!p->full ||
      !nack_wave_on(p->idx, time(NULL), g.wave_period_s, g.wave_percent))
    return 0;
  set_str(&p->ecds_err, "loadgen --nack-wave: this push is refused on "
                        "purpose (soak NACK wave)");
  p->owe_ecds = 1;
  g.wave_nacks++;
  return 1;
}

static void mark_ecds_got(struct proxy *p, uint32_t id) {
  uint32_t k = idset_index(&p->want, id);

  if (k == UINT32_MAX) {
    g.stray_ecds++;
    if (g.stray_logged++ < FAIL_LOG_MAX)
      fprintf(stderr,
              "loadgen: proxy-%05u got ECDS %s it does not "
              "reference\n",
              p->idx, g_names[id]);
    return;
  }
  p->got[k] = 1;
}

void on_sotw(struct proxy *p, const uint8_t *data, size_t len, double now) {
  Envoy__Service__Discovery__V3__DiscoveryResponse *r;
  char err[512];
  size_t i;

  r = envoy__service__discovery__v3__discovery_response__unpack(NULL, len,
                                                                data);
  if (r == NULL) {
    g.decode_errors++;
    fail_log(p, "a DiscoveryResponse does not decode");
    return;
  }
  if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
    struct lis *nl = calloc(r->n_resources + 1, sizeof(*nl));
    int bad = 0;

    g.msgs_lds++;
    p->mark_lds++;
    if (nl == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_listener(r->resources[i], &nl[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->lds_nonce, r->nonce);
    if (bad) {
      free_lis(nl, (uint32_t)i);
      nack(p, 1, err);
    } else {
      count_drains(p, p->lis, p->nlis, nl, (uint32_t)r->n_resources);
      free_lis(p->lis, p->nlis);
      p->lis = nl;
      p->nlis = (uint32_t)r->n_resources;
      set_str(&p->lds_ver, r->version_info);
      p->lds_ok = 1;
      p->owe_lds = 1;
      recompute_want(p, now);
    }
  } else if (strcmp(r->type_url, TYPE_ECDS) == 0) {
    uint32_t *ids = malloc((r->n_resources + 1) * sizeof(uint32_t));
    int bad = 0;

    g.msgs_ecds++;
    p->mark_ecds++;
    if (ids == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_ecds(r->resources[i], &ids[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->ecds_nonce, r->nonce);
    if (bad) {
      nack(p, 0, err);
    } else if (!wave_nack(p)) {
      for (i = 0; i < r->n_resources; i++)
        mark_ecds_got(p, ids[i]);
      g.ecds_res += r->n_resources;
      p->mark_ecds_res += (uint32_t)r->n_resources;
      set_str(&p->ecds_ver, r->version_info);
      p->owe_ecds = 1;
    }
    free(ids);
  } else {
    /* A type we never asked for: ACK it so the server is not left
     * waiting, and count it as an error. */
    g.decode_errors++;
    fail_log(p, "response of a type it did not request");
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

void on_delta(struct proxy *p, const uint8_t *data, size_t len, double now) {
  Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r;
  char err[512];
  size_t i, j;

  r = envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, len,
                                                                      data);
  if (r == NULL) {
    g.decode_errors++;
    fail_log(p, "a DeltaDiscoveryResponse does not decode");
    return;
  }
  if (strcmp(r->type_url, TYPE_LISTENER) == 0) {
    struct lis *nl = calloc(r->n_resources + 1, sizeof(*nl));
    int bad = 0;

    g.msgs_lds++;
    p->mark_lds++;
    if (nl == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_listener(r->resources[i]->resource, &nl[i], err, sizeof(err)) <
          0)
        bad = 1;
    set_str(&p->lds_nonce, r->nonce);
    p->lds_ack_nonce = 1;
    if (bad) {
      free_lis(nl, (uint32_t)i);
      nack(p, 1, err);
    } else {
      /* Upsert, then remove. */
      struct lis *all = malloc((p->nlis + r->n_resources + 1) * sizeof(*all));
      uint32_t n = 0;

      if (all == NULL)
        abort();
      for (j = 0; j < p->nlis; j++) {
        int replaced = 0, removed = 0;

        for (i = 0; i < r->n_resources; i++)
          if (nl[i].name == p->lis[j].name)
            replaced = nl[i].hash != p->lis[j].hash ? 2 : 1;
        for (i = 0; i < r->n_removed_resources; i++)
          if (strcmp(r->removed_resources[i], g_names[p->lis[j].name]) == 0)
            removed = 1;
        if (replaced == 2 || (removed && !replaced)) {
          g.drains++;
          p->mark_drains++;
        }
        if (replaced || removed)
          free(p->lis[j].ecds.v);
        else
          all[n++] = p->lis[j];
      }
      for (i = 0; i < r->n_resources; i++)
        all[n++] = nl[i];
      free(p->lis);
      free(nl);
      p->lis = all;
      p->nlis = n;
      p->lds_ok = 1;
      p->owe_lds = 1;
      recompute_want(p, now);
    }
  } else if (strcmp(r->type_url, TYPE_ECDS) == 0) {
    uint32_t *ids = malloc((r->n_resources + 1) * sizeof(uint32_t));
    int bad = 0;

    g.msgs_ecds++;
    p->mark_ecds++;
    if (ids == NULL)
      abort();
    for (i = 0; i < r->n_resources && !bad; i++)
      if (decode_ecds(r->resources[i]->resource, &ids[i], err, sizeof(err)) < 0)
        bad = 1;
    set_str(&p->ecds_nonce, r->nonce);
    p->ecds_ack_nonce = 1;
    if (bad) {
      nack(p, 0, err);
    } else if (!wave_nack(p)) {
      for (i = 0; i < r->n_resources; i++)
        mark_ecds_got(p, ids[i]);
      g.ecds_res += r->n_resources;
      p->mark_ecds_res += (uint32_t)r->n_resources;
      for (i = 0; i < r->n_removed_resources; i++) {
        uint32_t k = idset_index(&p->want, intern(r->removed_resources[i]));

        g.ecds_removed++;
        if (k != UINT32_MAX) {
          p->got[k] = 0;
          set_full(p, 0, now);
        }
      }
      p->owe_ecds = 1;
    }
    free(ids);
  } else {
    g.decode_errors++;
    fail_log(p, "response of a type it did not request");
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
}
