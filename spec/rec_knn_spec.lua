-- Neighbourhood models on tiny rating sets worked out by hand with Surprise's formulas
-- (surprise/similarities.pyx, prediction_algorithms/knns.py, slope_one.pyx,
-- co_clustering.pyx), similar_users / similar_items, and bad input.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

-- S1: A and B rated items 1..4, C rated 1 and 2.
local function s1()
  return rec.from_table({
    { "A", 1, 5 }, { "A", 2, 3 }, { "A", 3, 4 }, { "A", 4, 1 },
    { "B", 1, 4 }, { "B", 2, 2 }, { "B", 3, 5 }, { "B", 4, 2 },
    { "C", 1, 2 }, { "C", 2, 4 },
  }, { scale = { 1, 5 } })
end

-- S2: S1 plus item 5 (A 5, B 3, C 1) and a user D who rated 1 -> 5 and 2 -> 3.
local function s2()
  return rec.from_table({
    { "A", 1, 5 }, { "A", 2, 3 }, { "A", 3, 4 }, { "A", 4, 1 }, { "A", 5, 5 },
    { "B", 1, 4 }, { "B", 2, 2 }, { "B", 3, 5 }, { "B", 4, 2 }, { "B", 5, 3 },
    { "C", 1, 2 }, { "C", 2, 4 }, { "C", 5, 1 },
    { "D", 1, 5 }, { "D", 2, 3 },
  }, { scale = { 1, 5 } })
end

describe("similarities by hand", function()
  it("cosine between users over their common items", function()
    local m = rec.KNNBasic({ sim_options = { name = "cosine" } }):fit(s1())
    -- A.B = 5*4 + 3*2 + 4*5 + 1*2 = 48; |A| = sqrt(51), |B| = 7
    -- A.C over items 1, 2: 5*2 + 3*4 = 22; sqrt(25 + 9) * sqrt(4 + 16) = sqrt(680)
    local ids, sims = m:similar_users("A", 5)
    assert.same({ "B", "C" }, ids)
    assert.near(48 / (math.sqrt(51) * 7), sims[1], 1e-12)
    assert.near(22 / math.sqrt(680), sims[2], 1e-12)
    assert.near(0.9601920576192067, sims[1], 1e-12)
  end)

  it("cosine between items (computed on demand from a user-based model too)", function()
    -- item 1 against 2 (rated by A, B, C): (5, 4, 2) and (3, 2, 4): 31 / sqrt(45 * 29);
    -- against 3 (A, B): (5, 4) and (4, 5): 40 / 41; against 4: (5, 4) and (1, 2): 13 /
    -- sqrt(41 * 5)
    local want = { 40 / 41, 13 / math.sqrt(205), 31 / math.sqrt(45 * 29) }
    local item_based = rec.KNNBasic({ sim_options = { name = "cosine", user_based = false } })
    local ids, sims = item_based:fit(s1()):similar_items(1, 5)
    assert.same({ 3, 4, 2 }, ids)
    h.assert_close(ml.tensor(sims, "float64"), want, { rtol = 1e-12 })
    local user_based = rec.KNNBasic({ sim_options = { name = "cosine" } }):fit(s1())
    local ids2, sims2 = user_based:similar_items(1, 2)
    assert.same({ 3, 4 }, ids2)
    h.assert_close(ml.tensor(sims2, "float64"), { want[1], want[2] }, { rtol = 1e-12 })
  end)

  it("pearson centres on the means over the common items", function()
    local m = rec.KNNBasic({ sim_options = { name = "pearson" } }):fit(s1())
    -- A = (5, 3, 4, 1), B = (4, 2, 5, 2), both means 3.25:
    -- sum dA*dB = 5.75, sum dA^2 = 8.75, sum dB^2 = 6.75 -> 5.75 / sqrt(8.75 * 6.75).
    -- A and C over items 1, 2: (5, 3) against (2, 4) is -1, which is never a neighbour.
    local ids, sims = m:similar_users("A", 5)
    assert.same({ "B" }, ids)
    assert.near(5.75 / math.sqrt(8.75 * 6.75), sims[1], 1e-12)
    assert.near(0.7481900559272088, sims[1], 1e-12)
  end)

  it("msd is 1 / (mean squared difference + 1); min_support drops thin pairs", function()
    -- A and B differ by 1 on each of 4 items: msd 1 -> 0.5; A and C: (9 + 1) / 2 = 5 -> 1/6
    local m = rec.KNNBasic():fit(s1())
    local ids, sims = m:similar_users("A", 5)
    assert.same({ "B", "C" }, ids)
    assert.near(0.5, sims[1], 1e-15)
    assert.near(1 / 6, sims[2], 1e-15)
    local m3 = rec.KNNBasic({ sim_options = { min_support = 3 } }):fit(s1())
    ids = m3:similar_users("A", 5)
    assert.same({ "B" }, ids)
  end)

  it("pearson_baseline with no baseline epochs and no shrinkage is the cosine of r - mu", function()
    local data = s1()
    local mu = data:global_mean() -- 3.2
    local m = rec.KNNBasic({ sim_options = { name = "pearson_baseline", shrinkage = 0 },
      bsl_options = { n_epochs = 0 } }):fit(data)
    local a, b = { 5, 3, 4, 1 }, { 4, 2, 5, 2 }
    local dot, na, nb = 0, 0, 0
    for j = 1, 4 do
      dot = dot + (a[j] - mu) * (b[j] - mu)
      na = na + (a[j] - mu) ^ 2
      nb = nb + (b[j] - mu) ^ 2
    end
    local _, sims = m:similar_users("A", 1)
    assert.near(dot / math.sqrt(na * nb), sims[1], 1e-12)
    -- shrinkage 100 multiplies by (4 - 1) / (4 - 1 + 100)
    local shrunk = rec.KNNBasic({ sim_options = { name = "pearson_baseline" },
      bsl_options = { n_epochs = 0 } }):fit(data)
    local _, shrunk_sims = shrunk:similar_users("A", 1)
    assert.near(dot / math.sqrt(na * nb) * 3 / 103, shrunk_sims[1], 1e-12)
  end)
end)

