/* Python zygotes (sandbox/python_host.c, sdk/python/tine_zygote.py) on a
 * real tine-zygote and a real python3: the test plays tined. It asks for
 * the Python zygote of a version, reads its READY, asks it for blank
 * sandboxes, gives each its function and serves invocations on its pipes. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frames.h"

#include "sandbox.h"
#include "tine_common.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    sbx_zygote_t z;     /* tine-zygote */
    sbx_zygote_t py;    /* the Python zygote: the launcher's pid, its control socket */
    char dir[PATH_MAX]; /* the bundle */
    char tmp[PATH_MAX]; /* the node's temp dir */
    sbx_isolation_report_t report;
} fixture_t;

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, 0644);
}

static const char app_py[] =
    "import os, socket, sys\n"
    "import tine\n"
    "print('importing app')\n"
    "COUNT = 0\n"
    "def handle(req, ctx):\n"
    "    global COUNT\n"
    "    COUNT += 1\n"
    "    print('called', COUNT)\n"
    "    return {'count': COUNT, 'method': req['method'], 'path': req['path'], 'q': req['query'],\n"
    "            'h': req['headers'].get('x-a'), 'body': req['body'].decode(), 'fn': ctx['function'],\n"
    "            'id': ctx['invocation_id'], 'env': tine.env.get('GREETING'), 'uid': os.getuid(),\n"
    "            'pid': os.getpid(), 'cwd': os.getcwd()}\n"
    "def text(req, ctx):\n"
    "    return {'status': 201, 'headers': {'X-Kind': 'text'}, 'body': 'made'}\n"
    "def boom(req, ctx):\n"
    "    raise ValueError('no good')\n"
    "def attack(req, ctx):\n"
    "    out = {}\n"
    "    def t(name, f):\n"
    "        try:\n"
    "            out[name] = 'ESCAPED %r' % (f(),)\n"
    "        except Exception as e:\n"
    "            out[name] = type(e).__name__\n"
    "    t('socket', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))\n"
    "    t('passwd', lambda: open('/etc/passwd').read())\n"
    "    t('write', lambda: open('/app/x', 'w'))\n"
    "    t('fork', lambda: os.fork())\n"
    "    t('exec', lambda: os.execv('/bin/sh', ['sh', '-c', 'true']))\n"
    "    return out\n";

static const char hostcall_py[] = "import tine\n"
                                  "def get(req, ctx):\n"
                                  "    return {'v': tine.kv.get('k'), 'n': req['n']}\n";

static const char broken_py[] = "import nonexistent_module_xyz\ndef handle(req, ctx): return 1\n";

