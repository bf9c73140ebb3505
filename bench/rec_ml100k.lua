-- Recommenders against Surprise 1.1.4: 5-fold cross-validation of every algorithm with its
-- default parameters, RMSE, MAE and fit / test seconds per fold beside Surprise's figures.
--
--   lua5.4 bench/rec_ml100k.lua [DATA_DIR [REPEAT]]      (make bench-rec)
--
-- DATA_DIR holds ml-100k/ and ml-latest-small/ (default: $MOONML_DATA or ../shared/data).
-- ML-100k runs on exactly Surprise's folds (ml-100k/u.data.surprise_kfold5_rs0:
-- KFold(n_splits=5, random_state=0)). Surprise cannot be installed here (no PyPI), so its
-- figures are the ones recorded on this kind of machine (2-core EPYC VM) in
-- ../shared/reference/surprise-ml100k.md and surprise-and-implicit-more.md; they are not
-- rerun. Times are wall-clock means over the folds (the median of REPEAT = 3
-- cross-validations); ratio = Surprise / moonml.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ml = require("moonml")
local rec = ml.rec

local dir = arg[1] or os.getenv("MOONML_DATA") or "../shared/data"
local REPEAT = math.tointeger(tonumber(arg[2] or "")) or 3

-- {name, factory, Surprise RMSE, MAE, fit s/fold, test s/fold} (nil: not measured)
local function algos()
  return {
    { "NormalPredictor", function() return rec.NormalPredictor() end },
    { "BaselineOnly", function() return rec.BaselineOnly() end },
    { "KNNBasic", function() return rec.KNNBasic() end },
    { "KNNWithMeans", function() return rec.KNNWithMeans() end },
    { "KNNWithZScore", function() return rec.KNNWithZScore() end },
    { "KNNBaseline", function() return rec.KNNBaseline() end },
    { "SVD", function() return rec.SVD({ random_state = 0 }) end },
    { "SVDpp", function() return rec.SVDpp({ random_state = 0 }) end },
    { "NMF", function() return rec.NMF({ random_state = 0 }) end },
    { "SlopeOne", function() return rec.SlopeOne() end },
    { "CoClustering", function() return rec.CoClustering({ random_state = 0 }) end },
  }
end

local SURPRISE_100K = {
  NormalPredictor = { 1.5180, 1.2187, 0.052, 0.058 },
  BaselineOnly = { 0.9440, 0.7484, 0.067, 0.050 },
  KNNBasic = { 0.9797, 0.7736, 0.107, 1.099 },
  KNNWithMeans = { 0.9511, 0.7495, 0.109, 1.032 },
  KNNBaseline = { 0.9307, 0.7332, 0.193, 1.376 },
  SVD = { 0.9361, 0.7376, 0.335, 0.066 },
  SVDpp = { 0.9200, 0.7213, 10.459, 1.682 },
  NMF = { 0.9625, 0.7569, 0.824, 0.064 },
  SlopeOne = { 0.9459, 0.7434, 0.426, 1.262 },
  CoClustering = { 0.9651, 0.7556, 0.720, 0.068 },
}

local SURPRISE_LATEST = {
  BaselineOnly = { 0.8727, 0.6728, 0.160, 0.064 },
  KNNBaseline = { 0.8748, 0.6685, 0.144, 0.646 },
  SVD = { 0.8734, 0.6710, 0.689, 0.088 },
  SVDpp = { 0.8610, 0.6593, 34.907, 4.796 },
  NMF = { 0.9221, 0.7063, 1.465, 0.091 },
  SlopeOne = { 0.9015, 0.6880, 3.410, 3.672 },
}

local function exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
  end
  return f ~= nil
end

local function run(title, folds, surprise)
  print(title)
  print(string.format("%-15s %7s %7s %7s %7s | %7s %7s %7s %7s | %7s %6s %6s", "algorithm",
    "RMSE", "MAE", "fit s", "test s", "S RMSE", "S MAE", "S fit", "S test", "dRMSE", "fit x",
    "test x"))
  for _, a in ipairs(algos()) do
    -- times: the median over REPEAT cross-validations of the per-fold means (the machine
    -- is shared; RMSE and MAE are the same every time)
    local runs = {}
    for t = 1, REPEAT do
      collectgarbage()
      runs[t] = rec.cross_validate(a[2], nil, { folds = folds })
    end
    local function median(field)
      local v = {}
      for t = 1, #runs do
        v[t] = runs[t].mean[field]
      end
      table.sort(v)
      return v[(#v + 1) // 2]
    end
    local m = { rmse = runs[1].mean.rmse, mae = runs[1].mean.mae, fit_time = median("fit_time"),
      test_time = median("test_time") }
    local line = string.format("%-15s %7.4f %7.4f %7.3f %7.3f", a[1], m.rmse, m.mae, m.fit_time,
      m.test_time)
    local s = surprise[a[1]]
    if s then
      line = line .. string.format(" | %7.4f %7.4f %7.3f %7.3f | %+7.4f %6.1f %6.1f", s[1], s[2],
        s[3], s[4], m.rmse - s[1], s[3] / m.fit_time, s[4] / m.test_time)
    else
      line = line .. " | (no Surprise figure)"
    end
    print(line)
    io.stdout:flush()
  end
  print("")
end

print(string.format("moonml %s, %d thread(s); Surprise 1.1.4 figures are recorded ones " ..
  "(Surprise cannot be installed here), not rerun.", ml._VERSION or "", ml.get_num_threads and
  ml.get_num_threads() or 0))
print(string.format("Times: wall-clock seconds per fold (mean of 5 folds, median of %d runs); " ..
  "x = Surprise's time / moonml's.\n", REPEAT))

local u = dir .. "/ml-100k/u.data"
local ff = dir .. "/ml-100k/u.data.surprise_kfold5_rs0"
if exists(u) and exists(ff) then
  local data = rec.load(u, { format = "movielens-100k" })
  run("ML-100k (100000 ratings), 5-fold CV on exactly Surprise's folds " ..
    "(u.data.surprise_kfold5_rs0)", rec.folds_from_file(data, ff), SURPRISE_100K)
else
  print("ML-100k skipped: " .. u .. " or its fold file is absent\n")
end

local latest = dir .. "/ml-latest-small/ratings.csv"
if exists(latest) then
  local data = rec.load(latest, { format = "movielens-csv" })
  run("ML-latest-small (100836 ratings, 0.5-5 stars), 5-fold CV on moonml's seeded folds " ..
    "(seed 0; Surprise used its own KFold(5, random_state=0), not available as a file)",
    data:folds(5, { seed = 0 }), SURPRISE_LATEST)
  print("Note: Surprise 1.1.4's SlopeOne declares ratings as C ints when it sums deviations,")
  print("so half stars are truncated there (3.5 -> 3); moonml keeps them. Truncating the same")
  print("way gives 0.9015 RMSE here too, Surprise's figure.")
else
  print("ML-latest-small skipped: " .. latest .. " is absent")
end
