-- store: the to-do items in tine.kv.
local tine = require "tine"

local S = {}

function S.get(id)
  if not tostring(id):match("^%d+$") then return nil end
  local raw = tine.kv.get("item:" .. id)
  return raw and tine.json.decode(raw) or nil
end

function S.put(item)
  if item.id == nil then item.id = tine.kv.incr("next_id") end
  tine.kv.set("item:" .. item.id, tine.json.encode(item))
  return item
end

function S.del(id)
  if not tostring(id):match("^%d+$") then return false end
  return tine.kv.del("item:" .. id)
end

function S.all()
  local items = tine.json.array({}) -- encodes as [] even when empty
  for _, key in ipairs(tine.kv.keys("item:")) do
    local raw = tine.kv.get(key)
    if raw then items[#items + 1] = tine.json.decode(raw) end
  end
  table.sort(items, function(a, b) return a.id < b.id end)
  return items
end

return S
