#!/usr/bin/python3
"""xds_conformance.py: an independent xDS client, built from the UPSTREAM
Envoy protos (not wasmxds' proto/), checks the real wasmxds against the xDS
protocol (envoyproxy.io api-docs/xds_protocol) and the README.

Usage: xds_conformance.py WASMXDS_BIN GENDIR
GENDIR holds the Python modules protoc --python_out generated from the
upstream snapshot (tests/conformance.sh makes them). Starts wasmxds on a
free loopback port with a store it writes to a temp dir; loopback only,
bounded in time. Exit 0 when every check passes, 1 otherwise.
"""

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN, GENDIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, GENDIR)

import grpc  # noqa: E402
from envoy.service.discovery.v3 import discovery_pb2 as disc  # noqa: E402
from envoy.config.listener.v3 import listener_pb2  # noqa: E402
from envoy.config.core.v3 import extension_pb2  # noqa: E402
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: E402
    http_connection_manager_pb2 as hcm_pb2)
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2  # noqa: E402
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: E402
from envoy.extensions.filters.network.wasm.v3 import (  # noqa: E402
    wasm_pb2 as net_wasm_pb2)
from envoy.extensions.filters.network.rbac.v3 import (  # noqa: E402
    rbac_pb2 as net_rbac_pb2)
from google.protobuf import struct_pb2  # noqa: E402

LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
ECDS = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
HCM = ("type.googleapis.com/envoy.extensions.filters.network."
       "http_connection_manager.v3.HttpConnectionManager")
WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NET_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
NET_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
SLOT = "wasmxds.slot/"
ADS_SOTW = ("/envoy.service.discovery.v3.AggregatedDiscoveryService/"
            "StreamAggregatedResources")
ADS_DELTA = ("/envoy.service.discovery.v3.AggregatedDiscoveryService/"
             "DeltaAggregatedResources")
LDS_SOTW = "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners"
ECDS_SOTW = ("/envoy.service.extension.v3.ExtensionConfigDiscoveryService/"
             "StreamExtensionConfigs")
QUIET = 0.8  # seconds of silence that count as "no response"
DEADLINE = time.monotonic() + 55

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if cond:
        print("ok   %s" % what)
    else:
        print("FAIL %s" % what)
        failures.append(what)
    return cond


def fqn(name):
    return "organizations/acme/extensions/" + name


# --- The store --------------------------------------------------------------

TMPL = """apiVersion: wasmxds.io/v1
kind: ListenerTemplate
metadata: {name: %(name)s}
spec:
  address: 0.0.0.0
  port: %(port)d
  direction: %(dir)s
  %(sel)s
  route: {cluster: %(cluster)s}
  httpFilters:
  - name: jwt
    phase: AUTHN
    typedConfig: {'@type': type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC}
  - name: envoy.filters.http.router
    typedConfig: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"""

EXT = """apiVersion: extension.tsb.tetrate.io/v2
kind: WasmExtension
metadata: {organization: %(org)s, name: %(name)s}
spec:
  url: %(url)s
  phase: %(phase)s
  priority: %(prio)d
  %(allowed)s
  %(fail)s
  config: {rev: %(rev)d, marker: %(marker)s}
"""

EXTS = {
    # name: (org, url, phase, priority, allowedIn, failStrategy)
    "pay-authz": ("acme", "file:///wasm/pay-authz.wasm", "AUTHZ", 10,
                  ["payments"], None),
    "pay-audit": ("acme", "file:///wasm/pay-audit.wasm", "STATS", 5,
                  ["payments"], None),
    "shared-stats": ("acme", "file:///wasm/shared.wasm", "STATS", 0, [],
                     "FAIL_OPEN"),
    "web-secret": ("acme", "file:///wasm/web.wasm", "AUTHN", 50, ["web"],
                   None),
    # Never fetched (--no-module-fetch): served as an RBAC substitute.
    "pay-remote": ("acme", "oci://registry.invalid/pay-remote:1", "AUTHN",
                   20, ["payments"], "FAIL_CLOSE"),
    "gx": ("globex", "file:///wasm/gx.wasm", "AUTHN", 0, [], None),
}


