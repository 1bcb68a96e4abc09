#!/usr/bin/env bash
# Runs every libFuzzer driver for FUZZ_SECONDS (default 20) each, starting from
# the seed corpus in tests/fuzz/corpus/<driver>/ plus the example manifests.
# Fails when a driver finds a crash, a leak or a sanitizer report.
set -euo pipefail
BIN=${1:?usage: run.sh BUILD_BIN_DIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${FUZZ_SECONDS:-20}
WORK=$(mktemp -d /tmp/tine-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# seed DRIVER: a fresh corpus directory for the driver, filled with its seeds.
seed() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  if [ -d "$SRC/tests/fuzz/corpus/$1" ]; then cp "$SRC/tests/fuzz/corpus/$1"/* "$dir/" 2>/dev/null || true; fi
  echo "$dir"
}

manifest_corpus=$(seed fuzz_manifest)
for f in "$SRC"/functions-examples/*/tine.yaml; do
  # The driver reads the first byte as the syntax switch: 0 = YAML.
  { printf '\0'; cat "$f"; } >"$manifest_corpus/$(basename "$(dirname "$f")").yaml"
done

# A real bundle to mutate: the hello example as tine deploy would pack it.
bundle_corpus=$(seed fuzz_bundle)
python3 - "$SRC/functions-examples/hello" "$bundle_corpus/hello.tgz" <<'PY'
import os, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w:gz") as t:
    for root, _, files in os.walk(src):
        for f in sorted(files):
            p = os.path.join(root, f)
            t.add(p, arcname=os.path.relpath(p, src))
PY

# Lua modules to mutate: the examples' and the SDK (first byte: the export).
lua_corpus=$(seed fuzz_lua_exports)
for f in "$SRC"/functions-examples/*/*.lua "$SRC"/functions-examples/*/src/*.lua "$SRC"/sdk/lua/*.lua; do
  [ -f "$f" ] && { printf '\0'; cat "$f"; } >"$lua_corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
done

# Python modules to mutate: the SDK's and the examples' (first byte: the name).
py_corpus=$(seed fuzz_python_exports)
for f in "$SRC"/functions-examples/*/*.py "$SRC"/functions-examples/*/src/*.py "$SRC"/sdk/python/*.py; do
  [ -f "$f" ] && { printf '\0'; cat "$f"; } >"$py_corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
done

# Zips to mutate: an OpenWhisk Python action's, with a directory.
zip_corpus=$(seed fuzz_openwhisk_zip)
python3 - "$zip_corpus/action.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("lib/", "")
    z.writestr("lib/util.py", "def f():\n    return 1\n")
    z.writestr("__main__.py", "def main(p):\n    return {}\n")
PY

rc=0
for d in fuzz_manifest fuzz_cron fuzz_routes fuzz_bundle fuzz_lua_exports fuzz_python_exports fuzz_wire fuzz_proxy fuzz_cloudevents fuzz_redis_url fuzz_http_head fuzz_openwhisk_zip; do
  corpus=$(seed $d)
  echo "== $d (${SECS}s)"
  if ! "$BIN/$d" -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=0 -artifact_prefix="$WORK/$d-" "$corpus" >"$WORK/$d.log" 2>&1; then
    echo "FAIL $d"; tail -n 60 "$WORK/$d.log"
    mkdir -p "$SRC/build-fuzz/artifacts" && cp "$WORK/$d-"* "$SRC/build-fuzz/artifacts/" 2>/dev/null || true
    rc=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$WORK/$d.log" | tail -n 1 || true
  fi
done
exit $rc
