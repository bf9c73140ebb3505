-- ML-100k: 5-fold CV on exactly Surprise's folds (u.data.surprise_kfold5_rs0) compared with
-- Surprise 1.1.4's figures (../shared/reference/surprise-ml100k.md).
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

local function folds()
  local path, why = h.shared_data("ml-100k/u.data")
  local fpath, fwhy = h.shared_data("ml-100k/u.data.surprise_kfold5_rs0")
  if not path or not fpath then
    return nil, why or fwhy
  end
  local data = rec.load(path, { format = "movielens-100k" })
  return rec.folds_from_file(data, fpath)
end

local function check(name, make, rmse, mae, tol)
  it(name .. " matches Surprise's RMSE within " .. tol, function()
    local f, why = folds()
    if not f then
      pending(why)
      return
    end
    local res = rec.cross_validate(make, nil, { folds = f })
    assert.equal(5, #res.rmse)
    assert.is_true(math.abs(res.mean.rmse - rmse) <= tol or res.mean.rmse < rmse,
      string.format("%s RMSE %.4f vs Surprise %.4f", name, res.mean.rmse, rmse))
    assert.is_true(math.abs(res.mean.mae - mae) <= tol or res.mean.mae < mae,
      string.format("%s MAE %.4f vs Surprise %.4f", name, res.mean.mae, mae))
  end)
end

describe("ML-100k, Surprise's 5 folds", function()
  check("BaselineOnly", function() return rec.BaselineOnly() end, 0.9440, 0.7484, 0.0005)
  check("SVD", function() return rec.SVD({ random_state = 1 }) end, 0.9361, 0.7376, 0.003)
  check("SVDpp", function() return rec.SVDpp({ random_state = 1 }) end, 0.9200, 0.7213, 0.003)
  check("NMF", function() return rec.NMF({ random_state = 1 }) end, 0.9625, 0.7569, 0.003)
  check("NormalPredictor", function() return rec.NormalPredictor() end, 1.5180, 1.2187, 0.005)
  -- the neighbourhood models are deterministic: the same estimates up to ties
  check("KNNBasic", function() return rec.KNNBasic() end, 0.9797, 0.7736, 0.0005)
  check("KNNWithMeans", function() return rec.KNNWithMeans() end, 0.9511, 0.7495, 0.0005)
  check("KNNBaseline", function() return rec.KNNBaseline() end, 0.9307, 0.7332, 0.0005)
  check("SlopeOne", function() return rec.SlopeOne() end, 0.9459, 0.7434, 0.0005)
end)

describe("ML-100k, Surprise's 5 folds #slow", function()
  -- CoClustering starts from random clusters (numpy's generator in Surprise): a seed moves
  -- the 5-fold RMSE by about +-0.003, so the mean over 8 seeds is compared.
  it("CoClustering matches Surprise's RMSE within 0.003 (mean over 8 seeds)", function()
    local f, why = folds()
    if not f then
      pending(why)
      return
    end
    local rmse, mae = 0, 0
    for seed = 0, 7 do
      local res = rec.cross_validate(function() return rec.CoClustering({ random_state = seed }) end,
        nil, { folds = f })
      rmse, mae = rmse + res.mean.rmse / 8, mae + res.mean.mae / 8
    end
    assert.is_true(math.abs(rmse - 0.9651) <= 0.003, string.format("RMSE %.4f", rmse))
    assert.is_true(math.abs(mae - 0.7556) <= 0.003, string.format("MAE %.4f", mae))
  end)
end)
