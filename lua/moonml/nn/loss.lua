--- Loss modules: each holds its options and calls the functional form.
local F = require("moonml.nn.functional")
local Module = require("moonml.nn.module")

local loss = {}

-- A loss class over F[fname](input, target, opts); allowed lists its option names.
local function define(name, fname, allowed)
  local cls = Module:extend(name)
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
  function cls:forward(input, target)
    return F[fname](input, target, self.opts)
  end
  function cls:extra_repr()
    return self.opts.reduction and ("reduction=" .. self.opts.reduction) or ""
  end
  loss[name] = cls
end

define("MSELoss", "mse_loss", { reduction = true })
define("L1Loss", "l1_loss", { reduction = true })
loss.define = define

return loss
