--- Loss modules: each holds its options and calls the functional form; found as
-- `nn.MSELoss` etc. `loss = crit(input, target)`.
-- @module moonml.nn.loss
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local loss = {}

-- A loss class over F[fname](input, target, opts); allowed lists its option names.
local function define(name, fname, allowed)
  local cls = Module:extend(name)
  --- A new loss module; opts as the functional form's (e.g. {reduction = "sum"}).
  function cls.new(opts)
    local self = Module.init(cls)
    self.opts = Module.check_opts(name, opts, allowed)
    local r = self.opts.reduction
    if r ~= nil and r ~= "mean" and r ~= "sum" and r ~= "none" then -- fail now, not at forward
      error("moonml.nn." .. name .. ": reduction must be \"mean\", \"sum\" or \"none\", got "
        .. tostring(r), 0)
    end
    return self
  end
  local fn = F[fname]
  --- The loss of input against target.
  function cls:forward(input, target)
    return fn(input, target, self.opts)
  end
  cls.__call = cls.forward
  --- "reduction=<reduction>" when given.
  function cls:extra_repr()
    return self.opts.reduction and ("reduction=" .. self.opts.reduction) or ""
  end
  loss[name] = cls
end

--- nn.MSELoss([{reduction = "mean" | "sum" | "none"}]): mean squared error.
-- @function MSELoss
define("MSELoss", "mse_loss", { reduction = true })
--- nn.L1Loss([{reduction = "mean" | "sum" | "none"}]): mean absolute error.
-- @function L1Loss
define("L1Loss", "l1_loss", { reduction = true })
define("CrossEntropyLoss", "cross_entropy", { weight = true, ignore_index = true,
  label_smoothing = true, reduction = true })
define("NLLLoss", "nll_loss", { weight = true, ignore_index = true, reduction = true })
define("BCELoss", "binary_cross_entropy", { weight = true, reduction = true })
define("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", { weight = true,
  pos_weight = true, reduction = true })
define("KLDivLoss", "kl_div", { reduction = true, log_target = true })
define("HingeEmbeddingLoss", "hinge_embedding_loss", { margin = true, reduction = true })
define("MultiMarginLoss", "multi_margin_loss", { p = true, margin = true, weight = true,
  reduction = true })
loss.define = define

return loss
