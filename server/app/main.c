/*
 * main.c: wasmxds, the program: chooses the subcommand, nothing else.
 * Flags are parsed in flags.c, each subcommand lives in its cmd_*.c.
 */
#include "config.h"

#include <string.h>

#include "server/app/cmd.h"

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "validate") == 0)
    return cmd_validate(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "render") == 0)
    return cmd_render(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "serve") == 0)
    return cmd_serve(argc - 1, argv + 1);
  return cmd_serve(argc, argv);
}
