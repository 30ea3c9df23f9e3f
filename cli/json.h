/* json.h - a small JSON emitter on stdio for the CLI's --json output.
 *
 * The caller writes the structure ("[", "{", ",") itself; these helpers
 * write correctly escaped values. Not thread-safe per FILE. */
#ifndef STOREFS_CLI_JSON_H
#define STOREFS_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A JSON string of `len` bytes: '"', '\\' and control characters are
 * escaped; bytes that are not valid UTF-8 become \u00XX (their Latin-1
 * reading), so the output is always valid JSON. */
void json_string(FILE *f, const void *s, size_t len);

/* json_string() of a NUL-terminated string. */
void json_cstring(FILE *f, const char *s);

/* `"key":` with the key escaped. */
void json_key(FILE *f, const char *key);

void json_u64(FILE *f, uint64_t v);

#endif
