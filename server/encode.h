/*
 * encode.h: from validated records to Envoy resources, as protobuf bytes.
 *
 * Pure and deterministic: the same inputs give the same bytes on any
 * replica, so versions (hashes of these bytes) agree everywhere. Safe from
 * any thread.
 */
#ifndef XDS_ENCODE_H
#define XDS_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "chain.h"
#include "store/model.h"

/* Default cluster, in the Envoy bootstrap, through which Envoy fetches
 * remote Wasm code. */
#define ENCODE_DEFAULT_MODULE_CLUSTER "wasmxds_modules"
/* Default runtime when an extension names none. */
#define ENCODE_DEFAULT_RUNTIME "envoy.wasm.runtime.v8"

struct encode_opts {
  const char *module_cluster;      /* HttpUri.cluster for remote code */
  uint32_t module_fetch_timeout_ms; /* HttpUri.timeout */
  uint32_t module_fetch_retries;   /* RemoteDataSource.retry_policy */
  uint32_t ecds_fetch_timeout_ms;  /* config_discovery initial_fetch_timeout;
                                      0: the listener waits for its ECDS
                                      configs however long it takes */
  int inline_wasm;                 /* 1: Wasm configs inline in the listener
                                      instead of ECDS references */
};

/* Fills o with the documented defaults. */
void encode_opts_default(struct encode_opts *o);

/*
 * Whether the extension's real configuration can be sent now. When it
 * cannot (an oci:// module that has not been fetched, a remote module
 * without a sha256), returns 0 and sets *why to a static English reason; the
 * proxy then receives the fail-strategy substitute under the same name.
 */
int encode_servable(const struct wasm_ext *e, const char **why);

/*
 * Appends to out the serialized envoy.config.core.v3.TypedExtensionConfig
 * of extension e: the Wasm filter when servable, otherwise a deny-all
 * (FAIL_CLOSE) or allow-all (FAIL_OPEN) RBAC filter. Returns 0, XDS_ENOMEM
 * or XDS_ETOOBIG.
 */
int encode_extension_config(const struct wasm_ext *e,
                            const struct encode_opts *o, struct xds_buf *out);

/*
 * Appends to out the serialized envoy.config.listener.v3.Listener of
 * template t with Wasm chain c. Returns 0, XDS_ENOMEM, XDS_ETOOBIG, or
 * XDS_EINVAL when a native filter's typedConfig cannot be converted (err
 * then names the template, the filter and the field).
 */
int encode_listener(const struct listener_tmpl *t, const struct chain *c,
                    const struct encode_opts *o, struct xds_buf *out,
                    struct xds_err *err);

/*
 * Converts every native filter's typedConfig of template t to protobuf, as
 * encode_listener would, and discards the result: the load-time check that
 * keeps a template with a bad typedConfig out of the catalog. Returns 0,
 * XDS_EINVAL (err: "file:line:column: path: reason") or XDS_ENOMEM.
 */
int encode_check_template(const struct listener_tmpl *t, struct xds_err *err);

#endif
