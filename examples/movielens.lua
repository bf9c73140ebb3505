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
  { "KNNBasic", function() return rec.KNNBasic() end, 0.9797, 0.7736, 0.11, 1.10 },
  { "KNNWithMeans", function() return rec.KNNWithMeans() end, 0.9511, 0.7495, 0.11, 1.03 },
  { "KNNWithZScore", function() return rec.KNNWithZScore() end },
  { "KNNBaseline", function() return rec.KNNBaseline() end, 0.9307, 0.7332, 0.19, 1.38 },
  { "SVD", function() return rec.SVD({ random_state = 0 }) end, 0.9361, 0.7376, 0.34, 0.07 },
  { "SVDpp", function() return rec.SVDpp({ random_state = 0 }) end, 0.9200, 0.7213, 10.46, 1.68 },
  { "NMF", function() return rec.NMF({ random_state = 0 }) end, 0.9625, 0.7569, 0.82, 0.06 },
  { "SlopeOne", function() return rec.SlopeOne() end, 0.9459, 0.7434, 0.43, 1.26 },
  { "CoClustering", function() return rec.CoClustering({ random_state = 0 }) end, 0.9651, 0.7556,
    0.72, 0.07 },
}

print(string.format("\n5-fold cross-validation on %s", how))
print(string.format("%-16s %8s %8s %9s %9s | %-29s", "algorithm", "RMSE", "MAE", "fit s", "test s",
  "Surprise 1.1.4 (RMSE MAE fit test)"))
for _, a in ipairs(algos) do
  local r = rec.cross_validate(a[2], nil, { folds = folds })
  local line = string.format("%-16s %8.4f %8.4f %9.4f %9.4f | ", a[1], r.mean.rmse, r.mean.mae,
    r.mean.fit_time, r.mean.test_time)
  if a[3] then
    line = line .. string.format("%.4f %.4f %5.2f %5.2f", a[3], a[4], a[5], a[6])
  else
    line = line .. "(not in Surprise's table)"
  end
  print(line)
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

-- Films like the first one of the list, by the item-based k-NN's similarity (pearson
-- baseline, Surprise's recommended measure for item-based neighbourhoods).
if ids[1] then
  local knn = rec.KNNBaseline({ sim_options = { name = "pearson_baseline", user_based = false } })
  knn:fit(data)
  local like, sims = knn:similar_items(ids[1], 5)
  print(string.format("\nFilms most similar to %s (item-based KNNBaseline, pearson_baseline):",
    titles[ids[1]] or tostring(ids[1])))
  for k, id in ipairs(like) do
    print(string.format("%2d. %-60s %.3f", k, titles[id] or ("item " .. tostring(id)), sims[k]))
  end
end

-- Top-10 lists judged on one held-out fold: ratings of 4 and 5 count as relevant.
local fold = folds[1]
print(string.format("\nTop-10 ranking metrics on fold 1 (relevant: rating >= 3.5, seen items left out):"))
print(string.format("%-14s %9s %9s %9s %9s %9s %9s %9s", "algorithm", "prec@10", "recall@10",
  "ndcg@10", "map@10", "hit rate", "auc", "coverage"))
for _, a in ipairs({ { "SVD", rec.SVD({ random_state = 0 }) }, { "KNNBaseline", rec.KNNBaseline() },
  { "SlopeOne", rec.SlopeOne() } }) do
  local m = rec.ranking_metrics(a[2]:fit(fold.train), fold.test, 10)
  print(string.format("%-14s %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f", a[1], m.precision_at_k,
    m.recall_at_k, m.ndcg_at_k, m.map_at_k, m.hit_rate, m.auc, m.coverage))
end
