--- nn.functional: the layers' operations as plain functions on tensors.
-- Most are the C ops of the core under their PyTorch names; the rest are composed here.
-- @module moonml.nn.functional
local ml = require("moonml")

local F = {}

F.relu = ml.relu
F.sigmoid = ml.sigmoid
F.tanh = ml.tanh

--- softmax along dim (default: the last).
function F.softmax(x, dim)
  return ml.softmax(x, dim or -1)
end

--- log_softmax along dim (default: the last), computed stably.
function F.log_softmax(x, dim)
  return ml.log_softmax(x, dim or -1)
end

--- y = x W^T + b (W is out x in).
function F.linear(x, weight, bias)
  if bias ~= nil and ml.is_tensor(x) and x:dim() == 2 then
    return ml.addmm(bias, x, weight:t())
  end
  local y = ml.matmul(x, weight:t())
  if bias ~= nil then
    y = y + bias
  end
  return y
end

--- Zeroes each element with probability p while training, scaling the rest by 1/(1-p).
function F.dropout(x, p, training)
  p = p or 0.5
  if type(p) ~= "number" or p < 0 or p > 1 then
    error("moonml.dropout: p must be a probability in [0, 1], got " .. tostring(p), 0)
  end
  if training == false or p == 0 then
    return x
  end
  if p == 1 then
    return x * 0
  end
  local keep = ml.rand_like(x):ge(p)
  return x * keep * (1 / (1 - p))
end

local function reduce(loss, reduction, fn)
  reduction = reduction or "mean"
  if reduction == "mean" then
    return loss:mean()
  elseif reduction == "sum" then
    return loss:sum()
  elseif reduction == "none" then
    return loss
  end
  error("moonml." .. fn .. ": reduction must be \"mean\", \"sum\" or \"none\", got "
    .. tostring(reduction), 0)
end

local function check_pair(fn, input, target)
  if not ml.is_tensor(input) or not ml.is_tensor(target) then
    error("moonml." .. fn .. ": expected tensors, got " .. type(input) .. " and " .. type(target), 0)
  end
  local a, b = input:shape(), target:shape()
  if table.concat(a, ",") ~= table.concat(b, ",") then
    error(string.format("moonml.%s: input shape {%s} and target shape {%s} differ", fn,
      table.concat(a, ", "), table.concat(b, ", ")), 0)
  end
end

--- Mean squared error; opts.reduction "mean" (default), "sum" or "none".
function F.mse_loss(input, target, opts)
  check_pair("mse_loss", input, target)
  local d = input - target
  return reduce(d * d, opts and opts.reduction, "mse_loss")
end

--- Mean absolute error; opts.reduction as mse_loss.
function F.l1_loss(input, target, opts)
  check_pair("l1_loss", input, target)
  return reduce((input - target):abs(), opts and opts.reduction, "l1_loss")
end

return F
