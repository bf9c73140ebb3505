--- Convolution layers over ml.conv2d / ml.conv_transpose2d, PyTorch's layouts and
-- initialisation: Conv2d weight (out, in/groups, kh, kw), ConvTranspose2d weight
-- (in, out/groups, kh, kw); input (N, C, H, W).
local ml = require("moonml")
local Module = require("moonml.nn.module")
local init = require("moonml.nn.initializers")

local conv = {}

local function pair(name, cls, v, what)
  if math.type(v) == "integer" then
    return { v, v }
  end
  if type(v) == "table" and math.type(v[1]) == "integer" and math.type(v[2]) == "integer" then
    return { v[1], v[2] }
  end
  if what == "padding" and (v == "same" or v == "valid") then
    return v
  end
  error(string.format("moonml.nn.%s: %s must be an integer or a pair of integers, got %s", cls,
    name, tostring(v)), 0)
end

local function positive(cls, name, v)
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("moonml.nn.%s: %s must be a positive integer, got %s", cls, name, tostring(v)), 0)
  end
end

-- Shared constructor: transposed selects the weight layout.
local function make(cls, name, transposed)
  return function(in_channels, out_channels, kernel_size, opts)
    positive(name, "in_channels", in_channels)
    positive(name, "out_channels", out_channels)
    local allowed = { stride = true, padding = true, dilation = true, groups = true, bias = true,
      dtype = true }
    if transposed then
      allowed.output_padding = true
    end
    opts = Module.check_opts(name, opts, allowed)
    local self = Module.init(cls)
    local groups = opts.groups or 1
    positive(name, "groups", groups)
    if in_channels % groups ~= 0 or out_channels % groups ~= 0 then
      error(string.format("moonml.nn.%s: in_channels (%d) and out_channels (%d) must be divisible "
        .. "by groups (%d)", name, in_channels, out_channels, groups), 0)
    end
    local k = pair("kernel_size", name, kernel_size)
    self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
    self.stride = pair("stride", name, opts.stride or 1)
    self.padding = pair("padding", name, opts.padding or 0, "padding")
    self.dilation = pair("dilation", name, opts.dilation or 1)
    self.output_padding = transposed and pair("output_padding", name, opts.output_padding or 0) or nil
    self.groups = groups
    local dtype = opts.dtype or "float32"
    local shape = transposed and { in_channels, out_channels // groups, k[1], k[2] }
      or { out_channels, in_channels // groups, k[1], k[2] }
    local w = self:register_parameter("weight", ml.empty(shape, { dtype = dtype }))
    init.kaiming_uniform_(w, { a = math.sqrt(5) })
    if opts.bias ~= false then
      local fan_in = init.calculate_fan_in_and_fan_out(w)
      local bound = 1 / math.sqrt(fan_in)
      self:register_parameter("bias", init.uniform_(ml.empty(out_channels, { dtype = dtype }), -bound, bound))
    end
    return self
  end
end

local function options(self)
  return { stride = self.stride, padding = self.padding, dilation = self.dilation,
    groups = self.groups, output_padding = self.output_padding }
end

local function describe(self)
  local s = string.format("%d, %d, kernel_size={%d, %d}, stride={%d, %d}", self.in_channels,
    self.out_channels, self.kernel_size[1], self.kernel_size[2], self.stride[1], self.stride[2])
  if type(self.padding) == "string" then
    s = s .. ", padding=" .. self.padding
  elseif self.padding[1] ~= 0 or self.padding[2] ~= 0 then
    s = s .. string.format(", padding={%d, %d}", self.padding[1], self.padding[2])
  end
  if self.groups ~= 1 then
    s = s .. ", groups=" .. self.groups
  end
  return s .. (self.bias == nil and ", no bias" or "")
end

--- nn.Conv2d(in_channels, out_channels, kernel_size[, {stride = 1, padding = 0,
-- dilation = 1, groups = 1, bias = true}])
local Conv2d = Module:extend("Conv2d")
Conv2d.new = make(Conv2d, "Conv2d", false)
--- Applies the module to its input (called as module(x)).
function Conv2d:forward(x)
  local o = options(self)
  o.output_padding = nil
  if self.bias ~= nil then
    return ml.conv2d(x, self.weight, self.bias, o)
  end
  return ml.conv2d(x, self.weight, o)
end
Conv2d.__call = Conv2d.forward
Conv2d.extra_repr = describe
conv.Conv2d = Conv2d

--- nn.ConvTranspose2d(in_channels, out_channels, kernel_size[, {stride, padding,
-- output_padding, dilation, groups, bias}])
local ConvTranspose2d = Module:extend("ConvTranspose2d")
ConvTranspose2d.new = make(ConvTranspose2d, "ConvTranspose2d", true)
--- Applies the module to its input (called as module(x)).
function ConvTranspose2d:forward(x)
  if self.bias ~= nil then
    return ml.conv_transpose2d(x, self.weight, self.bias, options(self))
  end
  return ml.conv_transpose2d(x, self.weight, options(self))
end
ConvTranspose2d.extra_repr = describe
conv.ConvTranspose2d = ConvTranspose2d

return conv
