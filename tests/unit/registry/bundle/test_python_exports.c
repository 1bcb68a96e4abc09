/* The deploy-time scan of a Python handler module for the function it must
 * define (registry/bundle/python_exports.c): refused only when certainly
 * missing, with the module's top-level names; every way a module can bind
 * the name at its top level is accepted. */
#include "bundle_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void expect_missing(const char *py, const char *defined)
{
    bool missing = false;
    char names[256];
    reg__python_export_check(py, strlen(py), "handle", &missing, names, sizeof(names));
    if (!missing)
        fail_msg("accepted a module without handle:\n%s", py);
    assert_string_equal(names, defined);
}

static void expect_found(const char *py)
{
    bool missing = true;
    char names[256];
    reg__python_export_check(py, strlen(py), "handle", &missing, names, sizeof(names));
    if (missing)
        fail_msg("refused a module that may define handle (it defines: %s):\n%s", names, py);
}

static void test_missing(void **state)
{
    (void)state;
    expect_missing("def handler(req, ctx):\n    return 'x'\n\nclass Thing:\n    pass\n", "handler, Thing");
    expect_missing("", "");
    expect_missing("import json\n# def handle(req, ctx): commented out\n", "");
    expect_missing("'''\ndef handle(req, ctx):\n    a docstring\n'''\ndef other(): pass\n", "other");
    expect_missing("x = \"def handle(): pass\"\ny = r'\\' handle = 1'\n", "");
    expect_missing("def outer():\n    def handle(req, ctx):\n        return 1\n    handle = 2\n    return handle\n",
                   "outer");
    expect_missing("class C:\n    handle = staticmethod(print)\n    def handle(self): pass\n", "C");
    expect_missing("handle == 1\nhandle += 1\nprint(handle)\nhandle.x = 1\nhandle[0] = 1\n", "");
    expect_missing("def f(a=(1,\n  2), handle=3):\n    pass\n", "f");
    expect_missing("from m import handler, handles as h\nimport handle_it\n", "");
    expect_missing("x = f(\n    handle = 1,\n)\n", "");
    expect_missing("if x:\n    pass\nelse:\n    y = 1\ndef g():\n    if z:\n        handle = 1\n", "g");
}

static void test_found(void **state)
{
    (void)state;
    expect_found("def handle(req, ctx):\n    return 'x'\n");
    expect_found("async def handle(req, ctx):\n    return 'x'\n");
    expect_found("\xEF\xBB\xBF#!/usr/bin/env python3\nimport json\n\n@decorate\ndef handle(req, ctx): return 1\n");
    expect_found("class handle:\n    pass\n");
    expect_found("handle = make_handler()\n");
    expect_found("handle: Callable = make_handler()\n");
    expect_found("a, handle = 1, 2\n");
    expect_found("(a, handle) = 1, 2\n");
    expect_found("x = 1; handle = 2\n");
    expect_found("import handle\n");
    expect_found("import os, handle.sub\n");
    expect_found("import impl as handle\n");
    expect_found("from impl import handle\n");
    expect_found("from .impl import other, run as handle\n");
    expect_found("from impl import (\n    other,\n    handle,\n)\n");
    expect_found("x = '''\n'''\ndef handle(): pass\n");
    expect_found("s = 'a\\\nb'\ndef handle(): pass\n");
    expect_found("x = 1 + \\\n  2\nhandle = x\n");
    expect_found("x = 1\r\nhandle = x\r\n");
    /* Conditional definitions at the module's level count. */
    expect_found("try:\n    from fast import handle\nexcept ImportError:\n    def handle(req, ctx): return 1\n");
    expect_found("if DEBUG:\n    handle = debug_handle\n");
    expect_found("if DEBUG: handle = debug_handle\n");
    expect_found("with open('x') as f:\n    handle = f\n");
    /* What can bind names the scan cannot see: accepted. */
    expect_found("from impl import *\n");
    expect_found("globals()['han' + 'dle'] = print\n");
    expect_found("import sys\nsetattr(sys.modules[__name__], 'x', 1)\n");
    expect_found("exec('def handle(): pass')\n");
    expect_found("def __getattr__(name):\n    return print\n");
    /* What the scan cannot read to its end: Python reports it at import. */
    expect_found("x = (1,\n");
    expect_found("x = 'unterminated\n");
    expect_found("x = ]\n");
}

/* The list of names stops when full, always terminated. */
static void test_names_cut(void **state)
{
    (void)state;
    bool missing = false;
    char names[12];
    const char *py = "def alpha(): pass\ndef beta(): pass\ndef gamma(): pass\n";
    reg__python_export_check(py, strlen(py), "handle", &missing, names, sizeof(names));
    assert_true(missing);
    assert_string_equal(names, "alpha, beta");
    reg__python_export_check(py, strlen(py), "handle", &missing, names, 0);
    assert_true(missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_found),
        cmocka_unit_test(test_names_cut),
    };
    return cmocka_run_group_tests_name("registry/bundle/python_exports", tests, NULL, NULL);
}
