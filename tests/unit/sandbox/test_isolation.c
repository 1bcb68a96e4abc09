/* Unit tests for sandbox/isolation.c: the process layers under the Lua layer,
 * attacked directly in C. A forked "mini zygote" applies the zygote-once
 * layers (sbx__isolation_zygote_enter) and forks a sandbox that applies the
 * per-fork layers (sbx__isolation_enter_lua), then obeys commands sent as
 * INVOKE frames: open a file, create a socket, fork, exec, signal, map
 * memory. The test checks each answer, and the sandbox's /proc entries from
 * the host. A layer the host does not allow is skipped, saying why. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sandbox.h"
#include "sandbox_internal.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char bundle[PATH_MAX];
    pid_t zygote;  /* the mini zygote (our child) */
    pid_t sandbox; /* the sandbox's pid as the host sees it */
    int fd;        /* our end of the sandbox socket */
    sbx_isolation_report_t report;
    uint64_t next_id;
} fixture_t;

/* ------------------------------------------------------- in the sandbox */

/* Runs one command and returns its outcome as text (errno names). */
static void run_command(const char *cmd, char *out, size_t outlen)
{
    errno = 0;
    if (strcmp(cmd, "open-passwd") == 0) {
        int f = open("/etc/passwd", O_RDONLY);
        snprintf(out, outlen, "%s", f >= 0 ? "opened" : strerror(errno));
    } else if (strcmp(cmd, "read-bundle") == 0) {
        char buf[64] = "";
        int f = open("/handler.lua", O_RDONLY);
        ssize_t n = f >= 0 ? read(f, buf, sizeof buf - 1) : -1;
        snprintf(out, outlen, "%s", n > 0 ? buf : strerror(errno));
    } else if (strcmp(cmd, "write-file") == 0) {
        int f = open("/written", O_WRONLY | O_CREAT, 0644);
        snprintf(out, outlen, "%s", f >= 0 ? "written" : strerror(errno));
    } else if (strcmp(cmd, "socket") == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        snprintf(out, outlen, "%s", s >= 0 ? "socket" : strerror(errno));
    } else if (strcmp(cmd, "fork") == 0) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        snprintf(out, outlen, "%s", p > 0 ? "forked" : strerror(errno));
    } else if (strcmp(cmd, "exec") == 0) {
        char *argv[] = {"/bin/sh", "-c", "true", NULL};
        execve("/bin/sh", argv, NULL);
        snprintf(out, outlen, "%s", strerror(errno));
    } else if (strcmp(cmd, "kill") == 0) {
        int r = kill(1, SIGKILL);
        snprintf(out, outlen, "%s", r == 0 ? "signalled" : strerror(errno));
    } else if (strcmp(cmd, "mmap-1g") == 0) {
        void *p = mmap(NULL, 1u << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        snprintf(out, outlen, "%s", p != MAP_FAILED ? "mapped" : strerror(errno));
    } else if (strcmp(cmd, "mmap-16m") == 0) {
        void *p = mmap(NULL, 16u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        snprintf(out, outlen, "%s", p != MAP_FAILED ? "mapped" : strerror(errno));
    } else {
        snprintf(out, outlen, "unknown command");
    }
}

/* The sandbox: isolate, answer READY, then serve commands until EOF. */
static void sandbox_main(const char *bundle, int fd)
{
    sbx_fds_t fds = {fd, fd}; /* one socket stands for both pipes */
    sbx_spec_t spec = {.app = "t", .version = 1, .function = "f", .bundle_dir = bundle,
                       .handler_file = "handler.lua", .handler_export = "h", .memory_mb = 64,
                       .timeout_ms = 1000, .env_json = "{}"};
    const char *dir;
    char err[256];
    if (sbx__isolation_enter_lua(&spec, &fds, &dir, err, sizeof err) != 0) {
        sbx_frame_write(fds.wr, SBX_MSG_ERROR, 0, err, strlen(err), NULL, 0);
        _exit(1);
    }
    char ready[64];
    int n = snprintf(ready, sizeof ready, "{\"pid\":%ld,\"bundle\":\"%s\"}", (long)getpid(), dir);
    sbx_frame_write(fds.wr, SBX_MSG_READY, 0, ready, (size_t)n, NULL, 0);
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        if (sbx_frame_read(fds.rd, &h, &payload, 4096) != 0 || h.type != SBX_MSG_INVOKE)
            _exit(0);
        sbx__invocation_id = h.id;
        char out[256];
        run_command(payload, out, sizeof out);
        free(payload);
        sbx_frame_write(fds.wr, SBX_MSG_RESULT, h.id, "{}", 2, out, strlen(out));
    }
}

