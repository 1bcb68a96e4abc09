-- The `tine` module seen by functions (`local tine = require "tine"`).
-- Loaded once in the zygote by sandbox/lua_host.c, which passes a hidden
-- table `c` of C functions; the hot paths (JSON, logging) live there.
local c = ...

local function read_only(name)
  return function(_, k)
    error(name .. " is read-only (tried to set '" .. tostring(k) .. "')", 2)
  end
end

local tine = { version = c.version }

-- tine.log("a", 1) logs at level info; tine.log.error(...) at level error.
tine.log = setmetatable({ info = c.log_info, error = c.log_error }, { __call = c.log_call })

tine.json = {
  encode = c.json_encode,
  decode = c.json_decode,
  array = c.json_array, -- tine.json.array({}) encodes as [] instead of {}
  null = c.json_null,   -- encodes as null (a nil cannot be stored in a table)
}

-- The function's env from the manifest. A proxy: reads go to the values,
-- writes raise an error, pairs(tine.env) iterates them (the sandbox's pairs
-- honours __pairs).
local env = c.env
tine.env = setmetatable({}, {
  __index = env,
  __newindex = read_only("tine.env"),
  __pairs = function() return next, env, nil end,
  __metatable = false,
})

return tine
