/* notify.c - the service manager's readiness notification, by hand: the
 * protocol is one datagram on a Unix socket, a few lines, so libsystemd
 * (sd_notify) would be a dependency for nothing. */
#include "cli/notify.h"

#include "common/err.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int cli_notify_ready(const char *status)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = path ? strlen(path) : 0;
	char msg[512];
	int n, fd;
	ssize_t sent;

	if (!len)
		return 0;
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return sf_err(-EINVAL, "NOTIFY_SOCKET '%s' is not a socket path", path);
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* the abstract namespace */
	n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return sf_err(-EINVAL, "status '%s' is too long to notify", status);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sf_err_sys(errno, "cannot create a socket to notify '%s'", path);
	sent = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (const struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	if (sent < 0)
		n = sf_err_sys(errno, "cannot notify '%s'", path);
	close(fd);
	return sent < 0 ? n : 0;
}