describe("k-NN estimates by hand", function()
  -- D's msd similarities: A 1 (same ratings on 1, 2), B 0.5, C 1/6; on item 5 they
  -- rated 5, 3 and 1.
  it("KNNBasic: the similarity-weighted mean of the k best neighbours", function()
    local m = rec.KNNBasic():fit(s2())
    local est, details = m:predict("D", 5)
    -- (1 * 5 + 0.5 * 3 + 1/6 * 1) / (1 + 0.5 + 1/6) = 4
    assert.near(4, est, 1e-12)
    assert.equal(3, details.actual_k)
    assert.is_false(details.was_impossible)
    local m2 = rec.KNNBasic({ k = 2 }):fit(s2())
    est, details = m2:predict("D", 5)
    assert.near(6.5 / 1.5, est, 1e-12)
    assert.equal(2, details.actual_k)
  end)

  it("KNNBasic cannot predict with fewer than min_k neighbours", function()
    local data = s2()
    local m = rec.KNNBasic({ min_k = 4 }):fit(data)
    local est, details = m:predict("D", 5)
    assert.is_true(details.was_impossible)
    assert.equal("Not enough neighbors.", details.reason)
    assert.near(data:global_mean(), est, 1e-12)
    local _, d2 = m:predict("nobody", 5)
    assert.equal("User and/or item is unknown.", d2.reason)
    -- min_k = 0 and no neighbour at all (P and Q share no item): still impossible, never
    -- NaN
    local lone = rec.from_table({ { "P", 1, 4 }, { "Q", 2, 2 } }, { scale = { 1, 5 } })
    local e3, d3 = rec.KNNBasic({ min_k = 0 }):fit(lone):predict("P", 2)
    assert.is_true(d3.was_impossible)
    assert.near(3, e3, 1e-12)
    -- a huge k is fine
    assert.near(4, (rec.KNNBasic({ k = 1 << 40 }):fit(data):predict("D", 5)), 1e-12)
  end)

  it("KNNWithMeans and KNNWithZScore centre (and scale) the neighbours' ratings", function()
    -- means: A 3.6, B 3.2, C 7/3, D 4
    local est = rec.KNNWithMeans():fit(s2()):predict("D", 5)
    local want = 4 + (1 * (5 - 3.6) + 0.5 * (3 - 3.2) + (1 / 6) * (1 - 7 / 3)) / (5 / 3)
    assert.near(want, est, 1e-12)
    assert.near(4.646666666666667, est, 1e-12)
    -- population deviations: A sqrt(2.24), B sqrt(1.36), C sqrt(14/9), D 1
    local sa, sb, sc = math.sqrt(2.24), math.sqrt(1.36), math.sqrt(14 / 9)
    local z = rec.KNNWithZScore():fit(s2()):predict("D", 5)
    local wz = 4 + 1 * ((5 - 3.6) / sa + 0.5 * (3 - 3.2) / sb + (1 / 6) * (1 - 7 / 3) / sc) / (5 / 3)
    assert.near(wz, z, 1e-12)
    assert.near(4.402894535708368, z, 1e-12)
  end)

  it("KNNBaseline with zero baseline epochs reduces to KNNBasic; unknowns get the baseline",
    function()
      local data = s2()
      local m = rec.KNNBaseline({ bsl_options = { n_epochs = 0 } }):fit(data)
      -- every baseline is mu, so mu + sum sim (r - mu) / sum sim = KNNBasic's 4
      local est, details = m:predict("D", 5)
      assert.near(4, est, 1e-12)
      assert.equal(3, details.actual_k)
      local e2, d2 = m:predict("nobody", 5)
      assert.is_false(d2.was_impossible)
      assert.near(data:global_mean(), e2, 1e-12)
      assert.is_nil(d2.actual_k)
    end)

  it("item-based KNNBasic uses the items the user rated", function()
    -- D rated items 1 (5) and 2 (3); item 5's msd similarities to them over A, B, C:
    -- item 5 vs 1: (0 + 1 + 1) / 3 -> 0.6; item 5 vs 2: (4 + 1 + 9) / 3 -> 3/17
    local est, d = rec.KNNBasic({ sim_options = { user_based = false } }):fit(s2()):predict("D", 5)
    local s51, s52 = 1 / (2 / 3 + 1), 1 / (14 / 3 + 1)
    assert.near((s51 * 5 + s52 * 3) / (s51 + s52), est, 1e-12)
    assert.equal(2, d.actual_k)
  end)

  it("a rated pair counts the user itself (similarity 1), as Surprise's diagonal", function()
    -- A on item 1 (rated 5): neighbours A (1), D (1), B (msd over items 1..5: 8 / 5, so
    -- 1 / 2.6) and C (msd over 1, 2, 5: 26 / 3)
    local m = rec.KNNBasic():fit(s2())
    local sb, sc = 1 / 2.6, 1 / (1 + (9 + 1 + 16) / 3)
    local want = (5 + 5 + sb * 4 + sc * 2) / (2 + sb + sc)
    local est, d = m:predict("A", 1)
    assert.near(want, est, 1e-12)
    assert.equal(4, d.actual_k)
  end)

  it("ties go to the earlier rating of the item", function()
    -- X and Y both have msd similarity 1 to U; with k = 1 the earlier rating of item 9
    -- (X's 2, not Y's 4) is the neighbour.
    local data = rec.from_table({
      { "U", 1, 3 }, { "X", 1, 3 }, { "Y", 1, 3 }, { "X", 9, 2 }, { "Y", 9, 4 },
    }, { scale = { 1, 5 } })
    local est = rec.KNNBasic({ k = 1 }):fit(data):predict("U", 9)
    assert.near(2, est, 1e-12)
  end)
end)

