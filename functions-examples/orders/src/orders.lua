-- Orders in tine.kv; prices from the `price` function.
local tine = require "tine"
local M = {}

function M.place(req)
  local ok, order = pcall(tine.json.decode, req.body)
  if not ok or type(order) ~= "table" or type(order.lines) ~= "table" then
    return { status = 400, body = "expected JSON {\"lines\": [{\"qty\": 2, \"unit\": 3.5}]}" }
  end
  local priced, err = pcall(tine.invoke, "price", { lines = order.lines })
  if not priced then
    tine.log.error("pricing failed:", err)
    return { status = 422, body = "cannot price this order" }
  end
  order.price = err -- pcall's second value: invoke's result
  order.id = tine.kv.incr("next_id")
  tine.kv.set("order:" .. order.id, tine.json.encode(order))
  tine.emit("orders.placed", { id = order.id, total = order.price.total })
  tine.invoke_async("notify", { id = order.id })
  return { status = 201, headers = { location = "/orders/orders/" .. order.id }, json = order }
end

function M.get(req)
  local raw = tine.kv.get("order:" .. req.params.id)
  if not raw then return { status = 404, body = "no such order" } end
  return { status = 200, headers = { ["content-type"] = "application/json" }, body = raw }
end

-- The `orders.placed` trigger: the event tine.emit announced, delivered by
-- the node's events queue (at least once: keyed by the event id).
function M.receipt(event)
  local raw = tine.kv.get("order:" .. event.data.id)
  if not raw then return end
  local order = tine.json.decode(raw)
  order.receipt = event.id
  tine.kv.set("order:" .. order.id, tine.json.encode(order))
end

-- Runs detached; a failed webhook is logged, never seen by the customer.
function M.notify(ev)
  local url = tine.env.WEBHOOK_URL
  if url == nil or url == "" then return end
  local ok, r = pcall(tine.http.request, {
    url = url, method = "POST", timeout = 2,
    headers = { ["content-type"] = "application/json" },
    body = tine.kv.get("order:" .. ev.id),
  })
  if not ok then tine.log.error("webhook:", r) elseif r.status >= 300 then tine.log.error("webhook status", r.status) end
end

return M
