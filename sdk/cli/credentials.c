/* The `tine` command's stored credentials: named contexts of a node URL and
 * a key (or admin token), and which one is current, in
 * $XDG_CONFIG_HOME/tine/credentials (else ~/.config/tine/credentials), a
 * JSON file of mode 0600 in a 0700 directory:
 *
 *   {"current":"prod","contexts":{"prod":{"url":"https://...","key":"ID:SECRET"}}}
 *
 * Written whole to a temporary file renamed into place, so a reader never
 * sees half a file. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tine_common.h"

char *cli_credentials_path(void)
{
    char *dir = cli_config_dir(getenv("XDG_CONFIG_HOME"), getenv("HOME"));
    char *path = xasprintf("%s/credentials", dir);
    free(dir);
    return path;
}

void cli_credentials_dispose(cli_credentials_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].name);
        free(c->v[i].url);
        free(c->v[i].key);
    }
    free(c->v);
    free(c->current);
    memset(c, 0, sizeof *c);
}

const cli_context_t *cli_credentials_find(const cli_credentials_t *c, const char *name)
{
    for (size_t i = 0; name && i < c->n; i++)
        if (strcmp(c->v[i].name, name) == 0)
            return &c->v[i];
    return NULL;
}

void cli_credentials_put(cli_credentials_t *c, const char *name, const char *url, const char *key)
{
    cli_context_t *x = (cli_context_t *)cli_credentials_find(c, name);
    if (x == NULL) {
        c->v = xrealloc(c->v, (c->n + 1) * sizeof *c->v);
        x = &c->v[c->n++];
        x->name = xstrdup(name);
    } else {
        free(x->url);
        free(x->key);
    }
    x->url = xstrdup(url);
    x->key = xstrdup(key);
}

int cli_credentials_load(const char *path, cli_credentials_t *out, bool *loose, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (loose)
        *loose = false;
    char *data = NULL;
    size_t len = 0;
    int rc = tine_read_file(path, &data, &len);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return 0;
    if (rc != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
        return -1;
    }
    struct stat st;
    if (loose && stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        *loose = true;
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    free(data);
    json_t *contexts = json_object_get(j, "contexts");
    if (!json_is_object(j) || (contexts && !json_is_object(contexts))) {
        snprintf(err, errlen, "%s:%d:%d: expected {\"current\": NAME, \"contexts\": {NAME: {\"url\", \"key\"}}}%s%s",
                 path, j ? 1 : jerr.line, j ? 1 : jerr.column, j ? "" : ": ", j ? "" : jerr.text);
        json_decref(j);
        return -1;
    }
    const char *name;
    json_t *ctx;
    json_object_foreach(contexts, name, ctx)
    {
        const char *url = json_string_value(json_object_get(ctx, "url"));
        const char *key = json_string_value(json_object_get(ctx, "key"));
        if (url == NULL || key == NULL) {
            snprintf(err, errlen, "%s: contexts.%s: expected {\"url\": URL, \"key\": KEY}", path, name);
            json_decref(j);
            cli_credentials_dispose(out);
            return -1;
        }
        cli_credentials_put(out, name, url, key);
    }
    const char *current = json_string_value(json_object_get(j, "current"));
    out->current = current ? xstrdup(current) : NULL;
    json_decref(j);
    return 0;
}

int cli_credentials_save(const cli_credentials_t *c, const char *path, char *err, size_t errlen)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    int rc = tine_mkdirs(dir, 0700);
    free(dir);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(-rc));
        return -1;
    }
    json_t *contexts = json_object();
    for (size_t i = 0; i < c->n; i++)
        json_object_set_new(contexts, c->v[i].name, json_pack("{s:s, s:s}", "url", c->v[i].url, "key", c->v[i].key));
    json_t *j =
        json_pack("{s:o, s:o}", "current", c->current ? json_string(c->current) : json_null(), "contexts", contexts);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(j);
    char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
    rc = tine_write_file(tmp, text, strlen(text), 0600);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
    }
    free(tmp);
    free(text);
    return rc == 0 ? 0 : -1;
}
