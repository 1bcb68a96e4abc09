/* HTTPS for the gateway: the server's TLS context (OpenSSL) built from a
 * certificate chain and its private key (PEM files), ALPN, and reloads.
 *
 * Each connection takes a reference to the SSL_CTX current when it was
 * accepted (gw__tls_conn_init) and keeps it until it closes: h2o keeps a
 * bare pointer to it until its handshake creates the SSL object, and the
 * SSL object then holds its own. A reload builds a whole new SSL_CTX from
 * the files and swaps it in only when every check passed, so new
 * connections get the new certificate, established ones keep theirs, and a
 * bad file leaves the previous certificate serving.
 *
 * Several certificates (--tls-cert/--tls-key given in pairs) make a set:
 * one SSL_CTX each, the first the default. The default context's SNI
 * callback moves a handshake to the certificate whose DNS names (its
 * subjectAltName, else its CN) match the name the client asked for. The
 * set belongs to its default context (ex_data freed with it), so a
 * connection's reference keeps the whole set it was accepted with; a reload
 * swaps in a whole new set or nothing. */
#include "gateway_internal.h"
#include "tine_common.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* A PEM file larger than this is not a certificate chain or a key. */
#define PEM_MAX (1024 * 1024)

/* ALPN, in the server's order of preference (h2o picks the first of ours
 * the client offers; h2o_accept speaks HTTP/2 when it is "h2"). */
