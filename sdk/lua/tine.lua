-- The `tine` module seen by functions (`local tine = require "tine"`).
-- Loaded once in the zygote by sandbox/lua_host.c, which passes a hidden
-- table `c` of C functions; the hot paths (JSON, logging, the host-call
-- frames) live there. Every outside effect is a host call answered by tined:
-- the sandbox itself reaches nothing. See docs/sdk-lua.md.
local c = ...

local type, tostring, error, floor, pairs = type, tostring, error, math.floor, pairs

local function read_only(name)
  return function(_, k)
    error(name .. " is read-only (tried to set '" .. tostring(k) .. "')", 2)
  end
end

local tine = { version = c.version, now = c.now } -- now(): wall-clock seconds, µs resolution

-- tine.log("a", 1) logs at level info; tine.log.error(...) at level error.
tine.log = setmetatable({ info = c.log_info, error = c.log_error }, { __call = c.log_call })

local encode, decode = c.json_encode, c.json_decode
tine.json = {
  encode = encode,
  decode = decode,
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

-- Host calls. `call` runs one and raises "tine.<name>: <message>" at the
-- level of the user code that called the public function, so every public
-- function below calls it directly (never as a tail call).
local hostcall = c.hostcall
local function call(name, op, args, body)
  local meta, b = hostcall(op, args, body)
  if meta == nil then error("tine." .. name .. ": " .. b, 3) end
  return meta, b
end

-- Argument checks raise at the level of the user code too: check -> public
-- function -> user is level 3; helpers between add one (`depth`).
local function check(ok, name, message, depth)
  if not ok then error("tine." .. name .. ": " .. message, 3 + (depth or 0)) end
end

-- ---------------------------------------------------------- tine.secret
-- The value of one of the app's secrets (tine secrets set APP NAME), read
-- from the node and decrypted there; a log line holding it is redacted.

function tine.secret(name)
  check(type(name) == "string" and name:match("^[%a_][%w_]*$") ~= nil and #name <= 128, "secret",
    "the name must be 1 to 128 of [A-Za-z0-9_], not starting with a digit")
  local _, value = call("secret", "secret", { name = name })
  return value
end

-- ------------------------------------------------------------- tine.kv
-- The app's own key space, kept by the node in Redis.

local function check_key(name, key)
  check(type(key) == "string" and key ~= "", name, "the key must be a non-empty string", 1)
end

-- Seconds from a ttl argument: a number (seconds) or { ttl = seconds }.
local function ttl_ms(opts)
  local ttl = opts
  if type(opts) == "table" then ttl = opts.ttl end
  if ttl == nil then return nil end
  if type(ttl) ~= "number" or ttl <= 0 or ttl ~= ttl then return false end
  local ms = floor(ttl * 1000 + 0.5)
  return ms >= 1 and ms or 1
end

tine.kv = {
  -- get(key) -> the stored string, or nil
  get = function(key)
    check_key("kv.get", key)
    local meta, value = call("kv.get", "kv.get", { key = key })
    if meta.found then return value end
    return nil
  end,
  -- set(key, value [, { ttl = seconds } | seconds]) -> true; numbers are stored as strings
  set = function(key, value, opts)
    check_key("kv.set", key)
    if type(value) == "number" then value = tostring(value) end
    check(type(value) == "string", "kv.set", "the value must be a string (encode tables with tine.json.encode)")
    check(opts == nil or type(opts) == "number" or type(opts) == "table", "kv.set",
      "the third argument must be { ttl = seconds } or a number of seconds")
    local ms = ttl_ms(opts)
    check(ms ~= false, "kv.set", "ttl must be a positive number of seconds")
    call("kv.set", "kv.set", { key = key, ttl_ms = ms }, value)
    return true
  end,
  -- del(key) -> true when the key existed
  del = function(key)
    check_key("kv.del", key)
    local meta = call("kv.del", "kv.del", { key = key })
    return meta.deleted == true
  end,
  -- incr(key [, by]) -> the new value (a missing key counts from 0)
  incr = function(key, by)
    check_key("kv.incr", key)
    check(by == nil or (type(by) == "number" and by == floor(by)), "kv.incr", "by must be an integer")
    local meta = call("kv.incr", "kv.incr", { key = key, by = by or 1 })
    return meta.value
  end,
  -- keys([prefix]) -> sorted list of the app's keys starting with prefix
  keys = function(prefix)
    check(prefix == nil or type(prefix) == "string", "kv.keys", "prefix must be a string")
    local meta = call("kv.keys", "kv.keys", { prefix = prefix or "" })
    return meta.keys
  end,
}

-- ----------------------------------------------------------- tine.http

local function check_headers(name, headers)
  if headers == nil then return end
  check(type(headers) == "table", name, "headers must be a table of name = value", 1)
  for k, v in pairs(headers) do
    check(type(k) == "string" and k:match("^[!#$%%&'*+.^_`|~0-9A-Za-z-]+$") ~= nil, name,
      "bad header name " .. tostring(k), 1)
    check(type(v) == "string" or type(v) == "number", name,
      "header " .. k .. " must be a string or a number, got a " .. type(v), 1)
  end
end

tine.http = {
  -- request{ url, method = "GET", headers = {}, body = "", timeout = seconds }
  --   -> { status = 200, headers = { ["content-type"] = ... }, body = "..." }
  request = function(req)
    check(type(req) == "table", "http", "expected a table { url = ..., method = ..., ... }")
    check(type(req.url) == "string" and req.url ~= "", "http", "url must be a non-empty string")
    local method = req.method or "GET"
    check(type(method) == "string" and method:match("^%u+$") ~= nil and #method <= 16, "http",
      "method must be an upper-case word such as GET or POST")
    check_headers("http", req.headers)
    local body = req.body
    check(body == nil or type(body) == "string", "http", "body must be a string")
    local timeout = req.timeout
    check(timeout == nil or (type(timeout) == "number" and timeout > 0), "http",
      "timeout must be a positive number of seconds")
    local meta, rbody = call("http", "http", {
      url = req.url, method = method, headers = req.headers,
      timeout_ms = timeout and floor(timeout * 1000 + 0.5) or nil,
    }, body)
    return { status = meta.status, headers = meta.headers, body = rbody }
  end,
}

-- ------------------------------------------------- tine.invoke, tine.emit

-- JSON of a payload, or an error at the user's level naming the call.
local function encode_arg(name, what, value)
  local ok, json = pcall(encode, value)
  if not ok then
    error("tine." .. name .. ": " .. what .. ": " .. (json:gsub("^tine%.json%.encode: ", "", 1)), 3)
  end
  return json
end

-- invoke(fn, payload) -> result, info: calls function `fn` of this app (the
-- same version) with `payload` as its event and waits for it. `result` is
-- what the callee returned: a table for JSON, a string for text, nil for no
-- body; info = { status, headers, invocation_id }. Raises when the callee
-- raised, timed out or could not run.
local group_invoke = c.group_invoke
function tine.invoke(fn, payload)
  check(type(fn) == "string" and fn ~= "", "invoke", "the function name must be a non-empty string")
  local arg = encode_arg("invoke", "payload", payload)
  -- A function of this sandbox's co-location group runs in process.
  local meta, body = group_invoke(fn, arg)
  if meta == false then
    meta, body = call("invoke", "invoke", { fn = fn }, arg)
  elseif meta == nil then
    error("tine.invoke: " .. body, 2)
  end
  local result, headers = body, meta.headers
  if meta.json then
    result = decode(body)
    headers = headers or { ["content-type"] = "application/json" }
  elseif body == "" and meta.status == 204 then
    result = nil
  end
  return result, { status = meta.status, headers = headers or {}, invocation_id = meta.invocation_id }
end

-- invoke_async(fn, payload) -> invocation id: starts `fn` and returns at once.
function tine.invoke_async(fn, payload)
  check(type(fn) == "string" and fn ~= "", "invoke_async", "the function name must be a non-empty string")
  local meta = call("invoke_async", "invoke", { fn = fn, async = true }, encode_arg("invoke_async", "payload", payload))
  return meta.invocation_id
end

-- emit(type, data) -> event id: publishes a CloudEvent (source
-- tine://APP/FUNCTION) into the node's event stream.
function tine.emit(event_type, data)
  check(type(event_type) == "string" and event_type ~= "", "emit", "the event type must be a non-empty string")
  local meta = call("emit", "emit", { type = event_type }, data ~= nil and encode_arg("emit", "data", data) or nil)
  return meta.id
end

return tine
