/* local_writers.c - who may write while what else runs (docs/trust.md
 * "Orphans", docs/gc.md "Concurrent writers"), with the store's two flock
 * files:
 *
 *	import.lock	exclusive: an import (for the store's lifetime), a
 *			collection, a reclaim
 *	gc.lock		shared: a writer that is not an import (a serve upload,
 *			a substituter fetch) while it writes and registers, and a
 *			mount appending a temporary root; exclusive: a collection,
 *			a reclaim
 *
 * So a collection or a reclaim runs while no write is half done, and no
 * write starts while they run. */
#include "backends/local/local_internal.h"

#include "common/err.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 10

static int lock_open(struct local_store *ls, const char *name, int *out)
{
	int fd = openat(ls->rootfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return sf_err_sys(errno, "cannot open '%s/%s'", ls->root, name);
	*out = fd;
	return 0;
}

/* flock(fd, op), retried for at most `wait_ms` (UINT_MAX: until it is
 * granted). -EBUSY when the time ran out. */
static int lock_within(int fd, int op, unsigned wait_ms)
{
	const struct timespec tick = {0, POLL_MS * 1000000L};
	unsigned waited = 0;

	if (wait_ms == UINT_MAX) {
		while (flock(fd, op) < 0)
			if (errno != EINTR)
				return sf_err_sys(errno, "cannot lock a store lock file");
		return 0;
	}
	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return sf_err_sys(errno, "cannot lock a store lock file");
		if (waited >= wait_ms)
			return -EBUSY;
		nanosleep(&tick, NULL);
		waited += POLL_MS;
	}
	return 0;
}

/* An import's own store needs nothing more: its import.lock already keeps
 * collections and reclaims out. */
static int local_writer_enter(struct store *st, int *token)
{
	struct local_store *ls = (struct local_store *)st;
	int rc;

	*token = -1;
	if (ls->lock_fd >= 0)
		return 0;
	rc = lock_open(ls, LOCAL_COLLECT_LOCK, token);
	if (rc == 0)
		rc = lock_within(*token, LOCK_SH, UINT_MAX);
	if (rc < 0 && *token >= 0) {
		close(*token);
		*token = -1;
	}
	return rc;
}

static void local_writer_leave(struct store *st, int token)
{
	if (token >= 0)
		close(token); /* drops the flock */
}

static void local_exclusive_leave(struct store *st, const int token[2])
{
	for (int i = 0; i < 2; i++)
		if (token[i] >= 0)
			close(token[i]);
}

/* import.lock first (unless this store holds it), then gc.lock: the order
 * a collection takes them in. */
static int local_exclusive_enter(struct store *st, unsigned wait_ms, int token[2])
{
	struct local_store *ls = (struct local_store *)st;
	int rc = 0;

	token[0] = token[1] = -1;
	if (ls->lock_fd < 0) {
		rc = lock_open(ls, LOCAL_LOCK_FILE, &token[0]);
		if (rc == 0)
			rc = lock_within(token[0], LOCK_EX, wait_ms);
	}
	if (rc == 0)
		rc = lock_open(ls, LOCAL_COLLECT_LOCK, &token[1]);
	if (rc == 0)
		rc = lock_within(token[1], LOCK_EX, wait_ms);
	if (rc < 0)
		local_exclusive_leave(st, token);
	return rc;
}

void local_writers_set_ops(struct store *st)
{
	st->writer_enter = local_writer_enter;
	st->writer_leave = local_writer_leave;
	st->exclusive_enter = local_exclusive_enter;
	st->exclusive_leave = local_exclusive_leave;
}
