--- Activation modules: ReLU, Sigmoid, Tanh, Softmax, LogSoftmax (each a thin module over
-- the functional op). They have no parameters; they are found as `nn.ReLU` etc.
-- @module moonml.nn.activation
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local activation = {}

local function simple(name, fn)
  local cls = Module:extend(name)
  --- A new module (no parameters).
  function cls.new()
    return Module.init(cls)
  end
  --- The activation of x.
  function cls.forward(_, x)
    return fn(x)
  end
  cls.__call = cls.forward
  activation[name] = cls
end

--- nn.ReLU(): max(x, 0), element-wise.
-- @function ReLU
simple("ReLU", F.relu)
--- nn.Sigmoid(): 1 / (1 + exp(-x)), element-wise.
-- @function Sigmoid
simple("Sigmoid", F.sigmoid)
--- nn.Tanh(): tanh(x), element-wise.
-- @function Tanh
simple("Tanh", F.tanh)

local function along_dim(name, fn)
  local cls = Module:extend(name)
  --- A new module over dimension dim (default -1, the last).
  function cls.new(dim)
    if dim ~= nil and (math.type(dim) ~= "integer" or dim == 0) then
      error("moonml.nn." .. name .. ": dim must be a nonzero integer, got " .. tostring(dim), 0)
    end
    local self = Module.init(cls)
    self.dim = dim or -1
    return self
  end
  --- The activation of x along self.dim.
  function cls:forward(x)
    return fn(x, self.dim)
  end
  cls.__call = cls.forward
  --- "dim=<dim>"
  function cls:extra_repr()
    return "dim=" .. tostring(self.dim)
  end
  activation[name] = cls
end

--- nn.Softmax([dim = -1]): exp(x) / sum(exp(x)) along dim.
-- @function Softmax
along_dim("Softmax", F.softmax)
--- nn.LogSoftmax([dim = -1]): log of Softmax, computed stably.
-- @function LogSoftmax
along_dim("LogSoftmax", F.log_softmax)

-- Activations with one number parameter: LeakyReLU(negative_slope = 0.01), ELU(alpha = 1).
local function with_param(name, fn, pname, default)
  local cls = Module:extend(name)
  --- Creates the module; the arguments are described at the top of this file.
  function cls.new(v)
    if v ~= nil and type(v) ~= "number" then
      error("moonml.nn." .. name .. ": " .. pname .. " must be a number, got " .. type(v), 0)
    end
    local self = Module.init(cls)
    self[pname] = v or default
    return self
  end
  --- Applies the module to its input (called as module(x)).
  function cls:forward(x)
    return fn(x, self[pname])
  end
  cls.__call = cls.forward
  --- The settings shown by tostring.
  function cls:extra_repr()
    return pname .. "=" .. tostring(self[pname])
  end
  activation[name] = cls
end

with_param("LeakyReLU", F.leaky_relu, "negative_slope", 0.01)
with_param("ELU", F.elu, "alpha", 1)

--- nn.GELU([{approximate = "none" | "tanh"}])
local GELU = Module:extend("GELU")
--- Creates the module; the arguments are described at the top of this file.
function GELU.new(opts)
  local self = Module.init(GELU)
  self.opts = Module.check_opts("GELU", opts, { approximate = true })
  return self
end
--- Applies the module to its input (called as module(x)).
function GELU:forward(x)
  return F.gelu(x, self.opts)
end
activation.GELU = GELU

return activation