def write_ext(store, name, rev=0):
    org, url, phase, prio, allowed, fail = EXTS[name]
    allowed_s = ("allowedIn: [%s]" % ", ".join(
        "organizations/%s/tenants/%s" % (org, t) for t in allowed)
        if allowed else "")
    with open(os.path.join(store, "ext-%s.yaml" % name), "w") as f:
        f.write(EXT % dict(org=org, name=name, url=url, phase=phase,
                           prio=prio, allowed=allowed_s,
                           fail=("failStrategy: " + fail) if fail else "",
                           rev=rev, marker="MARK-" + name))


def write_store(store):
    for n in EXTS:
        write_ext(store, n)
    tmpls = [
        dict(name="outbound-http", port=15001, dir="OUTBOUND", sel="",
             cluster="egress"),
        dict(name="inbound-http", port=15006, dir="INBOUND",
             sel="selector: {mode: SIDECAR}", cluster="app"),
        dict(name="gw-http", port=8443, dir="INBOUND",
             sel="selector: {mode: GATEWAY}", cluster="edge"),
    ]
    for t in tmpls:
        with open(os.path.join(store, "tmpl-%s.yaml" % t["name"]), "w") as f:
            f.write(TMPL % t)
    with open(os.path.join(store, "istio.yaml"), "w") as f:
        f.write("""apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: shop-authn, namespace: shop}
spec:
  url: file:///wasm/shop-authn.wasm
  phase: AUTHN
  pluginConfig: {realm: shop}
""")


# --- Proxies ----------------------------------------------------------------

def node(kind):
    n = disc.DiscoveryRequest().node
    md = struct_pb2.Struct()
    if kind == "pay":
        n.id = "pay-1"
        md.update({"wasmxds.tenant": "organizations/acme/tenants/payments"})
    elif kind == "web":
        n.id = "web-1"
        md.update({"wasmxds.tenant": "organizations/acme/tenants/web"})
    elif kind == "gw":
        n.id = "gw-1"
        md.update({"wasmxds.tenant": "organizations/acme/tenants/payments",
                   "wasmxds.mode": "GATEWAY"})
    elif kind == "istio":
        n.id = "sidecar~10.0.0.7~cart-1.shop~shop.svc.cluster.local"
        md.update({"NAMESPACE": "shop"})
    n.metadata.CopyFrom(md)
    return n


# --- The server -------------------------------------------------------------

class Server:
    def __init__(self, store, tmp, args=()):
        self.store, self.tmp = store, tmp
        self.args = list(args)
        self.proc = None

    def start(self):
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
            self.log = open(os.path.join(self.tmp, "wasmxds.log"), "ab")
            cache = os.path.join(self.tmp, "cache")
            os.makedirs(cache, exist_ok=True)
            self.proc = subprocess.Popen(
                [BIN, "--listen", "127.0.0.1:%d" % self.port, "--store",
                 self.store, "--admin-listen", "127.0.0.1:0",
                 "--module-cache", cache, "--no-module-fetch",
                 "--debounce-ms", "20", "--log-level", "info"] + self.args,
                stdout=self.log, stderr=subprocess.STDOUT)
            self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
            try:
                grpc.channel_ready_future(self.channel).result(timeout=5)
                return
            except grpc.FutureTimeoutError:
                self.stop()
        raise RuntimeError("wasmxds did not start (see its log)")

    def stop(self):
        if self.proc is not None:
            self.channel.close()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()


