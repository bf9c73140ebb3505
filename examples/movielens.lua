-- MovieLens-100k with moonml.rec: 5-fold cross-validation of the rating predictors
-- beside Surprise 1.1.4's figures, then a user's top-10 films by title.
--
--   lua5.4 examples/movielens.lua PATH [USER]
--
-- PATH is the ml-100k folder (or its u.data). When the folder holds
-- u.data.surprise_kfold5_rs0 the folds are exactly Surprise's KFold(5, random_state=0);
-- otherwise moonml's seeded folds are used.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ml = require("moonml")
local rec = ml.rec

local path = arg[1] or "../shared/data/ml-100k"
local user = arg[2] and (math.tointeger(tonumber(arg[2])) or arg[2]) or 196
local dir = path:match("u%.data$") and path:match("^(.*)/") or path
local data = rec.load(dir .. "/u.data", { format = "movielens-100k" })
print(tostring(data))

local folds, how
local ff = io.open(dir .. "/u.data.surprise_kfold5_rs0")
if ff then
  ff:close()
  folds, how = rec.folds_from_file(data, dir .. "/u.data.surprise_kfold5_rs0"), "Surprise's folds"
else
  folds, how = data:folds(5, { seed = 0 }), "moonml's seeded folds (Surprise's fold file absent)"
end

-- Surprise 1.1.4 on the same folds (RMSE, MAE, fit s/fold, test s/fold), measured on a
-- 2-core EPYC VM; Surprise itself is not run here.
local algos = {
  { "NormalPredictor", function() return rec.NormalPredictor() end, 1.5180, 1.2187, 0.05, 0.06 },
  { "BaselineOnly", function() return rec.BaselineOnly() end, 0.9440, 0.7484, 0.07, 0.05 },
  { "SVD", function() return rec.SVD({ random_state = 0 }) end, 0.9361, 0.7376, 0.34, 0.07 },
  { "SVDpp", function() return rec.SVDpp({ random_state = 0 }) end, 0.9200, 0.7213, 10.46, 1.68 },
  { "NMF", function() return rec.NMF({ random_state = 0 }) end, 0.9625, 0.7569, 0.82, 0.06 },
}

print(string.format("\n5-fold cross-validation on %s", how))
print(string.format("%-16s %8s %8s %9s %9s | %-29s", "algorithm", "RMSE", "MAE", "fit s", "test s",
  "Surprise 1.1.4 (RMSE MAE fit test)"))
for _, a in ipairs(algos) do
  local r = rec.cross_validate(a[2], nil, { folds = folds })
  print(string.format("%-16s %8.4f %8.4f %9.4f %9.4f | %.4f %.4f %5.2f %5.2f", a[1],
    r.mean.rmse, r.mean.mae, r.mean.fit_time, r.mean.test_time, a[3], a[4], a[5], a[6]))
end

-- titles from u.item: "id|title|date|..." (Latin-1; printed as bytes)
local titles = {}
local f = io.open(dir .. "/u.item", "rb")
if f then
  for line in f:lines() do
    local id, title = line:match("^(%d+)|([^|]*)")
    if id then
      titles[tonumber(id)] = title
    end
  end
  f:close()
end

local svd = rec.SVD({ random_state = 0 }):fit(data)
local ids, scores = svd:recommend(user, 10)
print(string.format("\nTop 10 for user %s (SVD on all ratings, films the user rated left out):",
  tostring(user)))
for k, id in ipairs(ids) do
  print(string.format("%2d. %-60s %.3f", k, titles[id] or ("item " .. tostring(id)), scores[k]))
end
