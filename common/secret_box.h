/* Secret boxes: AES-256-GCM sealing of app secrets under the cluster key
 * (tined --secrets-key), shared by the store and the invoker. Links
 * OpenSSL's libcrypto. */
#ifndef TINE_SECRET_BOX_H
#define TINE_SECRET_BOX_H

#include "tine_common.h"

#include <stdbool.h>
#include <stddef.h>

#define TINE_SECRET_KEY_LEN 32

/* Reads the cluster's secrets key: 32 raw bytes, or 64 hex digits. Returns
 * 0, or an error with a message naming the file and what was expected. */
int tine_secret_key_load(const char *path, unsigned char key[TINE_SECRET_KEY_LEN], char *err, size_t errlen);

/* Seals (a random nonce, "{app}\0{name}" as associated data) or opens a
 * secret's value, appending the result to out. Open returns TINE_EINVAL
 * when the value does not open with this key (a wrong key, a damaged
 * value, or one copied under another app or name). */
int tine_secret_seal(const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                     const void *plain, size_t len, tine_buf_t *out);
int tine_secret_open(const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                     const void *sealed, size_t len, tine_buf_t *out);

/* Whether `name` is a secret's name: [A-Za-z_][A-Za-z0-9_]*, 1 to 128. */
bool tine_secret_name_valid(const char *name);

#endif