static void read_frame(int fd, sbx_frame_hdr_t *h, char **payload)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 20000) != 1)
        fail_msg("no frame within 20 s");
    assert_int_equal(sbx_frame_read(fd, h, payload, SBX_WIRE_MAX_FRAME), 0);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tine-pyhost-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    chmod(f->dir, 0755);
    snprintf(f->tmp, sizeof f->tmp, "/tmp/tine-pyhost-tmp.XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    chmod(f->tmp, 0711);
    write_file(f->dir, "src/app.py", app_py);
    write_file(f->dir, "src/broken.py", broken_py);
    write_file(f->dir, "src/hc.py", hostcall_py);
    sbx_isolation_config_t cfg = {.enabled = true, .sandbox_uid = 65534, .tmp_dir = f->tmp};
    assert_int_equal(sbx_isolation_configure(&cfg), 0);
    const char *src = getenv("TINE_SOURCE_DIR");
    char *sdk = xasprintf("%s/sdk/lua", src ? src : TINE_SOURCE_DIR);
    assert_int_equal(sbx_zygote_start(&f->z, sdk), 0);
    free(sdk);
    assert_int_equal(sbx_isolation_await_report(&f->report, 10000), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sbx_zygote_stop(&f->z);
    char *cmd = xasprintf("rm -rf '%s' '%s'", f->dir, f->tmp);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(f);
    return 0;
}

/* Starts the version's Python zygote and reads up to its READY (or ERROR,
 * whose message goes to *error). Returns READY's metadata as JSON. */
static json_t *start_python(fixture_t *f, char **error)
{
    static const char *const modules[] = {"src/app.py", "src/broken.py", "src/hc.py"};
    sbx_python_spec_t spec = {.app = "py",
                              .version = 3,
                              .bundle_dir = f->dir,
                              .modules = modules,
                              .modules_len = 3,
                              .memory_mb = 64,
                              .processes = 4};
    assert_int_equal(sbx_zygote_request_python(&f->z, &spec), 0);
    sbx_spawned_t got;
    assert_int_equal(sbx_zygote_receive(&f->z, true, &got), 0);
    assert_int_equal(got.error, 0);
    assert_true(got.pid > 0);
    assert_int_equal(got.fds.rd, got.fds.wr); /* one socket */
    f->py = (sbx_zygote_t){got.pid, got.fds.rd};
    *error = NULL;
    for (;;) {
        sbx_frame_hdr_t h;
        char *payload = NULL;
        read_frame(f->py.control_fd, &h, &payload);
        if (h.type == 0)
            fail_msg("the Python zygote closed its socket before READY");
        json_t *m = json_loadb(payload, h.meta_len, 0, NULL);
        free(payload);
        if (h.type == SBX_MSG_READY)
            return m;
        if (h.type == SBX_MSG_ERROR) {
            *error = strdup(json_string_value(json_object_get(m, "error")));
            json_decref(m);
            return NULL;
        }
        assert_int_equal(h.type, SBX_MSG_LOG);
        json_decref(m);
    }
}

/* A blank sandbox of the Python zygote given function `fn`. */
static sbx_spawned_t python_sandbox(fixture_t *f, const char *fn, const char *file, const char *export)
{
    assert_int_equal(sbx_zygote_request(&f->py, NULL), 0);
    sbx_spawned_t b;
    assert_int_equal(sbx_zygote_receive(&f->py, true, &b), 0);
    assert_int_equal(b.error, 0);
    assert_true(b.pid > 0);
    sbx_spec_t spec = {.runtime = SBX_RUNTIME_PYTHON,
                       .app = "py",
                       .version = 3,
                       .function = fn,
                       .bundle_dir = f->dir,
                       .handler_file = file,
                       .handler_export = export,
                       .memory_mb = 64,
                       .timeout_ms = 2000,
                       .env_json = "{\"GREETING\":\"hi\"}"};
    size_t len;
    char *frame = sbx_spec_frame(&spec, &len);
    assert_int_equal(write(b.fds.wr, frame, len), (ssize_t)len);
    free(frame);
    return b;
}

/* Sends an http INVOKE and reads frames until its answer (LOG lines are
 * appended to logs when given). Returns the answer's payload. */
static char *invoke(sbx_spawned_t *b, uint64_t id, const char *req_json, const char *body, sbx_frame_hdr_t *h,
                    tine_buf_t *logs)
{
    json_t *req = json_loads(req_json, 0, NULL);
    assert_non_null(req);
    write_invoke(b->fds.wr, id, req, body, strlen(body));
    json_decref(req);
    for (;;) {
        char *payload = NULL;
        read_frame(b->fds.rd, h, &payload);
        if (h->type == SBX_MSG_LOG) {
            if (logs) {
                tine_buf_append(logs, payload + h->meta_len, h->len - h->meta_len);
                tine_buf_append(logs, "\n", 1);
            }
            free(payload);
            continue;
        }
        return payload;
    }
}

static void test_python_zygote_serves(void **state)
{
    fixture_t *f = *state;
    char *error = NULL;
    json_t *ready = start_python(f, &error);
    if (ready == NULL)
        fail_msg("the Python zygote did not start: %s", error);
    assert_int_equal(json_integer_value(json_object_get(ready, "modules")), 2);
    json_t *failed = json_object_get(ready, "failed");
    assert_int_equal(json_array_size(failed), 1);
    assert_string_equal(json_string_value(json_array_get(failed, 0)), "src/broken.py");
    json_decref(ready);

    sbx_spawned_t b = python_sandbox(f, "h", "src/app.py", "handle");
    sbx_frame_hdr_t h;
    char *payload = NULL;
    read_frame(b.fds.rd, &h, &payload);
    assert_int_equal(h.type, SBX_MSG_READY);
    free(payload);
    tine_buf_t logs;
    tine_buf_init(&logs);
    for (uint64_t i = 1; i <= 2; i++) {
        payload = invoke(&b, i,
                         "{\"kind\":\"http\",\"method\":\"POST\",\"path\":\"/p\",\"query\":\"a=1&b=x%20y+z\","
                         "\"headers\":{\"x-a\":\"A\"},\"ctx\":{\"invocation_id\":\"abc\"}}",
                         "the body", &h, &logs);
        assert_int_equal(h.type, SBX_MSG_RESULT);
        assert_true(h.id == i);
        json_t *m = meta_json(h.type, payload, h.meta_len);
        assert_int_equal(json_integer_value(json_object_get(m, "status")), 200);
        assert_string_equal(json_string_value(json_object_get(json_object_get(m, "headers"), "content-type")),
                            "application/json");
        json_decref(m);
        json_t *r = json_loadb(payload + h.meta_len, h.len - h.meta_len, 0, NULL);
        assert_non_null(r);
        assert_int_equal(json_integer_value(json_object_get(r, "count")), i); /* the interpreter is reused */
        assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(json_object_get(r, "q"), "b")), "x y z");
        assert_string_equal(json_string_value(json_object_get(r, "h")), "A");
        assert_string_equal(json_string_value(json_object_get(r, "body")), "the body");
        assert_string_equal(json_string_value(json_object_get(r, "fn")), "h");
        assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
        assert_string_equal(json_string_value(json_object_get(r, "env")), "hi");
        if (f->report.layers[SBX_LAYER_ROOT_DIR].active)
            assert_string_equal(json_string_value(json_object_get(r, "cwd")), "/app");
        if (f->report.layers[SBX_LAYER_USER].active && geteuid() == 0)
            assert_true(json_integer_value(json_object_get(r, "uid")) >= 1000000000 + 65536);
        json_decref(r);
        free(payload);
    }
    assert_non_null(strstr(logs.data, "called 1\ncalled 2\n"));
    tine_buf_dispose(&logs);

    /* The attacks of a function: each refused inside the sandbox. */
    sbx_spawned_t a = python_sandbox(f, "a", "src/app.py", "attack");
    read_frame(a.fds.rd, &h, &payload);
    assert_int_equal(h.type, SBX_MSG_READY);
    free(payload);
    payload = invoke(&a, 9, "{\"kind\":\"http\"}", "", &h, NULL);
    assert_int_equal(h.type, SBX_MSG_RESULT);
    json_t *r = json_loadb(payload + h.meta_len, h.len - h.meta_len, 0, NULL);
    char *shown = json_dumps(r, JSON_SORT_KEYS);
    if (f->report.layers[SBX_LAYER_SECCOMP].active) {
        assert_string_equal(json_string_value(json_object_get(r, "socket")), "PermissionError");
        assert_string_equal(json_string_value(json_object_get(r, "exec")), "PermissionError");
    }
    if (f->report.layers[SBX_LAYER_ROOT_DIR].active)
        assert_string_equal(json_string_value(json_object_get(r, "passwd")), "FileNotFoundError");
    if (f->report.layers[SBX_LAYER_RLIMITS].active) /* no processes after the fork */
        assert_string_equal(json_string_value(json_object_get(r, "fork")), "BlockingIOError");
    assert_null(strstr(shown, "ESCAPED"));
    free(shown);
    json_decref(r);
    free(payload);

    /* A function that raises; another whose module failed to import. */
    payload = invoke(&b, 3, "{\"kind\":\"event\",\"event\":{\"x\":1}}", "", &h, NULL);
    assert_int_equal(h.type, SBX_MSG_ERROR); /* an event has no method */
    assert_non_null(strstr(payload, "KeyError: 'method'"));
    free(payload);
    sbx_spawned_t c = python_sandbox(f, "boom", "src/app.py", "boom");
    read_frame(c.fds.rd, &h, &payload);
    assert_int_equal(h.type, SBX_MSG_READY);
    free(payload);
    payload = invoke(&c, 4, "{\"kind\":\"http\"}", "", &h, NULL);
    assert_int_equal(h.type, SBX_MSG_ERROR);
    json_t *e = json_loadb(payload, h.meta_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "error")), "ValueError: no good");
    assert_non_null(strstr(json_string_value(json_object_get(e, "trace")), "in boom"));
    json_decref(e);
    free(payload);
    sbx_spawned_t d = python_sandbox(f, "br", "src/broken.py", "handle");
    read_frame(d.fds.rd, &h, &payload);
    assert_int_equal(h.type, SBX_MSG_ERROR);
    e = json_loadb(payload, h.meta_len, 0, NULL);
    assert_non_null(strstr(json_string_value(json_object_get(e, "error")),
                           "ModuleNotFoundError: No module named 'nonexistent_module_xyz'"));
    json_decref(e);
    free(payload);

    sbx_fds_close(b.fds);
    sbx_fds_close(c.fds);
    sbx_fds_close(d.fds);
    /* Killing the launcher alone (the control socket and the sandbox's
     * pipes still open) takes the Python zygote and its sandboxes. */
    assert_int_equal(kill(a.pid, 0), 0);
    kill(f->py.pid, SIGKILL);
    for (int i = 0; i < 200 && kill(a.pid, 0) == 0; i++)
        usleep(10000);
    assert_int_equal(kill(a.pid, 0), -1);
    sbx_fds_close(a.fds);
    close(f->py.control_fd);
}

