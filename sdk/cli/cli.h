/* The `tine` command: declarations shared by its files. main.c holds the
 * command table and dispatch; options.c global flags, per-command flag
 * parsing and URL/token resolution; render.c turns admin API answers into
 * tables and lines; cmd_*.c the commands. */
#ifndef TINE_CLI_H
#define TINE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tine.h"

/* Exit codes. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"
#define CLI_DEFAULT_LISTEN "127.0.0.1:8080"

/* Global flags as given on the command line (NULL/false when absent). They
 * are accepted before or after the command name. */
typedef struct {
    const char *url;
    const char *token;
    const char *state_dir;
    const char *context; /* --context NAME: a stored context other than the current one */
    bool no_context;     /* set by commands that never use stored contexts (up) */
    const char *cacert;
    bool json;
    bool help;
    bool version;
} cli_global_t;

typedef struct cli_command cli_command_t;

/* What every command handler gets. */
typedef struct {
    cli_global_t g;
    const cli_command_t *cmd; /* the command being run */
    FILE *out;                /* results */
    FILE *err;                /* errors, progress */
} cli_ctx_t;

struct cli_command {
    const char *name;
    const char *summary; /* one line, no final period */
    const char *usage;   /* after "tine ": "deploy [DIR]" */
    const char *help;    /* flags and details, may be NULL */
    /* argv[0] is the command name; global flags are already removed. */
    int (*run)(cli_ctx_t *ctx, int argc, char **argv);
};

/* Connection settings after applying flags, environment and defaults.
 * Strings are owned (free with cli_conn_dispose). */
typedef struct {
    char *url;
    char *token;      /* NULL: send no Authorization header */
    char *state_dir;
    char *token_file; /* <state_dir>/admin.token */
    char *context;    /* the stored context the token (or url) came from, or NULL */
    char *cacert;     /* CA file verifying an https:// node; NULL: the system's store */
} cli_conn_t;

/* A stored context: a node's URL and the key (or token) to use there. */
typedef struct {
    char *name;
    char *url;
    char *key;
} cli_context_t;

/* The credentials file: its contexts and the current one's name. */
typedef struct {
    char *current; /* may be NULL */
    cli_context_t *v;
    size_t n;
} cli_credentials_t;

/* ------------------------------------------------------------ options.c */

/* Splits argv (argv[0] is the program) into global flags and the rest (the
 * command and its arguments, in order; "--" and what follows are kept as
 * is). *rest is a new array (free it; its strings point into argv). Returns
 * CLI_OK, or CLI_USAGE with a message in err (a global flag lacking its
 * value). */
int cli_split_global(int argc, char **argv, cli_global_t *g, char ***rest, int *nrest, char *err, size_t errlen);

/* A command's flag: "--name" (or "-c" when shortname is set) either taking a
 * value (stored in *value) or not (sets *set). */
typedef struct {
    const char *name;
    char shortname;
    const char **value;
    bool *set;
} cli_flag_t;

/* Parses a command's arguments (argv[0] is the command name) against its
 * flags; positionals go to pos (at most maxpos, at least minpos). "-" is a
 * positional; after "--" everything is. Returns CLI_OK or CLI_USAGE with a
 * message in err. */
int cli_parse_command(int argc, char **argv, const cli_flag_t *flags, size_t nflags, const char **pos, int minpos,
                      int maxpos, int *npos, char *err, size_t errlen);

/* The default state dir: ${XDG_STATE_HOME:-$HOME/.local/state}/tine, from
 * the given values (either may be NULL; a relative XDG_STATE_HOME is
 * ignored as the XDG spec asks). Returns a new string. */
char *cli_default_state_dir(const char *xdg_state_home, const char *home);

/* Resolves url (--url, TINE_URL, the context's, default), state dir
 * (--state-dir, TINE_STATE_DIR, default) and token (--token, TINE_TOKEN,
 * the context's key when the url is the context's, else the first line of
 * <state_dir>/admin.token; a missing file means no token). The context is
 * --context, else TINE_CONTEXT, else the current one of the credentials
 * file (cli_credentials_path). The CA file is --cacert, else TINE_CACERT,
 * else none. An unreadable token or credentials file, or
 * one readable by others, gets a warning on `err`. */
void cli_resolve_conn(const cli_global_t *g, cli_conn_t *out, FILE *err);
void cli_conn_dispose(cli_conn_t *c);

