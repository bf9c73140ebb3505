-- Accuracy metrics (Surprise's definitions) and cross-validation.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

-- errors 0.5, -0.5, 1, -0.5, -2, 1
local P = {
  { uid = 1, iid = 1, r_ui = 4, est = 3.5 }, { uid = 1, iid = 2, r_ui = 2, est = 2.5 },
  { uid = 2, iid = 1, r_ui = 5, est = 4 }, { uid = 2, iid = 3, r_ui = 3, est = 3.5 },
  { uid = 3, iid = 1, r_ui = 2, est = 4 }, { uid = 3, iid = 2, r_ui = 4, est = 3 },
}

describe("rec metrics", function()
  it("rmse, mse and mae of a prediction list", function()
    assert.near(6.75 / 6, rec.mse(P), 1e-15)
    assert.near(math.sqrt(6.75 / 6), rec.rmse(P), 1e-15)
    assert.near(5.5 / 6, rec.mae(P), 1e-15)
  end)

  it("fcp averages concordant and discordant counts over the users that have them", function()
    -- users 1 and 2: one concordant pair each; user 3: one discordant pair -> 1 / (1 + 1)
    assert.near(0.5, rec.fcp(P), 1e-15)
    assert.near(1, rec.fcp({ P[1], P[2], P[3], P[4] }), 1e-15)
    h.assert_error("moonml.rec.fcp:", "cannot compute", rec.fcp, { P[1], P[3] })
  end)

  it("takes a model and a test set", function()
    local train = rec.from_table({ { 1, 1, 4 }, { 2, 1, 2 } }, { scale = { 1, 5 } })
    local test = rec.from_table({ { 1, 1, 5 }, { 3, 1, 1 } }, { scale = { 1, 5 } })
    -- BaselineOnly with 0 epochs predicts mu = 3 everywhere: errors 2 and -2
    local m = rec.BaselineOnly({ bsl_options = { n_epochs = 0 } }):fit(train)
    assert.near(2, rec.rmse(m, test), 1e-12)
    assert.near(2, rec.mae(m, test), 1e-12)
    assert.near(4, rec.mse(m, test), 1e-12)
  end)

  it("rejects empty predictions and bad arguments", function()
    h.assert_error("moonml.rec.rmse:", "empty", rec.rmse, {})
    h.assert_error("moonml.rec.mae:", "expected", rec.mae, 3)
  end)
end)

describe("rec.cross_validate", function()
  local rows = {}
  for u = 1, 12 do
    for i = 1, 10 do
      if (u + i) % 3 ~= 0 then
        rows[#rows + 1] = { u, i, (u * i) % 5 + 1 }
      end
    end
  end
  local data = rec.from_table(rows, { scale = { 1, 5 } })

  it("returns per-fold figures, times and means", function()
    local res = rec.cross_validate(rec.BaselineOnly(), data,
      { folds = 4, seed = 1, measures = { "rmse", "mae", "fcp" } })
    assert.equal(4, #res.rmse)
    assert.equal(4, #res.fit_time)
    assert.equal(4, #res.test_time)
    local s = 0
    for _, v in ipairs(res.rmse) do
      s = s + v
    end
    assert.near(s / 4, res.mean.rmse, 1e-12)
    assert.is_number(res.mean.fcp)
    -- the same folds by hand give the same figures
    local folds = data:folds(4, { seed = 1 })
    local m = rec.BaselineOnly():fit(folds[3].train)
    assert.near(rec.rmse(m, folds[3].test), res.rmse[3], 1e-12)
    -- a fold list and a factory work too
    local r2 = rec.cross_validate(function() return rec.BaselineOnly() end, nil,
      { folds = folds })
    assert.near(res.mean.rmse, r2.mean.rmse, 1e-12)
  end)

  it("rejects bad options", function()
    h.assert_error("moonml.rec.cross_validate:", "unknown measure 'auc'",
      rec.cross_validate, rec.SVD(), data, { measures = { "auc" } })
    h.assert_error("moonml.rec.cross_validate:", "expected an algorithm",
      rec.cross_validate, 3, data)
    h.assert_error("moonml.rec.cross_validate:", "unknown option 'cv'",
      rec.cross_validate, rec.SVD(), data, { cv = 3 })
  end)
end)
