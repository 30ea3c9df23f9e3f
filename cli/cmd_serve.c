/* cmd_serve.c - `storefs serve`: the store as a Nix HTTP binary cache. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "serve/serve.h"
#include "common/err.h"
#include "common/log.h"

#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct opts {
	const char *listen, *key_file, *token_file;
	/* max_upload, max_dirs 0: not given */
	unsigned long long priority, max_upload, max_dirs;
	bool readonly, uploads;
};

static const struct cli_opt serve_options[] = {
    CLI_STRING(0, "listen", struct opts, listen, "ADDR:PORT",
	       "numeric address and port (default " SERVE_DEFAULT_LISTEN
	       "; [IPv6]:PORT; port 0 picks a free one)"),
    CLI_UINT(0, "priority", struct opts, priority, "N", 0, 1000000,
	     "the Priority in nix-cache-info (default 40; lower wins)"),
    CLI_STRING(0, "secret-key", struct opts, key_file, "FILE",
	       "sign every narinfo with this Nix secret key (as made by nix-store "
	       "--generate-binary-cache-key)"),
    CLI_BOOL(0, "allow-uploads", struct opts, uploads,
	     "accept PUT from clients with the upload token"),
    CLI_STRING(0, "upload-token-file", struct opts, token_file, "FILE",
	       "the upload token: the file's first line (give the file mode 0600)"),
    CLI_UINT(0, "max-upload", struct opts, max_upload, "BYTES", 1, ULLONG_MAX,
	     "largest NAR (and NAR file) accepted by PUT (default 1 GiB)"),
    CLI_UINT(0, "max-directories", struct opts, max_dirs, "N", 1, ULLONG_MAX,
	     "most directories a NAR accepted by PUT may have (default 1000000)"),
    CLI_BOOL(0, "readonly", struct opts, readonly, "open the store read-only (no uploads)"),
    {0},
};

/* --- the listening socket --- */

/* Splits "ADDR:PORT" or "[ADDR]:PORT" into `host` and `port`. */
static int split_listen(const char *s, char *host, size_t hlen, const char **port)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		colon = strstr(s, "]:");
		n = colon ? (size_t)(colon - s - 1) : 0;
		s++;
		colon = colon ? colon + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		n = colon ? (size_t)(colon - s) : 0;
	}
	if (!colon || n == 0 || n >= hlen || !colon[1])
		return sf_err(-EINVAL, "listen address '%s' is not ADDR:PORT", s);
	memcpy(host, s, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int listen_on(const char *spec, int *fd_out, char *url, size_t ulen)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], h[NI_MAXHOST], p[NI_MAXSERV];
	struct addrinfo *ai;
	const char *port = NULL;
	int fd, one = 1, rc = split_listen(spec, host, sizeof(host), &port);

	if (rc < 0)
		return rc;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc != 0)
		return sf_err(-EINVAL, "listen address '%s': %s", spec, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = sf_err_sys(errno, "cannot listen on '%s'", spec);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(url, ulen, ss.ss_family == AF_INET6 ? "http://[%s]:%s" : "http://%s:%s", h, p);
	*fd_out = fd;
	return 0;
}

/* --- running --- */

static int server_init(struct server *s, const struct cli_ctx *c)
{
	const struct opts *o = c->opts;
	unsigned flags = o->readonly ? STORE_OPEN_READONLY : STORE_OPEN_CREATE;
	int rc;

	s->priority = (unsigned)o->priority;
	s->max_upload = o->max_upload ? o->max_upload : SERVE_DEFAULT_MAX_UPLOAD;
	s->max_dirs = o->max_dirs ? o->max_dirs : NAR_DEFAULT_MAX_DIRS;
	s->uploads = o->uploads;
	if (o->uploads) {
		rc = serve_token_load(o->token_file, s->token_sha256);
		if (rc < 0)
			return rc;
	}
	if (o->key_file) {
		rc = signing_secret_key_load(o->key_file, &s->sk);
		if (rc < 0)
			return rc;
		s->has_key = true;
	}
	rc = cli_ctx_open_store(c, flags, &s->st);
	if (rc == 0)
		rc = serve_uploads_init(&s->up);
	if (rc < 0)
		return rc;
	rc = serve_index_init(&s->idx, s->st);
	if (rc < 0)
		serve_uploads_release(&s->up);
	return rc;
}

