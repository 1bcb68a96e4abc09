-- The Lua side: the route's handler, and the counter the Node side asks for.
local tine = require "tine"
local M = {}

function M.greet(req, ctx)
  local composed = tine.invoke("compose", { name = req.params.name })
  return { greeting = composed.text, visits = composed.visits, by = { ctx["function"], composed.by[1], composed.by[2] } }
end

function M.count(event, ctx)
  return { n = tine.kv.incr("visits:" .. event.name) }
end

return M
