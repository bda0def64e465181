#include "cli/cli.h"
int cg_cli_info(int argc, char **argv) { (void)argc; (void)argv; return cg_cli_fail("info: not built yet"); }
int cg_cli_quantize(int argc, char **argv) { (void)argc; (void)argv; return cg_cli_fail("quantize: not built yet"); }