static const h2o_iovec_t alpn_h2[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
static const h2o_iovec_t alpn_h1[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

/* What the doctor, the metrics and the log lines say of a certificate. */
typedef struct {
    char subject[256];
    char issuer[256];
    char names[512];               /* subjectAltName DNS and IP entries, ", " between them */
    char serial[128];              /* upper-case hex, as `openssl x509 -serial` prints it */
    char sha256[96];               /* AB:CD:..., as `openssl x509 -fingerprint -sha256` prints it */
    int64_t not_before, not_after; /* unix seconds */
} cert_info_t;

/* One certificate of a set, and the host names it answers (lower case;
 * "*.example.test" covers one label). */
typedef struct {
    SSL_CTX *ctx;
    cert_info_t info;
    char **names;
    size_t nnames;
} tls_cert_t;

/* The certificates served together; certs[0] is the default. */
typedef struct {
    size_t n;
    tls_cert_t *certs;
} cert_set_t;

struct gw_tls {
    char **cert_files; /* in pairs with key_files; ncerts of each */
    char **key_files;
    size_t ncerts;
    char *cert_file; /* the first of cert_files: the default certificate */
    bool http2;
    SSL_CTX *ctx; /* what new connections get: the default of `set` */
    cert_set_t *set; /* owned by ctx (ex_data) */
    cert_info_t info; /* of the default certificate */
    uint64_t loaded_ms; /* unix ms when ctx was built */
    uint64_t reloads, reload_failures;
    char reload_error[512]; /* why the last reload failed; "" when it did not */
};

/* The reason of the oldest OpenSSL error queued on this thread, or `fallback`;
 * the queue is cleared. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r == NULL)
        snprintf(buf, len, "%s", fallback);
    else
        snprintf(buf, len, "%s", r);
    ERR_clear_error();
    return buf;
}

/* Reads a PEM file named by `flag` into a fresh buffer. Returns NULL with
 * a message when it is not a readable regular file of a sensible size. */
static char *read_pem(const char *flag, const char *path, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        tine_fail(err, errlen, "%s %s: cannot read it: %s", flag, path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        tine_fail(err, errlen, "%s %s: not a regular file", flag, path);
        return NULL;
    }
    if (st.st_size > PEM_MAX) {
        tine_fail(err, errlen, "%s %s: %lld bytes, more than a PEM file of 1 MiB at most", flag, path,
                  (long long)st.st_size);
        return NULL;
    }
    char *data = NULL;
    int rc = tine_try_read_file(path, &data, len);
    if (rc != 0) {
        tine_fail(err, errlen, "%s %s: cannot read it: %s", flag, path, tine_strerror(rc));
        return NULL;
    }
    return data;
}

/* Text of an X509 name in RFC 2253 form ("CN=tine,O=example"). */
static void name_text(const X509_NAME *name, char *out, size_t len)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)len - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* The subjectAltName DNS and IP entries of x, ", " between them. */
static void alt_names(X509 *x, char *out, size_t len)
{
    out[0] = '\0';
    size_t at = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        char one[64] = "";
        if (g->type == GEN_DNS) {
            snprintf(one, sizeof one, "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            const unsigned char *ip = ASN1_STRING_get0_data(g->d.iPAddress);
            int n = ASN1_STRING_length(g->d.iPAddress);
            if (n == 4) {
                snprintf(one, sizeof one, "IP:%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
            } else if (n == 16) {
                char *p = one + snprintf(one, sizeof one, "IP:");
                for (int k = 0; k < 16; k += 2)
                    p += snprintf(p, (size_t)(one + sizeof one - p), "%s%x", k ? ":" : "", ip[k] << 8 | ip[k + 1]);
            }
        }
        if (one[0] && at + strlen(one) + 3 < len)
            at += (size_t)snprintf(out + at, len - at, "%s%s", at ? ", " : "", one);
    }
    GENERAL_NAMES_free(names);
}

/* Unix seconds of an ASN1 time (0 when it cannot be read). */
static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    return t && ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

static void describe(X509 *x, cert_info_t *info)
{
    memset(info, 0, sizeof *info);
    name_text(X509_get_subject_name(x), info->subject, sizeof info->subject);
    name_text(X509_get_issuer_name(x), info->issuer, sizeof info->issuer);
    alt_names(x, info->names, sizeof info->names);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    /* `openssl x509 -serial` prints whole bytes: an even number of digits. */
    if (hex)
        snprintf(info->serial, sizeof info->serial, "%s%s", strlen(hex) % 2 ? "0" : "", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen && 3 * i + 3 <= sizeof info->sha256; i++)
            snprintf(info->sha256 + 3 * i, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    info->not_before = asn1_unix(X509_get0_notBefore(x));
    info->not_after = asn1_unix(X509_get0_notAfter(x));
}

/* Loads the certificate chain of `pem` into ctx: the first certificate is
 * the server's, the others its chain. */
static int use_chain(SSL_CTX *ctx, const char *path, const char *pem, size_t len, cert_info_t *info, char *err,
                     size_t errlen)
{
    char why[256];
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *leaf = b ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
    if (leaf == NULL) {
        BIO_free(b);
        ERR_clear_error();
        return tine_fail(err, errlen, "--tls-cert %s: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                         path);
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        tine_fail(err, errlen, "--tls-cert %s: cannot use its certificate: %s", path,
                  ssl_reason(why, sizeof why, "refused by OpenSSL"));
        X509_free(leaf);
        BIO_free(b);
        return TINE_EINVAL;
    }
    describe(leaf, info);
    X509_free(leaf);
    int n = 1, rc = 0;
    X509 *ca;
    while ((ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        n++;
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            rc = tine_fail(err, errlen, "--tls-cert %s: cannot use certificate %d of the chain: %s", path, n,
                           ssl_reason(why, sizeof why, "refused by OpenSSL"));
            break;
        }
    }
    /* The end of the file reads as "no start line"; anything else is a
     * broken certificate after the first. */
    unsigned long e = ERR_peek_last_error();
    if (rc == 0 && e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
        rc = tine_fail(err, errlen, "--tls-cert %s: certificate %d of the chain cannot be read: %s", path, n + 1,
                       ssl_reason(why, sizeof why, "bad PEM"));
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

/* A PEM password callback that never asks (a daemon has no terminal): it
 * notes that the key is encrypted. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)u = true;
    return -1;
}

/* Loads the private key of `pem` into ctx and checks it is the key of the
 * certificate already there. */
static int use_key(SSL_CTX *ctx, const char *cert_path, const char *path, const char *pem, size_t len, char *err,
                   size_t errlen)
{
    char why[256];
    bool encrypted = false;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, no_password, &encrypted) : NULL;
    BIO_free(b);
    if (key == NULL) {
        ERR_clear_error();
        if (encrypted)
            return tine_fail(err, errlen, "--tls-key %s: the key is encrypted: give it without a passphrase", path);
        return tine_fail(err, errlen, "--tls-key %s: no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)",
                         path);
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok)
        return tine_fail(err, errlen, "--tls-key %s does not match the certificate of --tls-cert %s (%s)", path,
                         cert_path, ssl_reason(why, sizeof why, "key values mismatch"));
    return 0;
}

/* Builds a server context from the files: TLS 1.2 at least, ALPN "h2" (with
 * http2) and "http/1.1". Returns NULL with a message naming the file. */
static SSL_CTX *make_ctx(const gw_tls_t *tls, size_t pair, cert_info_t *info, char *err, size_t errlen)
{
    size_t clen = 0, klen = 0;
    const char *cert_file = tls->cert_files[pair], *key_file = tls->key_files[pair];
    char *cert = read_pem("--tls-cert", cert_file, &clen, err, errlen);
    char *key = cert ? read_pem("--tls-key", key_file, &klen, err, errlen) : NULL;
    SSL_CTX *ctx = NULL;
    if (key != NULL) {
        ERR_clear_error();
        ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == NULL) {
            char why[256];
            tine_fail(err, errlen, "cannot make a TLS context: %s", ssl_reason(why, sizeof why, "OpenSSL failed"));
        }
    }
    if (ctx != NULL) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        h2o_ssl_register_alpn_protocols(ctx, tls->http2 ? alpn_h2 : alpn_h1);
        if (use_chain(ctx, cert_file, cert, clen, info, err, errlen) != 0 ||
            use_key(ctx, cert_file, key_file, key, klen, err, errlen) != 0) {
            SSL_CTX_free(ctx);
            ctx = NULL;
        }
    }
    free(cert);
    if (key != NULL) {
        OPENSSL_cleanse(key, klen); /* the private key leaves no copy behind */
        free(key);
    }
    return ctx;
}

/* The log line of a certificate now serving. */
static void log_certificate(const char *file, const cert_info_t *info, const char *what)
{
    char expires[32];
    tine_fmt_rfc3339_ms((uint64_t)info->not_after * 1000u, expires);
    tine_log(TINE_LOG_INFO, "TLS: %s %s (subject %s, %s, serial %s, sha256 %s, expires %s)", what, file, info->subject,
             info->names[0] ? info->names : "no subjectAltName", info->serial, info->sha256, expires);
    int64_t now = (int64_t)time(NULL);
    if (info->not_after < now)
        tine_log(TINE_LOG_WARN, "TLS: the certificate of %s expired on %s: clients will refuse it", file, expires);
    else if (info->not_before > now)
        tine_log(TINE_LOG_WARN, "TLS: the certificate of %s is not valid yet: clients will refuse it", file);
}

/* The ex_data slot of a default SSL_CTX holding its set (-1: not made yet). */
static int set_slot = -1;

static void set_free(cert_set_t *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        if (i > 0) /* the default context is the one being freed */
            SSL_CTX_free(set->certs[i].ctx);
        for (size_t k = 0; k < set->certs[i].nnames; k++)
            free(set->certs[i].names[k]);
        free(set->certs[i].names);
    }
    free(set->certs);
    free(set);
}

/* OpenSSL's free callback of set_slot: the set goes with its default context. */
static void on_ctx_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    set_free(ptr);
}

/* Adds a lower-case copy of the len bytes at name to c's names. */
static void add_name(tls_cert_t *c, const char *name, size_t len)
{
    if (len == 0 || memchr(name, '\0', len) != NULL)
        return;
    char *n = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        n[i] = (char)tolower((unsigned char)name[i]);
    n[len] = '\0';
    c->names = xrealloc(c->names, (c->nnames + 1) * sizeof(*c->names));
    c->names[c->nnames++] = n;
}

/* The host names of c's certificate: its subjectAltName DNS entries, or its
 * subject's CN when it has no subjectAltName. */
static void host_names(tls_cert_t *c)
{
    X509 *x = SSL_CTX_get0_certificate(c->ctx);
    if (x == NULL)
        return;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
            if (g->type == GEN_DNS)
                add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(names);
        return;
    }
    X509_NAME *subject = X509_get_subject_name(x);
    int at = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    const ASN1_STRING *cn = at >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)) : NULL;
    if (cn != NULL)
        add_name(c, (const char *)ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
}

