// log.h — leveled logging to a replaceable sink.
//
// The sink (default: stderr, level INFO, overridable with CHINGU_LOG=debug|info|warn|error|off)
// is the one piece of global mutable state besides the ISA table. Set it once at start-up,
// before other threads run; logging itself is thread-safe (one formatted line per call).
#ifndef CG_BASE_LOG_H
#define CG_BASE_LOG_H

#include "base/err.h"

typedef enum cg_log_level {
    CG_LOG_DEBUG = 0,
    CG_LOG_INFO,
    CG_LOG_WARN,
    CG_LOG_ERROR,
    CG_LOG_OFF,
} cg_log_level;

// A sink receives one complete line without the trailing newline. `user` is borrowed.
typedef void (*cg_log_sink)(cg_log_level level, const char *line, void *user);

// Replaces the sink (NULL restores stderr) and the minimum level. Call before starting threads.
void cg_log_set(cg_log_sink sink, void *user, cg_log_level min_level);
cg_log_level cg_log_level_get(void);

void cg_log(cg_log_level level, const char *fmt, ...) CG_PRINTF(2, 3);

#define CG_DEBUG(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)
#define CG_INFO(...)  cg_log(CG_LOG_INFO, __VA_ARGS__)
#define CG_WARN(...)  cg_log(CG_LOG_WARN, __VA_ARGS__)
#define CG_ERROR(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)

#endif