/* ------------------------------------------------------- credentials.c */

/* The config dir: ${XDG_CONFIG_HOME:-$HOME/.config}/tine (a relative
 * XDG_CONFIG_HOME is ignored). Returns a new string. */
char *cli_config_dir(const char *xdg_config_home, const char *home);

/* <config dir>/credentials, from the environment. Returns a new string. */
char *cli_credentials_path(void);

/* Reads the credentials file at path into *out (empty when it does not
 * exist); *loose (may be NULL) tells whether others may read it. Returns 0,
 * or -1 with a message naming the file and what is wrong. */
int cli_credentials_load(const char *path, cli_credentials_t *out, bool *loose, char *err, size_t errlen);

/* Writes it whole (0600, its directory 0700 when created), atomically.
 * Returns 0 or -1 with a message. */
int cli_credentials_save(const cli_credentials_t *c, const char *path, char *err, size_t errlen);
void cli_credentials_dispose(cli_credentials_t *c);

/* The context `name` (borrowed), or NULL. */
const cli_context_t *cli_credentials_find(const cli_credentials_t *c, const char *name);

/* Adds or replaces context `name` (strings copied). */
void cli_credentials_put(cli_credentials_t *c, const char *name, const char *url, const char *key);

/* Reads a token file: first line without surrounding white space. Returns a
 * new string, NULL when the file is missing or holds no token (then *errnum
 * is 0), or NULL with *errnum set to the errno of a failed read. */
char *cli_read_token_file(const char *path, int *errnum);

/* Derives the URL a client uses to reach a node listening on `listen`
 * ("127.0.0.1:8080", "0.0.0.0:9000", "[::]:8080", ":8080", "8080",
 * "localhost:8080"): wildcard addresses become loopback. Returns 0, or -1
 * when listen is not host:port. */
int cli_listen_to_url(const char *listen, char *out, size_t outlen);

/* ------------------------------------------------------------- common */

