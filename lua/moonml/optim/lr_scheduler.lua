--- Learning-rate schedules with PyTorch 1.13's (chainable) formulas: StepLR,
-- ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau. Call `scheduler:step()` once per
-- epoch after the optimizer's steps (ReduceLROnPlateau: `scheduler:step(metric)`).
-- @module moonml.optim.lr_scheduler
local Module = {}

local function fail(name, msg)
  error("moonml.optim." .. name .. ": " .. msg, 0)
end

local function check_optimizer(name, opt)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    fail(name, "expected an optimizer, got " .. type(opt), 4)
  end
end

local function check_opts(name, opts, allowed)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail(name, "options must be a table, got " .. type(opts), 4)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      fail(name, "unknown option '" .. tostring(k) .. "'", 4)
    end
  end
  return opts
end

-- Restores what state_dict saved: only the fields the scheduler has, each with the type it
-- has, so that a stray table cannot replace a method or a number (checked before any
-- field changes).
local function load_state(name, self, sd)
  if type(sd) ~= "table" then
    fail(name, "load_state_dict expects a table from state_dict(), got " .. type(sd))
  end
  for k, v in pairs(sd) do
    local own = k ~= "optimizer" and rawget(self, k)
    if own == nil or own == false or type(own) ~= type(v) then
      fail(name, "load_state_dict: unexpected entry '" .. tostring(k) .. "' (" .. type(v) .. ")")
    end
  end
  for k, v in pairs(sd) do
    self[k] = type(v) == "table" and { table.unpack(v) } or v
  end
  return self
end

-- Shared by the epoch-based schedules: get_lr(self) gives the new lr of each group.
local function epoch_scheduler(name, allowed, setup, get_lr)
  local cls = { __name = name }
  cls.__index = cls
  setmetatable(cls, { __call = function(c, opt, opts)
    return c.new(opt, opts)
  end })
--- A new schedule over an optimizer's groups (sets the first epoch's rates).
  function cls.new(opt, opts)
    check_optimizer(name, opt)
    opts = check_opts(name, opts, allowed)
    local self = setmetatable({ optimizer = opt, last_epoch = -1, base_lrs = {} }, cls)
    for i, g in ipairs(opt.param_groups) do
      g.initial_lr = g.initial_lr or g.lr
      self.base_lrs[i] = g.initial_lr
    end
    setup(self, opts)
    self:step()
    return self
  end
  --- Moves to the next epoch and sets every group's lr.
  function cls:step(epoch)
    if epoch ~= nil then -- PyTorch's deprecated step(epoch) is not supported
      fail(name, "step takes no epoch argument (call it once per epoch), got " .. tostring(epoch))
    end
    self.last_epoch = self.last_epoch + 1
    local lrs = get_lr(self)
    self._last_lr = {}
    for i, g in ipairs(self.optimizer.param_groups) do
      g.lr = lrs[i]
      self._last_lr[i] = lrs[i]
    end
  end
  --- The learning rates set by the last step, one per group.
  function cls:get_last_lr()
    return { table.unpack(self._last_lr) }
  end
--- The schedule's state (everything but the optimizer), to resume a run.
  function cls:state_dict()
    local sd = {}
    for k, v in pairs(self) do
      if k ~= "optimizer" then
        sd[k] = type(v) == "table" and { table.unpack(v) } or v
      end
    end
    return sd
  end
--- Restores a state_dict(); returns self.
  function cls:load_state_dict(sd)
    return load_state(name, self, sd)
  end
  return cls
end

local function current(self)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    out[i] = g.lr
  end
  return out
end

--- StepLR(optimizer, {step_size =, gamma = 0.1}): lr times gamma every step_size epochs.
Module.StepLR = epoch_scheduler("StepLR", { step_size = true, gamma = true }, function(self, o)
  if math.type(o.step_size) ~= "integer" or o.step_size < 1 then
    fail("StepLR", "step_size must be a positive integer, got " .. tostring(o.step_size), 5)
  end
  if o.gamma ~= nil and type(o.gamma) ~= "number" then
    fail("StepLR", "gamma must be a number, got " .. tostring(o.gamma), 5)
  end
  self.step_size, self.gamma = o.step_size, o.gamma or 0.1
end, function(self)
  local lrs = current(self)
  if self.last_epoch ~= 0 and self.last_epoch % self.step_size == 0 then
    for i = 1, #lrs do
      lrs[i] = lrs[i] * self.gamma
    end
  end
  return lrs
end)

--- ExponentialLR(optimizer, {gamma =}): lr times gamma every epoch.
Module.ExponentialLR = epoch_scheduler("ExponentialLR", { gamma = true }, function(self, o)
  if type(o.gamma) ~= "number" then
    fail("ExponentialLR", "gamma is required", 5)
  end
  self.gamma = o.gamma
end, function(self)
  local lrs = current(self)
  if self.last_epoch ~= 0 then
    for i = 1, #lrs do
      lrs[i] = lrs[i] * self.gamma
    end
  end
  return lrs
end)

