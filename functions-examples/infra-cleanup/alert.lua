-- Pages when a cleanup failed. The event is a tine.log.line whose data holds
-- the line ("ERROR cleanup failed: cleanup.sh exited with status 1: ..."),
-- its level, the function and the invocation that logged it.
--
-- A failed cleanup is retried (attempts: 5), and each failed attempt logs
-- the same line: the first one pages, the others within the hour do not
-- (a counter in tine.kv per failure text, expiring after an hour).
local tine = require "tine"
local M = {}

local QUIET_S = 3600

function M.page(event, ctx)
  local d = event.data
  local key = "paged:" .. d.line:sub(1, 400)
  if tine.kv.incr(key) > 1 then
    return { paged = false, line = d.line }
  end
  tine.kv.set(key, "1", { ttl = QUIET_S })
  tine.log.error("PAGE: " .. d["function"] .. " (invocation " .. d.invocation_id .. "): " .. d.line)
  -- A real pager call goes here, e.g. an HTTP POST to the on-call service.
  return { paged = true, line = d.line }
end

return M