/* Prints "tine: <message>" on ctx->err and returns CLI_FAIL. */
int cli_fail(cli_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a usage error (message, usage line, hint) and returns CLI_USAGE. */
int cli_usage_error(cli_ctx_t *ctx, const char *msg);

/* Prints a libtine failure, with a hint for 401, and returns CLI_FAIL. */
int cli_client_fail(cli_ctx_t *ctx, const tine_client_t *c, int rc, const cli_conn_t *conn);

/* Resolves the connection and creates a client. On failure prints why and
 * returns NULL. */
tine_client_t *cli_connect(cli_ctx_t *ctx, cli_conn_t *conn);

/* Prints JSON text as-is, with a final newline when it lacks one. */
void cli_print_json_text(FILE *out, const char *text);

/* Turns an admin API answer into a table or a line (render.c). Returns 0, or
 * -1 with a message in err. */
typedef int (*cli_render_fn)(const char *json, FILE *out, char *err, size_t errlen);

/* Reads one thing of an app (or of the node when app is NULL). */
typedef int (*cli_fetch_fn)(tine_client_t *c, const char *app, char **answer);

/* Prints an answer with its renderer, or as-is with --json. Returns CLI_OK
 * or CLI_FAIL. (cmd_admin.c) */
int cli_print_answer(cli_ctx_t *ctx, const char *answer, cli_render_fn render);

/* Connects, fetches and prints: the shared body of the read-only commands.
 * Returns CLI_OK or CLI_FAIL. (cmd_admin.c) */
int cli_fetch_and_print(cli_ctx_t *ctx, const char *app, cli_fetch_fn fetch, cli_render_fn render);

/* ------------------------------------------------------------- render.c */

/* A table of text cells printed with aligned columns (two spaces apart, the
 * last column unpadded) under a header row. */
typedef struct {
    size_t ncols;
    size_t nrows; /* including the header */
    size_t cap;
    char **cells; /* nrows * ncols owned strings */
} cli_table_t;

void cli_table_init(cli_table_t *t, size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (copied; NULL prints as "-"). */
void cli_table_add(cli_table_t *t, const char *const *cells);
void cli_table_print(const cli_table_t *t, FILE *out);
void cli_table_dispose(cli_table_t *t);

/* Renderers of admin API answers (JSON text). Each returns 0, or -1 with a
 * message in err when the answer lacks what it needs. */
int cli_render_apps(const char *json, FILE *out, char *err, size_t errlen);
int cli_render_versions(const char *json, FILE *out, char *err, size_t errlen);
int cli_render_routes(const char *json, FILE *out, char *err, size_t errlen);
/* "deployed hello version 4" */
int cli_render_deploy(const char *json, FILE *out, char *err, size_t errlen);
/* "hello: live version is now 2" */
int cli_render_rollback(const char *json, FILE *out, char *err, size_t errlen);
/* "deleted hello: 3 versions, 12 tine.kv keys, 0 dead letters, 40
 * activation records (usage kept)" */
int cli_render_delete(const char *json, FILE *out, char *err, size_t errlen);
/* "hello: pruned versions 1, 2; kept 3, 4 (live 4); 5 files no longer used" */
int cli_render_prune(const char *json, FILE *out, char *err, size_t errlen);
/* A table of the node's sandboxes (GET /_tine/v1/sandboxes): APP VERSION
 * FUNCTION PID STATE AGE IDLE INVOCATIONS COLD_MS, then "N of at most M
 * sandboxes on this node". */
int cli_render_ps(const char *json, FILE *out, char *err, size_t errlen);
/* A table of the cluster's nodes (GET /_tine/v1/nodes): NODE ADDRESS
 * VERSION UPTIME SANDBOXES CALLS HEARTBEAT STATE, a gone node's state as
 * "gone (drained 3m04s ago)". */
int cli_render_nodes(const char *json, FILE *out, char *err, size_t errlen);
/* Quotas (GET /namespaces/{ns}/quota, or GET /quotas): per namespace a
 * line "namespace NS, N nodes reporting; set TIME by KEY", then QUOTA LIMIT
 * USED RESETS (spend with "$"); "no namespace has a quota" for an empty
 * list. */
int cli_render_quota(const char *json, FILE *out, char *err, size_t errlen);
/* "hello.hi: 2 warm sandboxes on this node for version 3 (until the next deploy)" */
int cli_render_scale(const char *json, FILE *out, char *err, size_t errlen);
/* One "METHOD <base_url><path>" line per route of a routes answer. */
int cli_render_public_urls(const char *json, const char *base_url, FILE *out, char *err, size_t errlen);

/* A one-line description of a trigger object of a routes answer:
 * "schedule 0 3 * * *", "log file:/x (filter "ERROR")",
 * "event type=container.die source=docker*". Returns a new string. */
struct json_t;
char *cli_describe_trigger(struct json_t *trigger);
/* Prints the "tags" and "split" of a versions answer, when there are any. */
void cli_render_release(struct json_t *j, FILE *out);

/* Prints an invoke answer: the function's body (or, with json, the whole
 * answer) on out; with verbose the status and invocation id on err. Returns
 * CLI_FAIL (after printing the function's error on err) when the function's
 * status is >= 500 or the answer is malformed, else CLI_OK. `app` and `fn`
 * name the function in messages; `tty` adds a final newline to a body that
 * lacks one. */
int cli_render_invoke(const char *json, const char *app, const char *fn, bool as_json, bool verbose, bool tty,
                      FILE *out, FILE *err);

/* render_billing.c: a usage answer as a table (with a total row) or CSV;
 * an activations list as a table; one activation record as "key: value"
 * lines with its logs; one NDJSON log line as "TIME FN vN LEVEL: MSG"
 * (-1 when the line is not a JSON object). */
int cli_render_usage(const char *json, bool csv, FILE *out, char *err, size_t errlen);
int cli_render_activations(const char *json, FILE *out, char *err, size_t errlen);
int cli_render_activation(const char *json, FILE *out, char *err, size_t errlen);
/* A call tree (GET /traces/{id}) as an indented list, one call a line. */
int cli_render_trace(const char *json, FILE *out, char *err, size_t errlen);
int cli_render_log_line(const char *line, FILE *out);

/* ------------------------------------------------------------ commands */

int cli_cmd_up(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_deploy(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_apps(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_versions(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_rollback(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_invoke(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_routes(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_promote(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_tag(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_split(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_rollout(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_ps(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_scale(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_evict(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_events(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_usage(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_activations(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_activation(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_trace(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_logs(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_doctor(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_delete(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_login(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_context(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_keys(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_namespaces(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_audit(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_quota(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_pack(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_secrets(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_test(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_dev(cli_ctx_t *ctx, int argc, char **argv);

/* An ephemeral node (ephemeral.c): a private redis-server on a unix socket
 * and a tined on a free loopback port without an admin token, in a fresh
 * temporary directory. */
typedef struct {
    char *dir;       /* the temporary directory (state dir, sockets, logs) */
    char *redis_url; /* unix://<dir>/redis.sock */
    char *log_path;  /* tined's output */
    char url[64];    /* http://127.0.0.1:PORT */
    int redis_pid, tined_pid;
} cli_node_t;

/* Starts one and waits until tined is ready (at most 15 s). Returns CLI_OK,
 * or CLI_FAIL after printing why (with the end of tined's output); nothing
 * is left running then. tined is the one next to tine, else $TINE_TINED,
 * else on PATH. From here on SIGINT, SIGTERM and SIGHUP only mark the
 * process interrupted (cli_node_interrupted): the command stops its work
 * and stops the node, so its directory is removed. */
int cli_node_start(cli_ctx_t *ctx, cli_node_t *n);

/* Whether a SIGINT, SIGTERM or SIGHUP came since a node was started. */
bool cli_node_interrupted(void);

/* Stops both processes and removes the directory. Accepts a node that
 * failed to start. */
void cli_node_stop(cli_node_t *n);

/* Reads one YAML document (or JSON) as a jansson value (yaml_json.c):
 * plain scalars as YAML 1.2's core schema reads them (null, booleans,
 * numbers), quoted ones as strings; every mapping gets its line as the
 * member CLI_YAML_LINE_KEY. NULL with "path:line:col: why" in err when it
 * is not valid YAML. */
#define CLI_YAML_LINE_KEY "\001line"
struct json_t *cli_yaml_load(const char *path, const char *data, size_t len, char *err, size_t errlen);

/* Reads all of stdin into a NUL-terminated buffer (*len bytes before the
 * NUL); returns NULL on a read error (errno set). (cmd_invoke.c) */
char *cli_read_stdin(size_t *len);
int cli_cmd_export(cli_ctx_t *ctx, int argc, char **argv);

/* Reads an artifact file and checks it as the node would (reg_bundle_read).
 * On success returns CLI_OK with the app name (*app) and the bytes (*tgz,
 * *len; free both); else prints "FILE: not a valid tine artifact: why" and
 * returns CLI_FAIL. (cmd_artifact.c) */
int cli_read_artifact(cli_ctx_t *ctx, const char *path, char **app, void **tgz, size_t *len);

/* cli_prepare_bundle, then every check the node makes (reg_bundle_read:
 * Lua syntax, exports); an error names the file as the user reaches it
 * ("app/src/x.lua:3: ..."). Returns CLI_OK with what cli_prepare_bundle
 * gives, or CLI_FAIL after printing why. (cmd_artifact.c) */
int cli_pack_checked(cli_ctx_t *ctx, const char *dir, char **app, void **tgz, size_t *len);

/* Sends one admin request (body: JSON text or NULL) and stores the answer;
 * non-2xx answers print the node's error (cli_client_fail). Returns CLI_OK
 * or CLI_FAIL. (cmd_keys.c) */
int cli_admin_call(cli_ctx_t *ctx, const char *method, const char *path, const char *body, char **answer);
int cli_cmd_nodes(cli_ctx_t *ctx, int argc, char **argv);
int cli_cmd_drain(cli_ctx_t *ctx, int argc, char **argv);

/* Reads and validates the manifest of dir and packs the bundle. On success
 * returns CLI_OK with the app name (*app, free it) and the tar.gz (*tgz,
 * *len, free it); else prints why and returns CLI_FAIL. */
int cli_prepare_bundle(cli_ctx_t *ctx, const char *dir, char **app, void **tgz, size_t *len);

/* With cli_send_bundle: when the node refuses the bundle (the files of an
 * older version, a concurrent deploy), deploy it again with
 * TINE_DEPLOY_FORCE: `tine up DIR` serves DIR's files whatever came before. */
#define CLI_DEPLOY_FORCE_IF_REFUSED 0x100u

/* Uploads a packed bundle (flags of tine_deploy_ex, and
 * CLI_DEPLOY_FORCE_IF_REFUSED) and prints the outcome ("deployed hello
 * version 4", "unchanged: hello version 4 is live", or the answer with
 * --json). Returns CLI_OK or CLI_FAIL. */
int cli_send_bundle(cli_ctx_t *ctx, tine_client_t *c, const cli_conn_t *conn, const char *app, const void *tgz,
                    size_t len, unsigned flags);

#endif
