--- nn.Linear(in_features, out_features[, {bias = true}]): y = x W^T + b.
-- weight is out x in (PyTorch's layout), both initialised as PyTorch does: uniform in
-- +-1/sqrt(in_features).
-- @classmod moonml.nn.Linear
local ml = require("moonml")
local Module = require("moonml.nn.module")
local init = require("moonml.nn.initializers")

local Linear = Module:extend("Linear")

local function check_size(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error("moonml.nn.Linear: " .. what .. " must be a positive integer, got " .. tostring(v), 0)
  end
end

--- A new Linear layer: weight out_features x in_features, bias out_features (unless
-- {bias = false}); {dtype = "float64"} for double precision.
function Linear.new(in_features, out_features, opts)
  check_size(in_features, "in_features")
  check_size(out_features, "out_features")
  opts = Module.check_opts("Linear", opts, { bias = true, dtype = true })
  local self = Module.init(Linear)
  self.in_features, self.out_features = in_features, out_features
  local dtype = opts.dtype or "float32"
  if dtype ~= "float32" and dtype ~= "float64" then
    error("moonml.nn.Linear: dtype must be \"float32\" or \"float64\", got " .. tostring(dtype), 0)
  end
  local w = self:register_parameter("weight", ml.empty(out_features, in_features, { dtype = dtype }))
  init.kaiming_uniform_(w, { a = math.sqrt(5) })
  if opts.bias ~= false then
    local bound = 1 / math.sqrt(in_features)
    self:register_parameter("bias", init.uniform_(ml.empty(out_features, { dtype = dtype }), -bound, bound))
  end
  return self
end

local linear = ml.linear

-- One fused op (src/ops/linear.c) with one autograd node; it checks the input and names
-- this module in its errors.
--- x W^T + b for x of shape [..., in_features].
function Linear:forward(x)
  return linear(x, self.weight, self.bias, "nn.Linear")
end
Linear.__call = Linear.forward

--- "<in> -> <out>" (", no bias" without one).
function Linear:extra_repr()
  return string.format("%d -> %d%s", self.in_features, self.out_features,
    self.bias == nil and ", no bias" or "")
end

return Linear
