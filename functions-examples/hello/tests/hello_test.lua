-- `tine test functions-examples/hello`: t.get requests a route of the app,
-- t.invoke calls a function directly.
test("answers over HTTP", function(t)
  local r = t.get("/hi/ada")
  t.eq(r.status, 200)
  t.eq(r.body, "hello, ada\n")
end)

test("invoked directly with a name", function(t)
  local r = t.invoke("hi", { name = "cy" })
  t.eq(r.status, 200)
  t.eq(r.body, "hello, cy\n")
end)
