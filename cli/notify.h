/* notify.h - telling a service manager that a command is ready (systemd's
 * Type=notify protocol: one datagram "READY=1" to $NOTIFY_SOCKET). */
#ifndef STOREFS_CLI_NOTIFY_H
#define STOREFS_CLI_NOTIFY_H

/* Sends "READY=1\nSTATUS=<status>" to $NOTIFY_SOCKET (a path, or '@' for
 * the abstract namespace). Without $NOTIFY_SOCKET nothing is sent and 0 is
 * returned; a socket that cannot be reached is -EIO with a message. */
int cli_notify_ready(const char *status);

#endif
