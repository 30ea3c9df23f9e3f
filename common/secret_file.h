/* secret_file.h - a secret read from a file (the upload token of `storefs
 * serve --upload-token-file` and of a nix+http copy destination's
 * ?upload-token-file=), by one rule for every reader (docs/narinfo.md §6,
 * docs/trust.md "Uploads"): the whole regular file of at most
 * SECRET_FILE_MAX bytes but its final line ends, not empty, without spaces
 * or control characters. The secret is never put in a message; the copies
 * made while reading are wiped. File permissions are not checked (neither
 * reader did before). */
#ifndef STOREFS_SECRET_FILE_H
#define STOREFS_SECRET_FILE_H

#include <stddef.h>

#define SECRET_FILE_MAX 4096

/* Reads the secret in `file` into a malloc'd, NUL-terminated string (*len
 * its length); free it with secret_free(). `what` names it in messages
 * ("upload token"). Errors, each with a message naming the file: open()'s
 * (-ENOENT, -EACCES, ...), -EINVAL (not a regular file, too long, empty, a
 * space or control character), -ENOMEM. */
int secret_file_load(const char *file, const char *what, char **out, size_t *len);

/* Wipes and frees a secret. NULL is a no-op. */
void secret_free(char *secret);

#endif
