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
  function cls:forward(x)
    return fn(x)
  end
  activation[name] = cls
end

simple("ReLU", F.relu)
simple("Sigmoid", F.sigmoid)
simple("Tanh", F.tanh)

local function along_dim(name, fn)
  local cls = Module:extend(name)
  function cls.new(dim)
    if dim ~= nil and (math.type(dim) ~= "integer" or dim == 0) then
      error("moonml.nn." .. name .. ": dim must be a nonzero integer, got " .. tostring(dim), 0)
    end
    local self = Module.init(cls)
    self.dim = dim or -1
    return self
  end
  function cls:forward(x)
    return fn(x, self.dim)
  end
  function cls:extra_repr()
    return "dim=" .. tostring(self.dim)
  end
  activation[name] = cls
end

along_dim("Softmax", F.softmax)
along_dim("LogSoftmax", F.log_softmax)

return activation