/* A host call of a call with another INVOKE pipelined behind it: the
 * HOSTREPLY is taken out of the stream past the INVOKE, and both calls are
 * answered in order. */
static void test_host_call_past_a_pipelined_call(void **state)
{
    fixture_t *f = *state;
    char *error = NULL;
    json_t *ready = start_python(f, &error);
    if (ready == NULL)
        fail_msg("the Python zygote did not start: %s", error);
    json_decref(ready);
    sbx_spawned_t b = python_sandbox(f, "get", "src/hc.py", "get");
    sbx_frame_hdr_t h;
    char *payload = NULL;
    read_frame(b.fds.rd, &h, &payload);
    assert_int_equal(h.type, SBX_MSG_READY);
    free(payload);
    json_t *r1 = json_loads("{\"kind\":\"event\",\"event\":{\"n\":1}}", 0, NULL);
    json_t *r2 = json_loads("{\"kind\":\"event\",\"event\":{\"n\":2}}", 0, NULL);
    write_invoke(b.fds.wr, 11, r1, "", 0);
    write_invoke(b.fds.wr, 12, r2, "", 0);
    json_decref(r1);
    json_decref(r2);
    for (int call = 0; call < 2; call++) {
        read_frame(b.fds.rd, &h, &payload);
        assert_int_equal(h.type, SBX_MSG_HOSTCALL);
        assert_true(h.id == (uint64_t)(11 + call));
        json_t *m = meta_json(h.type, payload, h.meta_len);
        assert_string_equal(json_string_value(json_object_get(m, "op")), "kv.get");
        assert_string_equal(json_string_value(json_object_get(m, "key")), "k");
        json_decref(m);
        free(payload);
        write_hostreply(b.fds.wr, h.id, "{\"found\":true}", "val", 3);
        read_frame(b.fds.rd, &h, &payload);
        assert_int_equal(h.type, SBX_MSG_RESULT);
        assert_true(h.id == (uint64_t)(11 + call));
        json_t *body = json_loadb(payload + h.meta_len, h.len - h.meta_len, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(body, "v")), "val");
        assert_int_equal(json_integer_value(json_object_get(body, "n")), call + 1);
        json_decref(body);
        free(payload);
    }
    sbx_fds_close(b.fds);
    kill(f->py.pid, SIGTERM);
    close(f->py.control_fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_python_zygote_serves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_call_past_a_pipelined_call, setup, teardown),
    };
    return cmocka_run_group_tests_name("sandbox/python_host", tests, NULL, NULL);
}
