#!/usr/bin/env bash
# The helpers every test script stands on: a script that cannot run here
# exits with the skip code ctest registers (not 0, not a failure), and a
# check fed by a command that failed fails even when the command's empty
# output is what it compares against.
. "$(dirname "$0")/lib.sh"

# script NAME BODY: a test script on lib.sh; prints "EXIT_STATUS" then its output.
script() {
  printf '. "%s/tests/integration/lib.sh"\n%s\n' "$SRC" "$2" >"$T/$1.sh"
  local rc=0 out
  out=$(bash "$T/$1.sh" 2>&1) || rc=$?
  printf '%s\n%s' "$rc" "$out"
}

out=$(script skipped 'skip_all "podman is not installed"')
check "skip_all exits with the skip code" "$SKIP_RC" "$(head -1 <<<"$out")"
check_contains "skip_all says why" "SKIP: podman is not installed" "$out"

out=$(script all_skipped 'skip "a layer" "it is off"; finish')
check "a script whose every check was skipped is skipped" "$SKIP_RC" "$(head -1 <<<"$out")"

out=$(script some_skipped 'ok "one"; skip "two" "off"; finish')
check "a script with passed and skipped checks passes" "0" "$(head -1 <<<"$out")"
check_contains "and counts the skipped ones" "1 passed, 0 failed, 1 skipped" "$out"

out=$(script vacuous 'check "nothing listed" "" "$(run false)"; finish')
check "an empty answer of a failed command does not pass" "1" "$(head -1 <<<"$out")"
check_contains "the failure names the command and its status" \
  "FAIL nothing listed: false exited with status 1" "$out"

out=$(script vacuous_contains 'check_contains "says ok" "" "$(run sh -c "echo ok; exit 3")"; finish')
check "check_contains fails after a failed command" "1" "$(head -1 <<<"$out")"

out=$(script unchecked 'x=$(run false); ok "something else"; finish')
check "a failed command no check consumed still fails the script" "1" "$(head -1 <<<"$out")"

out=$(script fine 'check "listed" "a" "$(run echo a)"; check "empty" "" "$(run true)"; finish')
check "commands that succeed leave the checks alone" "0" "$(head -1 <<<"$out")"
check_contains "both passed" "2 passed, 0 failed, 0 skipped" "$out"

out=$(script failed 'fail "x" "y"; finish')
check "a failed check fails the script" "1" "$(head -1 <<<"$out")"
finish
