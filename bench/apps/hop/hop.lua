-- Handlers of the hop benchmark: the same answer with and without one hop.
local tine = require "tine"
local M = {}

function M.zero(req, ctx)
  return "hop done"
end

function M.one(req, ctx)
  tine.invoke("leaf", { from = "one" })
  return "hop done"
end

function M.leaf(event, ctx)
  return "leaf"
end

return M