/* Whether `host` is `pattern`: equal without case, or for "*.rest" one
 * label (not empty) then ".rest". */
static bool name_matches(const char *pattern, const char *host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot != NULL && dot != host && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

/* The certificate of set for the SNI name `host`: the first naming it
 * exactly, else the first whose wildcard covers it, else the default (0). */
static size_t pick_certificate(const cert_set_t *set, const char *host)
{
    if (host == NULL || host[0] == '\0')
        return 0;
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < set->n; i++)
            for (size_t k = 0; k < set->certs[i].nnames; k++)
                if ((set->certs[i].names[k][0] == '*') == (wild == 1) && name_matches(set->certs[i].names[k], host))
                    return i;
    return 0;
}

/* The SNI callback of a default context: the handshake moves to the
 * certificate its name picks (its own ALPN is the same). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const cert_set_t *set = arg;
    size_t i = pick_certificate(set, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    if (i > 0 && SSL_set_SSL_CTX(ssl, set->certs[i].ctx) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* Builds the whole set from the files; returns its default context (which
 * owns the set), or NULL with a message naming the file at fault. */
static SSL_CTX *make_set(const gw_tls_t *tls, char *err, size_t errlen)
{
    if (set_slot < 0)
        set_slot = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, on_ctx_freed);
    cert_set_t *set = xcalloc(1, sizeof *set);
    set->certs = xcalloc(tls->ncerts, sizeof *set->certs);
    for (size_t i = 0; i < tls->ncerts; i++) {
        tls_cert_t *c = &set->certs[i];
        c->ctx = make_ctx(tls, i, &c->info, err, errlen);
        if (c->ctx == NULL) {
            SSL_CTX_free(set->certs[0].ctx);
            set->certs[0].ctx = NULL;
            set_free(set);
            return NULL;
        }
        set->n++;
        host_names(c);
    }
    SSL_CTX *def = set->certs[0].ctx;
    if (set_slot < 0 || SSL_CTX_set_ex_data(def, set_slot, set) != 1) {
        char why[256];
        tine_fail(err, errlen, "cannot make a TLS context: %s", ssl_reason(why, sizeof why, "OpenSSL failed"));
        SSL_CTX_free(def);
        set->certs[0].ctx = NULL;
        set_free(set);
        return NULL;
    }
    if (set->n > 1) {
        SSL_CTX_set_tlsext_servername_callback(def, on_servername);
        SSL_CTX_set_tlsext_servername_arg(def, set);
    }
    return def;
}

