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

-- tine.kv: the app's own key space, kept by the node in Redis. Every call is a
-- host call: the sandbox itself reaches nothing.
local hostcall = c.hostcall
local function check_key(fn, key)
  if type(key) ~= "string" or key == "" then
    error("tine.kv." .. fn .. ": the key must be a non-empty string", 3)
  end
end
tine.kv = {
  -- get(key) -> the stored string, or nil
  get = function(key) check_key("get", key); return hostcall("kv.get", key) end,
  -- set(key, value [, ttl_seconds]) -> true; numbers are stored as strings
  set = function(key, value, ttl)
    check_key("set", key)
    if type(value) == "number" then value = tostring(value) end
    if type(value) ~= "string" then
      error("tine.kv.set: the value must be a string (encode tables with tine.json.encode)", 2)
    end
    if ttl ~= nil and (type(ttl) ~= "number" or ttl <= 0) then
      error("tine.kv.set: ttl must be a positive number of seconds", 2)
    end
    return hostcall("kv.set", key, value, ttl and ttl * 1000 or nil)
  end,
  -- del(key) -> true when the key existed
  del = function(key) check_key("del", key); return hostcall("kv.del", key) end,
  -- incr(key [, by]) -> the new value (a missing key counts from 0)
  incr = function(key, by)
    check_key("incr", key)
    if by ~= nil and (type(by) ~= "number" or by ~= math.floor(by)) then
      error("tine.kv.incr: by must be an integer", 2)
    end
    return hostcall("kv.incr", key, nil, by)
  end,
  -- keys(prefix) -> sorted list of the app's keys starting with prefix
  keys = function(prefix)
    if prefix ~= nil and type(prefix) ~= "string" then error("tine.kv.keys: prefix must be a string", 2) end
    return hostcall("kv.keys", prefix or "")
  end,
}

return tine
