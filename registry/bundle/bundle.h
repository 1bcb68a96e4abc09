/* Bundles: the tar.gz an app is deployed as. Reading one checks every entry,
 * parses its manifest, compiles its Lua files and scans their exports;
 * packing turns an app directory into one. Links libarchive, OpenSSL's
 * libcrypto (SHA-256) and LuaJIT (the syntax check), and the app model. */
#ifndef TINE_BUNDLE_H
#define TINE_BUNDLE_H

#include "app_model.h"

#include <stddef.h>

typedef struct {
    char *path; /* normalized relative path, "/"-separated, no "." or ".." */
    char *data;
    size_t len;
    char sha256[65]; /* lower-case hex */
} reg_bundle_file_t;

typedef struct {
    reg_bundle_file_t *files;
    size_t files_len;
    size_t total_len;
    const char *manifest_path; /* points at the manifest file's path */
    reg_manifest_t *manifest;  /* parsed and validated */
} reg_bundle_t;

typedef struct {
    size_t max_total; /* uncompressed bytes in all files (default 64 MiB) */
    size_t max_files; /* default 10000 */
} reg_bundle_limits_t;

/* Reads a tar.gz bundle from memory, checks every entry (regular files and
 * directories only: no links, devices, absolute paths or ".."), enforces the
 * limits, finds the manifest at the root (tine.yaml, tine.yml or tine.json),
 * parses it, checks every handler file exists, and compiles every ".lua" file
 * to check its syntax (without running it). On success stores a new bundle in
 * *out (free with reg_bundle_free). On failure returns TINE_EINVAL or
 * TINE_ETOOBIG with a one-line message naming the entry and what is wrong. */
int reg_bundle_read(const void *tgz, size_t len, const reg_bundle_limits_t *limits, reg_bundle_t **out, char *err,
                    size_t errlen);
void reg_bundle_free(reg_bundle_t *b);

/* Packs an app directory into a tar.gz in memory: the manifest and every
 * regular file below dir, skipping names starting with "." and the tests
 * directory at the top (tine test's), following no symlinks (a symlink is
 * an error). Returns 0 and a malloc'd buffer, or an
 * error with a message. */
int reg_bundle_pack_dir(const char *dir, void **out, size_t *out_len, char *err, size_t errlen);

/* Packs a bundle's files (as read, or loaded from the store) into the
 * canonical tar.gz: the bytes reg_bundle_pack_dir makes of the same files,
 * whoever packed the upload. Returns 0 and a malloc'd buffer, or an error
 * with a message. */
int reg_bundle_pack(const reg_bundle_t *b, void **out, size_t *out_len, char *err, size_t errlen);

/* The digest of a bundle: lower-case hex SHA-256 of its canonical tar.gz
 * (reg_bundle_pack), what `sha256sum app.tine` prints for an artifact made
 * by `tine pack`. Returns 0, or an error with a message. */
int reg_bundle_digest(const reg_bundle_t *b, char out[65], char *err, size_t errlen);

/* Lower-case hex SHA-256 of a buffer into out[65]. */
void reg_sha256_hex(const void *data, size_t len, char out[65]);

/* The identity of a bundle's content: SHA-256 over its file paths and their
 * SHA-256, the same for the same files however they were packed. Daemon
 * code: aborts when out of memory. */
void reg_bundle_identity(const reg_bundle_t *b, char out[65]);

#endif
