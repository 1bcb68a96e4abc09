/* Secret boxes: the sealing of app secrets (AES-256-GCM through OpenSSL's
 * libcrypto) shared by the store, which seals them (registry/store/
 * secrets.c), and the invoker, which opens them for tine.secret.
 *
 * A sealed value is "tine1" + a random 12-byte nonce + the ciphertext +
 * its 16-byte tag, with "{app}\0{name}" as associated data: a value copied
 * under another app or name does not open. */
#include "secret_box.h"
#include "tine_common.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_MAGIC "tine1"
#define SEAL_MAGIC_LEN 5
#define SEAL_NONCE 12
#define SEAL_TAG 16

int tine_secret_key_load(const char *path, unsigned char key[TINE_SECRET_KEY_LEN], char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int rc = tine_try_read_file(path, &data, &len);
    if (rc != 0) {
        snprintf(err, errlen, "secrets key %s: cannot read it: %s", path, tine_strerror(rc));
        return rc;
    }
    /* 32 raw bytes, or 64 hex digits with white space around them. */
    size_t s = 0, e = len;
    if (len != TINE_SECRET_KEY_LEN) {
        while (s < e && isspace((unsigned char)data[s]))
            s++;
        while (e > s && isspace((unsigned char)data[e - 1]))
            e--;
    }
    rc = TINE_EINVAL;
    if (len == TINE_SECRET_KEY_LEN) {
        memcpy(key, data, TINE_SECRET_KEY_LEN);
        rc = 0;
    } else if (e - s == 2 * TINE_SECRET_KEY_LEN) {
        rc = 0;
        for (size_t i = 0; i < TINE_SECRET_KEY_LEN && rc == 0; i++) {
            unsigned v = 0;
            if (!isxdigit((unsigned char)data[s + 2 * i]) || !isxdigit((unsigned char)data[s + 2 * i + 1]) ||
                sscanf(data + s + 2 * i, "%2x", &v) != 1)
                rc = TINE_EINVAL;
            key[i] = (unsigned char)v;
        }
    }
    if (rc != 0)
        snprintf(err, errlen,
                 "secrets key %s: expected 32 bytes or 64 hex digits (openssl rand -hex 32 makes one), got %zu bytes",
                 path, len);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* The associated data of a sealed value: "{app}\0{name}". */
static char *seal_aad(const char *app, const char *name, size_t *len)
{
    size_t a = strlen(app), n = strlen(name);
    char *aad = xmalloc(a + n + 1);
    memcpy(aad, app, a + 1);
    memcpy(aad + a + 1, name, n);
    *len = a + 1 + n;
    return aad;
}

int tine_secret_seal(const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                    const void *plain, size_t len, tine_buf_t *out)
{
    unsigned char nonce[SEAL_NONCE];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return TINE_EINVAL;
    size_t aad_len;
    char *aad = seal_aad(app, name, &aad_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char *ct = xmalloc(len + 16);
    unsigned char tag[SEAL_TAG];
    int n = 0, f = 0, ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
                           EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aad_len) == 1 &&
                           EVP_EncryptUpdate(ctx, ct, &n, plain, (int)len) == 1 &&
                           EVP_EncryptFinal_ex(ctx, ct + n, &f) == 1 &&
                           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(aad);
    if (ok) {
        tine_buf_append(out, SEAL_MAGIC, SEAL_MAGIC_LEN);
        tine_buf_append(out, nonce, sizeof nonce);
        tine_buf_append(out, ct, (size_t)(n + f));
        tine_buf_append(out, tag, sizeof tag);
    }
    free(ct);
    return ok ? 0 : TINE_EINVAL;
}

int tine_secret_open(const unsigned char key[TINE_SECRET_KEY_LEN], const char *app, const char *name,
                    const void *sealed, size_t len, tine_buf_t *out)
{
    const unsigned char *s = sealed;
    if (len < SEAL_MAGIC_LEN + SEAL_NONCE + SEAL_TAG || memcmp(s, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0)
        return TINE_EINVAL;
    const unsigned char *nonce = s + SEAL_MAGIC_LEN, *ct = nonce + SEAL_NONCE;
    size_t ct_len = len - SEAL_MAGIC_LEN - SEAL_NONCE - SEAL_TAG;
    unsigned char tag[SEAL_TAG];
    memcpy(tag, ct + ct_len, SEAL_TAG);
    size_t aad_len;
    char *aad = seal_aad(app, name, &aad_len);
    unsigned char *plain = xmalloc(ct_len + 16);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) == 1 &&
                           EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aad_len) == 1 &&
                           EVP_DecryptUpdate(ctx, plain, &n, ct, (int)ct_len) == 1 &&
                           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) == 1 &&
                           EVP_DecryptFinal_ex(ctx, plain + n, &f) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(aad);
    if (ok)
        tine_buf_append(out, plain, (size_t)(n + f));
    OPENSSL_cleanse(plain, ct_len + 16);
    free(plain);
    return ok ? 0 : TINE_EINVAL;
}

bool tine_secret_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || !(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
            return false;
    return true;
}
