--- Cross-validation: per-fold accuracy, fit and test times, and their means.
-- @module moonml.rec.validation
local core = require("moonml.core")
local data = require("moonml.rec.data")
local metrics = require("moonml.rec.metrics")

local validation = {}

local function new_model(algo)
  if type(algo) == "function" then
    return algo()
  end
  if type(algo) == "table" and type(algo.clone) == "function" then
    return algo:clone()
  end
  error("moonml.rec.cross_validate: expected an algorithm or a function making one as " ..
    "argument 1, got " .. type(algo), 0)
end

--- `rec.cross_validate(algo_or_factory, data, {folds = 5 | folds list, measures =
-- {"rmse", "mae"}, seed =})`. `folds` is a fold count (data:folds(k, {seed = seed})) or
-- a list of {train =, test =} (data may then be nil). An algorithm instance is cloned
-- (same parameters, unfitted) for every fold. Returns {rmse = {...}, mae = {...},
-- fit_time = {...}, test_time = {...}, mean = {rmse =, mae =, fit_time =, test_time =}}
-- with times in seconds.
function validation.cross_validate(algo, set, opts)
  opts = data.check_opts(opts, "cross_validate", { folds = true, measures = true, seed = true })
  local folds = opts.folds or 5
  if math.type(folds) == "integer" then
    if not data.is_set(set) then
      error("moonml.rec.cross_validate: expected a rating set as argument 2, got " ..
        type(set), 0)
    end
    folds = set:folds(folds, { seed = opts.seed })
  elseif type(folds) ~= "table" or #folds == 0 then
    error("moonml.rec.cross_validate: folds must be a count or a list of {train =, test =}", 0)
  end
  local measures = opts.measures or { "rmse", "mae" }
  for _, m in ipairs(measures) do
    if not metrics[m] then
      error("moonml.rec.cross_validate: unknown measure '" .. tostring(m) ..
        "' (rmse, mae, mse or fcp)", 0)
    end
  end
  local res = { fit_time = {}, test_time = {}, mean = {} }
  for _, m in ipairs(measures) do
    res[m] = {}
  end
  local clock = core._rec.clock
  for f, fold in ipairs(folds) do
    local train, test = fold.train or fold[1], fold.test or fold[2]
    local model = new_model(algo)
    local t0 = clock()
    model:fit(train)
    local t1 = clock()
    local preds = model:test(test)
    local t2 = clock()
    res.fit_time[f], res.test_time[f] = t1 - t0, t2 - t1
    for _, m in ipairs(measures) do
      res[m][f] = metrics[m](preds)
    end
  end
  for k, v in pairs(res) do
    if k ~= "mean" then
      local s = 0
      for _, x in ipairs(v) do
        s = s + x
      end
      res.mean[k] = s / #v
    end
  end
  return res
end

return validation
