/* path_info_watch.h - what every PathInfo service that announces new
 * paths (`path_info_service_watch`) needs around its own way of hearing
 * of them: a thread per watch that a stop request ends, and the list of
 * the service's watches, all stopped when the service is freed. The local
 * store hears through unix sockets, PostgreSQL through LISTEN. */
#ifndef STOREFS_PATH_INFO_WATCH_H
#define STOREFS_PATH_INFO_WATCH_H

#include <pthread.h>
#include <stddef.h>

/* A watch's thread. Its loop polls `stopfd` along with its own
 * descriptors and returns once `stopfd` is readable. */
struct watch_thread {
	pthread_t thread;
	int stopfd; /* an eventfd; -1 when not started */
};

/* Creates `stopfd` and starts `fn(arg)` with every signal blocked (signals
 * belong to the application's threads). On failure nothing is left. */
int watch_thread_start(struct watch_thread *t, void *(*fn)(void *), void *arg);

/* Asks the thread to return, waits for it and closes `stopfd`. Nothing to
 * do if it was not started. */
void watch_thread_stop(struct watch_thread *t);

/* A service's watches; `stop` ends and frees one. */
struct watch_list {
	pthread_mutex_t lock;
	void **v; /* protected by lock */
	size_t n;
	void (*stop)(void *watch);
};

void watch_list_init(struct watch_list *l, void (*stop)(void *watch));

/* Keeps `watch`; -ENOMEM (the caller still owns it, and stops it). */
int watch_list_add(struct watch_list *l, void *watch);

/* Stops every watch kept; the list is then empty and released. */
void watch_list_release(struct watch_list *l);

#endif
