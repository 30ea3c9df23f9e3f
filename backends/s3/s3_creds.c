/* s3_creds.c - S3 credentials: the standard AWS environment variables, or
 * a profile of the shared credentials file (an INI file). */
#include "backends/s3/s3_internal.h"

#include "common/err.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		*--e = '\0';
	return s;
}

/* Takes "name = value" of the wanted profile's section into `c`. */
static int take_line(char *line, const char *profile, bool *in_profile, struct s3_creds *c)
{
	char *s = trim(line), *eq, **dst = NULL;

	if (*s == '[') {
		char *end = strchr(s, ']');

		*in_profile = end && (size_t)(end - s - 1) == strlen(profile) &&
			      !strncmp(s + 1, profile, strlen(profile));
		return 0;
	}
	eq = strchr(s, '=');
	if (!*in_profile || !eq || *s == '#' || *s == ';')
		return 0;
	*eq = '\0';
	s = trim(s);
	if (!strcmp(s, "aws_access_key_id"))
		dst = &c->key_id;
	else if (!strcmp(s, "aws_secret_access_key"))
		dst = &c->secret;
	else if (!strcmp(s, "aws_session_token"))
		dst = &c->token;
	if (!dst)
		return 0;
	free(*dst);
	*dst = strdup(trim(eq + 1));
	return *dst ? 0 : -ENOMEM;
}

static int load_file(const char *path, const char *profile, struct s3_creds *c)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	bool in_profile = false;
	int rc = 0;

	if (!f)
		return errno == ENOENT ? 0 : sf_err_sys(errno, "cannot read '%s'", path);
	while (rc == 0 && getline(&line, &cap, f) >= 0)
		rc = take_line(line, profile, &in_profile, c);
	if (line) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	fclose(f);
	return rc;
}

static int load_env(struct s3_creds *c)
{
	c->key_id = strdup(env("AWS_ACCESS_KEY_ID"));
	c->secret = strdup(env("AWS_SECRET_ACCESS_KEY"));
	c->token = env("AWS_SESSION_TOKEN") ? strdup(env("AWS_SESSION_TOKEN")) : NULL;
	if (!c->key_id || !c->secret || (env("AWS_SESSION_TOKEN") && !c->token))
		return -ENOMEM;
	return 0;
}

int s3_creds_load(struct s3_creds *out)
{
	struct s3_creds c = {0};
	char path[4096];
	const char *file = env("AWS_SHARED_CREDENTIALS_FILE"), *home = env("HOME");
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	int rc;

	if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
		rc = load_env(&c);
	} else {
		if (!file && home &&
		    snprintf(path, sizeof(path), "%s/.aws/credentials", home) < (int)sizeof(path))
			file = path;
		rc = file ? load_file(file, profile, &c) : 0;
		if (rc == 0 && (!c.key_id || !c.secret || !*c.key_id || !*c.secret))
			rc = sf_err(-EINVAL,
				    "no S3 credentials: set AWS_ACCESS_KEY_ID and "
				    "AWS_SECRET_ACCESS_KEY, or profile '%s' in "
				    "AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials)",
				    profile);
	}
	if (rc < 0) {
		s3_creds_release(&c);
		return rc;
	}
	*out = c;
	return 0;
}

static void scrub(char *s)
{
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	free(s);
}

void s3_creds_release(struct s3_creds *c)
{
	free(c->key_id);
	scrub(c->secret);
	scrub(c->token);
	*c = (struct s3_creds){0};
}
