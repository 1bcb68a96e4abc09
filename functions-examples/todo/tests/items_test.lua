-- `tine test functions-examples/todo`: the REST API end to end, and what
-- it keeps in tine.kv.
test("create, read, update, delete", function(t)
  local r = t.post("/items", { json = { title = "milk" } })
  t.eq(r.status, 201)
  local id = r.json.id
  t.eq(r.headers.location, "/todo/items/" .. id)
  t.eq(t.get("/items/" .. id).json, { id = id, title = "milk", done = false })
  t.eq(t.put("/items/" .. id, { json = { done = true } }).json.done, true)
  t.eq(t.delete("/items/" .. id).status, 204)
  t.eq(t.get("/items/" .. id).status, 404)
end)

test("items are kept in tine.kv", function(t)
  local r = t.post("/items", { json = { title = "bread" } })
  local stored = t.kv("item:" .. r.json.id)
  t.ok(stored, "item:" .. r.json.id .. " is stored")
  t.contains(stored, '"title":"bread"')
end)

test("a bad body is refused", function(t)
  local r = t.post("/items", { body = "not json" })
  t.eq(r.status, 400)
  t.eq(r.json.error, "expected a JSON object")
end)
