/*
 * cmd.h: the subcommands of wasmxds, one file each (cmd_serve.c,
 * cmd_validate.c, cmd_render.c). main.c only dispatches to them.
 *
 * Each takes the argv of its subcommand (argv[0] is its name) and returns
 * the process exit status. Threads: the main thread.
 */
#ifndef XDS_APP_CMD_H
#define XDS_APP_CMD_H

#include <stdio.h>

#include "store/catalog.h"
#include "store/etcd_config.h"

/* wasmxds [serve]: serves until SIGTERM/SIGINT. 0, or 1 on a bad flag or
 * a failure to start. */
int cmd_serve(int argc, char **argv);

/* wasmxds validate: 0 (no error), 1 (errors), 2 (usage). */
int cmd_validate(int argc, char **argv);

/* wasmxds render: 0, or 2. */
int cmd_render(int argc, char **argv);

/*
 * Loads the store at path (a file store, or an etcd:// URL read once with
 * ecfg's --etcd-* flags) as the server does, prints every problem and a
 * summary line to out. Returns the number of errors with *cat (the caller
 * unrefs it), or -1 when the store could not be read at all (said on
 * stderr). For the one-shot commands (validate, render).
 */
int cmd_load_store(const char *path, struct etcd_config *ecfg,
                   struct catalog **cat, FILE *out);

#endif
