// time.h — monotonic and wall clocks. Thread-safe.
#ifndef CG_BASE_TIME_H
#define CG_BASE_TIME_H

#include <stdint.h>

uint64_t cg_time_ns(void);        // monotonic nanoseconds (for durations)
int64_t  cg_time_unix_ms(void);   // wall clock, milliseconds since the Unix epoch

#endif
