/* Configuration of tined. Every option has one name used three ways: a flag
 * (--state-dir), an environment variable (TINE_STATE_DIR) and a config-file
 * key (state-dir = ...). Flags win over the environment, which wins over the
 * file. */
#include "config.h"
#include "tine_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name; /* flag and file key */
    const char *env;
    int takes_value;
    const char *help;
} option_t;

static const option_t options[] = {
    {"listen", "TINE_LISTEN", 1, "address to serve HTTP on (default 127.0.0.1:8080)"},
    {"state-dir", "TINE_STATE_DIR", 1, "where the node keeps its token, redis data and bundles\n"
                                       "                         (default $XDG_STATE_HOME/tine or ~/.local/state/tine)"},
    {"redis", "TINE_REDIS_URL", 1, "redis://HOST:PORT or unix:///path (default: start a private redis-server)"},
    {"admin-token", "TINE_ADMIN_TOKEN", 1, "bearer token for the admin API (default: generated into the state dir)"},
    {"no-auth", "TINE_NO_AUTH", 0, "serve the admin API without a token (only on a loopback address)"},
    {"max-bundle-size", "TINE_MAX_BUNDLE_SIZE", 1, "largest deploy bundle accepted, e.g. 16MiB (default 16MiB)"},
    {"sdk-dir", "TINE_SDK_DIR", 1, "directory holding the Lua SDK tine.lua"},
    {"node-id", "TINE_NODE_ID", 1, "this node's name in a cluster (default HOSTNAME:PORT)"},
    {"isolation", "TINE_ISOLATION", 1, "on (default) or off: sandbox isolation beyond the Lua layer\n"
                                       "                         (rlimits, seccomp, namespaces, uid, root dir); off: benchmarks"},
    {"sandbox-uid", "TINE_SANDBOX_UID", 1, "uid and gid of Lua sandboxes when tined runs as root (default 65534)"},
    {"config", "TINE_CONFIG", 1, "config file of 'key = value' lines with the names above"},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: tined [OPTIONS]\n\n"
               "The tine node: serves deployed apps over HTTP and runs their functions in sandboxes.\n\n"
               "Options (each also as an environment variable and a config-file key):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s", options[i].name, options[i].takes_value ? " V" : "");
        fprintf(f, "  %-22s %s\n  %-22s [env %s]\n", flag, options[i].help, "", options[i].env);
    }
    fprintf(f, "  %-22s %s\n  %-22s %s\n", "--help", "show this help", "--version", "show the version");
}

/* Parses "16MiB", "512KiB", "1GiB", "1000000" into bytes. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    unsigned long long mul = 1;
    if (*end == '\0' || strcmp(end, "B") == 0)
        mul = 1;
    else if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KB") == 0)
        mul = 1024;
    else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0 || strcmp(end, "MB") == 0)
        mul = 1024 * 1024;
    else if (strcmp(end, "GiB") == 0 || strcmp(end, "G") == 0 || strcmp(end, "GB") == 0)
        mul = 1024ull * 1024 * 1024;
    else
        return -1;
    *out = (size_t)(v * mul);
    return *out > 0 ? 0 : -1;
}

static char **slot(tined_config_t *cfg, const char *name, char **no_auth_str, char **max_bundle_str)
{
    if (strcmp(name, "listen") == 0)
        return &cfg->listen;
    if (strcmp(name, "state-dir") == 0)
        return &cfg->state_dir;
    if (strcmp(name, "redis") == 0)
        return &cfg->redis_url;
    if (strcmp(name, "admin-token") == 0)
        return &cfg->admin_token;
    if (strcmp(name, "no-auth") == 0)
        return no_auth_str;
    if (strcmp(name, "max-bundle-size") == 0)
        return max_bundle_str;
    if (strcmp(name, "sdk-dir") == 0)
        return &cfg->sdk_dir;
    if (strcmp(name, "node-id") == 0)
        return &cfg->node_id;
    if (strcmp(name, "config") == 0)
        return &cfg->config_file;
    if (strcmp(name, "isolation") == 0)
        return &cfg->isolation_text;
    if (strcmp(name, "sandbox-uid") == 0)
        return &cfg->sandbox_uid_text;
    return NULL;
}

static const option_t *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Reads the config file: values only fill options still unset. */
static int load_file(tined_config_t *cfg, const char *path, char **no_auth_str, char **max_bundle_str)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "tined: config file %s: cannot open\n", path);
        return -1;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char *key = s;
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
        }
        key = trim(key);
        const option_t *o = find_option(key, strlen(key));
        if (o == NULL || strcmp(o->name, "config") == 0) {
            fprintf(stderr, "tined: %s:%d: unknown key '%s'\n", path, lineno, key);
            fclose(f);
            return -1;
        }
        if (o->takes_value && (value == NULL || *value == '\0')) {
            fprintf(stderr, "tined: %s:%d: %s: expected 'key = value'\n", path, lineno, key);
            fclose(f);
            return -1;
        }
        char **dst = slot(cfg, o->name, no_auth_str, max_bundle_str);
        if (*dst == NULL)
            *dst = xstrdup(value ? value : "true");
    }
    fclose(f);
    return 0;
}

