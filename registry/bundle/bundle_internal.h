/* Bundles: what their files share beyond the public bundle.h. */
#ifndef TINE_BUNDLE_INTERNAL_H
#define TINE_BUNDLE_INTERNAL_H

#include "bundle.h"

#include <stdbool.h>
#include <stddef.h>

/* Decides, without running it, whether the Lua module `src` (len bytes,
 * already known to compile) certainly lacks the export `export`: *missing
 * is set only when the name appears nowhere in its code and nothing in it
 * can compute keys or hand back another module (see lua_exports.c). Then
 * `exports` receives the module's apparent exports, comma-separated
 * ("" when none is seen). Returns 0, or -ENOMEM. */
int reg__lua_export_check(const char *src, size_t len, const char *export, bool *missing, char *exports,
                          size_t exports_cap);

/* Decides, without running it, whether the Python module `src` (len bytes)
 * certainly lacks a top-level binding of `export` (def, class, assignment
 * or import, see python_exports.c): *missing is set only when none is seen
 * and nothing in the module can bind names unseen. `defined` receives the
 * module's top-level def and class names, comma-separated ("" when none),
 * whatever the verdict. */
void reg__python_export_check(const char *src, size_t len, const char *export, bool *missing, char *defined,
                              size_t defined_cap);

#endif
