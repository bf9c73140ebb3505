--- BaselineOnly and the baseline estimates shared by the algorithms that use them.
-- r_hat = mu + b_u + b_i, with the biases from Surprise's ALS (default) or SGD.
-- @module moonml.rec.baseline
local base = require("moonml.rec.base")
local data = require("moonml.rec.data")
local C = base.C

local baseline = {}

--- Surprise's compute_baselines: returns bu, bi (float64 tensors over the id space).
-- bsl_options: {method = "als", n_epochs = 10, reg_u = 15, reg_i = 10} or
-- {method = "sgd", n_epochs = 20, reg = 0.02, learning_rate = 0.005}.
function baseline.compute(train, bsl_options, who)
  who = who or "compute_baselines"
  if not data.is_set(train) then
    error("moonml.rec." .. who .. ": expected a rating set as argument 1, got " .. type(train), 0)
  end
  if bsl_options ~= nil and type(bsl_options) ~= "table" then
    error("moonml.rec." .. who .. ": bsl_options must be a table, got " .. type(bsl_options), 0)
  end
  local o = bsl_options or {}
  local method = o.method or "als"
  local allowed
  if method == "als" then
    allowed = { method = true, n_epochs = true, reg_u = true, reg_i = true }
  elseif method == "sgd" then
    allowed = { method = true, n_epochs = true, reg = true, learning_rate = true }
  else
    error(string.format("moonml.rec.%s: invalid method '%s' for baseline computation " ..
      "(als or sgd)", who, tostring(method)), 0)
  end
  for k, v in pairs(o) do
    if not allowed[k] then
      error(string.format("moonml.rec.%s: unknown baseline option '%s' for method %s", who,
        tostring(k), method), 0)
    end
    if k ~= "method" and type(v) ~= "number" then
      error(string.format("moonml.rec.%s: baseline option %s must be a number", who, k), 0)
    end
  end
  local n_epochs = o.n_epochs or (method == "als" and 10 or 20)
  if math.type(n_epochs) ~= "integer" or n_epochs < 0 then
    error(string.format("moonml.rec.%s: n_epochs must be a non-negative integer", who), 0)
  end
  local mu = train:global_mean()
  if method == "als" then
    return C.baseline(train.store, "als", mu, n_epochs, o.reg_u or 15, o.reg_i or 10)
  end
  return C.baseline(train.store, "sgd", mu, n_epochs, o.reg or 0.02, o.learning_rate or 0.005)
end

local BaselineOnly = base.class("BaselineOnly", {
  params = { { "bsl_options", {}, type = "table" } },
})

function BaselineOnly:_fit(train)
  self.bu, self.bi = baseline.compute(train, self.bsl_options, "BaselineOnly")
  self.biased, self.k = true, 0
  self.trainset_store = train.store
end

BaselineOnly._estimate_many = base.mf_estimate_many
BaselineOnly._scores = base.mf_scores
base.persist(BaselineOnly, {
  tensors = { bu = "float64[users]", bi = "float64[items]" },
  -- the C predictor reads biased and k: a baseline is always biased, with no factors
  restore = function(self, train)
    self.biased, self.k = true, 0
    self.trainset_store = train.store
  end,
})
baseline.BaselineOnly = BaselineOnly

return baseline
