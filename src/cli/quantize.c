#include "cli/cli.h"
// Placeholder until quantization lands.
int cg_cli_quantize(int argc, char **argv) { (void)argc; (void)argv; return cg_cli_fail("quantize: not built yet"); }
