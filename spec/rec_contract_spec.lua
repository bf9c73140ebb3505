-- The contract every rating-prediction algorithm follows (moonml.rec.base). Add a line to
-- ALGOS for each new algorithm: {name, factory, can_predict_unknown_user}.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

local ALGOS = {
  { "NormalPredictor", function() return rec.NormalPredictor() end, true },
  { "BaselineOnly", function() return rec.BaselineOnly() end, true },
  { "BaselineOnly", function() return rec.BaselineOnly({ bsl_options = { method = "sgd" } }) end, true },
  { "SVD", function() return rec.SVD({ n_factors = 4, random_state = 1 }) end, true },
  { "SVD", function() return rec.SVD({ n_factors = 4, biased = false, random_state = 1 }) end, false },
  { "SVDpp", function() return rec.SVDpp({ n_factors = 3, random_state = 1 }) end, true },
  { "NMF", function() return rec.NMF({ n_factors = 3, random_state = 1 }) end, false },
  { "NMF", function() return rec.NMF({ n_factors = 3, biased = true, random_state = 1 }) end, true },
  { "KNNBasic", function() return rec.KNNBasic() end, false },
  { "KNNBasic", function()
    return rec.KNNBasic({ k = 2, sim_options = { name = "cosine", user_based = false } })
  end, false },
  { "KNNWithMeans", function() return rec.KNNWithMeans({ sim_options = { name = "pearson" } }) end,
    false },
  { "KNNWithZScore", function()
    return rec.KNNWithZScore({ sim_options = { name = "msd", user_based = false } })
  end, false },
  { "KNNBaseline", function() return rec.KNNBaseline() end, true },
  { "KNNBaseline", function()
    return rec.KNNBaseline({ sim_options = { name = "pearson_baseline", user_based = false },
      bsl_options = { method = "sgd" } })
  end, true },
  { "SlopeOne", function() return rec.SlopeOne() end, false },
  { "CoClustering", function() return rec.CoClustering({ random_state = 1 }) end, false },
}

-- 6 users x 8 items, integer and string ids mixed; user 6 rated items 1..4 only.
local function dataset()
  local rows = {}
  for u = 1, 6 do
    for i = 1, 8 do
      if (u * 3 + i * 5) % 4 ~= 0 and not (u == 6 and i > 4) then
        local item = i % 2 == 0 and ("m" .. i) or i
        rows[#rows + 1] = { u, item, (u + i) % 5 + 1, u * 100 + i }
      end
    end
  end
  return rec.from_table(rows, { scale = { 1, 5 } })
end

for _, entry in ipairs(ALGOS) do
  local name, make, knows_unknown = entry[1], entry[2], entry[3]
  describe("contract: " .. tostring(make()), function()
    local data = dataset()
    local train, test = data:split({ test = 0.25, seed = 2 })

    it("fit returns self and tostring names the model", function()
      local m = make()
      assert.equal(m, m:fit(train))
      assert.truthy(tostring(m):find("moonml.rec." .. name .. "{", 1, true))
      assert.truthy(tostring(m):find("fitted on", 1, true))
    end)

    it("predicts known pairs inside the scale, the same for 196 and \"196\"", function()
      ml.manual_seed(1)
      local m = make():fit(train)
      for u, i, r in test:ratings() do
        local est, details = m:predict(u, i, r)
        assert.is_number(est)
        assert.is_true(est >= 1 and est <= 5)
        assert.is_boolean(details.was_impossible)
        assert.equal(r, details.r_ui)
      end
      if name ~= "NormalPredictor" then
        assert.equal((m:predict(3, "m2")), (m:predict("3", "m2")))
        local est = m:predict(2, 3)
        h.assert_close(m:predict_batch({ 2, "2" }, { 3, "3" }), { est, est }, { rtol = 1e-6 })
        h.assert_close(m:predict_batch(ml.tensor({ 2 }, "int64"), ml.tensor({ 3 }, "int64")),
          { est }, { rtol = 1e-6 })
      end
    end)

    it("falls back on unknown users and items", function()
      local m = make():fit(train)
      local est, details = m:predict("nobody", 1)
      assert.is_true(est >= 1 and est <= 5)
      if knows_unknown then
        assert.is_false(details.was_impossible)
      else
        assert.is_true(details.was_impossible)
        assert.is_string(details.reason)
        local mu = math.min(5, math.max(1, train:global_mean()))
        assert.near(mu, est, 1e-12)
      end
      local e2, d2 = m:predict(1, "no such item")
      assert.is_true(e2 >= 1 and e2 <= 5)
      assert.is_boolean(d2.was_impossible)
    end)

    it("tests a whole set and recommends unseen items, best first", function()
      local m = make():fit(train)
      local preds = m:test(test)
      assert.equal(#test, #preds)
      assert.is_number(rec.rmse(preds))
      local seen = {}
      for _, i in ipairs((train:user_ratings(6))) do
        seen[i] = true
      end
      local ids, scores = m:recommend(6, 20)
      assert.is_true(#ids > 0)
      for k, i in ipairs(ids) do
        assert.is_nil(seen[i])
        if k > 1 then
          assert.is_true(scores[k] <= scores[k - 1])
        end
      end
      local all = m:recommend(6, 100, { exclude_seen = false })
      assert.equal(#ids + #(train:user_ratings(6)), #all)
    end)

    it("round-trips through m:save and rec.load_model with identical results", function()
      local m = make():fit(train)
      local path = os.tmpname()
      m:save(path)
      local back = rec.load_model(path)
      os.remove(path)
      require("support.rec_roundtrip").assert_same_model(m, back, train, test)
    end)

    it("raises moonml.rec.<Name>.<method> errors", function()
      local m = make()
      h.assert_error("moonml.rec." .. name .. ".predict:", "not fitted", function()
        m:predict(1, 1)
      end)
      h.assert_error("moonml.rec." .. name .. ".fit:", "expected a rating set", function()
        m:fit({})
      end)
      m:fit(train)
      h.assert_error("moonml.rec." .. name .. ".predict:", "expected a user id", function()
        m:predict(nil, 1)
      end)
      h.assert_error("moonml.rec." .. name .. ".predict_batch:", "2 users but 1 items",
        function() m:predict_batch({ 1, 2 }, { 1 }) end)
      h.assert_error("moonml.rec." .. name .. ".test:", "expected a rating set", function()
        m:test(nil)
      end)
    end)
  end)
end
