#!/usr/bin/env bash
# functions-examples/orders: a function invoking another, tine.kv, tine.emit
# and a detached tine.invoke_async, end to end.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
check "deploy orders" "deployed orders version 1" "$(tine deploy "$SRC/functions-examples/orders")"
out=$(http POST /orders/orders -d '{"lines":[{"qty":2,"unit":3.5},{"qty":1,"unit":10}]}')
check_contains "placed" "201 " "$out"
check "priced by the price function" "17 3.4 20.4" \
  "$(echo "${out#* }" | python3 -c 'import json,sys; p=json.load(sys.stdin)["price"]; print(p["net"], p["tax"], p["total"])')"
check_contains "stored in tine.kv" '"total":20.4' "$(http GET /orders/orders/1)"
# tine.emit → the events queue → the orders.placed trigger stamps a receipt.
wait_for 5 sh -c "curl -s $URL/orders/orders/1 | grep -q receipt" || true
check_contains "announced: the orders.placed trigger stamped a receipt" '"receipt":"' "$(http GET /orders/orders/1)"
check_contains "a bad line is refused by the callee" "422 cannot price this order" \
  "$(http POST /orders/orders -d '{"lines":[{"qty":"two","unit":1}]}')"
wait_for 5 grep -q "pricing failed" "$T/a.log"
check_contains "the callee's error is logged by the caller" "tine.invoke: price raised: src/pricing.lua:" "$(cat "$T/a.log")"
check_contains "missing order" "404" "$(http GET /orders/orders/99)"
finish
