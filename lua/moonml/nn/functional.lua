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

--- y = x W^T + b (W is out x in): one fused op when W is 2-D and b is absent or 1-D (the
-- layer's case); other shapes PyTorch accepts (a 1-D weight, a bias that broadcasts) are
-- composed from matmul and add.
function F.linear(x, weight, bias)
  if not ml.is_tensor(x) or not ml.is_tensor(weight) or (bias ~= nil and not ml.is_tensor(bias)) then
    error(string.format("moonml.linear: expected tensors input, weight[, bias], got %s, %s, %s",
      ml.is_tensor(x) and "tensor" or type(x), ml.is_tensor(weight) and "tensor" or type(weight),
      ml.is_tensor(bias) and "tensor" or type(bias)), 0)
  end
  -- a bias that is not 1-D broadcasts as in PyTorch (the addition reports a mismatch)
  if weight:dim() == 2 and (x:dim() < 1 or x:size(-1) ~= weight:size(2)
    or (bias ~= nil and bias:dim() == 1 and bias:size(1) ~= weight:size(1))) then
    local function s(t)
      return t == nil and "none" or "{" .. table.concat(t:shape(), ", ") .. "}"
    end
    error(string.format("moonml.linear: input %s, weight %s and bias %s do not fit (weight is "
      .. "out x in, the input's last dimension in, bias out)", s(x), s(weight), s(bias)), 0)
  end
  if ml.is_tensor(weight) and weight:dim() == 2 and (bias == nil
    or ml.is_tensor(bias) and bias:dim() == 1 and bias:size(1) == weight:size(1)) then
    return ml.linear(x, weight, bias)
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
  if not ml.is_tensor(x) then
    error("moonml.dropout: expected a tensor, got " .. type(x), 0)
  end
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then -- NaN too
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

-- Fused C kernels (forward and backward) under PyTorch's names.
for _, name in ipairs({ "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
  "adaptive_avg_pool2d", "batch_norm", "layer_norm", "leaky_relu", "elu", "gelu", "softplus",
  "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
  "binary_cross_entropy_with_logits", "kl_div", "hinge_embedding_loss", "multi_margin_loss" }) do
  F[name] = ml[name]
end

return F
