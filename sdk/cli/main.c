/* `tine`: the command-line client of a tine node. This file holds the table
 * of commands and the dispatch; help text is generated from the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmd_help(cli_ctx_t *ctx, int argc, char **argv);

static const cli_command_t commands[] = {
    {"up", "start tined in the foreground and deploy the app in DIR",
     "up [DIR] [--listen ADDR] [--redis URL] [--no-auth]",
     "Runs tined (found next to tine, else on PATH; $TINE_TINED overrides),\n"
     "waits until it listens (it wrote <state-dir>/port) and answers GET\n"
     "/_tine/v1/health (at most 15 s), deploys DIR (default .) as 'tine\n"
     "deploy' would (the files of an older version become a new version),\n"
     "prints the app's public URLs and waits for tined. Ctrl-C / SIGTERM are\n"
     "forwarded to tined; tine exits with its status. If the deploy fails,\n"
     "tined is stopped and tine exits 1.\n"
     "\n"
     "  --listen ADDR     address tined listens on (else $TINE_LISTEN, else\n"
     "                    127.0.0.1:8080); tine talks to it there (0.0.0.0\n"
     "                    becomes 127.0.0.1). When it is taken, tine says so\n"
     "                    and exits 1\n"
     "  --state-dir DIR   tined's state dir (default as for the token lookup)\n"
     "  --redis URL       use this Redis instead of tined's private one\n"
     "  --no-auth         run tined without admin token (loopback only)\n",
     cli_cmd_up},
    {"deploy", "validate, pack and upload the app in DIR (or an artifact) as its next version",
     "deploy [DIR|FILE] [--force] [--stage]",
     "Reads DIR/tine.yaml (or tine.yml, tine.json; DIR defaults to .), checks\n"
     "it locally (errors print as file:line:col: key: what was expected), packs\n"
     "the manifest and the files below DIR into a tar.gz and uploads it:\n"
     "prints 'deployed APP version N'. The node checks it again (Lua syntax,\n"
     "that each handler's module exports its function, routes) and answers\n"
     "only once it serves the new version; a node that cannot (its state dir\n"
     "full or read-only) says why and keeps the live version.\n"
     "The same files as the live version make no new version: 'unchanged:\n"
     "APP version N is live'. The same files as an older version are refused\n"
     "(nothing changes; tine rollback APP N makes that one live).\n"
     "FILE, a regular file, is an artifact (tine pack, tine export): it is\n"
     "checked here as the node would (a corrupt or truncated one is an error\n"
     "naming it; nothing is sent) and deployed as is.\n"
     "\n"
     "  --force           store a new version even when the files are the same\n"
     "  --stage           store it without making it live: 'staged APP version\n"
     "                    N'; /APP@N/ previews it, tine promote APP N makes it live\n",
     cli_cmd_deploy},
    {"pack", "pack the app in DIR into one deterministic artifact file", "pack [DIR] [-o FILE]",
     "Checks DIR as tine deploy would (manifest, Lua syntax, exports) and\n"
     "writes it as one tar.gz: entries sorted, no times, owner 0, modes 0644,\n"
     "so the same files give the same bytes. Prints 'packed APP into FILE (N\n"
     "bytes, digest SHA256)'; the digest is what tine versions shows once it\n"
     "is deployed, on every cluster, and what sha256sum FILE prints.\n"
     "\n"
     "  -o, --output FILE  where to write it (default APP.tine)\n",
     cli_cmd_pack},
    {"export", "fetch a stored version of an app as an artifact file", "export APP [VERSION] [-o FILE]",
     "Fetches VERSION (default the live one) as the artifact tine pack makes\n"
     "of the same files, checks its digest against the one tine versions\n"
     "lists and writes it. Secrets are never part of it.\n"
     "\n"
     "  -o, --output FILE  where to write it (default APP-VERSION.tine)\n",
     cli_cmd_export},
    {"test", "run an app's tests against an ephemeral node of its own", "test [DIR] [--junit FILE]",
     "Starts a private redis-server and tined (next to tine, or $TINE_TINED)\n"
     "in a temporary directory, deploys the app of DIR (default .) and runs\n"
     "DIR/tests/*_test.lua and DIR/tests/*.yaml in name order; stops the node\n"
     "and removes its directory at the end. Prints one line per test, a\n"
     "failure's file:line and expected/got under it, then 'N passed, N\n"
     "failed'; exits 1 when a test failed. The tests/ directory is not part\n"
     "of the app's bundle. See docs/testing.md for the test API.\n"
     "\n"
     "  --junit FILE      also write a JUnit XML report to FILE\n",
     cli_cmd_test},
    {"dev", "serve the app in DIR and deploy it again on every save", "dev [DIR] [--remote]",
     "Starts an ephemeral node (as tine test does), deploys DIR (default .)\n"
     "and watches its files (inotify): each save deploys again and prints\n"
     "'deployed APP version N (saved -> served in X ms)'. A manifest or Lua\n"
     "error is printed as file:line:col (Lua: file:line) and the watch goes\n"
     "on; the app's log lines are printed as they come. Ctrl-C stops it and\n"
     "the node; a watched directory that disappears stops it with an error.\n"
     "\n"
     "  --remote          deploy to the node tine talks to (--url, context)\n"
     "                    instead of an ephemeral one\n",
     cli_cmd_dev},
    {"secrets", "set, list and remove an app's secrets", "secrets set APP NAME | secrets list APP | secrets rm APP NAME",
     "Secrets are values functions read with tine.secret(\"NAME\") (Lua and\n"
     "Python) without them being in the app's files: the node stores them\n"
     "encrypted (AES-256-GCM under the cluster key of tined --secrets-key).\n"
     "They are never part of a bundle, an export, an answer of the node, an\n"
     "activation record or a log line (a function logging one gets it\n"
     "replaced by [secret NAME]).\n"
     "\n"
     "  secrets set APP NAME   the value is read from stdin (a final newline\n"
     "                         dropped); NAME is [A-Za-z_][A-Za-z0-9_]*\n"
     "  secrets list APP       the names, one a line\n"
     "  secrets rm APP NAME    removes one\n",
     cli_cmd_secrets},
    {"apps", "list the deployed apps", "apps",
     "Prints a table: APP LIVE VERSIONS. LIVE reads '3 (this node: 2)' when\n"
     "the node tine talks to cannot load the live version and serves another.\n",
     cli_cmd_apps},
    {"versions", "list an app's versions, or prune old ones", "versions APP | versions prune APP --keep N",
     "  versions APP\n"
     "      a table: VERSION CREATED FILES DIGEST (of the artifact), '*'\n"
     "      marking the live version, then which version the node tine talks\n"
     "      to serves (and why, when it cannot load the live one)\n"
     "  versions prune APP --keep N\n"
     "      removes every version but the N newest and the live one (never\n"
     "      removed), then the stored files no version uses any more\n",
     cli_cmd_versions},
    {"delete", "delete an app and its data", "delete APP --yes",
     "Deletes APP on every node of the cluster: its routes and triggers stop\n"
     "at once, then its versions, stored files, tine.kv keys, dead letters\n"
     "and activation records are removed. Its usage per day is kept for\n"
     "billing (tine usage APP), and its version numbers are not reused.\n"
     "\n"
     "  -y, --yes         required: says you mean it\n",
     cli_cmd_delete},
    {"rollback", "make an earlier version of an app live", "rollback APP [N]",
     "Makes version N live, or without N the version before the live one:\n"
     "prints 'APP: live version is now N'.\n",
     cli_cmd_rollback},
    {"promote", "make a stored (staged) version of an app live", "promote APP N",
     "Makes stored version N live on every node, in the same atomic step as a\n"
     "deploy (a split to N ends): prints 'APP: live version is now N'.\n",
     cli_cmd_promote},
    {"tag", "name a version of an app for previews", "tag APP TAG N | tag APP TAG --rm",
     "Points TAG (a-z, 0-9, '-', starting with a letter) at stored version N:\n"
     "/APP@TAG/... is served by it on every node (and the x-tine-version:\n"
     "TAG header, when the app's manifest says release: {pin: true}).\n"
     "\n"
     "  --rm              remove the tag\n",
     cli_cmd_tag},
    {"split", "send a share of an app's clients to another version", "split APP N=PERCENT [--events] | split APP --clear",
     "Sends PERCENT (0-100) of clients to stored version N and the rest to the\n"
     "live version; a client stays on its side (a hash of the header the\n"
     "manifest's release.client_header names, x-tine-client by default, else\n"
     "of its address). Events and schedules stay on the live version. Answers\n"
     "say which version served them in x-tine-version.\n"
     "\n"
     "  --clear           end the split: the live version serves everyone\n",
     cli_cmd_split},
    {"rollout", "show or steer an app's automatic rollout", "rollout status|pause|resume|abort APP",
     "A deploy of a manifest with a rollout: block (over a live version)\n"
     "starts one: a split of its first step, advanced each interval while\n"
     "the new version's errors and p99 stay within bounds, rolled back at\n"
     "once on a breach, made live after the last step.\n"
     "\n"
     "  status APP        version, state, steps (the current one in [ ]),\n"
     "                    bounds, per version requests, errors, p50/p99 in\n"
     "                    the step, and the last decision\n"
     "  pause APP         keep the current step (the split stays)\n"
     "  resume APP        run the current step again from now\n"
     "  abort APP         end it: the previous version serves every client\n",
     cli_cmd_rollout},
    {"invoke", "call a function with a JSON event and print its answer", "invoke APP FN [JSON|-] [-v]",
     "Sends JSON (default {}; '-' reads it from stdin) as the event and prints\n"
     "the function's response body (with --json the whole answer: status,\n"
     "headers, body, invocation_id, duration_ms, cold). Exits 1 when the\n"
     "function answered with a status >= 500, printing its error on stderr.\n"
     "\n"
     "  -v, --verbose     print status, invocation id, duration on stderr\n",
     cli_cmd_invoke},
    {"routes", "show what triggers an app's functions", "routes APP",
     "Prints a table: TRIGGER FUNCTION VERSION, one row per HTTP route\n"
     "('GET /hello/hi') and per trigger ('schedule */5 * * * *',\n"
     "'log file:/var/log/x (filter \"ERROR\")', 'event type=... source=...').\n",
     cli_cmd_routes},
    {"ps", "list the node's sandboxes per function", "ps [APP]",
     "Prints a table: APP VERSION FUNCTION PID STATE AGE IDLE INVOCATIONS\n"
     "COLD_MS, one row per sandbox on the node tine talks to (only APP's\n"
     "with APP). STATE is starting, idle, busy or closing; IDLE is how long\n"
     "an idle sandbox has waited; COLD_MS how long it took to start (from\n"
     "the decision to start it until its handler was loaded). With --json\n"
     "the node's answer, with per-function counts (warm, idle, busy,\n"
     "starting, queued).\n",
     cli_cmd_ps},
    {"scale", "set how many warm sandboxes a function keeps ready", "scale APP FN --warm N",
     "Makes the live version of APP keep N idle sandboxes of FN ready on\n"
     "the node tine talks to, starting them now (0 <= N <= the function's\n"
     "concurrency). It lasts until the next deploy or rollback, which goes\n"
     "back to the manifest's 'warm'; other nodes are not changed. Lowering\n"
     "it leaves extra idle sandboxes to the node's idle timeout.\n"
     "\n"
     "  --warm N          idle sandboxes to keep (required)\n",
     cli_cmd_scale},
    {"evict", "close a function's idle sandboxes now", "evict APP [FN]",
     "Closes the idle sandboxes of APP (of every version; only FN's with\n"
     "FN) on the node tine talks to, so the next call starts cold. Busy\n"
     "sandboxes finish their call. A function with 'warm' sandboxes starts\n"
     "that many again at once. Prints 'evicted N idle sandboxes of APP'.\n",
     cli_cmd_evict},
    {"nodes", "list the nodes of the cluster", "nodes",
     "Prints a table: NODE ADDRESS VERSION UPTIME SANDBOXES CALLS HEARTBEAT\n"
     "STATE, one row per node sharing the node's Redis. STATE is ready,\n"
     "starting (it has not loaded the apps yet), not-ready (a live version\n"
     "does not load on it), draining, or gone: 'gone (drained 3m04s ago)'\n"
     "after a drain, 'gone (lost 12.0s ago)' when its heartbeat stopped (3 s);\n"
     "gone nodes are listed for an hour. CALLS counts the function calls in\n"
     "flight, HEARTBEAT how long ago the node last said it is up.\n",
     cli_cmd_nodes},
    {"drain", "drain a node: it finishes its calls, hands its events back and stops",
     "drain NODE [--no-wait] [--wait S]",
     "Asks NODE (an id from tine nodes; any node of the cluster takes the\n"
     "request and NODE sees it within a second) to drain, as SIGTERM would:\n"
     "it turns not ready (GET /_tine/v1/ready answers 503), keeps serving for\n"
     "its --drain-grace while a load balancer moves away, gives the calls in\n"
     "flight its --drain-timeout to finish, hands its pending events back to\n"
     "the other nodes, leaves the cluster and exits 0. tine follows it until\n"
     "it is gone and prints how long it took; it exits 1 when the node was\n"
     "lost instead, or is still there after its bound (grace + timeout + 15 s).\n"
     "Talking to NODE itself, tine follows it until it stops taking\n"
     "connections (then only other nodes can tell).\n"
     "\n"
     "  --no-wait         return once the request is stored\n"
     "  --wait S          give up following after S seconds\n",
     cli_cmd_drain},
    {"events", "send a CloudEvent, list and replay an app's dead letters",
     "events emit --type T --source S [--data JSON] | events dlq APP | events replay APP [ID...]",
     "  events emit --type T --source S [--data JSON] [--id ID] [--subject S]\n"
     "      sends one CloudEvent (id: random unless given; data: any JSON) and\n"
     "      prints 'accepted event ID' once the node stored it durably\n"
     "  events dlq APP\n"
     "      lists the app's dead letters: events whose function failed every\n"
     "      attempt (ID FUNCTION ATTEMPTS FAILED EVENT REASON)\n"
     "  events replay APP [ID...]\n"
     "      sends the named dead letters (all without IDs) to their function\n"
     "      again, with a fresh count of attempts, and removes them\n",
     cli_cmd_events},
    {"usage", "show what an app's invocations cost", "usage APP [--from D] [--to D] [--by KEY] [--csv]",
     "Prints invocations, billed units (100 ms each), GB-seconds and cost of\n"
     "APP per function, summed over days (UTC) and closed by a total row.\n"
     "Money is exact: cost in dollars with 12 decimals.\n"
     "\n"
     "  --from D, --to D  first and last day, YYYY-MM-DD (default: the last 30 days)\n"
     "  --by KEY          function (default), version (function and version) or day\n"
     "  --csv             CSV rows with a header, no total (--json: the answer as-is)\n",
     cli_cmd_usage},
    {"activations", "list an app's recent invocations", "activations APP [FN] [--limit N] [filters]",
     "Prints the newest activation records of APP (of function FN), newest\n"
     "first: ID START FUNCTION VERSION TRIGGER STATUS DURATION BILLED START_KIND.\n"
     "After a full page 'tine: more with --after ID' goes to stderr: pass that\n"
     "for the next page.\n"
     "\n"
     "  -n, --limit N         how many (default 20)\n"
     "  --version V           of version V only\n"
     "  --status 5xx          of a status class (2xx, 3xx, 4xx, 5xx)\n"
     "  --cold, --warm        cold starts only, or warm calls only\n"
     "  --min-duration MS     that ran at least MS milliseconds\n"
     "  --since T, --until T  started from T, before T: Unix ms or a time ago (30s, 15m, 2h, 7d)\n"
     "  --after ID            the page after the one ending with ID\n",
     cli_cmd_activations},
    {"trace", "show a call tree: the calls of one trace", "trace ID",
     "Prints the activations of trace ID (the \"trace\" of an activation: the\n"
     "first call's invocation id, or the trace id of an incoming traceparent),\n"
     "oldest first, each call indented under the one that invoked it or emitted\n"
     "its event: CALL AT DURATION STATUS TRIGGER ID.\n",
     cli_cmd_trace},
    {"activation", "show one invocation: timings, cost, logs", "activation ID",
     "Prints the activation record of invocation ID (as in the\n"
     "x-tine-invocation-id header or 'tine activations'): status, duration,\n"
     "queueing, cold start, CPU time, billed time, GB-seconds, cost and the\n"
     "lines it logged.\n",
     cli_cmd_activation},
    {"logs", "print an app's log lines, or follow them live",
     "logs APP [FN] [-f] [--limit N] [--since T] [--level L] [--grep TEXT]",
     "Prints the newest log lines of APP (of function FN) as\n"
     "'TIME FUNCTION vVERSION LEVEL: MESSAGE', oldest first. With -f it then\n"
     "prints new lines as the functions log them, on any node of the cluster,\n"
     "until interrupted (a line shows when its invocation ends). When the\n"
     "stream breaks (the node restarts) it says so on stderr, reconnects\n"
     "(0.5 s, doubling up to 10 s) and goes on with the lines logged\n"
     "meanwhile, printing none twice. --json prints each line as the node's\n"
     "JSON object.\n"
     "\n"
     "  -f, --follow      keep printing new lines\n"
     "  -n, --limit N     how many past lines first (default 100; 0 for none)\n"
     "  --since T         lines logged from T: Unix ms or a time ago (30s, 15m, 2h, 7d)\n"
     "  --level L         lines of level L only: info or error\n"
     "  --grep TEXT       lines whose message holds TEXT (case-sensitive)\n",
     cli_cmd_logs},
    {"doctor", "show which sandbox isolation layers are active on the node, and its TLS", "doctor",
     "Prints a table: LAYER STATE DETAIL, one row per isolation layer (lua,\n"
     "rlimits, no-new-privs, seccomp, user, the namespaces, root-dir), with what\n"
     "it does or why it is off; then RUNTIME LAYERS ON OFF: the layers the\n"
     "sandboxes of each runtime (lua, python, node, exec) get; then whether the\n"
     "node serves HTTPS and with\n"
     "which certificate (subject, names, serial, SHA-256, expiry, reloads).\n"
     "Exits 0 whatever the layers (read --json in scripts).\n",
     cli_cmd_doctor},
    {"login", "store a node's URL and key as a context", "login URL [--key ID:SECRET] [--name NAME]",
     "Checks the key (or the node's admin token) with the node (GET\n"
     "/_tine/v1/whoami), then stores URL and key as context NAME (default: the\n"
     "URL's host:port) in $XDG_CONFIG_HOME/tine/credentials (else\n"
     "~/.config/tine/credentials, mode 0600) and makes it current. Without\n"
     "--key the key is read from stdin (not echoed on a terminal).\n"
     "\n"
     "  --key K           the key ID:SECRET, or the admin token\n"
     "  --name NAME       the context's name\n",
     cli_cmd_login},
    {"context", "list the stored contexts, or choose the current one", "context list | context use NAME",
     "  context list      the contexts (NAME URL KEY, '*' marking the current one)\n"
     "  context use NAME  makes NAME current: commands go to its URL with its key\n"
     "Precedence of credentials: --url/--token, then TINE_URL/TINE_TOKEN, then\n"
     "the context (--context NAME or TINE_CONTEXT, else the current one; its key\n"
     "is sent only to its own URL), then <state-dir>/admin.token.\n",
     cli_cmd_context},
    {"namespaces", "create, list or delete namespaces (teams)", "namespaces list | namespaces create|delete NAME",
     "  namespaces list         NAMESPACE APPS KEYS CREATED BY (a key of one\n"
     "                          namespace sees its own)\n"
     "  namespaces create NAME  a cluster admin makes namespace NAME\n"
     "  namespaces delete NAME  refused while it has apps; revokes its keys\n",
     cli_cmd_namespaces},
    {"keys", "create, list or revoke API keys",
     "keys create NAME --role ROLE [--namespace NS] [--app APP] [--expires LIFE] | keys list [--namespace NS] | keys "
     "revoke ID",
     "  keys create NAME --role ROLE [--namespace NS] [--app APP] [--expires LIFE]\n"
     "      makes a key and prints it, ID:SECRET, alone on stdout: the only time\n"
     "      the secret is shown (the node keeps its SHA-256). ROLE: cluster-admin,\n"
     "      admin, deployer, viewer or invoker (docs/tenancy.md); NS defaults to\n"
     "      the caller's namespace (else default); --app restricts it to one app;\n"
     "      --expires LIFE (3600, 90s, 15m, 12h, 30d) makes every node refuse it\n"
     "      after that (a key made by an expiring key expires with it at the latest)\n"
     "  keys list [--namespace NS]\n"
     "      ID NAME NAMESPACE ROLE APP CREATED BY REVOKED EXPIRES\n"
     "  keys revoke ID\n"
     "      every node refuses the key within a second\n",
     cli_cmd_keys},
    {"audit", "print the audit log of changes, or follow it", "audit [--namespace NS] [-f] [--limit N]",
     "Prints the newest audit entries, oldest first, one per line: TIME\n"
     "NAMESPACE ACTION TARGET OUTCOME (STATUS) by KEY (NAME): DETAIL. Every\n"
     "change (deploy, rollback, scale, evict, delete, prune, event replay, keys,\n"
     "namespaces, quotas) is there, refused ones too.\n"
     "\n"
     "  --namespace NS    only the entries of namespace NS\n"
     "  -f, --follow      then print new entries as they come\n"
     "  -n, --limit N     how many past entries (default 100, at most 10000)\n",
     cli_cmd_audit},
    {"quota", "show or set a namespace's quotas",
     "quota [NS] | quota set NS [--concurrency N] [--sandboxes N] [--memory MB] [--per-minute N] "
     "[--spend-per-day USD]",
     "  quota [NS]\n"
     "      each quota of NS (every namespace with one when NS is left out) with\n"
     "      the cluster's use: QUOTA LIMIT USED RESETS\n"
     "  quota set NS [flags]\n"
     "      a cluster admin sets the quotas named (the others stay); 'none'\n"
     "      removes one. Over a quota calls get 429 with Retry-After\n"
     "      (docs/tenancy.md, Quotas)\n"
     "  --concurrency N   calls at once, queued or running (1 to 1000000)\n"
     "  --sandboxes N     sandboxes, idle ones included (1 to 1000000)\n"
     "  --memory MB       MB of those sandboxes, each its function's memory\n"
     "  --per-minute N    calls per UTC minute (1 to 1000000000)\n"
     "  --spend-per-day USD  dollars per UTC day, priced as billing prices\n"
     "                    (such as 12.50; at most 1000000)\n",
     cli_cmd_quota},
    {"help", "show help for a command", "help [COMMAND]", NULL, cmd_help},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char global_help[] =
    "Global flags (accepted before or after the command):\n"
    "  --url URL         the node's URL (env TINE_URL, else the context's, else\n"
    "                    " CLI_DEFAULT_URL ")\n"
    "  --token T         admin token or API key ID:SECRET (env TINE_TOKEN, else the\n"
    "                    context's key, else <state-dir>/admin.token; without one\n"
    "                    no Authorization header is sent)\n"
    "  --context NAME    a stored context (env TINE_CONTEXT, default the current one:\n"
    "                    tine login, tine context)\n"
    "  --state-dir DIR   state dir (env TINE_STATE_DIR, default\n"
    "                    ${XDG_STATE_HOME:-$HOME/.local/state}/tine)\n"
    "  --cacert FILE     PEM CA file verifying an https:// node's certificate\n"
    "                    (env TINE_CACERT, default the system's CAs)\n"
    "  --json            machine output: the server's JSON as-is\n"
    "  -h, --help        show help (also: tine help COMMAND, tine COMMAND --help)\n"
    "  --version         print the version\n";

