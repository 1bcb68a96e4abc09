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

-- Batches of 100 hops (in process when the app is deployed in a group, see
-- bench/apps/hop-group); answers each batch's microseconds per hop, sorted,
-- separated by spaces.
function M.loop(req, ctx)
  local batches = tonumber(req.query and req.query.n) or 50
  local out = {}
  for b = 1, batches do
    local t0 = tine.now()
    for _ = 1, 100 do tine.invoke("leaf", { from = "loop" }) end
    out[b] = (tine.now() - t0) * 1e6 / 100
  end
  table.sort(out)
  for i = 1, #out do out[i] = string.format("%.2f", out[i]) end
  return table.concat(out, " ")
end

return M
