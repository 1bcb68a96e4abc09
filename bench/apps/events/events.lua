-- Handlers of the event-ingest benchmark.
local tine = require "tine"
local M = {}

function M.record(event, ctx)
  tine.kv.set("bench:last", "[" .. tostring(event.id) .. "]")
end

function M.last(req, ctx)
  return tine.kv.get("bench:last") or "none"
end

return M