/* Serves until SIGINT or SIGTERM, which every thread leaves to sigwait(). */
static int serve(struct server *s, const struct opts *o, bool verbose)
{
	char url[128];
	sigset_t set;
	int fd = -1, sig, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	rc = -pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rc == 0)
		rc = listen_on(o->listen, &fd, url, sizeof(url));
	if (rc == 0)
		rc = serve_start(s, fd, verbose);
	if (rc < 0)
		return rc;
	printf("%s\n", url);
	rc = cli_flush_stdout();
	if (rc == 0)
		log_info("serving '%s' on %s", s->st->location, url);
	while (rc == 0 && sigwait(&set, &sig) != 0)
		;
	serve_stop(s);
	log_info("stopped");
	return rc;
}

/* Uploads need a token: there are no anonymous writers (docs/trust.md). */
static int serve_check(struct cli_ctx *c)
{
	const struct opts *o = c->opts;

	if (o->uploads && !o->token_file)
		return cli_usage(c->cmd, "--allow-uploads needs --upload-token-file");
	if (!o->uploads && (o->token_file || o->max_upload || o->max_dirs))
		return cli_usage(c->cmd, "--upload-token-file, --max-upload and --max-directories "
					 "need --allow-uploads");
	if (o->uploads && o->readonly)
		return cli_usage(c->cmd, "--allow-uploads and --readonly exclude each other");
	return 0;
}

static int serve_run(struct cli_ctx *c)
{
	struct server *s = calloc(1, sizeof(*s));
	int rc = s ? server_init(s, c) : -ENOMEM;

	if (rc == 0) {
		rc = serve(s, c->opts, c->verbose > 0);
		serve_index_release(&s->idx);
		serve_uploads_release(&s->up);
	}
	if (s)
		store_free(s->st);
	free(s);
	return rc;
}

const struct cli_cmd cmd_serve = {
    .name = "serve",
    .summary = "serve the store as a Nix binary cache over HTTP",
    .about = "Serves the store as a Nix binary cache over HTTP/1.1 until SIGINT or SIGTERM.\n"
	     "Prints the URL it listens on (http://ADDR:PORT) on standard output.\n"
	     "\n"
	     "  GET /nix-cache-info          StoreDir: /nix/store, WantMassQuery: 1, Priority\n"
	     "  GET|HEAD /<hash>.narinfo     the path's narinfo (404 if unknown),\n"
	     "                               uncompressed NAR URL, stored signatures plus\n"
	     "                               one made with --secret-key\n"
	     "  GET|HEAD /nar/<nix32>.nar    the NAR with that SHA-256, rendered while sent;\n"
	     "                               single 'Range: bytes=' requests get a 206.\n"
	     "                               Every blob and directory is checked before the\n"
	     "                               headers: a damaged path is a 500, never a\n"
	     "                               short 200\n"
	     "  PUT /nar/<nix32>.nar[.xz|.zst|.bz2]\n"
	     "                               upload a NAR file (the hash in the URL is the\n"
	     "                               file's, as Nix names it; the NAR inside is\n"
	     "                               parsed strictly); kept in memory (the last\n"
	     "                               1024) until its narinfo comes\n"
	     "  PUT /<hash>.narinfo          register the path (at most 2 MiB): its NAR must\n"
	     "                               be uploaded (NarHash and NarSize those of the\n"
	     "                               uploaded NAR) or stored, its references\n"
	     "                               registered, a CA must fit the contents; a path\n"
	     "                               registered with other contents is a 409\n"
	     "\n"
	     "The server is read-only (PUT is a 403) unless --allow-uploads is given, and\n"
	     "then every PUT needs the secret of --upload-token-file: as 'Authorization:\n"
	     "Bearer TOKEN', or HTTP Basic auth with TOKEN as the password, which is what\n"
	     "Nix sends from a netrc file (\"machine ADDR login any password TOKEN\"):\n"
	     "  nix copy --to http://ADDR:PORT --option netrc-file FILE STOREPATH\n"
	     "Without credentials PUT is a 401 (with a Basic challenge), with wrong ones a\n"
	     "403. The token is never logged.\n"
	     "\n"
	     "Connections: a pool of threads polls them all (idle clients cost no thread);\n"
	     "at most 1024 in total and 32 per client address (more are closed at once),\n"
	     "each closed after 30 s without traffic; at most 64 NAR transfers at once,\n"
	     "more get 503 (docs/limits.md).\n",
    .notes = "With -v, one line per request is logged on standard error.\n",
    .flags = CLI_STORE | CLI_VERBOSE,
    .store_note = "created if missing (opened read-only with --readonly)",
    .options = serve_options,
    .opts_size = sizeof(struct opts),
    .defaults =
	&(const struct opts){.listen = SERVE_DEFAULT_LISTEN, .priority = SERVE_DEFAULT_PRIORITY},
    .check = serve_check,
    .run = serve_run,
};
