#!/usr/bin/env bash
# Two nodes on one Redis: a deploy through one is served by both (deploy
# announcements over pub/sub), and a rollback through the other too.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
start_node b --redis "$REDIS_URL"
make_app "$T/v1" one
make_app "$T/v2" two
URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/v1" >/dev/null
URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/v2" >/dev/null
URL=$URL_b
wait_for 5 bash -c "curl -s $URL_b/demo/who | grep -q 'two 2'" || true
check "node b serves what a deployed" "200 two 2" "$(http GET /demo/who)"
URL=$URL_b TOKEN=$TOKEN_b tine rollback demo >/dev/null
URL=$URL_a
wait_for 5 bash -c "curl -s $URL_a/demo/who | grep -q 'one 1'" || true
check "node a follows b's rollback" "200 one 1" "$(http GET /demo/who)"
# A node started later loads the live versions at start.
start_node c --redis "$REDIS_URL"
check "a new node serves the live version" "200 one 1" "$(http GET /demo/who)"
finish
