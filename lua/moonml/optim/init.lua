--- ml.optim: optimizers (fused C updates), learning-rate schedules, gradient clipping.
-- @module moonml.optim
local ml = require("moonml")

local optim = {}
optim.Optimizer = require("moonml.optim.optimizer")
for name, cls in pairs(require("moonml.optim.algorithms")) do
  optim[name] = cls
end
optim.lr_scheduler = require("moonml.optim.lr_scheduler")
for name, cls in pairs(optim.lr_scheduler) do
  optim[name] = cls
end

--- Scales the gradients of params (a tensor or Lua array of tensors) so that their
-- total norm is at most max_norm; returns the total norm before clipping (a number).
-- norm_type: 2 (default), any p > 0, or math.huge.
function optim.clip_grad_norm(params, max_norm, norm_type)
  if ml.is_tensor(params) then
    params = { params }
  end
  if type(params) ~= "table" then
    error("moonml.optim.clip_grad_norm: expected a tensor or a Lua array of tensors, got "
      .. type(params), 0)
  end
  if type(max_norm) ~= "number" or max_norm < 0 then
    error("moonml.optim.clip_grad_norm: max_norm must be a non-negative number, got "
      .. tostring(max_norm), 0)
  end
  norm_type = norm_type or 2
  if type(norm_type) ~= "number" or norm_type <= 0 then
    error("moonml.optim.clip_grad_norm: norm_type must be a positive number, got "
      .. tostring(norm_type), 0)
  end
  for i, p in ipairs(params) do
    if not ml.is_tensor(p) then
      error("moonml.optim.clip_grad_norm: parameter " .. i .. " is a " .. type(p) .. ", not a tensor", 0)
    end
  end
  return ml.no_grad(function()
    local total = 0
    local grads = {}
    for _, p in ipairs(params) do
      local g = p.grad
      if g ~= nil then
        grads[#grads + 1] = g
        local a = g:abs()
        if norm_type == math.huge then
          total = math.max(total, a:numel() > 0 and a:max():item() or 0)
        else
          total = total + (a ^ norm_type):sum():item()
        end
      end
    end
    if norm_type ~= math.huge then
      total = total ^ (1 / norm_type)
    end
    local coef = max_norm / (total + 1e-6)
    if coef < 1 then
      for _, g in ipairs(grads) do
        g:mul_(coef)
      end
    end
    return total
  end)
end
optim.clip_grad_norm_ = optim.clip_grad_norm

return optim