describe("SlopeOne by hand", function()
  local data = rec.from_table({
    { 1, "i1", 5 }, { 1, "i2", 3 }, { 1, "i3", 2 },
    { 2, "i1", 3 }, { 2, "i2", 4 },
    { 3, "i2", 2 }, { 3, "i3", 3 },
  }, { scale = { 1, 5 } })
  local m = rec.SlopeOne():fit(data)

  it("user mean plus the mean deviation over the user's items", function()
    -- dev(i1, i2) = ((5 - 3) + (3 - 4)) / 2 = 0.5, dev(i1, i3) = 5 - 2 = 3; mean_3 = 2.5
    assert.near(2.5 + (0.5 + 3) / 2, (m:predict(3, "i1")), 1e-12)
    -- dev(i3, i1) = -3, dev(i3, i2) = ((2 - 3) + (3 - 2)) / 2 = 0; mean_2 = 3.5
    assert.near(3.5 + (-3 + 0) / 2, (m:predict(2, "i3")), 1e-12)
  end)

  it("falls back on the mean rating for unknown users and items", function()
    local est, d = m:predict(9, "i1")
    assert.is_true(d.was_impossible)
    assert.near(data:global_mean(), est, 1e-12)
    local _, d2 = m:predict(1, "i9")
    assert.is_true(d2.was_impossible)
  end)
end)