bool tined_listen_is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 ||
           strncmp(listen, "localhost:", 10) == 0;
}

static bool truthy(const char *s)
{
    return s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0);
}

int tined_config_load(tined_config_t *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    char *no_auth = NULL, *max_bundle = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("tined 0.1.0\n");
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "tined: unexpected argument '%s' (see tined --help)\n", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        const option_t *o = find_option(name, eq ? (size_t)(eq - name) : strlen(name));
        if (o == NULL) {
            fprintf(stderr, "tined: unknown option '%s' (see tined --help)\n", a);
            return -1;
        }
        const char *value = "true";
        if (o->takes_value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                fprintf(stderr, "tined: --%s needs a value\n", o->name);
                return -1;
            }
        }
        char **dst = slot(cfg, o->name, &no_auth, &max_bundle);
        free(*dst);
        *dst = xstrdup(value);
    }
    for (size_t i = 0; i < NOPTIONS; i++) {
        char **dst = slot(cfg, options[i].name, &no_auth, &max_bundle);
        const char *env = getenv(options[i].env);
        if (*dst == NULL && env && *env)
            *dst = xstrdup(env);
    }
    int rc = 0;
    if (cfg->config_file && load_file(cfg, cfg->config_file, &no_auth, &max_bundle) != 0)
        rc = -1;
    if (cfg->listen == NULL)
        cfg->listen = xstrdup("127.0.0.1:8080");
    if (cfg->state_dir == NULL) {
        const char *xdg = getenv("XDG_STATE_HOME");
        const char *home = getenv("HOME");
        cfg->state_dir = xdg && *xdg ? xasprintf("%s/tine", xdg) : xasprintf("%s/.local/state/tine", home ? home : ".");
    }
    if (cfg->sdk_dir == NULL)
        cfg->sdk_dir = xstrdup(TINE_SOURCE_DIR "/sdk/lua");
    cfg->no_auth = truthy(no_auth);
    cfg->max_bundle = 16 * 1024 * 1024;
    if (max_bundle && parse_size(max_bundle, &cfg->max_bundle) != 0) {
        fprintf(stderr, "tined: --max-bundle-size %s: expected a size such as 16MiB\n", max_bundle);
        rc = -1;
    }
    cfg->isolation = cfg->isolation_text == NULL || strcmp(cfg->isolation_text, "on") == 0;
    if (cfg->isolation_text && !cfg->isolation && strcmp(cfg->isolation_text, "off") != 0) {
        fprintf(stderr, "tined: --isolation %s: expected on or off\n", cfg->isolation_text);
        rc = -1;
    }
    cfg->sandbox_uid = 65534;
    if (cfg->sandbox_uid_text) {
        char *end;
        const char *t = cfg->sandbox_uid_text;
        unsigned long v = strtoul(t, &end, 10);
        if (end == t || *end != '\0' || t[0] == '-' || v == 0 || v >= 4294967295ul) {
            fprintf(stderr, "tined: --sandbox-uid %s: expected a uid from 1 to 4294967294\n", t);
            rc = -1;
        } else {
            cfg->sandbox_uid = (unsigned)v;
        }
    }
    if (cfg->no_auth && !tined_listen_is_loopback(cfg->listen)) {
        fprintf(stderr, "tined: --no-auth is only allowed on a loopback address, not %s\n", cfg->listen);
        rc = -1;
    }
    if (cfg->node_id == NULL) {
        char host[256] = "node";
        gethostname(host, sizeof(host) - 1);
        const char *port = strrchr(cfg->listen, ':');
        cfg->node_id = xasprintf("%s:%s", host, port ? port + 1 : "0");
    }
    free(no_auth);
    free(max_bundle);
    return rc;
}

void tined_config_dispose(tined_config_t *cfg)
{
    free(cfg->listen);
    free(cfg->state_dir);
    free(cfg->redis_url);
    free(cfg->admin_token);
    free(cfg->sdk_dir);
    free(cfg->node_id);
    free(cfg->config_file);
    free(cfg->isolation_text);
    free(cfg->sandbox_uid_text);
}
