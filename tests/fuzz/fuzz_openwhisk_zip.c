/* libFuzzer driver: the zips (and their entry paths) an OpenWhisk action's
 * code brings (gateway/openwhisk_model.c). Every input is unpacked into a
 * fresh directory below a scratch root; afterwards nothing may exist in the
 * root but that directory (no entry escaped it), and a path the check
 * accepts may never be absolute or hold a ".." segment. */
#define _GNU_SOURCE
#include "openwhisk.h"
#include "tine_common.h"

#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[64];

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *ftw)
{
    (void)st, (void)f, (void)ftw;
    return remove(p);
}

/* Whether root holds anything but "in". */
static int escaped(void)
{
    DIR *d = opendir(root);
    struct dirent *e;
    int bad = 0;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "in"))
            bad = 1;
    if (d)
        closedir(d);
    return bad;
}

static void remove_root(void)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (root[0] == '\0') {
        snprintf(root, sizeof root, "/tmp/tine-fuzz-ow-XXXXXX");
        if (mkdtemp(root) == NULL)
            abort();
        atexit(remove_root);
    }
    /* As a path: accepted ones are relative and never climb. */
    char *path = malloc(size + 1);
    if (path == NULL)
        return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    char err[256];
    if (strlen(path) == size && gw_ow_zip_path_check(path, err, sizeof err) == 0) {
        if (path[0] == '/' || strcmp(path, "..") == 0 || strncmp(path, "../", 3) == 0 || strstr(path, "/../") ||
            (size >= 3 && strcmp(path + size - 3, "/..") == 0))
            abort();
    }
    free(path);
    /* As a zip: written below root/in only. */
    char *dir = xasprintf("%s/in", root);
    if (tine_mkdirs(dir, 0755) != 0)
        abort();
    gw_ow_unzip(data, size, dir, 1 << 20, err, sizeof err);
    if (escaped())
        abort();
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return 0;
}
