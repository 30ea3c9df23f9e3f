/* server.c - the gRPC server: listeners, the completion queue and its
 * threads, graceful stop. */
#include "daemon/daemon.h"
#include "daemon/rpc.h"

#include "common/deadline.h"
#include "common/err.h"
#include "common/log.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Calls waiting to be accepted at any time. */
#define ACCEPT_SLOTS 16

/* gRPC's own diagnostics go through our log, at its level. */
static void grpc_log(gpr_log_func_args *a)
{
	enum log_level l = a->severity == GPR_LOG_SEVERITY_ERROR ? LOG_WARN : LOG_DEBUG;

	log_msg(l, "grpc: %s", a->message);
}

static void *poll_loop(void *arg)
{
	struct daemon *d = arg;

	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(d->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type == GRPC_OP_COMPLETE)
			((struct rpc_tag *)ev.tag)->done(ev.tag, ev.success != 0);
	}
}

static void shutdown_done(struct rpc_tag *t, bool ok)
{
	struct daemon *d = (struct daemon *)((char *)t - offsetof(struct daemon, shutdown_tag));

	pthread_mutex_lock(&d->lock);
	d->shut_down = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* The URL a client dials for listener `spec`, bound to `port`. */
static int listen_url(const char *spec, int port, char **out)
{
	const char *colon = strrchr(spec, ':');
	char cwd[PATH_MAX];
	int n;

	if (!strncmp(spec, "unix:", 5)) {
		const char *path = spec + 5;

		if (path[0] == '/')
			n = asprintf(out, "grpc+unix://%s", path);
		else if (getcwd(cwd, sizeof(cwd)))
			n = asprintf(out, "grpc+unix://%s/%s", cwd, path);
		else
			return sf_err_sys(errno, "cannot resolve '%s'", spec);
	} else {
		n = asprintf(out, "grpc+http://%.*s:%d", (int)(colon - spec), spec, port);
	}
	return n < 0 ? -ENOMEM : 0;
}

/* "unix:PATH" or "HOST:PORT" with a port; anything else is refused before
 * gRPC, which would try to resolve it as a target name. */
static int check_listen(const char *spec)
{
	const char *colon = strrchr(spec, ':');

	if (!strncmp(spec, "unix:", 5))
		return spec[5] ? 0 : sf_err(-EINVAL, "listen address '%s' has no path", spec);
	if (!colon || colon == spec || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return sf_err(-EINVAL, "listen address '%s' is not HOST:PORT or unix:PATH", spec);
	return 0;
}

static int add_listeners(struct daemon *d, char **urls)
{
	for (size_t i = 0; i < d->cfg.n_listen; i++) {
		const char *spec = d->cfg.listen[i];
		grpc_server_credentials *creds;
		int port, rc = check_listen(spec);

		if (rc < 0)
			return rc;
		creds = grpc_insecure_server_credentials_create();
		port = grpc_server_add_http2_port(d->server, spec, creds);
		grpc_server_credentials_release(creds);
		if (port == 0)
			return sf_err(-EADDRINUSE, "cannot listen on '%s'", spec);
		if (urls) {
			rc = listen_url(spec, port, &urls[i]);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static grpc_server *server_new(struct daemon *d)
{
	grpc_arg args[] = {
	    {.type = GRPC_ARG_POINTER,
	     .key = GRPC_ARG_RESOURCE_QUOTA,
	     .value.pointer = {.p = d->quota, .vtable = grpc_resource_quota_arg_vtable()}},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	     .value.integer = DAEMON_MAX_RECV_MESSAGE},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
	     .value.integer = -1},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
	     .value.integer = DAEMON_MAX_STREAMS},
	    /* A second daemon on the same port is an error, not a silent
	     * share of the connections. */
	    {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
	};
	grpc_channel_args ca = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};

	return grpc_server_create(&ca, NULL);
}

/* Waits until the server's shutdown is complete or `ms` have passed (0:
 * as long as it takes). */
static bool wait_shut_down(struct daemon *d, unsigned ms)
{
	struct timespec until = deadline_abs(ms);
	bool done;

	pthread_mutex_lock(&d->lock);
	while (!d->shut_down && (ms == 0 ? pthread_cond_wait(&d->cond, &d->lock)
					 : pthread_cond_timedwait(&d->cond, &d->lock, &until)) == 0)
		;
	done = d->shut_down;
	pthread_mutex_unlock(&d->lock);
	return done;
}

/* After the server's shutdown tag: the queue may end, then the server. */
static void daemon_free(struct daemon *d)
{
	if (d->cq) {
		grpc_completion_queue_shutdown(d->cq);
		for (size_t i = 0; i < d->n_threads; i++)
			pthread_join(d->threads[i], NULL);
		if (!d->n_threads)
			poll_loop(d);
	}
	if (d->server)
		grpc_server_destroy(d->server);
	if (d->cq)
		grpc_completion_queue_destroy(d->cq);
	if (d->quota)
		grpc_resource_quota_unref(d->quota);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
	grpc_shutdown();
}

/* A start that failed half way: no call was served. */
static void daemon_abandon(struct daemon *d)
{
	grpc_server_shutdown_and_notify(d->server, d->cq, &d->shutdown_tag);
	grpc_server_cancel_all_calls(d->server);
	while (!d->n_threads && !d->shut_down) {
		grpc_event ev =
		    grpc_completion_queue_next(d->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

		if (ev.type == GRPC_OP_COMPLETE)
			((struct rpc_tag *)ev.tag)->done(ev.tag, ev.success != 0);
	}
	wait_shut_down(d, 0);
	daemon_free(d);
}

static int daemon_init(struct daemon *d, const struct daemon_config *cfg, char **urls)
{
	pthread_condattr_t ca;
	int rc;

	d->cfg = *cfg;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	d->shutdown_tag.done = shutdown_done;
	gpr_set_log_function(grpc_log);
	grpc_init();
	d->quota = grpc_resource_quota_create("storefs daemon");
	if (!d->quota)
		return -ENOMEM;
	grpc_resource_quota_resize(d->quota, DAEMON_MEMORY_QUOTA);
	d->server = server_new(d);
	d->cq = grpc_completion_queue_create_for_next(NULL);
	if (!d->server || !d->cq)
		return -ENOMEM;
	grpc_server_register_completion_queue(d->server, d->cq, NULL);
	rc = add_listeners(d, urls);
	if (rc < 0)
		return rc;
	grpc_server_start(d->server);
	for (int i = 0; i < ACCEPT_SLOTS; i++)
		rpc_accept(d);
	for (; d->n_threads < DAEMON_THREADS; d->n_threads++) {
		rc = -pthread_create(&d->threads[d->n_threads], NULL, poll_loop, d);
		if (rc < 0)
			return sf_err(rc, "cannot start a thread");
	}
	return 0;
}

int daemon_start(const struct daemon_config *cfg, struct daemon **out, char ***urls_out)
{
	struct daemon *d = calloc(1, sizeof(*d));
	char **urls = urls_out ? calloc(cfg->n_listen ? cfg->n_listen : 1, sizeof(*urls)) : NULL;
	int rc = d && (urls || !urls_out) ? daemon_init(d, cfg, urls) : -ENOMEM;

	if (rc < 0) {
		if (d && d->server && d->cq)
			daemon_abandon(d);
		else if (d)
			free(d);
		for (size_t i = 0; urls && i < cfg->n_listen; i++)
			free(urls[i]);
		free(urls);
		return rc;
	}
	*out = d;
	if (urls_out)
		*urls_out = urls;
	return 0;
}

void daemon_stop(struct daemon *d)
{
	unsigned grace;

	if (!d)
		return;
	grace = d->cfg.grace_ms ? d->cfg.grace_ms : DAEMON_GRACE_MS_DEFAULT;
	grpc_server_shutdown_and_notify(d->server, d->cq, &d->shutdown_tag);
	rpc_end_watchers(d);
	if (!wait_shut_down(d, grace)) {
		log_warn("calls still running after %u ms: cancelling them", grace);
		grpc_server_cancel_all_calls(d->server);
		wait_shut_down(d, 0);
	}
	daemon_free(d);
}