/* The command named `name`, or NULL. */
static const cli_command_t *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Prints tine's usage: every command with its summary and the global flags. */
static void print_overview(FILE *f)
{
    fprintf(f, "usage: tine [global flags] COMMAND [args]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n%s\nRun 'tine help COMMAND' for a command's flags.\n", global_help);
}

/* Prints a command's usage line, summary and flags. */
static void print_command_help(FILE *f, const cli_command_t *cmd)
{
    fprintf(f, "usage: tine %s\n\n%c%s.\n", cmd->usage, cmd->summary[0] - 'a' + 'A', cmd->summary + 1);
    if (cmd->help != NULL)
        fprintf(f, "\n%s", cmd->help);
    fprintf(f, "\nGlobal flags --url, --token, --context, --state-dir, --cacert, --json: see 'tine --help'.\n");
}

/* `tine help [COMMAND]`: the overview, or the help of one command. */
static int cmd_help(cli_ctx_t *ctx, int argc, char **argv)
{
    if (argc < 2) {
        print_overview(ctx->out);
        return CLI_OK;
    }
    if (argc > 2)
        return cli_usage_error(ctx, "help takes one command name");
    const cli_command_t *cmd = find_command(argv[1]);
    if (cmd == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg, "unknown command '%s'", argv[1]);
        ctx->cmd = NULL;
        return cli_usage_error(ctx, msg);
    }
    print_command_help(ctx->out, cmd);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_ctx_t ctx = {.out = stdout, .err = stderr};
    char **rest = NULL;
    int nrest = 0;
    char err[256];
    if (cli_split_global(argc, argv, &ctx.g, &rest, &nrest, err, sizeof err) != CLI_OK)
        return cli_usage_error(&ctx, err);

    int rc;
    if (ctx.g.version) {
        printf("tine %s\n", TINE_CLIENT_VERSION);
        rc = CLI_OK;
    } else if (nrest == 0) {
        print_overview(ctx.g.help ? stdout : stderr);
        rc = ctx.g.help ? CLI_OK : CLI_USAGE;
    } else if ((ctx.cmd = find_command(rest[0])) == NULL) {
        snprintf(err, sizeof err, "unknown command '%s'", rest[0]);
        rc = cli_usage_error(&ctx, err);
    } else if (ctx.g.help) {
        print_command_help(stdout, ctx.cmd);
        rc = CLI_OK;
    } else {
        rc = ctx.cmd->run(&ctx, nrest, rest);
    }
    free(rest);
    fflush(stdout);
    return rc;
}
