// log.c — the log sink. Default: stderr with a level prefix; CHINGU_LOG picks the level once.
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cg_log_sink g_sink;
static void *g_user;
static cg_log_level g_level = CG_LOG_INFO;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static void read_env_level_once(void) {
    const char *e = getenv("CHINGU_LOG");
    if (!e) return;
    static const char *const names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= CG_LOG_OFF; i++)
        if (strcmp(e, names[i]) == 0) g_level = (cg_log_level)i;
}

// CHINGU_LOG is read exactly once, race-free, whichever thread logs first; cg_log_set wins over it.
static void read_env_level(void) { pthread_once(&g_env_once, read_env_level_once); }

void cg_log_set(cg_log_sink sink, void *user, cg_log_level min_level) {
    read_env_level();
    g_sink = sink;
    g_user = user;
    g_level = min_level;
}

cg_log_level cg_log_level_get(void) {
    read_env_level();
    return g_level;
}

void cg_log(cg_log_level level, const char *fmt, ...) {
    read_env_level();
    if (level < g_level || level >= CG_LOG_OFF) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_sink) {
        g_sink(level, line, g_user);
        return;
    }
    static const char *const tags[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "chingu %s: %s\n", tags[level], line);
}
