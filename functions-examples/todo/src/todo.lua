-- todo: items are JSON objects {id, title, done} stored in tine.kv under
-- "item:<id>"; ids come from the counter "next_id".
local tine = require "tine"
local store = require "src.store"

local M = {}

local function bad_request(msg)
  return { status = 400, json = { error = msg } }
end

local function parse_body(req)
  if req.body == nil or req.body == "" then
    return nil, "expected a JSON body"
  end
  local ok, value = pcall(tine.json.decode, req.body)
  if not ok or type(value) ~= "table" then
    return nil, "expected a JSON object"
  end
  return value
end

function M.list(req, ctx)
  return { status = 200, json = { items = store.all() } }
end

function M.create(req, ctx)
  local body, err = parse_body(req)
  if not body then return bad_request(err) end
  if type(body.title) ~= "string" or body.title == "" then
    return bad_request("title: expected a non-empty string")
  end
  if #store.all() >= tonumber(tine.env.MAX_ITEMS) then
    return { status = 409, json = { error = "the list is full" } }
  end
  local item = store.put({ title = body.title, done = body.done == true })
  tine.log("created item", item.id)
  return { status = 201, headers = { location = "/todo/items/" .. item.id }, json = item }
end

function M.get(req, ctx)
  local item = store.get(req.params.id)
  if not item then return { status = 404, json = { error = "no item " .. req.params.id } } end
  return { status = 200, json = item }
end

function M.update(req, ctx)
  local item = store.get(req.params.id)
  if not item then return { status = 404, json = { error = "no item " .. req.params.id } } end
  local body, err = parse_body(req)
  if not body then return bad_request(err) end
  if body.title ~= nil then
    if type(body.title) ~= "string" or body.title == "" then
      return bad_request("title: expected a non-empty string")
    end
    item.title = body.title
  end
  if body.done ~= nil then item.done = body.done == true end
  store.put(item)
  return { status = 200, json = item }
end

function M.delete(req, ctx)
  if not store.del(req.params.id) then
    return { status = 404, json = { error = "no item " .. req.params.id } }
  end
  return { status = 204 }
end

return M
