--- nn.Module: the base of every layer, after torch/nn and PyTorch.
-- A module holds parameters (tensors that require grad), buffers (tensors saved in the
-- state dict but not trained, e.g. BatchNorm's running mean) and child modules, each
-- in the order registered. `module(x)` calls `module:forward(x)`.
-- @classmod moonml.nn.Module
local ml = require("moonml")

local Module = {}
Module.__index = Module
Module.__name = "Module"

local function class_call(cls, ...)
  return cls.new(...)
end

--- Makes a subclass: `local Linear = Module:extend("Linear")`; define `Linear.new`
-- (which calls `Module.init(self)`) and `Linear:forward`.
function Module:extend(name)
  if type(name) ~= "string" then
    error("moonml.nn.Module.extend: expected a class name, got " .. type(name), 0)
  end
  local cls = setmetatable({}, { __index = self, __call = class_call })
  cls.__index = cls
  cls.__name = name
  cls.__call = Module.__call
  cls.__tostring = Module.__tostring
  cls.super = self
  return cls
end

--- Sets up the bookkeeping of a new instance of class `cls`.
function Module.init(cls)
  if type(cls) ~= "table" or type(cls.__name) ~= "string" then
    error("moonml.nn.Module.init: expected a module class (made by Module:extend), got " .. type(cls), 0)
  end
  local self = setmetatable({}, cls)
  self._parameters = {}
  self._buffers = {}
  self._modules = {}
  self.training = true
  return self
end

-- `module(x)` calls forward. The built-in layers set their class's __call to their forward
-- itself (one call level less on every layer call); subclasses made with extend() get
-- this generic one, which finds their own forward.
function Module.__call(self, ...)
  return self:forward(...)
end

--- The module's computation; every subclass defines it. `m(x)` calls it.
function Module:forward()
  error("moonml.nn." .. self.__name .. ": forward is not defined for this module", 0)
end

-- Names of parameters, buffers and children: strings, or numbers for containers.
local function check_name(self, fn, name)
  if type(name) ~= "string" and math.type(name) ~= "integer" then
    error("moonml.nn." .. self.__name .. "." .. fn .. ": the name must be a string, got "
      .. type(name), 0)
  end
end

local function append_name(list, name)
  for _, n in ipairs(list) do
    if n == name then
      return
    end
  end
  list[#list + 1] = name
end

--- Registers `t` as a parameter under `name` (it is set to require grad).
function Module:register_parameter(name, t)
  check_name(self, "register_parameter", name)
  if t ~= nil and not ml.is_tensor(t) then
    error("moonml.nn." .. self.__name .. ".register_parameter: expected a tensor for '"
      .. tostring(name) .. "', got " .. type(t), 0)
  end
  if t ~= nil and not t.requires_grad then
    t:requires_grad_(true)
  end
  self[name] = t
  append_name(self._parameters, name)
  return t
end

--- Registers a buffer: saved in the state dict, not returned by parameters().
function Module:register_buffer(name, t)
  check_name(self, "register_buffer", name)
  if t ~= nil and not ml.is_tensor(t) then
    error("moonml.nn." .. self.__name .. ".register_buffer: expected a tensor for '"
      .. tostring(name) .. "', got " .. type(t), 0)
  end
  self[name] = t
  append_name(self._buffers, name)
  return t
end

--- Registers a child module under `name` (a string, or a number for containers).
function Module:add_module(name, m)
  check_name(self, "add_module", name)
  if getmetatable(m) == nil or m._modules == nil then
    error("moonml.nn." .. self.__name .. ".add_module: expected a module for '"
      .. tostring(name) .. "', got " .. type(m), 0)
  end
  self[name] = m
  append_name(self._modules, name)
  return m
end

--- Child modules, in order (a Lua array).
function Module:children()
  local out = {}
  for _, name in ipairs(self._modules) do
    out[#out + 1] = self[name]
  end
  return out
end

--- Iterator over name, child pairs.
function Module:named_children()
  local i = 0
  return function()
    i = i + 1
    local name = self._modules[i]
    if name ~= nil then
      return tostring(name), self[name]
    end
  end
end

-- Walks the tree depth first, calling visit(prefix, module).
local function walk(m, prefix, visit)
  visit(prefix, m)
  for _, name in ipairs(m._modules) do
    local child = m[name]
    if child ~= nil then
      walk(child, prefix .. tostring(name) .. ".", visit)
    end
  end
end

local function collect(self, field)
  local names, tensors, seen = {}, {}, {}
  walk(self, "", function(prefix, m)
    for _, name in ipairs(m[field]) do
      local t = m[name]
      if t ~= nil and not seen[t] then
        seen[t] = true
        names[#names + 1] = prefix .. name
        tensors[#tensors + 1] = t
      end
    end
  end)
  return names, tensors
end

--- All parameters of this module and its descendants, in order, each once (a Lua array).
function Module:parameters()
  local _, tensors = collect(self, "_parameters")
  return tensors
end

--- Iterator over dotted name, parameter pairs (`"1.weight"`), in order.
function Module:named_parameters()
  local names, tensors = collect(self, "_parameters")
  local i = 0
  return function()
    i = i + 1
    if names[i] then
      return names[i], tensors[i]
    end
  end
end

--- Iterator over dotted name, buffer pairs.
function Module:named_buffers()
  local names, tensors = collect(self, "_buffers")
  local i = 0
  return function()
    i = i + 1
    if names[i] then
      return names[i], tensors[i]
    end
  end
end

--- Every module in the tree (self first), a Lua array.
function Module:modules()
  local out = {}
  walk(self, "", function(_, m)
    out[#out + 1] = m
  end)
  return out
end

--- Number of parameter elements.
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do
    n = n + p:numel()
  end
  return n
end

--- Sets training mode (default true) on the whole tree; returns self.
function Module:train(mode)
  if mode == nil then
    mode = true
  end
  if type(mode) ~= "boolean" then
    error("moonml.nn." .. self.__name .. ".train: mode must be a boolean, got " .. type(mode), 0)
  end
  walk(self, "", function(_, m)
    m.training = mode
  end)
  return self
end

--- Evaluation mode (Dropout off, BatchNorm uses running statistics); returns self.
function Module:eval()
  return self:train(false)
end

--- Drops every parameter's gradient (sets .grad to nil, as PyTorch's default).
function Module:zero_grad()
  ml._optim.zero_grad(self:parameters())
  return self
end

--- Applies fn(module) to every module of the tree, children first; returns self.
function Module:apply(fn)
  if type(fn) ~= "function" then
    error("moonml.nn." .. self.__name .. ".apply: expected a function, got " .. type(fn), 0)
  end
  for _, child in ipairs(self:children()) do
    child:apply(fn)
  end
  fn(self)
  return self
end

-- PyTorch numbers container children from 0, moonml from 1: a key's purely numeric
-- segments move by `delta` (names like weight_ih_l0 are not segments and stay).
local function shift_key(key, delta)
  if type(key) ~= "string" or math.type(delta) ~= "integer" then
    error("moonml.nn.shift_key: expected a key and an integer shift, got " .. type(key) .. " and "
      .. type(delta), 0)
  end
  local parts = {}
  for part in key:gmatch("[^.]+") do
    if part:match("^%d+$") then
      part = tostring(tonumber(part) + delta)
    end
    parts[#parts + 1] = part
  end
  return table.concat(parts, ".")
end

local function check_opts(fn, opts, allowed)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    error("moonml.nn." .. fn .. ": options must be a table, got " .. type(opts), 0)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error("moonml.nn." .. fn .. ": unknown option '" .. tostring(k) .. "'", 0)
    end
  end
  return opts
end

--- The module's state: a table from dotted names to tensors (parameters and buffers;
-- the tensors themselves, not copies). `{to = "pytorch"}` numbers children from 0.
function Module:state_dict(opts)
  opts = check_opts("state_dict", opts, { to = true })
  if opts.to ~= nil and opts.to ~= "pytorch" then
    error("moonml.nn.state_dict: 'to' must be \"pytorch\", got " .. tostring(opts.to), 0)
  end
  local delta = opts.to == "pytorch" and -1 or 0
  local sd = {}
  for _, field in ipairs({ "_parameters", "_buffers" }) do
    local names, tensors = collect(self, field)
    for i, name in ipairs(names) do
      sd[shift_key(name, delta)] = tensors[i]
    end
  end
  return sd
end

--- Copies the tensors of `sd` into this module's parameters and buffers.
-- opts.from = "pytorch" converts PyTorch's 0-based child numbers; opts.strict (default
-- true) makes missing and unexpected keys errors. Shapes must match exactly. On any
-- error nothing is changed. Returns self.
function Module:load_state_dict(sd, opts)
  opts = check_opts("load_state_dict", opts, { from = true, strict = true })
  if type(sd) ~= "table" then
    error("moonml.nn.load_state_dict: expected a table of tensors, got " .. type(sd), 0)
  end
  if opts.from ~= nil and opts.from ~= "pytorch" then
    error("moonml.nn.load_state_dict: 'from' must be \"pytorch\", got " .. tostring(opts.from), 0)
  end
  local strict = opts.strict ~= false
  local delta = opts.from == "pytorch" and 1 or 0
  local given = {}
  for key, t in pairs(sd) do
    if type(key) ~= "string" or not ml.is_tensor(t) then
      error("moonml.nn.load_state_dict: entries must map names to tensors, got "
        .. type(key) .. " -> " .. type(t), 0)
    end
    given[shift_key(key, delta)] = t
  end
  local own = self:state_dict()
  local plan = {}
  for name, dst in pairs(own) do
    local src = given[name]
    if src == nil then
      if strict then
        error("moonml.nn.load_state_dict: missing key '" .. name .. "'", 0)
      end
    else
      local a, b = dst:shape(), src:shape()
      if table.concat(a, ",") ~= table.concat(b, ",") then
        error(string.format("moonml.nn.load_state_dict: '%s' has shape {%s} in the module "
          .. "but {%s} in the state dict", name, table.concat(a, ", "), table.concat(b, ", ")), 0)
      end
      plan[#plan + 1] = { dst, src }
    end
  end
  if strict then
    for name in pairs(given) do
      if own[name] == nil then
        error("moonml.nn.load_state_dict: unexpected key '" .. name .. "'", 0)
      end
    end
  end
  ml.no_grad(function()
    for _, pair in ipairs(plan) do
      pair[1]:copy_(pair[2])
    end
  end)
  return self
end

--- One-line description of this module alone (subclasses override), e.g. "Linear(2 -> 3)".
function Module:extra_repr()
  return ""
end

function Module:_repr(indent)
  local head = "nn." .. self.__name .. "(" .. self:extra_repr()
  if #self._modules == 0 then
    return head .. ")"
  end
  local lines = { head }
  for _, name in ipairs(self._modules) do
    lines[#lines + 1] = indent .. "  (" .. tostring(name) .. "): " .. self[name]:_repr(indent .. "  ")
  end
  lines[#lines + 1] = indent .. ")"
  return table.concat(lines, "\n")
end

local function with_commas(n)
  local s = tostring(n)
  repeat
    local k
    s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

function Module.__tostring(self)
  local n = self:num_parameters()
  local text = self:_repr("")
  if n > 0 then
    text = text .. "  -- " .. with_commas(n) .. " parameters"
  end
  return text
end

Module.shift_key = shift_key
Module.check_opts = check_opts
return Module