--- CosineAnnealingLR(optimizer, {T_max =, eta_min = 0}).
Module.CosineAnnealingLR = epoch_scheduler("CosineAnnealingLR", { T_max = true, eta_min = true },
  function(self, o)
    if type(o.T_max) ~= "number" or o.T_max <= 0 then
      fail("CosineAnnealingLR", "T_max must be a positive number, got " .. tostring(o.T_max), 5)
    end
    if o.eta_min ~= nil and type(o.eta_min) ~= "number" then
      fail("CosineAnnealingLR", "eta_min must be a number, got " .. tostring(o.eta_min), 5)
    end
    self.T_max, self.eta_min = o.T_max, o.eta_min or 0
  end, function(self)
    local lrs, e, T, eta = current(self), self.last_epoch, self.T_max, self.eta_min
    if e == 0 then
      return lrs
    end
    for i = 1, #lrs do
      local base = self.base_lrs[i]
      if (e - 1 - T) % (2 * T) == 0 then
        lrs[i] = lrs[i] + (base - eta) * (1 - math.cos(math.pi / T)) / 2
      else
        lrs[i] = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
          * (lrs[i] - eta) + eta
      end
    end
    return lrs
  end)

--- ReduceLROnPlateau(optimizer, {mode = "min", factor = 0.1, patience = 10,
-- threshold = 1e-4, threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8});
-- `step(metric)` after each evaluation.
local Plateau = { __name = "ReduceLROnPlateau" }
Plateau.__index = Plateau
setmetatable(Plateau, { __call = function(c, opt, opts)
  return c.new(opt, opts)
end })
--- A new ReduceLROnPlateau over an optimizer (see the options above).
function Plateau.new(opt, opts)
  check_optimizer("ReduceLROnPlateau", opt)
  opts = check_opts("ReduceLROnPlateau", opts, { mode = true, factor = true, patience = true,
    threshold = true, threshold_mode = true, cooldown = true, min_lr = true, eps = true })
  local self = setmetatable({
    optimizer = opt, mode = opts.mode or "min", factor = opts.factor or 0.1,
    patience = opts.patience or 10, threshold = opts.threshold or 1e-4,
    threshold_mode = opts.threshold_mode or "rel", cooldown = opts.cooldown or 0,
    eps = opts.eps or 1e-8, cooldown_counter = 0, num_bad_epochs = 0, last_epoch = 0,
  }, Plateau)
  for _, k in ipairs({ "factor", "patience", "threshold", "cooldown", "eps" }) do
    if type(self[k]) ~= "number" then
      fail("ReduceLROnPlateau", k .. " must be a number, got " .. tostring(self[k]))
    end
  end
  if self.mode ~= "min" and self.mode ~= "max" then
    fail("ReduceLROnPlateau", "mode must be \"min\" or \"max\"", 3)
  end
  if self.threshold_mode ~= "rel" and self.threshold_mode ~= "abs" then
    fail("ReduceLROnPlateau", "threshold_mode must be \"rel\" or \"abs\"", 3)
  end
  if self.factor >= 1 then
    fail("ReduceLROnPlateau", "factor must be below 1", 3)
  end
  self.min_lrs = {}
  for i = 1, #opt.param_groups do
    self.min_lrs[i] = type(opts.min_lr) == "table" and opts.min_lr[i] or opts.min_lr or 0
  end
  self.best = self.mode == "min" and math.huge or -math.huge
  return self
end

--- Is metric a better than the best so far (by mode and threshold)?
function Plateau:is_better(a)
  if type(a) ~= "number" then
    fail("ReduceLROnPlateau", "is_better needs a metric (a number), got " .. type(a))
  end
  local rel = self.threshold_mode == "rel"
  if self.mode == "min" then
    return a < (rel and self.best * (1 - self.threshold) or self.best - self.threshold)
  end
  return a > (rel and self.best * (1 + self.threshold) or self.best + self.threshold)
end

--- Takes the epoch's metric; after patience epochs without improvement multiplies
-- every group's lr by factor (not below min_lr).
function Plateau:step(metric)
  if type(metric) ~= "number" then
    fail("ReduceLROnPlateau", "step needs the metric (a number), got " .. type(metric), 3)
  end
  self.last_epoch = self.last_epoch + 1
  if self:is_better(metric) then
    self.best = metric
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local new = math.max(g.lr * self.factor, self.min_lrs[i])
      if g.lr - new > self.eps then
        g.lr = new
      end
    end
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
end

--- The current learning rates, one per group.
function Plateau:get_last_lr()
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do
    out[i] = g.lr
  end
  return out
end

--- The schedule's state (everything but the optimizer).
function Plateau:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" then
      sd[k] = type(v) == "table" and { table.unpack(v) } or v
    end
  end
  return sd
end

--- Restores a state_dict(); returns self.
function Plateau:load_state_dict(sd)
  return load_state("ReduceLROnPlateau", self, sd)
end

Module.ReduceLROnPlateau = Plateau
return Module
