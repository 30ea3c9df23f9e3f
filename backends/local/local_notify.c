/* local_notify.c - tells watching processes about newly registered paths:
 * one unix datagram socket per watcher in <store>/notify/. */
#include "backends/local/local_internal.h"

#include "common/err.h"
#include "common/log.h"
#include "store/path_info_watch.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_SUFFIX   ".sock"
#define SOCK_NAME_MAX 64
/* How long a sender waits for a watcher whose queue is full. */
#define SEND_WAIT_MS 100

struct local_watcher {
	int dirfd; /* notify/, O_PATH */
	int sock;
	struct watch_thread th;
	char name[SOCK_NAME_MAX];
	path_info_watch_fn cb;
	void *ctx;
};

static atomic_uint watcher_counter;

/* The address of `name` in notify/; falls back to the directory's
 * descriptor when the path does not fit in sun_path. */
static int notify_addr(int dirfd, const char *root, const char *name, struct sockaddr_un *a)
{
	int n;

	*a = (struct sockaddr_un){.sun_family = AF_UNIX};
	n = snprintf(a->sun_path, sizeof(a->sun_path), "%s/" LOCAL_NOTIFY_DIR "/%s", root, name);
	if (n > 0 && (size_t)n < sizeof(a->sun_path))
		return 0;
	n = snprintf(a->sun_path, sizeof(a->sun_path), "/proc/self/fd/%d/%s", dirfd, name);
	if (n > 0 && (size_t)n < sizeof(a->sun_path))
		return 0;
	return sf_err(-ENAMETOOLONG, "socket name '%s' is too long", name);
}

/* --- receiving side --- */

static void watcher_deliver(struct local_watcher *w)
{
	char buf[STORE_PATH_MAX_BASENAME + 2];
	ssize_t n;

	while ((n = recv(w->sock, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
		/* Only well-formed basenames reach the callback. */
		if (n == 0 || n > STORE_PATH_MAX_BASENAME || memchr(buf, '\0', (size_t)n))
			continue;
		buf[n] = '\0';
		w->cb(w->ctx, buf);
	}
}

static void *watcher_main(void *arg)
{
	struct local_watcher *w = arg;
	struct pollfd p[2] = {{.fd = w->sock, .events = POLLIN},
			      {.fd = w->th.stopfd, .events = POLLIN}};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("watching for new store paths failed: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents)
			watcher_deliver(w);
	}
	return NULL;
}

static int watcher_bind(struct local_watcher *w, const char *root)
{
	struct sockaddr_un a;
	int rc;

	snprintf(w->name, sizeof(w->name), "%ld.%u" SOCK_SUFFIX, (long)getpid(),
		 atomic_fetch_add(&watcher_counter, 1));
	rc = notify_addr(w->dirfd, root, w->name, &a);
	if (rc < 0)
		return rc;
	/* A leftover of an earlier process that had our pid; if it cannot go,
	 * bind() below says why. */
	unlinkat(w->dirfd, w->name, 0);
	w->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (w->sock < 0 || bind(w->sock, (struct sockaddr *)&a, sizeof(a)) < 0)
		return sf_err_sys(errno, "cannot create watch socket '%s/%s/%s'", root,
				  LOCAL_NOTIFY_DIR, w->name);
	return 0;
}

static void watcher_release(struct local_watcher *w)
{
	if (w->sock >= 0) {
		close(w->sock);
		/* Ignored: notifiers delete sockets nobody listens on. */
		unlinkat(w->dirfd, w->name, 0);
	}
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w);
}

int local_watch_start(int rootfd, const char *root, path_info_watch_fn cb, void *ctx,
		      struct local_watcher **out)
{
	struct local_watcher *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->sock = -1;
	w->cb = cb, w->ctx = ctx;
	w->dirfd = openat(rootfd, LOCAL_NOTIFY_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0)
		rc = sf_err_sys(errno, "cannot open '%s/%s'", root, LOCAL_NOTIFY_DIR);
	else
		rc = watcher_bind(w, root);
	if (rc == 0)
		rc = watch_thread_start(&w->th, watcher_main, w);
	if (rc < 0) {
		watcher_release(w);
		return rc;
	}
	*out = w;
	return 0;
}

void local_watch_stop(struct local_watcher *w)
{
	if (!w)
		return;
	watch_thread_stop(&w->th);
	watcher_release(w);
}

/* --- sending side --- */

/* -ECONNREFUSED means nobody listens on the socket any more. */
static int notify_one(int dirfd, const char *root, const char *name, const char *msg)
{
	struct sockaddr_un a;
	struct pollfd p;
	int fd, rc = notify_addr(dirfd, root, name, &a);

	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
	for (int tries = 0; rc == 0; tries++) {
		if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) >= 0)
			break;
		rc = -errno;
		if (rc != -EAGAIN || tries == 1)
			break;
		/* The watcher's queue is full: give it a moment to drain. */
		p = (struct pollfd){.fd = fd, .events = POLLOUT};
		rc = poll(&p, 1, SEND_WAIT_MS) < 0 ? -errno : 0;
	}
	close(fd);
	return rc;
}

static bool is_socket_name(const char *name)
{
	size_t len = strlen(name), sl = sizeof(SOCK_SUFFIX) - 1;

	return name[0] != '.' && len > sl && !strcmp(name + len - sl, SOCK_SUFFIX);
}

void local_notify(int rootfd, const char *root, const char *basename)
{
	DIR *dir = local_opendirat(rootfd, LOCAL_NOTIFY_DIR);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		int rc;

		if (!is_socket_name(de->d_name))
			continue;
		rc = notify_one(dirfd(dir), root, de->d_name, basename);
		if (rc == -ECONNREFUSED) /* a dead watcher's; best effort */
			unlinkat(dirfd(dir), de->d_name, 0);
		else if (rc < 0 && rc != -ENOENT)
			log_debug("cannot notify watcher '%s': %s", de->d_name, strerror(-rc));
	}
	closedir(dir);
}
