--- Normalisation layers: BatchNorm1d, BatchNorm2d (running statistics as buffers
-- running_mean, running_var, num_batches_tracked, as PyTorch) and LayerNorm.
local ml = require("moonml")
local Module = require("moonml.nn.module")

local norm = {}

local function batch_norm(name, dims)
  local cls = Module:extend(name)
  --- (num_features[, {eps = 1e-5, momentum = 0.1, affine = true,
  -- track_running_stats = true}])
  function cls.new(num_features, opts)
    if math.type(num_features) ~= "integer" or num_features < 1 then
      error("moonml.nn." .. name .. ": num_features must be a positive integer, got "
        .. tostring(num_features), 0)
    end
    opts = Module.check_opts(name, opts, { eps = true, momentum = true, affine = true,
      track_running_stats = true, dtype = true })
    local self = Module.init(cls)
    local dtype = opts.dtype or "float32"
    self.num_features, self.eps, self.momentum = num_features, opts.eps or 1e-5, opts.momentum or 0.1
    if opts.affine ~= false then
      self:register_parameter("weight", ml.ones(num_features, { dtype = dtype }))
      self:register_parameter("bias", ml.zeros(num_features, { dtype = dtype }))
    end
    self.track_running_stats = opts.track_running_stats ~= false
    if self.track_running_stats then
      self:register_buffer("running_mean", ml.zeros(num_features, { dtype = dtype }))
      self:register_buffer("running_var", ml.ones(num_features, { dtype = dtype }))
      self:register_buffer("num_batches_tracked", ml.tensor(0, "int64"))
    end
    return self
  end
  --- Applies the module to its input (called as module(x)).
  function cls:forward(x)
    if not ml.is_tensor(x) or not dims[x:dim()] then
      error(string.format("moonml.nn.%s: expected a %s input, got %s", name, dims.text,
        ml.is_tensor(x) and (x:dim() .. "-D") or type(x)), 0)
    end
    if x:size(2) ~= self.num_features then
      error(string.format("moonml.nn.%s: input has %d channels, the layer expects %d", name,
        x:size(2), self.num_features), 0)
    end
    local training = self.training or not self.track_running_stats
    if self.training and self.track_running_stats then
      ml.no_grad(function()
        self.num_batches_tracked:add_(1)
      end)
    end
    return ml.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
      { training = training, momentum = self.momentum, eps = self.eps })
  end
  --- The settings shown by tostring.
  function cls:extra_repr()
    return string.format("%d, eps=%g, momentum=%g", self.num_features, self.eps, self.momentum)
  end
  norm[name] = cls
end

batch_norm("BatchNorm1d", { [2] = true, [3] = true, text = "2-D or 3-D" })
batch_norm("BatchNorm2d", { [4] = true, text = "4-D" })

--- nn.LayerNorm(normalized_shape[, {eps = 1e-5, elementwise_affine = true}])
local LayerNorm = Module:extend("LayerNorm")
--- Creates the module; the arguments are described at the top of this file.
function LayerNorm.new(normalized_shape, opts)
  local shape = type(normalized_shape) == "table" and normalized_shape or { normalized_shape }
  for _, s in ipairs(shape) do
    if math.type(s) ~= "integer" or s < 1 then
      error("moonml.nn.LayerNorm: normalized_shape must hold positive integers, got " .. tostring(s), 0)
    end
  end
  opts = Module.check_opts("LayerNorm", opts, { eps = true, elementwise_affine = true, dtype = true })
  local self = Module.init(LayerNorm)
  self.normalized_shape, self.eps = shape, opts.eps or 1e-5
  if opts.elementwise_affine ~= false then
    local dtype = opts.dtype or "float32"
    self:register_parameter("weight", ml.ones(shape, { dtype = dtype }))
    self:register_parameter("bias", ml.zeros(shape, { dtype = dtype }))
  end
  return self
end
--- Applies the module to its input (called as module(x)).
function LayerNorm:forward(x)
  return ml.layer_norm(x, self.normalized_shape, self.weight, self.bias, { eps = self.eps })
end
--- The settings shown by tostring.
function LayerNorm:extra_repr()
  return "{" .. table.concat(self.normalized_shape, ", ") .. "}, eps=" .. self.eps
end
norm.LayerNorm = LayerNorm

return norm
