/* tined's configuration: flags, then TINE_* environment variables, then an
 * optional config file, then defaults — the same names everywhere. */
#ifndef TINED_CONFIG_H
#define TINED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *listen;
    char *state_dir;
    char *redis_url;   /* NULL: start a private redis-server */
    char *admin_token; /* NULL: generated into the state dir */
    bool no_auth;
    size_t max_bundle;
    char *sdk_dir;
    char *node_id;
    char *config_file;
    bool isolation;          /* --isolation on|off: the process layers (default on) */
    unsigned sandbox_uid;    /* --sandbox-uid: uid/gid of Lua sandboxes when root */
    char *isolation_text;    /* as given, before checking */
    char *sandbox_uid_text;
} tined_config_t;

/* Fills cfg from argv, the environment and the config file. Returns 0, 1 when
 * --help or --version was printed (exit 0), or -1 with a message printed
 * (exit 2). */
int tined_config_load(tined_config_t *cfg, int argc, char **argv);
void tined_config_dispose(tined_config_t *cfg);

/* True when the listen address is on loopback (127.0.0.0/8, [::1], localhost). */
bool tined_listen_is_loopback(const char *listen);

#endif