/* ------------------------------------------------------------ the test */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Starts a mini zygote (isolation on) and one sandbox in it. */
static void start(fixture_t *fx)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->bundle, sizeof fx->bundle, "/tmp/tine-isolation-XXXXXX");
    assert_non_null(mkdtemp(fx->bundle));
    chmod(fx->bundle, 0755);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/handler.lua", fx->bundle);
    write_file(path, "return {}");
    chmod(path, 0644);
    sbx_isolation_config_t cfg = {.enabled = true, .sandbox_uid = 65534, .tmp_dir = "/tmp"};
    assert_int_equal(sbx_isolation_configure(&cfg), 0);
    int sv[2], pidpipe[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(pidpipe, O_CLOEXEC), 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fflush(NULL);
    pid_t z = fork();
    assert_true(z >= 0);
    if (z == 0) {
        close(sv[0]);
        close(pidpipe[0]);
        sbx__isolation_zygote_enter();
        signal(SIGCHLD, SIG_DFL);
        pid_t s = fork();
        if (s == 0)
            sandbox_main(fx->bundle, sv[1]);
        ssize_t w = write(pidpipe[1], &s, sizeof s);
        (void)w;
        int st = 0;
        while (s > 0 && waitpid(s, &st, 0) < 0 && errno == EINTR)
            ;
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    close(sv[1]);
    close(pidpipe[1]);
    fx->zygote = z;
    fx->fd = sv[0];
    fx->next_id = 1;
    assert_int_equal(sbx_isolation_await_report(&fx->report, 20000), 0);
    assert_int_equal(read(pidpipe[0], &fx->sandbox, sizeof fx->sandbox), (ssize_t)sizeof fx->sandbox);
    close(pidpipe[0]);
}

/* Waits for the mini zygote; returns the sandbox's exit status. */
static int stop(fixture_t *fx)
{
    close(fx->fd);
    int st;
    assert_int_equal(waitpid(fx->zygote, &st, 0), fx->zygote);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->bundle);
    assert_int_equal(system(cmd), 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads one frame: its type, id, meta and body (caller frees). */
static uint8_t recv_frame(fixture_t *fx, char **meta, char **body)
{
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(fx->fd, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    *meta = strndup(p, h.meta_len);
    *body = strndup(p + h.meta_len, h.len - h.meta_len);
    free(p);
    return h.type;
}

static bool layer(const fixture_t *fx, int l)
{
    return fx->report.layers[l].active;
}

/* Expects READY; returns the pid the sandbox sees for itself. */
static long expect_ready(fixture_t *fx)
{
    char *meta, *body;
    uint8_t t = recv_frame(fx, &meta, &body);
    if (t != SBX_MSG_READY)
        fail_msg("expected READY, got type %u: %s", t, meta);
    json_t *j = json_loads(meta, 0, NULL);
    long pid = (long)json_integer_value(json_object_get(j, "pid"));
    const char *bundle = json_string_value(json_object_get(j, "bundle"));
    assert_string_equal(bundle, layer(fx, SBX_LAYER_ROOT_DIR) ? "" : fx->bundle);
    json_decref(j);
    free(meta);
    free(body);
    return pid;
}

/* Sends a command; returns the RESULT body, or NULL after an ERROR frame
 * (its message in *error). */
static char *command(fixture_t *fx, const char *cmd, char **error)
{
    uint64_t id = fx->next_id++;
    assert_int_equal(sbx_frame_write(fx->fd, SBX_MSG_INVOKE, id, cmd, strlen(cmd) + 1, NULL, 0), 0);
    char *meta, *body;
    uint8_t t = recv_frame(fx, &meta, &body);
    *error = NULL;
    if (t == SBX_MSG_ERROR) {
        json_t *j = json_loads(meta, 0, NULL);
        *error = strdup(json_string_value(json_object_get(j, "error")));
        json_decref(j);
        free(meta);
        free(body);
        return NULL;
    }
    assert_int_equal(t, SBX_MSG_RESULT);
    free(meta);
    return body;
}

/* The value of "Key:" in /proc/<pid>/status of the sandbox. */
static char *proc_status(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *val = NULL;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            char *v = line + strlen(key) + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n")] = '\0';
            val = strdup(v);
        }
    fclose(f);
    assert_non_null(val);
    return val;
}

static bool same_ns(pid_t pid, const char *ns)
{
    char a[64], b[64], la[128] = "", lb[128] = "";
    snprintf(a, sizeof a, "/proc/%d/ns/%s", (int)pid, ns);
    snprintf(b, sizeof b, "/proc/self/ns/%s", ns);
    assert_true(readlink(a, la, sizeof la - 1) > 0);
    assert_true(readlink(b, lb, sizeof lb - 1) > 0);
    return strcmp(la, lb) == 0;
}

#define SKIP_UNLESS(fx, l)                                                                                         \
    do {                                                                                                           \
        if (!layer(fx, l)) {                                                                                       \
            print_message("skip: layer %s is off: %s\n", sbx_layer_name(l), (fx)->report.layers[l].detail);         \
            stop(fx);                                                                                              \
            skip();                                                                                                \
        }                                                                                                          \
    } while (0)

/* A command the filter forbids: an ERROR frame naming the call, flagged
 * exiting, then the sandbox is gone with SBX_EXIT_SECCOMP. */
static void expect_blocked(const char *cmd, const char *syscall_name)
{
    fixture_t fx;
    start(&fx);
    SKIP_UNLESS(&fx, SBX_LAYER_SECCOMP);
    expect_ready(&fx);
    uint64_t id = fx.next_id++;
    assert_int_equal(sbx_frame_write(fx.fd, SBX_MSG_INVOKE, id, cmd, strlen(cmd) + 1, NULL, 0), 0);
    sbx_frame_hdr_t h;
    char *p = NULL;
    assert_int_equal(sbx_frame_read(fx.fd, &h, &p, SBX_WIRE_MAX_FRAME), 0);
    assert_int_equal(h.type, SBX_MSG_ERROR);
    assert_true(h.id == id);
    assert_true(h.flags & SBX_FRAME_EXITING);
    char expect[128];
    snprintf(expect, sizeof expect, "blocked system call %s", syscall_name);
    if (strstr(p, expect) == NULL)
        fail_msg("%s: expected '%s' in %.*s", cmd, expect, (int)h.meta_len, p);
    free(p);
    assert_int_equal(stop(&fx), SBX_EXIT_SECCOMP);
}

static void test_write_file_blocked(void **state)
{
    expect_blocked("write-file", "openat");
}

static void test_socket_blocked(void **state)
{
    expect_blocked("socket", "socket");
}

static void test_fork_blocked(void **state)
{
    expect_blocked("fork", "clone");
}

static void test_exec_blocked(void **state)
{
    expect_blocked("exec", "execve");
}

static void test_kill_blocked(void **state)
{
    expect_blocked("kill", "kill");
}

/* The bundle is the root: /etc/passwd does not exist, the handler does. */
static void test_root_dir_is_the_bundle(void **state)
{
    fixture_t fx;
    start(&fx);
    SKIP_UNLESS(&fx, SBX_LAYER_ROOT_DIR);
    expect_ready(&fx);
    char *err = NULL, *out = command(&fx, "open-passwd", &err);
    assert_non_null(out);
    assert_string_equal(out, "No such file or directory");
    free(out);
    out = command(&fx, "read-bundle", &err);
    assert_non_null(out);
    assert_string_equal(out, "return {}");
    free(out);
    char link[PATH_MAX + 1] = "", path[64];
    snprintf(path, sizeof path, "/proc/%d/root", (int)fx.sandbox);
    assert_true(readlink(path, link, sizeof link - 1) > 0);
    char real[PATH_MAX];
    assert_non_null(realpath(fx.bundle, real));
    assert_string_equal(link, real);
    assert_int_equal(stop(&fx), 0);
}

/* uid, no_new_privs, seccomp mode, rlimits, namespaces: seen from the host. */
static void test_process_state(void **state)
{
    fixture_t fx;
    start(&fx);
    long seen = expect_ready(&fx);
    char *v = proc_status(fx.sandbox, "NoNewPrivs");
    assert_string_equal(v, "1");
    free(v);
    if (layer(&fx, SBX_LAYER_SECCOMP)) {
        v = proc_status(fx.sandbox, "Seccomp");
        assert_string_equal(v, "2");
        free(v);
    }
    if (getuid() == 0) {
        assert_true(layer(&fx, SBX_LAYER_USER));
        static const char *const ids[] = {"Uid", "Gid"};
        for (size_t i = 0; i < 2; i++) {
            v = proc_status(fx.sandbox, ids[i]);
            assert_string_equal(v, "65534\t65534\t65534\t65534");
            free(v);
        }
        v = proc_status(fx.sandbox, "Groups");
        assert_string_equal(v, "");
        free(v);
    } else {
        print_message("skip: uid check: the test does not run as root\n");
    }
    if (layer(&fx, SBX_LAYER_USER)) { /* no capabilities, as root or in a user namespace */
        static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapAmb"};
        for (size_t i = 0; i < 4; i++) {
            v = proc_status(fx.sandbox, sets[i]);
            assert_string_equal(v, "0000000000000000");
            free(v);
        }
    }
    if (layer(&fx, SBX_LAYER_PID_NS))
        assert_true(seen != (long)fx.sandbox); /* the sandbox has another pid inside */
    static const struct {
        int layer;
        const char *ns;
    } nss[] = {{SBX_LAYER_MOUNT_NS, "mnt"}, {SBX_LAYER_NET_NS, "net"}, {SBX_LAYER_IPC_NS, "ipc"},
               {SBX_LAYER_UTS_NS, "uts"}, {SBX_LAYER_PID_NS, "pid"}};
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
        if (layer(&fx, nss[i].layer))
            assert_false(same_ns(fx.sandbox, nss[i].ns));
        else
            print_message("skip: %s namespace: %s\n", nss[i].ns, fx.report.layers[nss[i].layer].detail);
    }
    char path[64], *limits = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%d/limits", (int)fx.sandbox);
    assert_int_equal(tine_read_file(path, &limits, &len), 0);
    static const char *const expect[] = {"Max processes             0 ", "Max open files            16 ",
                                         "Max file size             0 ", "Max core file size        0 "};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (strstr(limits, expect[i]) == NULL)
            fail_msg("'%s' not in %s", expect[i], limits);
    free(limits);
    assert_int_equal(stop(&fx), 0);
}

/* The address space limit: memory (64 MiB) + slack above the zygote's size. */
static void test_address_space_limit(void **state)
{
    fixture_t fx;
    start(&fx);
    expect_ready(&fx);
    char *err = NULL, *out = command(&fx, "mmap-1g", &err);
    assert_non_null(out);
    assert_string_equal(out, "Cannot allocate memory");
    free(out);
    out = command(&fx, "mmap-16m", &err);
    assert_non_null(out);
    assert_string_equal(out, "mapped");
    free(out);
    assert_int_equal(stop(&fx), 0);
}

/* --isolation off: only the Lua layer, every other layer says why. */
static void test_isolation_off_report(void **state)
{
    sbx_isolation_config_t cfg = {.enabled = false, .sandbox_uid = 65534, .tmp_dir = "/tmp"};
    assert_int_equal(sbx_isolation_configure(&cfg), 0);
    pid_t z = fork();
    if (z == 0) {
        sbx__isolation_zygote_enter();
        _exit(0);
    }
    sbx_isolation_report_t r;
    assert_int_equal(sbx_isolation_await_report(&r, 20000), 0);
    assert_int_equal(waitpid(z, NULL, 0), z);
    assert_false(r.enabled);
    assert_true(r.layers[SBX_LAYER_LUA].active);
    for (int i = SBX_LAYER_RLIMITS; i < SBX_LAYER_COUNT; i++) {
        assert_false(r.layers[i].active);
        assert_string_equal(r.layers[i].detail, "--isolation off");
    }
    json_t *j = sbx_isolation_report_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "isolation")), "off");
    assert_int_equal(json_array_size(json_object_get(j, "layers")), SBX_LAYER_COUNT);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "layers"), 3), "name")),
                        "seccomp");
    json_decref(j);
    /* The node's report is the last one received. */
    assert_false(sbx_isolation_report()->enabled);
}

