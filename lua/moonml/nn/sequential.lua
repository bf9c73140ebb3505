--- nn.Sequential: children called in order, each on the previous one's output.
-- Children are numbered from 1 ("1.weight" in the state dict); `seq[i]` is child i.
-- @classmod moonml.nn.Sequential
local Module = require("moonml.nn.module")

local Sequential = Module:extend("Sequential")

--- A new Sequential of the given modules, in order: `nn.Sequential(m1, m2, ...)`.
function Sequential.new(...)
  local self = Module.init(Sequential)
  for _, m in ipairs({ ... }) do
    self:add(m)
  end
  return self
end

--- Appends a module; returns self, so calls chain.
function Sequential:add(m)
  local i = #self._modules + 1
  local ok, err = pcall(Module.add_module, self, i, m)
  if not ok then
    error((tostring(err):gsub("add_module", "add")), 0)
  end
  return self
end

--- Number of children.
function Sequential:len()
  return #self._modules
end
Sequential.__len = Sequential.len

-- The children in order; self._at tells an error which child was running.
local function run(self, n, x, ...)
  for i = 1, n do
    self._at = i
    x = self[i]:forward(x, ...)
  end
  return x
end

-- One protected call for the whole chain (not one per child): errors still name the
-- failing child.
--- Each child on the previous one's output; an error names the child that failed.
function Sequential:forward(x, ...)
  local ok, out = pcall(run, self, #self._modules, x, ...)
  if not ok then
    local i = self._at
    error(string.format("moonml.nn.Sequential: child %d (%s): %s", i, self[i]:_repr(""),
      tostring(out)), 0)
  end
  return out
end
Sequential.__call = Sequential.forward

return Sequential
