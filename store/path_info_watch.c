/* path_info_watch.c - see path_info_watch.h. */
#include "store/path_info_watch.h"

#include "common/err.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int watch_thread_start(struct watch_thread *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	t->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stopfd < 0)
		return sf_err_sys(errno, "cannot create an eventfd");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return 0;
	close(t->stopfd);
	t->stopfd = -1;
	return sf_err_errno(-EAGAIN, rc, "cannot start a watch thread");
}

void watch_thread_stop(struct watch_thread *t)
{
	uint64_t one = 1;

	if (t->stopfd < 0)
		return;
	/* Without the write the thread would never return: leave it running
	 * rather than wait for ever. */
	if (write(t->stopfd, &one, sizeof(one)) != sizeof(one))
		log_warn("cannot stop a watch thread: %s", strerror(errno));
	else
		pthread_join(t->thread, NULL);
	close(t->stopfd);
	t->stopfd = -1;
}

void watch_list_init(struct watch_list *l, void (*stop)(void *watch))
{
	*l = (struct watch_list){.stop = stop};
	pthread_mutex_init(&l->lock, NULL);
}

int watch_list_add(struct watch_list *l, void *watch)
{
	void **v;

	pthread_mutex_lock(&l->lock);
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v) {
		v[l->n++] = watch;
		l->v = v;
	}
	pthread_mutex_unlock(&l->lock);
	return v ? 0 : -ENOMEM;
}

void watch_list_release(struct watch_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		l->stop(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
	pthread_mutex_destroy(&l->lock);
}
