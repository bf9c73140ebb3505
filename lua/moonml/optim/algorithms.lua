--- The optimizers: SGD, Adam, AdamW, RMSprop, Adagrad, with PyTorch 1.13's options and
-- defaults. A step is one C call per parameter group (step_group), which runs one fused
-- update per parameter; `update` is the same step for one parameter.
-- Found as `optim.SGD` etc.
-- @module moonml.optim.algorithms
local ml = require("moonml")
local Optimizer = require("moonml.optim.optimizer")

local K = ml._optim
local algorithms = {}

--- SGD(params, {lr =, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
-- maximize = false})
local SGD = Optimizer.extend("SGD", { momentum = 0, dampening = 0, weight_decay = 0,
  nesterov = false, maximize = false }, { lr = true })
--- Checks a group's SGD options (fail(msg) raises the error).
function SGD.check(g, fail)
  if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
    fail("Nesterov momentum requires a momentum and zero dampening")
  end
  if g.momentum < 0 or g.weight_decay < 0 then
    fail("momentum and weight_decay must be non-negative")
  end
end
--- One parameter's SGD step (group g, parameter p, its gradient and state s).
function SGD:update(g, p, grad, s)
  local first = false
  if g.momentum ~= 0 and s.momentum_buffer == nil then
    s.momentum_buffer = ml.zeros_like(p)
    first = true
  end
  K.sgd_step(p, grad, s.momentum_buffer, first, g.lr, g.momentum, g.dampening, g.weight_decay,
    g.nesterov, g.maximize)
end
--- One step of every parameter of group (a single C call).
function SGD:step_group(g, state)
  K.sgd_group(g.params, state, g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov,
    g.maximize)
end
algorithms.SGD = SGD

local function check_betas(g, fail)
  local b = g.betas
  if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number"
    or b[1] < 0 or b[1] >= 1 or b[2] < 0 or b[2] >= 1 then
    fail("betas must be two numbers in [0, 1)")
  end
  if g.eps < 0 or g.weight_decay < 0 then
    fail("eps and weight_decay must be non-negative")
  end
end

local function adam_group(decoupled)
  return function(_, g, state)
    K.adam_group(g.params, state, g.lr, g.betas[1], g.betas[2], g.eps, g.weight_decay, g.amsgrad,
      g.maximize, decoupled)
  end
end

local function adam_update(decoupled)
  return function(_, g, p, grad, s)
    if s.step == nil then
      s.step = 0
      s.exp_avg = ml.zeros_like(p)
      s.exp_avg_sq = ml.zeros_like(p)
      if g.amsgrad then
        s.max_exp_avg_sq = ml.zeros_like(p)
      end
    end
    s.step = s.step + 1
    K.adam_step(p, grad, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, s.step, g.lr, g.betas[1],
      g.betas[2], g.eps, g.weight_decay, g.amsgrad, g.maximize, decoupled)
  end
end

--- Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
-- amsgrad = false, maximize = false})
local Adam = Optimizer.extend("Adam", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8,
  weight_decay = 0, amsgrad = false, maximize = false })
Adam.check = check_betas
Adam.update = adam_update(false)
Adam.step_group = adam_group(false)
algorithms.Adam = Adam

--- AdamW: Adam with decoupled weight decay (default 1e-2).
local AdamW = Optimizer.extend("AdamW", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8,
  weight_decay = 1e-2, amsgrad = false, maximize = false })
AdamW.check = check_betas
AdamW.update = adam_update(true)
AdamW.step_group = adam_group(true)
algorithms.AdamW = AdamW

--- RMSprop(params, {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
-- centered = false, maximize = false})
local RMSprop = Optimizer.extend("RMSprop", { lr = 1e-2, alpha = 0.99, eps = 1e-8,
  weight_decay = 0, momentum = 0, centered = false, maximize = false })
--- Checks a group's RMSprop options.
function RMSprop.check(g, fail)
  if g.alpha < 0 or g.eps < 0 or g.momentum < 0 or g.weight_decay < 0 then
    fail("alpha, eps, momentum and weight_decay must be non-negative")
  end
end
--- One parameter's RMSprop step.
function RMSprop:update(g, p, grad, s)
  if s.square_avg == nil then
    s.step = 0
    s.square_avg = ml.zeros_like(p)
    if g.momentum > 0 then
      s.momentum_buffer = ml.zeros_like(p)
    end
    if g.centered then
      s.grad_avg = ml.zeros_like(p)
    end
  end
  s.step = s.step + 1
  K.rmsprop_step(p, grad, s.square_avg, s.momentum_buffer, s.grad_avg, g.lr, g.alpha, g.eps,
    g.weight_decay, g.momentum, g.centered, g.maximize)
end
--- One step of every parameter of group (a single C call).
function RMSprop:step_group(g, state)
  K.rmsprop_group(g.params, state, g.lr, g.alpha, g.eps, g.weight_decay, g.momentum, g.centered,
    g.maximize)
end
algorithms.RMSprop = RMSprop

--- Adagrad(params, {lr = 1e-2, lr_decay = 0, weight_decay = 0,
-- initial_accumulator_value = 0, eps = 1e-10, maximize = false})
local Adagrad = Optimizer.extend("Adagrad", { lr = 1e-2, lr_decay = 0, weight_decay = 0,
  initial_accumulator_value = 0, eps = 1e-10, maximize = false })
--- Checks a group's Adagrad options.
function Adagrad.check(g, fail)
  if g.lr_decay < 0 or g.weight_decay < 0 or g.initial_accumulator_value < 0 or g.eps < 0 then
    fail("lr_decay, weight_decay, initial_accumulator_value and eps must be non-negative")
  end
end
--- One parameter's Adagrad step.
function Adagrad:update(g, p, grad, s)
  if s.sum == nil then
    s.step = 0
    s.sum = ml.full_like(p, g.initial_accumulator_value)
  end
  s.step = s.step + 1
  K.adagrad_step(p, grad, s.sum, s.step, g.lr, g.lr_decay, g.weight_decay, g.eps, g.maximize)
end
--- One step of every parameter of group (a single C call).
function Adagrad:step_group(g, state)
  K.adagrad_group(g.params, state, g.lr, g.lr_decay, g.weight_decay, g.eps, g.maximize,
    g.initial_accumulator_value)
end
algorithms.Adagrad = Adagrad

return algorithms