class Stream:
    """One bidirectional stream; responses are read by a thread into a
    queue so that waiting for one (or for none) is bounded."""

    def __init__(self, channel, method, delta=False, forbidden=()):
        self.delta = delta
        self.markers = [("MARK-" + f.rsplit("/", 1)[-1]).encode()
                        for f in forbidden]
        req = disc.DeltaDiscoveryRequest if delta else disc.DiscoveryRequest
        resp = disc.DeltaDiscoveryResponse if delta else disc.DiscoveryResponse
        self.reqs = queue.Queue()
        self.resps = queue.Queue()
        call = channel.stream_stream(method,
                                     request_serializer=req.SerializeToString,
                                     response_deserializer=resp.FromString)
        self.call = call(iter(self.reqs.get, None))
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            for r in self.call:
                self.resps.put(r)
        except grpc.RpcError as e:
            self.resps.put(e)

    def send(self, **kw):
        cls = disc.DeltaDiscoveryRequest if self.delta else \
            disc.DiscoveryRequest
        self.reqs.put(cls(**kw))

    def recv(self, timeout=5.0):
        try:
            r = self.resps.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(r, grpc.RpcError):
            print("     stream ended: %s %s" % (r.code(), r.details()))
            return None
        if isinstance(r, disc.DiscoveryResponse):
            tus = {a.type_url for a in r.resources}
        else:
            tus = {x.resource.type_url for x in r.resources}
        if not tus <= {r.type_url}:
            check(False, "resources of a %s response are of its type (%s)" %
                  (r.type_url, sorted(tus)))
        raw = r.SerializeToString()
        for m in self.markers:
            check(m not in raw, "no response holds %s" % m.decode())
        return r

    def quiet(self, timeout=QUIET):
        try:
            r = self.resps.get(timeout=timeout)
        except queue.Empty:
            return True
        print("     unexpected: %s" % describe(r))
        return False

    def close(self):
        self.reqs.put(None)
        self.call.cancel()


def describe(r):
    if isinstance(r, disc.DiscoveryResponse):
        return "SotW %s v=%s nonce=%s [%s]" % (
            r.type_url.rsplit(".", 1)[-1], r.version_info, r.nonce,
            ", ".join(names_of(r)))
    if isinstance(r, disc.DeltaDiscoveryResponse):
        return "delta %s nonce=%s [%s] removed=%s" % (
            r.type_url.rsplit(".", 1)[-1], r.nonce,
            ", ".join(x.name for x in r.resources), list(r.removed_resources))
    return repr(r)


def decode(any_msg):
    if any_msg.type_url == LDS:
        m = listener_pb2.Listener()
    elif any_msg.type_url == ECDS:
        m = extension_pb2.TypedExtensionConfig()
    else:
        raise ValueError("unexpected type %s" % any_msg.type_url)
    m.ParseFromString(any_msg.value)
    return m


def names_of(resp):
    return [decode(a).name for a in resp.resources]


def filter_names(listener):
    out = []
    for fc in listener.filter_chains:
        for nf in fc.filters:
            if nf.typed_config.type_url == HCM:
                h = hcm_pb2.HttpConnectionManager()
                h.ParseFromString(nf.typed_config.value)
                out += [hf.name for hf in h.http_filters]
    return out


def ecds_refs(listener):
    """ECDS names a listener references, with the type_urls it accepts;
    checks the HCM decodes with the upstream type."""
    refs = {}
    for fc in listener.filter_chains:
        for nf in fc.filters:
            if nf.typed_config.type_url != HCM:
                continue
            h = hcm_pb2.HttpConnectionManager()
            h.ParseFromString(nf.typed_config.value)
            for hf in h.http_filters:
                if hf.HasField("config_discovery"):
                    cd = hf.config_discovery
                    ok_src = cd.config_source.HasField("ads")
                    check(ok_src, "%s: %s config_discovery uses ADS" %
                          (listener.name, hf.name))
                    refs[hf.name] = set(cd.type_urls)
    return refs


def check_config(tec, type_urls, who):
    """A served TypedExtensionConfig decodes with the upstream type its
    listener reference accepts."""
    tc = tec.typed_config
    check(tc.type_url in type_urls,
          "%s: ECDS %s type %s is one its listener accepts" %
          (who, tec.name, tc.type_url))
    if tc.type_url == WASM:
        w = wasm_pb2.Wasm()
        w.ParseFromString(tc.value)
        check(w.config.name == tec.name,
              "%s: Wasm %s decodes upstream, PluginConfig.name matches" %
              (who, tec.name))
    elif tc.type_url == RBAC:
        r = rbac_pb2.RBAC()
        r.ParseFromString(tc.value)
        check(True, "%s: RBAC substitute %s decodes upstream" % (who, tec.name))


# --- The checks -------------------------------------------------------------

