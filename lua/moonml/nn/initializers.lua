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

-- An optional number argument (nil: the default); NaN is refused.
local function check_number(fn, what, v, default)
  if v == nil then
    return default
  end
  if type(v) ~= "number" or v ~= v then
    error("moonml.nn.init." .. fn .. ": " .. what .. " must be a number, got " .. tostring(v), 0)
  end
  return v
end

local function fan_in_and_out(fn, t)
  check_tensor(fn, t)
  if t:dim() < 2 then
    error("moonml.nn.init." .. fn .. ": fan in and fan out need a tensor of at least 2 "
      .. "dimensions, got " .. t:dim() .. "-D", 0)
  end
  local receptive = 1
  for d = 3, t:dim() do
    receptive = receptive * t:size(d)
  end
  return t:size(2) * receptive, t:size(1) * receptive
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
  return fan_in_and_out("calculate_fan_in_and_fan_out", t)
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
    local slope = check_number("calculate_gain", "the negative slope", param, 0.01)
    return math.sqrt(2 / (1 + slope * slope))
  elseif nonlinearity == "selu" then
    return 3 / 4
  end
  error("moonml.nn.init.calculate_gain: unknown nonlinearity '" .. tostring(nonlinearity) .. "'", 0)
end

--- Uniform in [a, b) (defaults 0, 1).
function init.uniform_(t, a, b)
  check_tensor("uniform_", t)
  a, b = check_number("uniform_", "a", a, 0), check_number("uniform_", "b", b, 1)
  if a > b then
    error(string.format("moonml.nn.init.uniform_: expects a <= b, got %g > %g", a, b), 0)
  end
  return fill_from(t, ml.rand(t:shape(), { dtype = t:dtype() }) * (b - a) + a)
end

--- Normal with mean and std (defaults 0, 1).
function init.normal_(t, mean, std)
  check_tensor("normal_", t)
  mean, std = check_number("normal_", "mean", mean, 0), check_number("normal_", "std", std, 1)
  if std < 0 then
    error("moonml.nn.init.normal_: std must be non-negative, got " .. std, 0)
  end
  return fill_from(t, ml.randn(t:shape(), { dtype = t:dtype() }) * std + mean)
end

--- Fills t with value (no graph is recorded); returns t.
function init.constant_(t, value)
  check_tensor("constant_", t)
  if type(value) ~= "number" then
    error("moonml.nn.init.constant_: value must be a number, got " .. type(value), 0)
  end
  ml.no_grad(function()
    t:fill_(value)
  end)
  return t
end

--- Fills t with zeros; returns t.
function init.zeros_(t)
  check_tensor("zeros_", t)
  return init.constant_(t, 0)
end

--- Fills t with ones; returns t.
function init.ones_(t)
  check_tensor("ones_", t)
  return init.constant_(t, 1)
end

--- Xavier/Glorot uniform: bound gain * sqrt(6 / (fan_in + fan_out)).
function init.xavier_uniform_(t, gain)
  local fan_in, fan_out = fan_in_and_out("xavier_uniform_", t)
  local bound = check_number("xavier_uniform_", "gain", gain, 1) * math.sqrt(6 / (fan_in + fan_out))
  return init.uniform_(t, -bound, bound)
end

--- Xavier/Glorot normal: std gain * sqrt(2 / (fan_in + fan_out)).
function init.xavier_normal_(t, gain)
  local fan_in, fan_out = fan_in_and_out("xavier_normal_", t)
  return init.normal_(t, 0, check_number("xavier_normal_", "gain", gain, 1) * math.sqrt(2 / (fan_in + fan_out)))
end

local function kaiming_std(fn, t, opts)
  check_tensor(fn, t)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("moonml.nn.init." .. fn .. ": options must be a table, got " .. type(opts), 0)
  end
  for k in pairs(opts) do
    if k ~= "a" and k ~= "mode" and k ~= "nonlinearity" then
      error("moonml.nn.init." .. fn .. ": unknown option '" .. tostring(k) .. "'", 0)
    end
  end
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error("moonml.nn.init." .. fn .. ": mode must be \"fan_in\" or \"fan_out\", got " .. tostring(mode), 0)
  end
  local fan_in, fan_out = fan_in_and_out(fn, t)
  local fan = mode == "fan_in" and fan_in or fan_out
  local ok, gain = pcall(init.calculate_gain, opts.nonlinearity or "leaky_relu",
    check_number(fn, "a", opts.a, 0))
  if not ok then -- the same message under this function's name
    error((gain:gsub("^moonml%.nn%.init%.calculate_gain", "moonml.nn.init." .. fn)), 0)
  end
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
