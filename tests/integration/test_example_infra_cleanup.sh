#!/usr/bin/env bash
# The infra-cleanup example without a container engine: container events
# are posted as CloudEvents. A removal is cleaned up; a cleanup that fails
# (an event without a container name) is retried five times, ends in the
# dead letters, and pages once: not once per line it logged, nor once per
# attempt.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
check "deploy the example" "deployed infra-cleanup version 1" "$(tine deploy "$SRC/functions-examples/infra-cleanup")"
pages() { run tine logs infra-cleanup alert | grep -c 'PAGE:' || true; }

run tine events emit --type container.remove --source podman://test --data '{"id":"c0ffee","name":"web-1"}' >/dev/null
wait_for 10 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' logs infra-cleanup cleanup | grep -q web-1" || true
check_contains "a removal is cleaned up" "cleanup v1 info: cleaning up after container web-1" \
  "$(run tine logs infra-cleanup cleanup)"
check "a cleanup that worked pages nobody" "0" "$(pages)"

run tine events emit --type container.destroy --source docker://test --data '{"id":"bad"}' >/dev/null
# Five attempts, 200 ms apart and doubling, then a dead letter.
wait_for 30 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' events dlq infra-cleanup | grep -q cleanup" || true
dlq=$(run tine events dlq infra-cleanup)
# the script's own stderr line (info), not the error line that ends the call (issue 16 item 14)
failures() { run tine logs infra-cleanup cleanup | grep -c 'info: container event without a container name' || true; }
for _ in $(seq 50); do [ "$(failures)" = 5 ] && break; sleep 0.1; done # the last attempt's record
check_contains "the failed cleanup ends in the dead letters after five attempts" "cleanup   5" "$dlq"
check "the script failed five times" "5" "$(failures)"
sleep 1 # the alerts of the last attempts
check "one failed cleanup pages once" "1" "$(pages)"
check_contains "the page says what failed" "PAGE: cleanup (invocation" "$(run tine logs infra-cleanup alert)"
check_contains "and why" "cleanup failed: cleanup.sh exited with status 1: container event without a container name" \
  "$(run tine logs infra-cleanup alert)"

# Another container's failure is another page.
run tine events emit --type container.remove --source podman://test --data '{"id":"worse"}' >/dev/null
wait_for 30 bash -c "[ \"\$('$BIN/tine' --url '$URL' --token '$TOKEN' logs infra-cleanup alert | grep -c PAGE:)\" = 2 ]" || true
sleep 1
check "a second failed cleanup: a second page" "2" "$(pages)"
finish