def sotw(srv, kind, expect_listeners, forbidden):
    who = "sotw/" + kind
    s = Stream(srv.channel, ADS_SOTW, forbidden=forbidden)
    nonces = []
    s.send(node=node(kind), type_url=LDS)
    r = s.recv()
    if not check(r is not None and r.type_url == LDS,
                 "%s: wildcard LDS answered" % who):
        s.close()
        return None
    nonces.append(r.nonce)
    lds_v = r.version_info
    listeners = [decode(a) for a in r.resources]
    check(sorted(x.name for x in listeners) == sorted(expect_listeners),
          "%s: every listener of the proxy, %s" % (who, sorted(expect_listeners)))
    refs = {}
    for ln in listeners:
        refs.update(ecds_refs(ln))
    chains = [filter_names(ln) for ln in listeners]
    check(not any(f in refs for f in forbidden),
          "%s: no listener references %s" % (who, forbidden))
    s.send(version_info=lds_v, response_nonce=r.nonce, type_url=LDS)
    check(s.quiet(), "%s: LDS ACK gets no resend" % who)

    names = sorted(refs)
    s.send(type_url=ECDS, resource_names=names)
    e = s.recv()
    if not check(e is not None and e.type_url == ECDS,
                 "%s: ECDS by name answered" % who):
        s.close()
        return None
    nonces.append(e.nonce)
    got = {decode(a).name: decode(a) for a in e.resources}
    check(sorted(got) == names,
          "%s: every ECDS name a listener references is served" % who)
    for n, tec in got.items():
        check_config(tec, refs.get(n, set()), who)
    s.send(type_url=ECDS, resource_names=names, version_info=e.version_info,
           response_nonce=e.nonce)
    check(s.quiet(), "%s: ECDS ACK gets no resend" % who)

    # A NACK keeps the previous version: nothing is resent.
    s.send(type_url=ECDS, resource_names=names, version_info=e.version_info,
           response_nonce=e.nonce,
           error_detail={"code": 3, "message": "conformance NACK"})
    check(s.quiet(), "%s: ECDS NACK gets no resend" % who)

    # Asking by name for what the proxy may not see gets nothing for it.
    if forbidden:
        s.send(type_url=ECDS, resource_names=names + forbidden,
               version_info=e.version_info, response_nonce=e.nonce)
        x = s.recv(timeout=QUIET)
        if x is not None:
            nonces.append(x.nonce)
            check(not set(names_of(x)) & set(forbidden),
                  "%s: names outside allowedIn not served %s" % (who, forbidden))
            e = x
        else:
            check(True, "%s: names outside allowedIn not served %s" %
                  (who, forbidden))
        s.send(type_url=ECDS, resource_names=names,
               version_info=e.version_info, response_nonce=e.nonce)
        check(s.quiet(), "%s: dropping names needs no response" % who)

    # Unsubscribing one name needs no response; re-adding it is answered.
    if names:
        s.send(type_url=ECDS, resource_names=names[1:],
               version_info=e.version_info, response_nonce=e.nonce)
        check(s.quiet(), "%s: unsubscribing needs no response" % who)
        # A stale nonce: the request's names are ignored.
        s.send(type_url=ECDS, resource_names=names,
               version_info=e.version_info, response_nonce=nonces[0])
        check(s.quiet(), "%s: a request with a stale nonce is ignored" % who)
        s.send(type_url=ECDS, resource_names=names,
               version_info=e.version_info, response_nonce=e.nonce)
        x = s.recv()
        check(x is not None and names_of(x) == [names[0]],
              "%s: re-subscribing a name is answered with it alone" % who)
        if x is not None:
            nonces.append(x.nonce)
            e = x
    check(len(set(nonces)) == len(nonces) and all(nonces),
          "%s: every response has a new nonce (%d)" % (who, len(nonces)))
    return dict(stream=s, lds_v=lds_v, refs=refs, names=names, ecds=e,
                chains=chains,
                lds_nonce=r.nonce)


def wildcard_ecds(srv, kind, refs, forbidden):
    who = "sotw/" + kind
    s = Stream(srv.channel, ADS_SOTW)
    s.send(node=node(kind), type_url=ECDS, resource_names=["*"])
    e = s.recv()
    got = set(names_of(e)) if e else set()
    check(set(refs) <= got,
          "%s: ECDS '*' holds every name its listeners reference" % who)
    check(not got & set(forbidden),
          "%s: ECDS '*' holds nothing outside allowedIn" % who)
    s.close()


