--- moonml: machine learning for Lua 5.4 with a C core.
-- `local ml = require "moonml"` returns this table; nothing is set globally.
-- @module moonml
local core = require("moonml.core")

local ml = {}
for name, value in pairs(core) do
  ml[name] = value
end

--- The tensor metatable's method table: `x:name(...)` looks names up here.
ml.methods = core.methods

-- Every tensor method is also a module function taking the tensor first:
-- `x:matmul(y)` is `ml.matmul(x, y)`.
local function export_methods()
  for name, fn in pairs(core.methods) do
    if ml[name] == nil then
      ml[name] = fn
    end
  end
end

core.Tensor.__tostring = require("moonml.tensor_print")
require("moonml.autograd")(ml, core)
require("moonml.serialize")(ml, core)

--- Is `x` a moonml tensor?
-- @param x any value
-- @treturn boolean
function ml.is_tensor(x)
  return getmetatable(x) == core.Tensor
end

export_methods()

-- Sub-packages load on first use (ml.nn, ml.rec, ...); they may require "moonml" at
-- their top, which finds this table.
package.loaded["moonml"] = ml
local subpackages = { nn = "moonml.nn", rec = "moonml.rec", optim = "moonml.optim",
  data = "moonml.data" }
subpackages.image = "moonml.image"
subpackages.plot = "moonml.plot"
subpackages.progress = "moonml.progress"
setmetatable(ml, {
  __index = function(t, key)
    local name = subpackages[key]
    if name then
      local m = require(name)
      rawset(t, key, m)
      return m
    end
  end,
})
return ml
