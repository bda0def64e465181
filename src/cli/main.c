// main.c — `chingu COMMAND …`: dispatches through the command table.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chingu.h"
#include "cli/cli.h"

static const cg_cli_cmd COMMANDS[] = {
    {"info", cg_cli_info, "FILE [--json]", "show a GGUF file's metadata and tensor table"},
    {"quantize", cg_cli_quantize, "IN OUT TYPE [--pure]", "convert a GGUF model to another tensor format or mix"},
    {"serve", cg_cli_serve, "-m MODEL [--port P] …", "OpenAI-compatible HTTP server (chingu serve --help)"},
    {"generate", cg_cli_generate, "-m MODEL -p PROMPT [opts]", "continue a prompt (-n N --temp T --seed S --grammar F --json-schema F --stop S …)"},
    {"logits", cg_cli_logits, "-m MODEL -p PROMPT -o FILE", "write the last prompt position's logits (f32)"},
    {"run", cg_cli_run, "MODEL", "chat with a model in the terminal"},
    {"tokenize", cg_cli_tokenize, "-m MODEL [opts] TEXT", "token ids and pieces of a text (--no-bos --special --json --file F)"},
    {"user", cg_cli_user, "add|list|rm [NAME]", "manage the users of the memory store (--db, --data-dir)"},
    {"key", cg_cli_key, "create|revoke --user U", "create (printed once) or revoke a user's API key"},
    {"memory", cg_cli_memory, "SUB --user U …", "add|list|search|forget|export|import a user's memories (--help)"},
    {"template", cg_cli_template, "(-m MODEL | --template F) --messages F", "render a conversation with a chat template (--tools --now --no-generation-prompt)"},
    {"synth", cg_cli_synth, "--preset P --type T -o F", "write a random-weight model with real shapes"},
    {"bench", cg_cli_bench, "-m MODEL [-p N] [-n N]", "measure prompt and generation speed, and the roofline"},
};

int cg_cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("chingu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static void usage(FILE *f) {
    fprintf(f, "chingu %s — a personal AI you run yourself\n\nusage: chingu COMMAND [ARGS]\n\ncommands:\n",
            cg_version());
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-9s %s\n  %-9s   %s\n", COMMANDS[i].name, COMMANDS[i].usage, "", COMMANDS[i].help);
    fprintf(f, "\n  help | --help | --version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("chingu %s\n", cg_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(cmd, COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    cg_cli_fail("unknown command '%s' (try 'chingu help')", cmd);
    return 2;
}