def delta(srv, kind, expect_listeners, forbidden):
    who = "delta/" + kind
    s = Stream(srv.channel, ADS_DELTA, delta=True, forbidden=forbidden)
    s.send(node=node(kind), type_url=LDS)
    r = s.recv()
    if not check(r is not None and r.type_url == LDS,
                 "%s: legacy wildcard LDS answered" % who):
        s.close()
        return None
    lds = {x.name: x.version for x in r.resources}
    check(sorted(lds) == sorted(expect_listeners) and all(lds.values()),
          "%s: every listener, each with a version" % who)
    refs = {}
    for x in r.resources:
        refs.update(ecds_refs(decode(x.resource)))
    s.send(type_url=LDS, response_nonce=r.nonce)
    check(s.quiet(), "%s: LDS ACK gets no resend" % who)
    names = sorted(refs)
    s.send(type_url=ECDS, resource_names_subscribe=names)
    e = s.recv()
    ecds = {x.name: x.version for x in e.resources} if e else {}
    check(sorted(ecds) == names, "%s: ECDS subscribe answered" % who)
    for x in (e.resources if e else []):
        check_config(decode(x.resource), refs[x.name], who)
    s.send(type_url=ECDS, response_nonce=e.nonce if e else "")
    check(s.quiet(), "%s: ECDS ACK gets no resend" % who)
    if names:
        s.send(type_url=ECDS, resource_names_unsubscribe=[names[0]])
        check(s.quiet(), "%s: unsubscribing needs no response" % who)
        s.send(type_url=ECDS, resource_names_subscribe=[names[0]])
        x = s.recv()
        check(x is not None and [y.name for y in x.resources] == [names[0]],
              "%s: re-subscribing is answered" % who)
        if x:
            s.send(type_url=ECDS, response_nonce=x.nonce)
    if forbidden:
        s.send(type_url=ECDS, resource_names_subscribe=forbidden)
        x = s.recv(timeout=QUIET)
        # Answered as names that do not exist: in removed_resources, so the
        # proxy stops waiting, and nothing tells them from unknown names.
        check(x is not None and not {y.name for y in x.resources} &
              set(forbidden) and set(forbidden) <= set(x.removed_resources),
              "%s: names outside allowedIn only in removed_resources" % who)
        if x is not None:
            s.send(type_url=ECDS, response_nonce=x.nonce)
    s.send(type_url=ECDS, resource_names_subscribe=[fqn("no-such-ext")])
    x = s.recv()
    check(x is not None and fqn("no-such-ext") in x.removed_resources,
          "%s: a subscribed name that does not exist is in removed_resources"
          % who)
    if x:
        s.send(type_url=ECDS, response_nonce=x.nonce)
    s.close()

    # An explicit '*' is the same wildcard.
    s = Stream(srv.channel, ADS_DELTA, delta=True, forbidden=forbidden)
    s.send(node=node(kind), type_url=LDS, resource_names_subscribe=["*"])
    x = s.recv()
    check(x is not None and
          {y.name: y.version for y in x.resources} == lds,
          "%s: LDS '*' subscribes to every listener" % who)
    s.close()

    # Reconnect with initial_resource_versions: nothing the client has.
    s = Stream(srv.channel, ADS_DELTA, delta=True)
    s.send(node=node(kind), type_url=LDS, initial_resource_versions=lds)
    check(s.quiet(), "%s: current initial_resource_versions, LDS: nothing sent"
          % who)
    s.send(type_url=ECDS, resource_names_subscribe=names,
           initial_resource_versions=ecds)
    check(s.quiet(), "%s: current initial_resource_versions, ECDS: nothing "
          "sent" % who)
    s.close()
    if names:
        stale = dict(ecds)
        stale[names[-1]] = "0"
        s = Stream(srv.channel, ADS_DELTA, delta=True)
        s.send(node=node(kind), type_url=ECDS, resource_names_subscribe=names,
               initial_resource_versions=stale)
        x = s.recv()
        check(x is not None and [y.name for y in x.resources] == [names[-1]],
              "%s: only the resource whose version differs is sent" % who)
        s.close()
    return dict(lds=lds, ecds=ecds, names=names)