describe("CoClustering", function()
  it("with one cluster each predicts mean_u + mean_i - mu", function()
    local data = s2()
    local m = rec.CoClustering({ n_cltr_u = 1, n_cltr_i = 1, random_state = 3 }):fit(data)
    -- D's mean 4, item 5's mean 3, global mean 49/15
    assert.near(4 + 3 - 49 / 15, (m:predict("D", 5)), 1e-12)
  end)

  it("is reproducible with random_state and predicts inside the scale", function()
    local data = s2()
    local a = rec.CoClustering({ n_cltr_u = 2, n_cltr_i = 2, random_state = 5 }):fit(data)
    local b = rec.CoClustering({ n_cltr_u = 2, n_cltr_i = 2, random_state = 5 }):fit(data)
    for u, i in data:ratings() do
      assert.equal((a:predict(u, i)), (b:predict(u, i)))
    end
    assert.same(a.cltr_u, b.cltr_u)
  end)
end)

describe("similar_items / similar_users", function()
  it("factor models use the cosine of their factors", function()
    local data = s2()
    local m = rec.SVD({ n_factors = 3, random_state = 1 }):fit(data)
    local q = m.qi:totable()
    local function cos(a, b)
      local d, na, nb = 0, 0, 0
      for f = 1, 3 do
        d, na, nb = d + a[f] * b[f], na + a[f] ^ 2, nb + b[f] ^ 2
      end
      return d / math.sqrt(na * nb)
    end
    local ids, sims = m:similar_items(1, 10)
    assert.equal(4, #ids) -- every other item, best first
    local inner = data.ids
    for k, id in ipairs(ids) do
      assert.near(cos(q[inner:item(1)], q[inner:item(id)]), sims[k], 1e-6)
      if k > 1 then
        assert.is_true(sims[k] <= sims[k - 1])
      end
    end
    local uids = rec.SVDpp({ n_factors = 2, random_state = 1 }):fit(data):similar_users("D", 2)
    assert.equal(2, #uids)
  end)

  it("raise moonml.rec.<Name>.similar_* errors", function()
    local m = rec.KNNBasic():fit(s1())
    h.assert_error("moonml.rec.KNNBasic.similar_users:", "unknown user 'Z'", function()
      m:similar_users("Z")
    end)
    h.assert_error("moonml.rec.KNNBasic.similar_items:", "n must be a non-negative integer",
      function() m:similar_items(1, -1) end)
    h.assert_error("moonml.rec.KNNBasic.similar_items:", "expected an item id", function()
      m:similar_items(nil)
    end)
    h.assert_error("moonml.rec.SlopeOne.similar_items:", "has no similarity", function()
      rec.SlopeOne():fit(s1()):similar_items(1)
    end)
    h.assert_error("moonml.rec.KNNBasic.similar_items:", "not fitted", function()
      rec.KNNBasic():similar_items(1)
    end)
  end)
end)

describe("recommend scores", function()
  -- 15 users x 12 items with real-valued ratings, so the sums depend on their order
  local rows = {}
  for u = 1, 15 do
    for i = 1, 12 do
      if (u * 5 + i * 7) % 4 ~= 0 then
        rows[#rows + 1] = { u, i, 1 + ((u * 13 + i * 29) % 41) / 10 }
      end
    end
  end
  local data = rec.from_table(rows, { scale = { 1, 5 } })

  local function check(m)
    m:fit(data)
    for _, u in ipairs({ 1, 4, 9 }) do
      local ids, scores = m:recommend(u, 100, { exclude_seen = false })
      assert.is_true(#ids > 0)
      local us, is = {}, {}
      for k, id in ipairs(ids) do
        us[k], is[k] = data.ids:user(u), data.ids:item(id)
      end
      local est, imp = m:_estimate_many(us, is)
      for k = 1, #ids do
        assert.is_false(imp[k])
        assert.equal(est[k], scores[k]) -- bit for bit: the same neighbours, same order
      end
    end
  end

  for _, name in ipairs({ "msd", "cosine", "pearson", "pearson_baseline" }) do
    it("item-based " .. name .. " scores every item as predict does", function()
      check(rec.KNNWithMeans({ k = 3, sim_options = { name = name, user_based = false,
        shrinkage = 1 } }))
      check(rec.KNNBaseline({ k = 3, sim_options = { name = name, user_based = false } }))
    end)
  end

  it("SlopeOne scores every item as predict does", function()
    check(rec.SlopeOne())
  end)
end)

describe("k-NN parameters", function()
  it("reject bad sim_options and parameters", function()
    h.assert_error("moonml.rec.KNNBasic:", "unknown similarity 'jaccard'", function()
      rec.KNNBasic({ sim_options = { name = "jaccard" } })
    end)
    h.assert_error("moonml.rec.KNNBaseline:", "unknown sim_options key 'userbased'", function()
      rec.KNNBaseline({ sim_options = { userbased = false } })
    end)
    h.assert_error("moonml.rec.KNNWithMeans:", "user_based must be a boolean", function()
      rec.KNNWithMeans({ sim_options = { user_based = 0 } })
    end)
    h.assert_error("moonml.rec.KNNBasic:", "k must be >= 1", function()
      rec.KNNBasic({ k = 0 })
    end)
    h.assert_error("moonml.rec.KNNBasic:", "k must be an integer", function()
      rec.KNNBasic({ k = 2.5 })
    end)
    h.assert_error("moonml.rec.CoClustering:", "n_cltr_u must be >= 1", function()
      rec.CoClustering({ n_cltr_u = 0 })
    end)
    h.assert_error("moonml.rec.KNNBaseline:", "invalid method 'foo'", function()
      rec.KNNBaseline({ bsl_options = { method = "foo" } }):fit(s1())
    end)
  end)

  it("names are case-insensitive and the defaults are Surprise's", function()
    local m = rec.KNNBasic({ sim_options = { name = "Cosine" } })
    assert.equal("cosine", m.sim.name)
    local d = rec.KNNWithZScore()
    assert.equal(40, d.k)
    assert.equal(1, d.min_k)
    assert.same({ name = "msd", user_based = true, min_support = 1, shrinkage = 100 }, d.sim)
    local c = rec.CoClustering()
    assert.same({ 3, 3, 20 }, { c.n_cltr_u, c.n_cltr_i, c.n_epochs })
  end)
end)
