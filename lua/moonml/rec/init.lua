--- moonml.rec: rating prediction and recommendation with Surprise's algorithms.
--
--     local rec = require("moonml").rec
--     local data = rec.load("ml-100k/u.data", {format = "movielens-100k"})
--     local train, test = data:split{test = 0.2, seed = 1}
--     local svd = rec.SVD{n_factors = 100, random_state = 1}:fit(train)
--     print(rec.rmse(svd, test))
--     local ids, scores = svd:recommend(196, 10)  -- seen items left out
--
-- Data: load (MovieLens 100k / 1M / latest CSV, generic delimited files), from_table,
-- from_tensors, folds_from_file, predefined_folds; splits on the set (split, folds,
-- leave_last_out). Algorithms: NormalPredictor, BaselineOnly, KNNBasic, KNNWithMeans,
-- KNNWithZScore, KNNBaseline, SVD, SVDpp, NMF, SlopeOne, CoClustering, all with the
-- contract of moonml.rec.base; implicit feedback (moonml.rec.implicit): ALS, BPR,
-- ItemKNN, Popular, and NeuMF (moonml.rec.neumf). New users without a refit:
-- recommend_new (ALS, BPR, ItemKNN, Popular, NeuMF, SVD, SVDpp, item-based k-NN). Scale:
-- rec.synthetic generates seeded interaction sets.
-- Metrics: rmse, mae, mse, fcp; ranking metrics precision_at_k, recall_at_k, ndcg_at_k,
-- map_at_k, hit_rate, auc, coverage (and ranking_metrics for all at once).
-- cross_validate, grid_search.
-- @module moonml.rec
local data = require("moonml.rec.data")
local metrics = require("moonml.rec.metrics")
local validation = require("moonml.rec.validation")
local baseline = require("moonml.rec.baseline")
local mf = require("moonml.rec.matrix_factorization")

local rec = {}

--- `rec.load(path, {format = "movielens-100k" | "movielens-1m" | "movielens-csv" | "csv"
-- | "movielens", sep =, header =, scale = {lo, hi}, skip_bad = false})` -> rating set.
-- Formats: movielens-100k (u.data: tab, 4 fields, scale 1..5), movielens-1m (ratings.dat:
-- "::", scale 1..5), movielens-csv (ratings.csv: header line, ",", scale 0.5..5), csv
-- (default: ",", no header, user,item,rating[,timestamp], scale inferred from the data
-- unless given); "movielens" picks one of the three by the file's extension. CRLF and
-- LF line ends, blank lines ignored, fields trimmed. A malformed line is an error
-- "moonml.rec.load: u.data:17: expected 4 fields, got 2", or, with skip_bad = true,
-- skipped and counted in data.skipped. Non-finite ratings and ratings outside the scale
-- are errors either way.
rec.load = data.load
rec.from_table = data.from_table
rec.from_tensors = data.from_tensors
rec.folds_from_file = data.folds_from_file
rec.predefined_folds = data.predefined_folds
rec.load_many = data.load_many
rec.is_ratings = data.is_set
rec.synthetic = data.synthetic

rec.NormalPredictor = require("moonml.rec.random_pred")
rec.BaselineOnly = baseline.BaselineOnly
rec.SVD = mf.SVD
rec.SVDpp = mf.SVDpp
rec.NMF = mf.NMF
local knns = require("moonml.rec.knns")
rec.KNNBasic = knns.KNNBasic
rec.KNNWithMeans = knns.KNNWithMeans
rec.KNNWithZScore = knns.KNNWithZScore
rec.KNNBaseline = knns.KNNBaseline
rec.SlopeOne = require("moonml.rec.slope_one")
rec.NeuMF = require("moonml.rec.neumf")
rec.CoClustering = require("moonml.rec.co_clustering")
rec.compute_baselines = baseline.compute
local implicit = require("moonml.rec.implicit")
rec.ALS = implicit.ALS
rec.BPR = implicit.BPR
rec.ItemKNN = implicit.ItemKNN
rec.Popular = implicit.Popular

rec.rmse = metrics.rmse
rec.mae = metrics.mae
rec.mse = metrics.mse
rec.fcp = metrics.fcp
rec.cross_validate = validation.cross_validate
rec.grid_search = validation.grid_search
local ranking = require("moonml.rec.ranking")
rec.ranking_metrics = ranking.ranking_metrics
rec.precision_at_k = ranking.precision_at_k
rec.recall_at_k = ranking.recall_at_k
rec.ndcg_at_k = ranking.ndcg_at_k
rec.map_at_k = ranking.map_at_k
rec.hit_rate = ranking.hit_rate
rec.auc = ranking.auc
rec.coverage = ranking.coverage

rec.base = require("moonml.rec.base")
--- `rec.load_model(path)`: a model saved with `m:save(path)` (moonml.rec.persist).
rec.load_model = require("moonml.rec.persist").load_model

return rec
