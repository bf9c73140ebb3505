--- Small shape and regularisation layers: Flatten, Dropout, Identity (found as
-- `nn.Flatten` etc.).
-- @module moonml.nn.layers
local ml = require("moonml")
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local layers = {}

--- nn.Flatten(start_dim = 2, end_dim = -1): keeps the batch dimension.
local Flatten = Module:extend("Flatten")
--- A new Flatten module: dims start_dim (default 2) to end_dim (default -1) become one.
function Flatten.new(start_dim, end_dim)
  for _, d in ipairs({ { start_dim, "start_dim" }, { end_dim, "end_dim" } }) do
    if d[1] ~= nil and (math.type(d[1]) ~= "integer" or d[1] == 0) then
      error("moonml.nn.Flatten: " .. d[2] .. " must be a nonzero integer, got " .. tostring(d[1]), 0)
    end
  end
  local self = Module.init(Flatten)
  self.start_dim, self.end_dim = start_dim or 2, end_dim or -1
  return self
end
--- x flattened from start_dim to end_dim.
function Flatten:forward(x)
  if not ml.is_tensor(x) then
    error("moonml.nn.Flatten: expected a tensor input, got " .. type(x), 0)
  end
  return x:flatten(self.start_dim, self.end_dim)
end
Flatten.__call = Flatten.forward
--- "start_dim=<s>, end_dim=<e>"
function Flatten:extra_repr()
  return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim)
end
layers.Flatten = Flatten

--- nn.Dropout(p = 0.5): active in training mode only.
local Dropout = Module:extend("Dropout")
--- A new Dropout module with drop probability p (default 0.5).
function Dropout.new(p)
  p = p or 0.5
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then -- NaN too
    error("moonml.nn.Dropout: p must be a probability in [0, 1], got " .. tostring(p), 0)
  end
  local self = Module.init(Dropout)
  self.p = p
  return self
end
--- x with elements zeroed with probability p (scaled by 1/(1-p)) in training mode; x itself in evaluation mode.
function Dropout:forward(x)
  return F.dropout(x, self.p, self.training)
end
--- "p=<p>"
function Dropout:extra_repr()
  return "p=" .. tostring(self.p)
end
layers.Dropout = Dropout

--- nn.Identity(): returns its input.
local Identity = Module:extend("Identity")
--- A new Identity module.
function Identity.new()
  return Module.init(Identity)
end
--- x itself.
function Identity:forward(x)
  return x
end
layers.Identity = Identity

return layers
