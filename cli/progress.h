/* progress.h - the one progress line of the storefs commands.
 *
 * A line on standard error, drawn only when standard error is a terminal,
 * redrawn at most every 0.1 s ("\r", the text, erase to the end of the
 * line) and erased by cli_progress_done(), which a command calls before it
 * prints anything else to the terminal (standard output may be the same
 * terminal), so output and logs are never garbled and nothing at all is
 * written when standard error is a pipe or a file.
 *
 * $STOREFS_PROGRESS_INTERVAL_MS overrides the 100 ms between redraws
 * (0: every update; for tests whose commands finish within 0.1 s).
 * Thread-safe: one lock serialises the drawing of all lines (a mount
 * fetches from several threads). */
#ifndef STOREFS_CLI_PROGRESS_H
#define STOREFS_CLI_PROGRESS_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cli_progress {
	bool enabled, drawn;
	uint64_t interval_ns;
	struct timespec start, last;
};

void cli_progress_init(struct cli_progress *p);
/* Draws the line printf(fmt, ...) if one is due (the arguments are only
 * formatted then). */
void cli_progress_draw(struct cli_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Whether cli_progress_draw() would draw now (to skip costly formatting). */
bool cli_progress_due(struct cli_progress *p);
/* "N files, X MiB, Y MiB/s"; an import_progress_fn, ctx is the struct cli_progress. */
void cli_progress_update(void *ctx, uint64_t files, uint64_t bytes);
/* "X MiB, Y MiB/s", for a stream of unknown files. */
void cli_progress_bytes(struct cli_progress *p, uint64_t bytes);
/* Erases the line if one was drawn. */
void cli_progress_done(struct cli_progress *p);

/* A nar_read_fn reading `fd` that counts the bytes and calls `show` (NULL:
 * cli_progress_bytes(&prog)) after each read. */
struct cli_progress_reader {
	int fd;
	uint64_t bytes;
	struct cli_progress prog;
	void (*show)(void *ctx, uint64_t bytes);
	void *ctx;
};
int cli_progress_read(void *ctx, void *buf, size_t len, size_t *n);

/* Shows the NAR fetches that `st` makes on its own (a substituter, a
 * nix+http store) as "fetching <path>: X of Y MiB", each line erased when
 * its fetch ends. A no-op for stores that fetch nothing. */
void cli_progress_fetches(struct store *st);

#endif
