-- Pages on an ERROR line of the cleanup script: the event is a
-- tine.log.line whose data holds the line, its level, the function and the
-- invocation that logged it.
local tine = require "tine"
local M = {}

function M.page(event, ctx)
  local d = event.data
  tine.log.error("PAGE: " .. d["function"] .. " (invocation " .. d.invocation_id .. "): " .. d.line)
  -- A real pager call goes here, e.g. an HTTP POST to the on-call service.
  return { paged = true, line = d.line }
end

return M
