--- Activation modules: ReLU, Sigmoid, Tanh, Softmax, LogSoftmax (each a thin module over
-- the functional op).
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local activation = {}

local function simple(name, fn)
  local cls = Module:extend(name)
  function cls.new()
    return Module.init(cls)
  end
  function cls.forward(_, x)
    return fn(x)
  end
  cls.__call = cls.forward
  activation[name] = cls
end

simple("ReLU", F.relu)
simple("Sigmoid", F.sigmoid)
simple("Tanh", F.tanh)

local function along_dim(name, fn)
  local cls = Module:extend(name)
  function cls.new(dim)
    local self = Module.init(cls)
    self.dim = dim or -1
    return self
  end
  function cls:forward(x)
    return fn(x, self.dim)
  end
  cls.__call = cls.forward
  function cls:extra_repr()
    return "dim=" .. tostring(self.dim)
  end
  activation[name] = cls
end

along_dim("Softmax", F.softmax)
along_dim("LogSoftmax", F.log_softmax)

-- Activations with one number parameter: LeakyReLU(negative_slope = 0.01), ELU(alpha = 1).
local function with_param(name, fn, pname, default)
  local cls = Module:extend(name)
  function cls.new(v)
    if v ~= nil and type(v) ~= "number" then
      error("moonml.nn." .. name .. ": " .. pname .. " must be a number, got " .. type(v), 0)
    end
    local self = Module.init(cls)
    self[pname] = v or default
    return self
  end
  function cls:forward(x)
    return fn(x, self[pname])
  end
  cls.__call = cls.forward
  function cls:extra_repr()
    return pname .. "=" .. tostring(self[pname])
  end
  activation[name] = cls
end

with_param("LeakyReLU", F.leaky_relu, "negative_slope", 0.01)
with_param("ELU", F.elu, "alpha", 1)

--- nn.GELU([{approximate = "none" | "tanh"}])
local GELU = Module:extend("GELU")
function GELU.new(opts)
  local self = Module.init(GELU)
  self.opts = Module.check_opts("GELU", opts, { approximate = true })
  return self
end
function GELU:forward(x)
  return F.gelu(x, self.opts)
end
activation.GELU = GELU

return activation
