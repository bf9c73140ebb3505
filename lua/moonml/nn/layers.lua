--- Small shape and regularisation layers: Flatten, Dropout, Identity.
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local layers = {}

--- nn.Flatten(start_dim = 2, end_dim = -1): keeps the batch dimension.
local Flatten = Module:extend("Flatten")
function Flatten.new(start_dim, end_dim)
  local self = Module.init(Flatten)
  self.start_dim, self.end_dim = start_dim or 2, end_dim or -1
  return self
end
function Flatten:forward(x)
  return x:flatten(self.start_dim, self.end_dim)
end
Flatten.__call = Flatten.forward
function Flatten:extra_repr()
  return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim)
end
layers.Flatten = Flatten

--- nn.Dropout(p = 0.5): active in training mode only.
local Dropout = Module:extend("Dropout")
function Dropout.new(p)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("moonml.nn.Dropout: p must be a probability in [0, 1], got " .. tostring(p), 0)
  end
  local self = Module.init(Dropout)
  self.p = p
  return self
end
function Dropout:forward(x)
  return F.dropout(x, self.p, self.training)
end
function Dropout:extra_repr()
  return "p=" .. tostring(self.p)
end
layers.Dropout = Dropout

--- nn.Identity(): returns its input.
local Identity = Module:extend("Identity")
function Identity.new()
  return Module.init(Identity)
end
function Identity:forward(x)
  return x
end
layers.Identity = Identity

return layers
