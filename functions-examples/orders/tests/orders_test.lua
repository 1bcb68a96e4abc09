-- `tine test functions-examples/orders`: an order is priced by another
-- function, and the orders.placed event it emits stamps a receipt on it.
test("placing an order prices it and emits orders.placed", function(t)
  local r = t.post("/orders", { json = { lines = { { qty = 2, unit = 3.5 } } } })
  t.eq(r.status, 201)
  local id = r.json.id
  t.ok(r.json.price and r.json.price.total, "the order has a price")
  -- The event trigger runs receipt on its own; wait for it.
  local a = t.wait_invocation("receipt")
  t.eq(a.outcome, "ok")
  t.ok(t.get("/orders/" .. id).json.receipt, "the receipt is stamped")
end)

test("an event emitted from outside reaches the trigger", function(t)
  local r = t.post("/orders", { json = { lines = { { qty = 1, unit = 1 } } } })
  t.wait_invocation("receipt")
  local id = t.emit("orders.placed", { id = r.json.id, total = 1 })
  local a = t.wait_invocation("receipt")
  t.eq(a.outcome, "ok")
  t.eq(t.get("/orders/" .. r.json.id).json.receipt, id)
end)

test("a body that is no order", function(t)
  t.eq(t.post("/orders", { body = "{}" }).status, 400)
end)
