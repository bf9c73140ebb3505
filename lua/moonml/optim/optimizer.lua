--- The optimizer base class: parameter groups, per-parameter state, zero_grad, and
-- state_dict / load_state_dict so that a run can resume. Subclasses define
-- `step_group(group, state)` (one C call that updates every parameter of a group with a
-- gradient, creating state[p] on first use) or `update(group, p, grad, state)` (one
-- parameter's step, called in a Lua loop).
-- @classmod moonml.optim.Optimizer
local ml = require("moonml")

local K = ml._optim
local Optimizer = {}
Optimizer.__index = Optimizer

--- Makes an optimizer class with the given hyper-parameter defaults (nil = required).
function Optimizer.extend(name, defaults, required)
  if type(name) ~= "string" or type(defaults) ~= "table"
    or (required ~= nil and type(required) ~= "table") then
    error("moonml.optim.Optimizer.extend: expected a name, a table of defaults and a table of "
      .. "required options, got " .. type(name) .. ", " .. type(defaults) .. ", " .. type(required), 0)
  end
  local cls = setmetatable({}, {
    __index = Optimizer,
    __call = function(c, params, opts)
      return c.new(params, opts)
    end,
  })
  cls.__index = cls
  cls.__name = name
  cls.defaults = defaults
  cls.required = required or {}
  cls.__tostring = Optimizer.__tostring
--- A new optimizer of this class over params (a list of tensors or of groups).
  function cls.new(params, opts)
    return Optimizer.init(cls, params, opts)
  end
  return cls
end

local function fail(cls, msg)
  error("moonml.optim." .. cls.__name .. ": " .. msg, 0)
end

-- Fills a group's settings from opts and the class defaults, checking names and values.
local function settle_group(cls, group, opts)
  for k in pairs(opts) do
    if k ~= "params" and cls.defaults[k] == nil and not cls.required[k] then
      fail(cls, "unknown option '" .. tostring(k) .. "'", 5)
    end
  end
  for k, v in pairs(cls.defaults) do
    if group[k] == nil then
      group[k] = opts[k]
      if group[k] == nil then
        group[k] = v
      end
    end
  end
  for k in pairs(cls.required) do
    if group[k] == nil then
      group[k] = opts[k]
    end
    if group[k] == nil then
      fail(cls, "option '" .. k .. "' is required", 5)
    end
  end
  if type(group.lr) ~= "number" or group.lr < 0 then
    fail(cls, "lr must be a non-negative number, got " .. tostring(group.lr), 5)
  end
  if cls.check then
    cls.check(group, function(msg)
      fail(cls, msg, 6)
    end)
  end
end

local function check_params(cls, list)
  if type(list) ~= "table" then
    fail(cls, "expected a Lua array of tensors (e.g. model:parameters()), got " .. type(list), 5)
  end
  for i, p in ipairs(list) do
    if not ml.is_tensor(p) then
      fail(cls, "parameter " .. i .. " is a " .. type(p) .. ", not a tensor", 5)
    end
    if not p.is_leaf then
      fail(cls, "parameter " .. i .. " is not a leaf tensor", 5)
    end
  end
end

--- params: a Lua array of tensors, or of groups `{params = {...}, lr = ...}`.
function Optimizer.init(cls, params, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail(cls, "options must be a table, got " .. type(opts), 4)
  end
  local self = setmetatable({ state = {}, param_groups = {} }, cls)
  if type(params) == "table" and type(params[1]) == "table" and not ml.is_tensor(params[1]) then
    for _, g in ipairs(params) do
      check_params(cls, g.params)
      local group = { params = g.params }
      for k, v in pairs(g) do
        if k ~= "params" then
          group[k] = v
        end
      end
      settle_group(cls, group, opts)
      self.param_groups[#self.param_groups + 1] = group
    end
  else
    check_params(cls, params)
    local group = { params = params }
    settle_group(cls, group, opts)
    self.param_groups[1] = group
  end
  if #self.param_groups == 0 or #self.param_groups[1].params == 0 then
    fail(cls, "got an empty parameter list", 4)
  end
  return self
end

--- Drops every parameter's gradient (set to nil, PyTorch's default).
function Optimizer:zero_grad()
  local groups = self.param_groups
  for i = 1, #groups do
    K.zero_grad(groups[i].params)
  end
end

--- One update of every parameter that has a gradient. closure (optional) recomputes
-- the loss and is called first; its result is returned.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then
      fail(getmetatable(self), "step: the closure must be a function, got " .. type(closure))
    end
    loss = ml.enable_grad(closure)
  end
  -- Every gradient is checked before any parameter changes (the updates run one
  -- parameter at a time), so a bad one fails the step with parameters and state as they
  -- were.
  local first = 1
  for _, group in ipairs(self.param_groups) do
    K.check_grads(group.params, getmetatable(self).__name, first)
    first = first + #group.params
  end
  local groups, all_state = self.param_groups, self.state
  if self.step_group then
    for i = 1, #groups do
      self:step_group(groups[i], all_state)
    end
    return loss
  end
  for _, group in ipairs(groups) do
    for _, p in ipairs(group.params) do
      local g = p.grad
      if g ~= nil then
        local state = all_state[p]
        if state == nil then
          state = {}
          all_state[p] = state
        end
        self:update(group, p, g, state)
      end
    end
  end
  return loss
end

-- Every parameter in order, with its position (1-based, across groups).
local function all_params(self)
  local list = {}
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      list[#list + 1] = p
    end
  end
  return list
end

--- {state = {[i] = {...}}, param_groups = {{lr =, ..., params = {i, ...}}}}, parameters
-- numbered from 1 in group order; tensors in the state are copies.
function Optimizer:state_dict()
  local index, n = {}, 0
  local groups = {}
  for _, group in ipairs(self.param_groups) do
    local g = { params = {} }
    for k, v in pairs(group) do
      if k ~= "params" then
        g[k] = type(v) == "table" and { table.unpack(v) } or v
      end
    end
    for _, p in ipairs(group.params) do
      n = n + 1
      index[p] = n
      g.params[#g.params + 1] = n
    end
    groups[#groups + 1] = g
  end
  local state = {}
  for p, s in pairs(self.state) do
    local copy = {}
    for k, v in pairs(s) do
      copy[k] = ml.is_tensor(v) and v:clone() or v
    end
    state[index[p]] = copy
  end
  return { state = state, param_groups = groups }
end

--- Restores hyper-parameters and state saved by state_dict (same parameter layout).
function Optimizer:load_state_dict(sd)
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
    fail(getmetatable(self), "load_state_dict expects a table from state_dict()", 3)
  end
  if #sd.param_groups ~= #self.param_groups then
    fail(getmetatable(self), string.format("load_state_dict: %d parameter groups given, the "
      .. "optimizer has %d", #sd.param_groups, #self.param_groups), 3)
  end
  for i, g in ipairs(sd.param_groups) do
    if type(g) ~= "table" or type(g.params) ~= "table" then
      fail(getmetatable(self), "load_state_dict: group " .. i .. " has no params list", 3)
    end
    if #g.params ~= #self.param_groups[i].params then
      fail(getmetatable(self), "load_state_dict: group " .. i .. " has a different number of parameters", 3)
    end
  end
  local params = all_params(self)
  local state = {}
  for i, s in pairs(sd.state) do
    local p = params[i]
    if type(s) ~= "table" then
      fail(getmetatable(self), "load_state_dict: the state of parameter " .. tostring(i) .. " is not a table", 3)
    end
    if p == nil then
      fail(getmetatable(self), "load_state_dict: state for parameter " .. tostring(i) .. " which does not exist", 3)
    end
    local copy = {}
    for k, v in pairs(s) do
      -- a state tensor (momentum, moments, sums) has its parameter's shape and dtype: a
      -- wrong one would fail a later step half way through the parameters
      if ml.is_tensor(v) and (v:dtype() ~= p:dtype()
          or table.concat(v:shape(), ",") ~= table.concat(p:shape(), ",")) then
        fail(getmetatable(self), string.format("load_state_dict: state %s of parameter %s has "
          .. "shape {%s} (%s), the parameter {%s} (%s)", tostring(k), tostring(i),
          table.concat(v:shape(), ", "), v:dtype(), table.concat(p:shape(), ", "), p:dtype()), 3)
      end
      copy[k] = ml.is_tensor(v) and v:clone() or v
    end
    state[p] = copy
  end
  for i, g in ipairs(sd.param_groups) do
    for k, v in pairs(g) do
      if k ~= "params" then
        self.param_groups[i][k] = type(v) == "table" and { table.unpack(v) } or v
      end
    end
  end
  self.state = state
  return self
end

function Optimizer.__tostring(self)
  local cls = getmetatable(self)
  local parts = {}
  for i, group in ipairs(self.param_groups) do
    local keys = {}
    for k in pairs(group) do
      if k ~= "params" then
        keys[#keys + 1] = k
      end
    end
    table.sort(keys)
    local kv = {}
    for _, k in ipairs(keys) do
      local v = group[k]
      kv[#kv + 1] = k .. "=" .. (type(v) == "table" and "{" .. table.concat(v, ", ") .. "}" or tostring(v))
    end
    parts[#parts + 1] = string.format("  group %d (%d params): %s", i, #group.params, table.concat(kv, ", "))
  end
  return "optim." .. cls.__name .. "(\n" .. table.concat(parts, "\n") .. "\n)"
end

return Optimizer
