/* cmd_serve.c - `storefs serve`: the store as a Nix HTTP binary cache. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/serve.h"
#include "common/err.h"
#include "common/log.h"

#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct cli_cmd cmd = {
    "serve",
    "serve [--store URL|DIR] [--listen ADDR:PORT] [--priority N] [--secret-key FILE]\n"
    "             [--allow-uploads --upload-token-file FILE [--max-upload BYTES]]\n"
    "             [--readonly] [-v]",
    "Serves the store as a Nix binary cache over HTTP/1.1 until SIGINT or SIGTERM.\n"
    "Prints the URL it listens on (http://ADDR:PORT) on standard output.\n"
    "\n"
    "  GET /nix-cache-info          StoreDir: /nix/store, WantMassQuery: 1, Priority\n"
    "  GET|HEAD /<hash>.narinfo     the path's narinfo (404 if unknown), uncompressed\n"
    "                               NAR URL, stored signatures plus one made with\n"
    "                               --secret-key\n"
    "  GET|HEAD /nar/<nix32>.nar    the NAR with that SHA-256, rendered while sent;\n"
    "                               single 'Range: bytes=' requests get a 206. Every\n"
    "                               blob and directory is checked before the headers:\n"
    "                               a damaged path is a 500, never a short 200\n"
    "  PUT /nar/<nix32>.nar[.xz|.zst|.bz2]\n"
    "                               upload a NAR file (the hash in the URL is the\n"
    "                               file's, as Nix names it; the NAR inside is parsed\n"
    "                               strictly); kept in memory (the last 1024) until\n"
    "                               its narinfo comes\n"
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
    "more get 503 (docs/limits.md).\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR     the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                      as root, else $XDG_DATA_HOME/storefs); created if missing\n"
    "  --listen ADDR:PORT  numeric address and port (default " SERVE_DEFAULT_LISTEN ";\n"
    "                      [IPv6]:PORT; port 0 picks a free one)\n"
    "  --priority N        the Priority in nix-cache-info (default 40; lower wins)\n"
    "  --secret-key FILE   sign every narinfo with this Nix secret key (as made by\n"
    "                      nix-store --generate-binary-cache-key)\n"
    "  --allow-uploads     accept PUT from clients with the upload token\n"
    "  --upload-token-file FILE\n"
    "                      the upload token: the file's first line (give the file\n"
    "                      mode 0600)\n"
    "  --max-upload BYTES  largest NAR (and NAR file) accepted by PUT (default\n"
    "                      4 GiB)\n"
    "  --readonly          open the store read-only (no uploads)\n"
    "  -v, --verbose       log one line per request on standard error\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum {
	OPT_LISTEN = 256,
	OPT_PRIORITY,
	OPT_SECRET_KEY,
	OPT_MAX_UPLOAD,
	OPT_READONLY,
	OPT_ALLOW_UPLOADS,
	OPT_TOKEN_FILE
};

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"priority", required_argument, NULL, OPT_PRIORITY},
    {"secret-key", required_argument, NULL, OPT_SECRET_KEY},
    {"max-upload", required_argument, NULL, OPT_MAX_UPLOAD},
    {"readonly", no_argument, NULL, OPT_READONLY},
    {"allow-uploads", no_argument, NULL, OPT_ALLOW_UPLOADS},
    {"upload-token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"verbose", no_argument, NULL, 'v'},
    {0},
};

struct opts {
	const char *url, *listen, *key_file, *token_file;
	unsigned long long priority, max_upload;
	bool readonly, uploads, max_upload_given;
	int verbose;
};

static bool parse_ull(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end && *out <= max;
}

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

static int server_init(struct server *s, const struct opts *o)
{
	unsigned flags = o->readonly ? STORE_OPEN_READONLY : STORE_OPEN_CREATE;
	int rc;

	s->priority = (unsigned)o->priority;
	s->max_upload = o->max_upload;
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
	rc = cli_open_store(o->url, flags, &s->st);
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
static int serve(struct server *s, const struct opts *o)
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
		rc = serve_start(s, fd, o->verbose > 0);
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
static int check_upload_opts(const struct opts *o)
{
	if (o->uploads && !o->token_file)
		return cli_usage(&cmd, "--allow-uploads needs --upload-token-file");
	if (!o->uploads && (o->token_file || o->max_upload_given))
		return cli_usage(&cmd, "--upload-token-file and --max-upload need --allow-uploads");
	if (o->uploads && o->readonly)
		return cli_usage(&cmd, "--allow-uploads and --readonly exclude each other");
	return 0;
}

static int parse_opt(struct opts *o, int ch)
{
	switch (ch) {
	case CLI_OPT_STORE:
		o->url = optarg;
		return 0;
	case OPT_LISTEN:
		o->listen = optarg;
		return 0;
	case OPT_SECRET_KEY:
		o->key_file = optarg;
		return 0;
	case OPT_READONLY:
		o->readonly = true;
		return 0;
	case OPT_ALLOW_UPLOADS:
		o->uploads = true;
		return 0;
	case OPT_TOKEN_FILE:
		o->token_file = optarg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case OPT_PRIORITY:
		if (!parse_ull(optarg, 1000000, &o->priority))
			return cli_usage(&cmd, "--priority '%s' is not a number up to 1000000",
					 optarg);
		return 0;
	case OPT_MAX_UPLOAD:
		if (!parse_ull(optarg, UINT64_MAX, &o->max_upload) || !o->max_upload)
			return cli_usage(&cmd, "--max-upload '%s' is not a positive number",
					 optarg);
		o->max_upload_given = true;
		return 0;
	default:
		return CLI_USAGE;
	}
}

int cmd_serve(int argc, char **argv)
{
	struct opts o = {.listen = SERVE_DEFAULT_LISTEN,
			 .priority = SERVE_DEFAULT_PRIORITY,
			 .max_upload = SERVE_DEFAULT_MAX_UPLOAD};
	struct server *s;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "hv", longopts)) != -1) {
		if (ch == CLI_OPT_HELP)
			return cli_help(&cmd);
		rc = parse_opt(&o, ch);
		if (rc)
			return rc;
	}
	if (optind != argc)
		return cli_usage(&cmd, "unexpected argument '%s'", argv[optind]);
	rc = check_upload_opts(&o);
	if (rc)
		return rc;
	if (o.verbose)
		log_set_level(o.verbose > 1 ? LOG_DEBUG : LOG_INFO);
	s = calloc(1, sizeof(*s));
	if (!s)
		return cli_fail(&cmd, -ENOMEM);
	rc = server_init(s, &o);
	if (rc == 0) {
		rc = serve(s, &o);
		serve_index_release(&s->idx);
		serve_uploads_release(&s->up);
	}
	if (rc < 0)
		cli_fail(&cmd, rc);
	store_free(s->st);
	free(s);
	return rc < 0 ? CLI_FAILED : CLI_OK;
}
