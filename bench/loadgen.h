/*
 * loadgen.h: the fleet load generator (bench/loadgen).
 *
 * `loadgen run` simulates N Envoys over ADS against a running wasmxds (see
 * loadgen.c); `loadgen gen-store` writes the synthetic file store and the
 * prepared replacement files the fleet scenarios rename over it (see
 * loadgen_store.c). bench/fleet.sh drives both.
 */
#ifndef WASMXDS_BENCH_LOADGEN_H
#define WASMXDS_BENCH_LOADGEN_H

/* Organization of every generated resource and simulated proxy. */
#define LOADGEN_DEFAULT_ORG "acme"

/* Proxy i belongs to tenant t<i % tenants> (printed as t%03u), is a
 * GATEWAY when i % gateway_every == gateway_every - 1, and has labels
 * app=app-<i % LOADGEN_APPS>, version=v<1 + i % 2>. The store generator
 * selects one template on app=app-0. */
#define LOADGEN_APPS 8

/* The tenants the scenario changes touch (see loadgen_store.c). */
#define LOADGEN_TENANT_C 3      /* (c): one extension of this tenant changes */
#define LOADGEN_TENANT_D_OUT 1  /* (d): shared-move leaves this tenant ... */
#define LOADGEN_TENANT_D_KEEP 2 /* ... and stays in this one */

/* `loadgen gen-store` entry point: argv without the subcommand name. */
int loadgen_gen_store_main(int argc, char **argv);

#endif
