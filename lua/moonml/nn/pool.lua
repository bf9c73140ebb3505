--- Pooling layers over ml.max_pool2d, ml.avg_pool2d and ml.adaptive_avg_pool2d.
local ml = require("moonml")
local Module = require("moonml.nn.module")

local pool = {}

local function kernel_layer(name, fn, allowed)
  local cls = Module:extend(name)
  --- Creates the module; the arguments are described at the top of this file.
  function cls.new(kernel_size, opts)
    local self = Module.init(cls)
    self.kernel_size = kernel_size
    self.opts = Module.check_opts(name, opts, allowed)
    return self
  end
  --- Applies the module to its input (called as module(x)).
  function cls:forward(x)
    return fn(x, self.kernel_size, self.opts)
  end
  cls.__call = cls.forward
  --- The settings shown by tostring.
  function cls:extra_repr()
    local k = self.kernel_size
    return "kernel_size=" .. (type(k) == "table" and ("{" .. table.concat(k, ", ") .. "}") or tostring(k))
  end
  pool[name] = cls
end

-- nn.MaxPool2d(kernel_size[, {stride = kernel_size, padding = 0, dilation = 1,
-- ceil_mode = false, return_indices = false}])
kernel_layer("MaxPool2d", ml.max_pool2d, { stride = true, padding = true, dilation = true,
  ceil_mode = true, return_indices = true })
-- nn.AvgPool2d(kernel_size[, {stride, padding, ceil_mode, count_include_pad,
-- divisor_override}])
kernel_layer("AvgPool2d", ml.avg_pool2d, { stride = true, padding = true, ceil_mode = true,
  count_include_pad = true, divisor_override = true })

--- nn.AdaptiveAvgPool2d(output_size)
local Adaptive = Module:extend("AdaptiveAvgPool2d")
--- Creates the module; the arguments are described at the top of this file.
function Adaptive.new(output_size)
  local ok = math.type(output_size) == "integer" and output_size > 0
  if type(output_size) == "table" then
    ok = math.type(output_size[1]) == "integer" and output_size[1] > 0
      and math.type(output_size[2]) == "integer" and output_size[2] > 0
  end
  if not ok then
    error("moonml.nn.AdaptiveAvgPool2d: output_size must be a positive integer or a pair of them, got "
      .. tostring(output_size), 0)
  end
  local self = Module.init(Adaptive)
  self.output_size = output_size
  return self
end
--- Applies the module to its input (called as module(x)).
function Adaptive:forward(x)
  return ml.adaptive_avg_pool2d(x, self.output_size)
end
--- The settings shown by tostring.
function Adaptive:extra_repr()
  local s = self.output_size
  return "output_size=" .. (type(s) == "table" and ("{" .. table.concat(s, ", ") .. "}") or tostring(s))
end
pool.AdaptiveAvgPool2d = Adaptive

return pool
