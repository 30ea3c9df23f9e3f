/* log.h - diagnostics on stderr, "storefs: " prefixed, one line each. */
#ifndef STOREFS_LOG_H
#define STOREFS_LOG_H

#include <stdbool.h>

/* LOG_SILENT turns everything off (unit tests of failure paths). */
enum log_level { LOG_SILENT = -1, LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
