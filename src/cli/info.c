#include "cli/cli.h"
// Placeholder until the GGUF reader lands.
int cg_cli_info(int argc, char **argv) { (void)argc; (void)argv; return cg_cli_fail("info: not built yet"); }
