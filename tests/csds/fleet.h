/*
 * fleet.h: proxies in a chosen xDS state on a running wasmxds, for the CSDS
 * tests (check_csds, csds_dump) and the wasmxdsctl status tests.
 *
 * Each proxy is one ADS (SotW) stream on its own client, driven until it
 * stands where asked. Errors abort the test (Check) or, outside Check,
 * return -1 with a message on stderr. One thread.
 */
#ifndef XDS_TESTS_CSDS_FLEET_H
#define XDS_TESTS_CSDS_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "envoy/service/status/v3/csds.pb-c.h"

enum fleet_state {
  FLEET_ACKED,  /* LDS and ECDS received and acknowledged; ECDS asks for
                   FLEET_EXT_WASM, _SUBSTITUTE and _MISSING */
  FLEET_SYNCED, /* as FLEET_ACKED without FLEET_EXT_MISSING: in sync */
  FLEET_NACKED, /* LDS received and rejected with FLEET_NACK_ERROR */
  FLEET_PENDING /* LDS received, neither acknowledged nor rejected */
};

#define FLEET_NACK_ERROR "listener inbound-http: bad filter (test NACK)"
/* The error FLEET_NACKED proxies send from now on (borrowed; NULL:
 * FLEET_NACK_ERROR again). */
void fleet_set_nack_error(const char *msg);
/* ECDS names a FLEET_ACKED proxy subscribes to: a Wasm module, a module
 * served as a deny-all substitute, and a name that does not exist. */
#define FLEET_EXT_WASM "organizations/acme/extensions/authz-opa"
#define FLEET_EXT_SUBSTITUTE "organizations/acme/extensions/payments-deny"
#define FLEET_EXT_MISSING "organizations/acme/extensions/no-such-extension"

struct fleet_proxy;

/* Connects proxy id (tenant fqn, may be NULL) to target and drives it to
 * state. Returns 0 with *out, or -1 (message on stderr). */
int fleet_proxy_new(const char *target, const char *id, const char *tenant,
                    enum fleet_state state, struct fleet_proxy **out);
/* The same over TLS: ca_pem verifies the server; key_pem and cert_pem
 * (PEM text) are the proxy's client certificate. */
int fleet_proxy_new_tls(const char *target, const char *id, const char *tenant,
                        enum fleet_state state, const char *ca_pem,
                        const char *key_pem, const char *cert_pem,
                        struct fleet_proxy **out);
void fleet_proxy_free(struct fleet_proxy *p);

/* FetchClientStatus through server/transport/csds_client with req
 * (NULL: an empty request). Returns a new response for
 * fleet_response_free(), or NULL with the error in err (size bytes). */
Envoy__Service__Status__V3__ClientStatusResponse *
fleet_fetch(const char *target,
            const Envoy__Service__Status__V3__ClientStatusRequest *req,
            char *err, size_t size);
/* The same over TLS with PEM files (as wasmxdsctl status passes them):
 * ca verifies the server; cert and key (nullable) are the caller's. */
Envoy__Service__Status__V3__ClientStatusResponse *
fleet_fetch_tls(const char *target, const char *ca, const char *cert,
                const char *key, char *err, size_t size);
void fleet_response_free(Envoy__Service__Status__V3__ClientStatusResponse *r);

/* The ClientConfig of node id in r, or NULL. */
const Envoy__Service__Status__V3__ClientConfig *
fleet_find(const Envoy__Service__Status__V3__ClientStatusResponse *r,
           const char *id);

/* The GenericXdsConfig of type_url and name in c, or NULL. */
const Envoy__Service__Status__V3__ClientConfig__GenericXdsConfig *
fleet_resource(const Envoy__Service__Status__V3__ClientConfig *c,
               const char *type_url, const char *name);

/* Polls FetchClientStatus (up to timeout_ms) until node id has at least
 * one resource and every resource of type_url is in client status want.
 * Returns the last response seen (NULL when none could be fetched). */
Envoy__Service__Status__V3__ClientStatusResponse *
fleet_wait_state(const char *target, const char *id, const char *type_url,
                 int want, int timeout_ms);

#endif