/* A zygote that dies before reporting is noticed, not waited for forever. */
static void test_zygote_died_before_reporting(void **state)
{
    sbx_isolation_config_t cfg = {.enabled = true, .sandbox_uid = 65534, .tmp_dir = "/tmp"};
    assert_int_equal(sbx_isolation_configure(&cfg), 0);
    pid_t z = fork();
    if (z == 0)
        _exit(1);
    sbx_isolation_report_t r;
    assert_int_equal(sbx_isolation_await_report(&r, 20000), TINE_ECRASH);
    assert_int_equal(waitpid(z, NULL, 0), z);
    char longdir[300];
    memset(longdir, 'x', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    assert_int_equal(sbx_isolation_configure(&(sbx_isolation_config_t){.tmp_dir = longdir}), -ENAMETOOLONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_file_blocked),
        cmocka_unit_test(test_socket_blocked),
        cmocka_unit_test(test_fork_blocked),
        cmocka_unit_test(test_exec_blocked),
        cmocka_unit_test(test_kill_blocked),
        cmocka_unit_test(test_root_dir_is_the_bundle),
        cmocka_unit_test(test_process_state),
        cmocka_unit_test(test_address_space_limit),
        cmocka_unit_test(test_isolation_off_report),
        cmocka_unit_test(test_zygote_died_before_reporting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
