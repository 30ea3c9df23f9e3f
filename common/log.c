/* log.c - stderr logging with a global level. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_level log_level = LOG_WARN;

void log_set_level(enum log_level level)
{
	log_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	char line[1024];
	va_list ap;

	if (level < LOG_ERROR || !log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line keeps lines from concurrent threads whole. */
	fprintf(stderr, "storefs: %s: %s\n", names[level], line);
}
