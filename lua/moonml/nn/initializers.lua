--- nn.init: in-place initialisers with PyTorch's definitions. Each fills the tensor
-- without recording a graph and returns it. Both `xavier_uniform_` and `xavier_uniform`
-- (and so on) name the same function.
-- @module moonml.nn.init
local ml = require("moonml")

local init = {}

local function check_tensor(fn, t)
  if not ml.is_tensor(t) then
    error("moonml.nn.init." .. fn .. ": expected a tensor, got " .. type(t), 0)
  end
end

-- Writes values (a tensor of t's shape) into t outside the graph.
local function fill_from(t, values)
  ml.no_grad(function()
    t:copy_(values)
  end)
  return t
end

--- fan_in and fan_out of a weight (out x in x kernel...), as PyTorch computes them.
function init.calculate_fan_in_and_fan_out(t)
  check_tensor("calculate_fan_in_and_fan_out", t)
  if t:dim() < 2 then
    error("moonml.nn.init: fan in and fan out need a tensor of at least 2 dimensions, got "
      .. t:dim() .. "-D", 0)
  end
  local receptive = 1
  for d = 3, t:dim() do
    receptive = receptive * t:size(d)
  end
  return t:size(2) * receptive, t:size(1) * receptive
end

--- The recommended gain for a nonlinearity (PyTorch's table).
function init.calculate_gain(nonlinearity, param)
  local linear = { linear = true, conv1d = true, conv2d = true, conv3d = true, sigmoid = true,
    conv_transpose1d = true, conv_transpose2d = true, conv_transpose3d = true }
  if linear[nonlinearity] then
    return 1
  elseif nonlinearity == "tanh" then
    return 5 / 3
  elseif nonlinearity == "relu" then
    return math.sqrt(2)
  elseif nonlinearity == "leaky_relu" then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  elseif nonlinearity == "selu" then
    return 3 / 4
  end
  error("moonml.nn.init.calculate_gain: unknown nonlinearity '" .. tostring(nonlinearity) .. "'", 0)
end

--- Uniform in [a, b) (defaults 0, 1).
function init.uniform_(t, a, b)
  check_tensor("uniform_", t)
  a, b = a or 0, b or 1
  return fill_from(t, ml.rand(t:shape(), { dtype = t:dtype() }) * (b - a) + a)
end

--- Normal with mean and std (defaults 0, 1).
function init.normal_(t, mean, std)
  check_tensor("normal_", t)
  mean, std = mean or 0, std or 1
  return fill_from(t, ml.randn(t:shape(), { dtype = t:dtype() }) * std + mean)
end

--- Fills t with value (no graph is recorded); returns t.
function init.constant_(t, value)
  check_tensor("constant_", t)
  ml.no_grad(function()
    t:fill_(value)
  end)
  return t
end

--- Fills t with zeros; returns t.
function init.zeros_(t)
  return init.constant_(t, 0)
end

--- Fills t with ones; returns t.
function init.ones_(t)
  return init.constant_(t, 1)
end

--- Xavier/Glorot uniform: bound gain * sqrt(6 / (fan_in + fan_out)).
function init.xavier_uniform_(t, gain)
  check_tensor("xavier_uniform_", t)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local bound = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return init.uniform_(t, -bound, bound)
end

--- Xavier/Glorot normal: std gain * sqrt(2 / (fan_in + fan_out)).
function init.xavier_normal_(t, gain)
  check_tensor("xavier_normal_", t)
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  return init.normal_(t, 0, (gain or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

local function kaiming_std(fn, t, opts)
  check_tensor(fn, t)
  opts = opts or {}
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error("moonml.nn.init." .. fn .. ": mode must be \"fan_in\" or \"fan_out\", got " .. tostring(mode), 0)
  end
  local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
  local fan = mode == "fan_in" and fan_in or fan_out
  local gain = init.calculate_gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  return gain / math.sqrt(fan)
end

--- He/Kaiming uniform; opts: a (negative slope, 0), mode ("fan_in"), nonlinearity
-- ("leaky_relu"), as PyTorch.
function init.kaiming_uniform_(t, opts)
  local bound = math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts)
  return init.uniform_(t, -bound, bound)
end

--- He/Kaiming normal; options as kaiming_uniform_.
function init.kaiming_normal_(t, opts)
  return init.normal_(t, 0, kaiming_std("kaiming_normal_", t, opts))
end

for _, name in ipairs({ "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_",
  "xavier_normal_", "kaiming_uniform_", "kaiming_normal_" }) do
  init[name:sub(1, -2)] = init[name]
end

return init
