-- price: the total of an order's lines, tax included. Called with
-- tine.invoke, so it gets the payload as its event.
local tine = require "tine"
local M = {}

function M.price(order)
  local net = 0
  for _, line in ipairs(order.lines) do
    if type(line.qty) ~= "number" or type(line.unit) ~= "number" then
      error("each line needs a numeric qty and unit")
    end
    net = net + line.qty * line.unit
  end
  local tax = math.floor(net * tine.env.TAX_PERCENT + 0.5) / 100
  return { net = net, tax = tax, total = net + tax }
end

return M
