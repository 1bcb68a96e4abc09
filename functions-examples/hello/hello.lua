-- hello: answers "hello, NAME" for GET /hello/ and GET /hello/hi/:name.
local M = {}

function M.hi(req, ctx)
  local name = "world"
  if req.params and req.params.name then
    name = req.params.name
  elseif req.query and req.query.name then
    name = req.query.name
  elseif req.name then -- invoked directly: tine invoke hello hi '{"name":"x"}'
    name = req.name
  end
  return "hello, " .. name .. "\n"
end

return M