/* Takes the set of ctx as the one new connections get. */
static void take_set(gw_tls_t *tls, SSL_CTX *ctx)
{
    SSL_CTX_free(tls->ctx); /* connections hold their own references */
    tls->ctx = ctx;
    tls->set = SSL_CTX_get_ex_data(ctx, set_slot);
    tls->info = tls->set->certs[0].info;
    tls->loaded_ms = tine_now_unix_ms();
}

/* Logs every certificate of the set now serving. */
static void log_set(const gw_tls_t *tls, const char *what)
{
    for (size_t i = 0; i < tls->set->n; i++)
        log_certificate(tls->cert_files[i], &tls->set->certs[i].info, what);
}

/* `path` made absolute against the current directory, so that a reload
 * finds the same file; symbolic links stay as they are (a reload must follow
 * a link that now points to a renewed certificate). */
static char *absolute(const char *path)
{
    char cwd[4096];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return xstrdup(path);
    return xasprintf("%s/%s", cwd, path);
}

/* Splits a newline-separated list of paths, each made absolute. */
static size_t split_paths(const char *list, char ***out)
{
    size_t n = 0;
    *out = NULL;
    for (const char *p = list; p != NULL;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *one = xstrndup(p, len);
        *out = xrealloc(*out, (n + 1) * sizeof(**out));
        (*out)[n++] = absolute(one);
        free(one);
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

gw_tls_t *gw_tls_new(const char *cert_file, const char *key_file, bool http2, char *err, size_t errlen)
{
    gw_tls_t *tls = xcalloc(1, sizeof *tls);
    tls->ncerts = split_paths(cert_file, &tls->cert_files);
    char **keys = NULL;
    size_t nkeys = split_paths(key_file, &keys);
    tls->key_files = keys;
    tls->cert_file = tls->cert_files[0];
    tls->http2 = http2;
    if (nkeys != tls->ncerts) {
        tine_fail(err, errlen, "--tls-cert given %zu times but --tls-key %zu: give them in pairs, each key after its "
                               "certificate", tls->ncerts, nkeys);
        for (size_t i = 0; i < nkeys; i++)
            free(keys[i]);
        free(keys);
        tls->key_files = NULL;
        gw_tls_free(tls);
        return NULL;
    }
    SSL_CTX *ctx = make_set(tls, err, errlen);
    if (ctx == NULL) {
        gw_tls_free(tls);
        return NULL;
    }
    take_set(tls, ctx);
    log_set(tls, "serving the certificate of");
    return tls;
}

int gw_tls_reload(gw_tls_t *tls)
{
    char err[512];
    SSL_CTX *ctx = make_set(tls, err, sizeof err);
    if (ctx == NULL) {
        tls->reload_failures++;
        snprintf(tls->reload_error, sizeof tls->reload_error, "%s", err);
        tine_log(TINE_LOG_ERROR, "TLS: reload failed, still serving the previous certificate%s (serial %s%s): %s",
                 tls->ncerts > 1 ? "s" : "", tls->info.serial, tls->ncerts > 1 ? " and the others" : "", err);
        return TINE_EINVAL;
    }
    take_set(tls, ctx);
    tls->reloads++;
    tls->reload_error[0] = '\0';
    log_set(tls, "reloaded; new connections get the certificate of");
    return 0;
}

void gw_tls_free(gw_tls_t *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    for (size_t i = 0; i < tls->ncerts; i++) {
        free(tls->cert_files[i]);
        free(tls->key_files ? tls->key_files[i] : NULL);
    }
    free(tls->cert_files);
    free(tls->key_files);
    free(tls);
}

void gw__tls_conn_init(gw_conn_t *c, gw_tls_t *tls)
{
    SSL_CTX_up_ref(tls->ctx);
    c->ssl_ctx = tls->ctx;
}

json_t *gw__tls_report(const gw_tls_t *tls)
{
    if (tls == NULL)
        return json_pack("{s:b}", "enabled", 0);
    char not_before[32], not_after[32], loaded[32];
    tine_fmt_rfc3339_ms((uint64_t)tls->info.not_before * 1000u, not_before);
    tine_fmt_rfc3339_ms((uint64_t)tls->info.not_after * 1000u, not_after);
    tine_fmt_rfc3339_ms(tls->loaded_ms, loaded);
    json_t *alpn = json_array();
    for (const h2o_iovec_t *p = tls->http2 ? alpn_h2 : alpn_h1; p->len; p++)
        json_array_append_new(alpn, json_stringn(p->base, p->len));
    json_t *o = json_pack("{s:b, s:o, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:I, s:I}", "enabled",
                          1, "alpn", alpn, "min_version", "TLSv1.2", "certificate", "file", tls->cert_file, "key_file",
                          tls->key_files[0], "subject", tls->info.subject, "issuer", tls->info.issuer, "names",
                          tls->info.names, "serial", tls->info.serial, "sha256", tls->info.sha256, "not_before",
                          not_before, "not_after", not_after, "loaded_at", loaded, "reloads", (json_int_t)tls->reloads,
                          "failed_reloads", (json_int_t)tls->reload_failures);
    if (tls->reload_error[0])
        json_object_set_new(o, "reload_error", json_string(tls->reload_error));
    /* Every certificate, the default first, with the names SNI picks it by. */
    json_t *all = json_array();
    for (size_t i = 0; i < tls->set->n; i++) {
        const tls_cert_t *c = &tls->set->certs[i];
        json_t *names = json_array();
        for (size_t k = 0; k < c->nnames; k++)
            json_array_append_new(names, json_string(c->names[k]));
        char until[32];
        tine_fmt_rfc3339_ms((uint64_t)c->info.not_after * 1000u, until);
        json_array_append_new(all, json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "file", tls->cert_files[i], "key_file",
                                             tls->key_files[i], "sni_names", names, "serial", c->info.serial, "sha256",
                                             c->info.sha256, "not_after", until));
    }
    json_object_set_new(o, "certificates", all);
    return o;
}

void gw__tls_metrics(const gw_tls_t *tls, tine_buf_t *out)
{
    if (tls == NULL)
        return;
    int64_t soonest = tls->info.not_after;
    for (size_t i = 1; i < tls->set->n; i++)
        if (tls->set->certs[i].info.not_after < soonest)
            soonest = tls->set->certs[i].info.not_after;
    tine_buf_appendf(out,
                     "# HELP tine_tls_certificate_expiry_timestamp_seconds When the served TLS certificate that "
                     "expires first expires (unix time).\n"
                     "# TYPE tine_tls_certificate_expiry_timestamp_seconds gauge\n"
                     "tine_tls_certificate_expiry_timestamp_seconds %" PRId64 "\n"
                     "# HELP tine_tls_reloads_total Certificate reloads (SIGHUP) by outcome.\n"
                     "# TYPE tine_tls_reloads_total counter\n"
                     "tine_tls_reloads_total{result=\"ok\"} %" PRIu64 "\n"
                     "tine_tls_reloads_total{result=\"failed\"} %" PRIu64 "\n",
                     soonest, tls->reloads, tls->reload_failures);
}