def standalone(srv, kind, expect_listeners, names):
    who = "standalone/" + kind
    s = Stream(srv.channel, LDS_SOTW)
    s.send(node=node(kind), type_url=LDS)
    r = s.recv()
    check(r is not None and sorted(names_of(r)) == sorted(expect_listeners),
          "%s: ListenerDiscoveryService serves the listeners" % who)
    s.close()
    s = Stream(srv.channel, ECDS_SOTW)
    s.send(node=node(kind), type_url=ECDS, resource_names=names)
    r = s.recv()
    check(r is not None and sorted(names_of(r)) == sorted(names),
          "%s: ExtensionConfigDiscoveryService serves the configs" % who)
    s.close()


def slots(tmp):
    """--ecds-slots (README "Zero-drain changes (slots)"): an HTTP and a TCP
    listener reference slots; every slot config decodes with the upstream
    type its reference admits: the Wasm filter of what it holds (renamed
    to the slot), or the empty slot's RBAC filter without rules (HTTP or
    network)."""
    who = "slots"
    store = os.path.join(tmp, "slots-store")
    os.mkdir(store)
    with open(os.path.join(store, "store.yaml"), "w") as f:
        f.write(TMPL % dict(name="inbound-http", port=15006, dir="INBOUND",
                            sel="", cluster="app"))
        f.write("""---
apiVersion: wasmxds.io/v1
kind: ListenerTemplate
metadata: {name: db}
spec:
  port: 5432
  direction: INBOUND
  tcp:
    cluster: db
    filterChains:
    - match: {destinationPort: 15432}
      cluster: db-alt
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: shop-authn, namespace: shop}
spec: {url: file:///wasm/shop-authn.wasm, phase: AUTHN}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: n-authz, namespace: shop}
spec: {type: NETWORK, url: file:///wasm/n-authz.wasm, phase: AUTHZ}
""")
    srv = Server(store, tmp, ["--ecds-slots", "2"])
    try:
        srv.start()
        s = Stream(srv.channel, ADS_SOTW)
        s.send(node=node("istio"), type_url=LDS)
        r = s.recv()
        if not check(r is not None and r.type_url == LDS,
                     "%s: LDS answered" % who):
            s.close()
            return
        listeners = {x.name: x for x in (decode(a) for a in r.resources)}
        check(sorted(listeners) == ["db", "inbound-http"],
              "%s: the HTTP and the TCP listener" % who)
        refs = ecds_refs(listeners.get("inbound-http", listener_pb2.Listener()))
        check(len(refs) == 8 and all(n.startswith(SLOT + "inbound-http/")
                                     for n in refs),
              "%s: the HCM references 4 phases x 2 slots" % who)
        net = {}
        db = listeners.get("db", listener_pb2.Listener())
        check(len(db.filter_chains) == 2, "%s: db has two filter chains" % who)
        for fc in db.filter_chains:
            fs = list(fc.filters)
            check(len(fs) == 9 and
                  fs[-1].name == "envoy.filters.network.tcp_proxy",
                  "%s: a filter chain holds 8 network slots, then tcp_proxy"
                  % who)
            for nf in fs[:-1]:
                cd = nf.config_discovery
                ok = (nf.HasField("config_discovery") and
                      nf.name.startswith(SLOT + "db/") and
                      cd.config_source.HasField("ads") and
                      list(cd.type_urls) == [NET_WASM, NET_RBAC] and
                      not cd.apply_default_config_without_warming and
                      cd.default_config.type_url == NET_RBAC)
                deny = net_rbac_pb2.RBAC()
                deny.ParseFromString(cd.default_config.value)
                check(ok and deny.HasField("rules") and
                      not deny.rules.policies and deny.stat_prefix,
                      "%s: %s is a network ECDS slot, deny-all by default"
                      % (who, nf.name))
                net[nf.name] = set(cd.type_urls)
        names = sorted(set(refs) | set(net))
        s.send(version_info=r.version_info, response_nonce=r.nonce,
               type_url=LDS)
        s.send(type_url=ECDS, resource_names=names)
        e = s.recv()
        got = {decode(a).name: decode(a) for a in e.resources} if e else {}
        check(sorted(got) == names, "%s: every slot is served" % who)
        held = {}
        for n, tec in got.items():
            tc = tec.typed_config
            admits = refs.get(n) or net.get(n) or set()
            check(tc.type_url in admits, "%s: %s holds a type its reference "
                  "admits (%s)" % (who, n, tc.type_url))
            if tc.type_url in (WASM, NET_WASM):
                w = (wasm_pb2.Wasm() if tc.type_url == WASM
                     else net_wasm_pb2.Wasm())
                w.ParseFromString(tc.value)
                held[n] = w.config.name
            else:
                rb = (rbac_pb2.RBAC() if tc.type_url == RBAC
                      else net_rbac_pb2.RBAC())
                rb.ParseFromString(tc.value)
                check(not rb.HasField("rules") and
                      not rb.HasField("shadow_rules") and
                      (tc.type_url == RBAC or rb.stat_prefix),
                      "%s: empty slot %s is an RBAC filter without rules"
                      % (who, n))
        # Slot names carry the listener's layout tag (L + 8 hex digits).
        tagless = {re.sub(r"/L[0-9a-f]{8}/", "/", n): f
                   for n, f in held.items()}
        want = {SLOT + "inbound-http/AUTHN/0":
                "extensions.istio.io/wasmplugin/shop.shop-authn",
                SLOT + "db/c0/AUTHZ/0":
                "extensions.istio.io/wasmplugin/shop.n-authz",
                SLOT + "db/default/AUTHZ/0":
                "extensions.istio.io/wasmplugin/shop.n-authz"}
        check(tagless == want, "%s: the plugins sit in their first slots, "
              "the rest are empty: %s" % (who, held))
        check(all(re.match(r"^wasmxds\.slot/[a-z-]+/L[0-9a-f]{8}/", n)
                  for n in got),
              "%s: every slot name holds its listener's layout tag" % who)
        # The ECDS version_info also says what each slot holds; a proxy
        # that reconnects reporting it (and LDS's) is sent nothing.
        check(e is not None and re.match(
            r"^[0-9a-f]{16}:[0-9a-f]{16}:[-0-9a-fx?*.]+$", e.version_info),
            "%s: the ECDS version_info carries the slot holdings (%s)" %
            (who, e.version_info if e else None))
        if e is not None:
            s.send(type_url=ECDS, resource_names=names,
                   version_info=e.version_info, response_nonce=e.nonce)
            s.quiet(0.3)
            s.close()
            s = Stream(srv.channel, ADS_SOTW)
            s.send(node=node("istio"), type_url=LDS,
                   version_info=r.version_info)
            s.send(type_url=ECDS, resource_names=names,
                   version_info=e.version_info)
            check(s.quiet(), "%s: a proxy reconnecting with what it holds is "
                  "sent nothing" % who)
        s.close()
    finally:
        srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="wasmxds-conf-")
    store = os.path.join(tmp, "store")
    os.mkdir(store)
    write_store(store)
    srv = Server(store, tmp)
    try:
        srv.start()
        pay_l = ["outbound-http", "inbound-http"]
        web_only = [fqn("web-secret"), "organizations/globex/extensions/gx"]
        pay = sotw(srv, "pay", pay_l, web_only)
        if pay:
            check(fqn("pay-remote") in pay["refs"] and
                  fqn("shared-stats") in pay["refs"],
                  "sotw/pay: listeners reference its tenant's extensions")
            wildcard_ecds(srv, "pay", pay["refs"], web_only)
            want = [fqn("pay-remote"), "jwt", fqn("pay-authz"),
                    fqn("pay-audit"), fqn("shared-stats"),
                    "envoy.filters.http.router"]
            check(pay["chains"] and all(c == want for c in pay["chains"]),
                  "sotw/pay: chain by phase, priority and anchors %s" %
                  pay["chains"][:1])
        sotw(srv, "web", pay_l, [fqn("pay-authz"), fqn("pay-remote")])
        gw = sotw(srv, "gw", ["outbound-http", "gw-http"], [fqn("web-secret")])
        ist = sotw(srv, "istio", pay_l, [fqn("shared-stats")])
        if ist:
            check(any("shop-authn" in n for n in ist["refs"]),
                  "sotw/istio: the WasmPlugin is referenced")
        d = delta(srv, "pay", pay_l, web_only)
        if pay:
            standalone(srv, "pay", pay_l, pay["names"])
        del gw

        # Store change while connected: a config-only change is ECDS-only,
        # and only the changed config is re-sent.
        if pay:
            s, names = pay["stream"], pay["names"]
            # Back to every name subscribed, and ACKed.
            s.send(type_url=ECDS, resource_names=names,
                   version_info=pay["ecds"].version_info,
                   response_nonce=pay["ecds"].nonce)
            s.quiet(0.3)
            ds = Stream(srv.channel, ADS_DELTA, delta=True)
            ds.send(node=node("pay"), type_url=LDS,
                    initial_resource_versions=d["lds"])
            ds.send(type_url=ECDS, resource_names_subscribe=d["names"],
                    initial_resource_versions=d["ecds"])
            ds.quiet(0.5)
            write_ext(store, "pay-authz", rev=1)
            x = s.recv()
            check(x is not None and x.type_url == ECDS and
                  names_of(x) == [fqn("pay-authz")],
                  "sotw/pay: config change re-sends only that config (ECDS)")
            if x:
                s.send(type_url=ECDS, resource_names=names,
                       version_info=x.version_info, response_nonce=x.nonce)
            check(s.quiet(), "sotw/pay: a config change sends no LDS")
            y = ds.recv()
            check(y is not None and y.type_url == ECDS and
                  [z.name for z in y.resources] == [fqn("pay-authz")] and
                  not y.removed_resources,
                  "delta/pay: config change sends that config alone")
            if y:
                ds.send(type_url=ECDS, response_nonce=y.nonce)
            check(ds.quiet(), "delta/pay: a config change sends no LDS")

            # Deletion: LDS loses the reference, ECDS names it removed.
            os.unlink(os.path.join(store, "ext-shared-stats.yaml"))
            got = []
            for _ in range(3):
                z = ds.recv(timeout=3)
                if z is None:
                    break
                got.append(z)
                ds.send(type_url=z.type_url, response_nonce=z.nonce)
                if z.type_url == ECDS:
                    break
            types = [z.type_url for z in got]
            check(types == [LDS, ECDS],
                  "delta/pay: deletion sends LDS then ECDS (%s)" %
                  [t.rsplit(".", 1)[-1] for t in types])
            check(bool(got) and got[-1].type_url == ECDS and
                  fqn("shared-stats") in got[-1].removed_resources,
                  "delta/pay: the deleted extension is in removed_resources")
            ds.close()
            z = s.recv()
            left = [decode(a) for a in z.resources] if z else []
            check(z is not None and z.type_url == LDS and
                  sorted(x.name for x in left) == sorted(pay_l) and
                  not any(fqn("shared-stats") in ecds_refs(x) for x in left),
                  "sotw/pay: deletion pushes every listener, without it")
            if z:
                s.send(type_url=LDS, version_info=z.version_info,
                       response_nonce=z.nonce)
            check(s.quiet(), "sotw/pay: a SotW ECDS deletion sends no ECDS")
            s.close()
            write_ext(store, "shared-stats")
            time.sleep(0.5)

        # Versions are deterministic across a restart.
        s = Stream(srv.channel, ADS_SOTW)
        s.send(node=node("pay"), type_url=LDS)
        a = s.recv()
        s.close()
        srv.stop()
        srv.start()
        s = Stream(srv.channel, ADS_SOTW)
        s.send(node=node("pay"), type_url=LDS)
        b = s.recv()
        s.close()
        # A reconnecting proxy that reports the current version is sent
        # nothing (README "Reconnects").
        if b is not None:
            s = Stream(srv.channel, ADS_SOTW)
            s.send(node=node("pay"), type_url=LDS,
                   version_info=b.version_info)
            check(s.quiet(), "sotw/pay: reconnect at the current LDS version "
                  "is sent nothing")
            s.close()
        check(a is not None and b is not None and
              a.version_info == b.version_info and
              [x.SerializeToString() for x in a.resources] ==
              [x.SerializeToString() for x in b.resources],
              "sotw/pay: same LDS version and bytes after a restart")
        srv.stop()
        slots(tmp)
    finally:
        srv.stop()
        if failures:
            with open(os.path.join(tmp, "wasmxds.log"), "rb") as f:
                sys.stdout.write("---- wasmxds log (tail) ----\n")
                sys.stdout.write(f.read()[-6000:].decode("utf-8", "replace"))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks, %d failed" % (checks, len(failures)))
    if time.monotonic() > DEADLINE:
        print("FAIL: took longer than the 55 s budget")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
