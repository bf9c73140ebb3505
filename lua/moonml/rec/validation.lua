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
    if folds < 2 then
      error("moonml.rec.cross_validate: folds must be at least 2, got " .. folds, 0)
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
  local clock = core.clock
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

-- Lower is better for the error measures, higher for FCP.
local HIGHER_BETTER = { fcp = true }

local function combinations(grid)
  local keys = {}
  for k, v in pairs(grid) do
    if type(k) ~= "string" then
      error("moonml.rec.grid_search: param_grid keys must be parameter names", 0)
    end
    if type(v) ~= "table" or #v == 0 then
      error(string.format("moonml.rec.grid_search: param_grid.%s must be a non-empty list " ..
        "of values", k), 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = { {} }
  for _, k in ipairs(keys) do -- the last key varies fastest
    local nxt = {}
    for _, partial in ipairs(out) do
      for _, v in ipairs(grid[k]) do
        local c = {}
        for kk, vv in pairs(partial) do
          c[kk] = vv
        end
        c[k] = v
        nxt[#nxt + 1] = c
      end
    end
    out = nxt
  end
  return out
end

--- `rec.grid_search(class_or_factory, param_grid, data, {folds = 5, measure = "rmse",
-- seed =})`: cross-validates every combination of the parameter lists in param_grid
-- (e.g. {k = {20, 40}, sim_options = {{name = "msd"}, {name = "cosine"}}}) on the same
-- folds. class_or_factory is an algorithm class (called with each combination) or a
-- function taking the combination and returning an unfitted model. folds is a count
-- (data:folds(n, {seed = seed})) or a list of {train =, test =}. Returns {best_params =,
-- best_score =, best_index =, measure =, results = {{params =, mean = {rmse =, ...,
-- fit_time =, test_time =}, <measure> = per-fold values}, ...}} in grid order (keys
-- sorted by name, the last varying fastest). The best is the lowest mean of the measure
-- (the highest for fcp); the first wins a tie.
function validation.grid_search(algo, grid, set, opts)
  opts = data.check_opts(opts, "grid_search", { folds = true, measure = true, seed = true })
  local make
  if type(algo) == "function" then
    make = algo
  elseif type(algo) == "table" and type(algo.params) == "table" and getmetatable(algo)
      and getmetatable(algo).__call then
    make = function(params) return algo(params) end
  else
    error("moonml.rec.grid_search: expected an algorithm class or a function making a " ..
      "model as argument 1, got " .. type(algo), 0)
  end
  if type(grid) ~= "table" then
    error("moonml.rec.grid_search: expected a param_grid table as argument 2, got " ..
      type(grid), 0)
  end
  local measure = opts.measure or "rmse"
  if type(measure) ~= "string" or not metrics[measure] then
    error("moonml.rec.grid_search: unknown measure '" .. tostring(measure) ..
      "' (rmse, mae, mse or fcp)", 0)
  end
  local folds = opts.folds or 5
  if math.type(folds) == "integer" then
    if not data.is_set(set) then
      error("moonml.rec.grid_search: expected a rating set as argument 3, got " .. type(set), 0)
    end
    folds = set:folds(folds, { seed = opts.seed })
  elseif type(folds) ~= "table" or #folds == 0 then
    error("moonml.rec.grid_search: folds must be a count or a list of {train =, test =}", 0)
  end
  local results, best = {}, nil
  local sign = HIGHER_BETTER[measure] and -1 or 1
  local grid_points = combinations(grid)
  for _, params in ipairs(grid_points) do -- every combination makes a model before any fit
    local ok, err = pcall(make, params)
    if not ok then
      error("moonml.rec.grid_search: " .. tostring(err), 0)
    end
  end
  for n, params in ipairs(grid_points) do
    local res = validation.cross_validate(function() return make(params) end, nil,
      { folds = folds, measures = { measure } })
    local entry = { params = params, mean = res.mean, fit_time = res.fit_time,
      test_time = res.test_time }
    entry[measure] = res[measure]
    results[n] = entry
    if not best or sign * res.mean[measure] < sign * results[best].mean[measure] then
      best = n
    end
  end
  return { best_params = results[best].params, best_score = results[best].mean[measure],
    best_index = best, measure = measure, results = results }
end

return validation
