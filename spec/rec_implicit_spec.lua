-- Implicit-feedback models against NumPy transcriptions of implicit 0.7.3
-- (spec/fixtures/gen_rec_implicit.py) and against closed forms.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec
local C = rec.base.C

local F = h.fixture("rec_implicit")

-- The rows of a factor tensor in raw-id order (ids 1..n), as a nested table.
local function by_raw(m, t, what)
  local list = what == "user" and m.ids.users or m.ids.items
  local rows = t:totable()
  local out = {}
  for inner, raw in ipairs(list) do
    out[raw] = rows[inner]
  end
  return out
end

local function dot(a, b)
  local s = 0
  for f = 1, #a do
    s = s + a[f] * b[f]
  end
  return s
end

describe("NumPy's default_rng (implicit's initial factors)", function()
  it("gives NumPy's float32 draws bit for bit", function()
    for _, case in ipairs(F.npy) do
      -- the fixture prints 9 digits: enough to give back the float32 exactly
      h.assert_close(ml.tensor(C.npy_random(case.seed, #case.draws)), ml.tensor(case.draws),
        { rtol = 0, atol = 0 })
    end
  end)
end)

describe("ALS", function()
  local A = F.als
  local p = A.params
  local function model(extra)
    local opts = { factors = p.factors, regularization = p.regularization, alpha = p.alpha,
      iterations = p.iterations, cg_steps = p.cg_steps, random_state = p.random_state,
      values = "rating" }
    for k, v in pairs(extra or {}) do
      opts[k] = v
    end
    return rec.ALS(opts)
  end
  local data = rec.from_table(A.rows)

  it("starts from implicit's factors: default_rng(random_state), users then items", function()
    local m = model({ iterations = 0 }):fit(data)
    h.assert_close(ml.tensor(by_raw(m, m.user_factors, "user")), ml.tensor(A.init_user_factors),
      { rtol = 0, atol = 0 })
    h.assert_close(ml.tensor(by_raw(m, m.item_factors, "item")), ml.tensor(A.init_item_factors),
      { rtol = 0, atol = 0 })
  end)

  -- float32 CG from tiny initial factors is sensitive to the order of its sums: the same
  -- steps in float64 NumPy land up to 8e-4 (relative) away from float32 NumPy's, so the
  -- factors are compared at 2e-3; a wrong step is off by far more.
  it("takes implicit's conjugate-gradient steps (alpha, a negative value, losses)", function()
    local m = model({ calculate_training_loss = true }):fit(data)
    h.assert_close(ml.tensor(by_raw(m, m.user_factors, "user")), A.user_factors,
      { rtol = 2e-3, atol = 1e-6 })
    h.assert_close(ml.tensor(by_raw(m, m.item_factors, "item")), A.item_factors,
      { rtol = 2e-3, atol = 1e-6 })
    h.assert_close(ml.tensor(m.losses, "float64"), A.losses, { rtol = 2e-3 })
    assert.equal(m.losses[#m.losses], m.loss)
    assert.is_nil(model():fit(data).losses)
  end)

  it("gives the same factors with 1 and 2 threads", function()
    local before = ml.get_num_threads()
    ml.set_num_threads(1)
    local a = model():fit(data)
    ml.set_num_threads(2)
    local b = model():fit(data)
    ml.set_num_threads(before)
    h.assert_close(a.user_factors, b.user_factors, { rtol = 1e-5, atol = 1e-8 })
    h.assert_close(a.item_factors, b.item_factors, { rtol = 1e-5, atol = 1e-8 })
  end)

  it("folds a new user in exactly (implicit's recalculate_user)", function()
    local m = model():fit(data)
    local liked = {}
    for j, i in ipairs(A.new_user_items) do
      liked[i] = A.new_user_values[j]
    end
    local ids, scores = m:recommend_new(liked, 100, { exclude_seen = false })
    assert.equal(7, #ids)
    for j, i in ipairs(ids) do
      assert.near(A.new_user_scores[i], scores[j], 1e-3 * math.abs(A.new_user_scores[i]) + 1e-7)
      if j > 1 then
        assert.is_true(scores[j] <= scores[j - 1])
      end
    end
    local ids2 = m:recommend_new(liked, 100)
    assert.equal(4, #ids2)
    for _, i in ipairs(ids2) do
      assert.is_nil(liked[i])
    end
  end)

  it("reconstructs a preference matrix with enough factors (implicit's test_factorize)",
    function()
      local counts = { { 1, 1, 0, 1, 0, 0 }, { 0, 1, 1, 1, 0, 0 }, { 1, 0, 1, 0, 0, 0 },
        { 1, 1, 0, 0, 0, 0 }, { 0, 0, 1, 1, 0, 1 }, { 0, 1, 0, 0, 0, 1 }, { 0, 0, 0, 0, 1, 1 } }
      local rows = {}
      for u, row in ipairs(counts) do
        for i, v in ipairs(row) do
          if v ~= 0 then
            rows[#rows + 1] = { u, i, 2 * v }
          end
        end
      end
      local m = rec.ALS({ factors = 6, regularization = 0, random_state = 42, values = "rating" })
      m:fit(rec.from_table(rows))
      for u, row in ipairs(counts) do
        for i, v in ipairs(row) do
          assert.near(v, (m:predict(u, i)), 1e-4)
        end
      end
    end)

  it("predicts the dot product of the factors; unknown pairs score 0", function()
    local m = model():fit(data)
    local X, Y = by_raw(m, m.user_factors, "user"), by_raw(m, m.item_factors, "item")
    local est, details = m:predict(2, 3)
    assert.near(dot(X[2], Y[3]), est, 1e-6)
    assert.is_false(details.was_impossible)
    est, details = m:predict(99, 3)
    assert.equal(0, est)
    assert.is_true(details.was_impossible)
    local ids, scores = m:recommend(2, 3, { exclude_seen = false })
    for j, i in ipairs(ids) do
      assert.near(dot(X[2], Y[i]), scores[j], 1e-6)
    end
  end)

  it("partial_fit_users: a training user refitted equals its fold-in; new users added",
    function()
      local m = model():fit(data)
      local liked = {}
      for _, r in ipairs(A.rows) do
        if r[1] == 5 then
          liked[r[2]] = r[3]
        end
      end
      local want_ids, want_scores = m:recommend_new(liked, 7)
      m:partial_fit_users({ [5] = liked, ["newbie"] = { [1] = 3, [2] = 1 } })
      local ids, scores = m:recommend(5, 7)
      assert.same(want_ids, ids)
      h.assert_close(ml.tensor(scores), want_scores, { rtol = 1e-5, atol = 1e-7 })
      local new_ids = m:recommend("newbie", 3)
      assert.equal(3, #new_ids)
      assert.equal(9, #m.user_factors)
      assert.is_nil(data.ids:user("newbie")) -- the train set's ids are left alone
      -- the refit user's rows are replaced: only the given items are seen now
      local seen = m:recommend(5, 100, { exclude_seen = false })
      assert.equal(7, #seen)
      assert.equal(7 - 4, #(m:recommend(5, 100)))
    end)

  it("partial_fit_items adds an item solved against the user factors", function()
    local m = model():fit(data)
    m:partial_fit_items({ ["film"] = { [1] = 3, [2] = 2, [8] = 1 } })
    assert.equal(8, #m.item_factors)
    local est = m:predict(1, "film")
    assert.is_true(est > 0)
    local ids = m:recommend(3, 10)
    local found = false
    for _, i in ipairs(ids) do
      found = found or i == "film"
    end
    assert.is_true(found)
    local sim = m:similar_items("film", 2)
    assert.equal(2, #sim)
    h.assert_error("moonml.rec.ALS.partial_fit_items:", "unknown user 'ghost'", function()
      m:partial_fit_items({ [1] = { ghost = 1 } })
    end)
    h.assert_error("moonml.rec.ALS.partial_fit_users:", "unknown item 'nothing'", function()
      m:partial_fit_users({ [1] = { nothing = 1 } })
    end)
  end)

  it("partial_fit_users takes a rating set too", function()
    local m = model():fit(data)
    local want_ids, want_scores = m:recommend_new({ [1] = 2, [3] = 1 }, 10)
    m:partial_fit_users(rec.from_table({ { 42, 1, 2 }, { 42, 3, 1 } }))
    local ids, scores = m:recommend(42, 10)
    assert.equal(5, #ids)
    assert.same(want_ids, ids)
    h.assert_close(ml.tensor(scores), want_scores, { rtol = 1e-5, atol = 1e-7 })
  end)
end)

describe("BPR", function()
  local B = F.bpr_step
  it("takes implicit's update for one sample", function()
    local x, yi, yj = ml.tensor(B.x), ml.tensor(B.yi), ml.tensor(B.yj)
    local z = C.bpr_step(x, yi, yj, B.lr, B.reg)
    assert.near(B.z, z, 1e-6)
    h.assert_close(x, B.x_after, { rtol = 1e-6, atol = 1e-7 })
    h.assert_close(yi, B.yi_after, { rtol = 1e-6, atol = 1e-7 })
    h.assert_close(yj, B.yj_after, { rtol = 1e-6, atol = 1e-7 })
    local sx, sy = ml.tensor(B.x), ml.tensor(B.yi)
    assert.near(B.same_z, C.bpr_step(sx, sy, sy, B.lr, B.reg), 1e-7)
    h.assert_close(sx, B.same_x_after, { rtol = 1e-6, atol = 1e-7 })
    h.assert_close(sy, B.same_y_after, { rtol = 1e-6, atol = 1e-7 })
  end)

  -- users 1..4, items 1..5; user 4 has one item, item 5 none (it only appears for user 9
  -- in the id space of the full set)
  local full = rec.from_table({ { 1, 1, 1 }, { 1, 2, 1 }, { 2, 2, 1 }, { 2, 3, 1 }, { 3, 1, 1 },
    { 3, 4, 1 }, { 4, 3, 1 }, { 9, 5, 1 } })
  local train = full:_select({ 0, 0, 0, 0, 0, 0, 0, 1 }, 0, true)

  it("starts from implicit's factors: items then users, (u - 0.5) / factors", function()
    local m = rec.BPR({ factors = 2, iterations = 0, random_state = 3 }):fit(train)
    local draws = C.npy_random(3, 5 * 3 + 5 * 3)
    local Y, X = by_raw(m, m.item_factors, "item"), by_raw(m, m.user_factors, "user")
    for i = 1, 4 do
      for f = 1, 3 do
        assert.equal(ml.tensor({ (draws[(i - 1) * 3 + f] - 0.5) / 2 }):item(), Y[i][f])
      end
    end
    assert.same({ 0, 0, 0 }, Y[5]) -- no interactions
    for _, u in ipairs({ 1, 2, 3, 4 }) do
      assert.equal(1, X[u][3])
      assert.equal(ml.tensor({ (draws[15 + (u - 1) * 3 + 1] - 0.5) / 2 }):item(), X[u][1])
    end
    assert.same({ 0, 0, 1 }, X[9])
  end)

  it("is reproducible on one thread and ranks the training pairs above the rest", function()
    local before = ml.get_num_threads()
    ml.set_num_threads(1)
    local a = rec.BPR({ factors = 4, iterations = 200, learning_rate = 0.05, random_state = 1 })
    local b = rec.BPR({ factors = 4, iterations = 200, learning_rate = 0.05, random_state = 1 })
    a:fit(train)
    b:fit(train)
    ml.set_num_threads(before)
    h.assert_close(a.user_factors, b.user_factors, { rtol = 0, atol = 0 })
    assert.is_true(a.train_auc > 0.5)
    assert.is_true(a.skipped > 0 and a.skipped < 1)
    -- user 1 has items 1, 2: both score above item 3 and 4 (which others have)
    local s1, s3 = a:predict(1, 1), a:predict(1, 3)
    assert.is_true(s1 > s3)
  end)
end)

describe("ItemKNN", function()
  local K = F.knn
  local rows = {}
  for u, row in ipairs(K.counts) do
    for i, v in ipairs(row) do
      if v ~= 0 then
        rows[#rows + 1] = { u, i, v }
      end
    end
  end
  local data = rec.from_table(rows)

  for _, kind in ipairs({ "cosine", "tfidf", "bm25", "plain" }) do
    local want = K.models[kind]
    it(kind .. ": implicit's weighting, top-K rows and user scores", function()
      local m = rec.ItemKNN({ K = K.K, similarity = kind, values = "rating" }):fit(data)
      for raw = 1, #want.kept_ids do
        local ids, vals = m.sims:row(data.ids:item(raw))
        local raw_ids = {}
        for j, i in ipairs(ids) do
          raw_ids[j] = data.ids.items[i]
        end
        assert.same(want.kept_ids[raw], raw_ids)
        h.assert_close(ml.tensor(vals, "float64"), want.kept_vals[raw], { rtol = 1e-6 })
      end
      local ids, scores = m:recommend(1, 10, { exclude_seen = false })
      local got = {}
      for j, i in ipairs(ids) do
        got[i] = scores[j]
      end
      assert.equal(#want.user1_items, #ids)
      for j, i in ipairs(want.user1_items) do
        assert.near(want.user1_scores[j], got[i], 1e-6 * math.abs(want.user1_scores[j]) + 1e-9)
      end
      -- predict is the same sum
      assert.near(got[ids[1]], (m:predict(1, ids[1])), 1e-9)
    end)
  end

  it("folds a new user in from the given items' rows", function()
    local m = rec.ItemKNN({ K = 3, values = "rating" }):fit(data)
    local a_ids, a_scores = m:recommend(3, 10)
    local b_ids, b_scores = m:recommend_new({ [1] = 7, [3] = 3 }, 10)
    assert.same(a_ids, b_ids)
    assert.same(a_scores, b_scores)
  end)

  it("rejects an unknown similarity", function()
    h.assert_error("moonml.rec.ItemKNN:", "unknown similarity 'jaccard'", function()
      rec.ItemKNN({ similarity = "jaccard" })
    end)
  end)
end)

describe("Popular", function()
  local data = rec.from_table({ { 1, "a", 5 }, { 2, "a", 1 }, { 3, "a", 2 }, { 1, "b", 4 },
    { 2, "b", 4 }, { 3, "c", 1 }, { 4, "d", 3 } })

  it("recommends by interaction count, seen items left out, ties to the smaller id", function()
    local m = rec.Popular():fit(data)
    local ids, scores = m:recommend(4, 10)
    assert.same({ "a", "b", "c" }, ids)
    assert.same({ 3, 2, 1 }, scores)
    assert.same({ "c", "d" }, (m:recommend(1, 10)))
    assert.equal(2, (m:predict("nobody", "b")))
    assert.same({ "b", "c" }, (m:recommend_new({ a = 1, d = 1, unknown = 1 }, 5)))
    h.assert_error("moonml.rec.Popular.similar_items:", "no similarity", function()
      m:similar_items("a")
    end)
  end)

  it("sums the ratings with values = \"rating\"", function()
    local m = rec.Popular({ values = "rating" }):fit(data)
    local ids, scores = m:recommend(4, 10)
    assert.same({ "a", "b", "c" }, ids)
    assert.same({ 8, 8, 1 }, scores)
  end)
end)

describe("long top-n lists (sorted whole past 64 entries)", function()
  local data = rec.synthetic({ users = 200, items = 300, interactions = 5000, seed = 4 })
  for _, make in ipairs({
    function() return rec.ALS({ factors = 8, random_state = 0 }) end,
    function() return rec.ItemKNN({ K = 200 }) end,
    function() return rec.Popular() end,
  }) do
    local m = make():fit(data)
    it(m.name .. ": the first entries of a long list are the short list", function()
      for _, u in ipairs({ 1, 17, 150 }) do
        local long, ls = m:recommend(u, 250)
        local short, ss = m:recommend(u, 10)
        assert.is_true(#long > 64)
        for j = 1, 10 do
          assert.equal(short[j], long[j])
          assert.equal(ss[j], ls[j])
        end
        local seen = {}
        for _, i in ipairs((data:user_ratings(u))) do
          seen[i] = true
        end
        local listed = {}
        for j = 1, #long do
          assert.is_nil(seen[long[j]])
          assert.is_nil(listed[long[j]])
          listed[long[j]] = true
          if j > 1 then
            assert.is_true(ls[j] < ls[j - 1] or (ls[j] == ls[j - 1] and long[j] > long[j - 1]))
          end
        end
      end
    end)
  end
end)

describe("implicit models reject bad input", function()
  local data = rec.from_table({ { 1, 1, 1 }, { 1, 2, 1 }, { 2, 2, 1 } })
  for _, name in ipairs({ "ALS", "BPR", "ItemKNN", "Popular" }) do
    it(name, function()
      local cls = rec[name]
      h.assert_error("moonml.rec." .. name .. ":", "values must be", function()
        cls({ values = "counts" })
      end)
      h.assert_error("moonml.rec." .. name .. ":", "unknown parameter 'bogus'", function()
        cls({ bogus = 1 })
      end)
      local m = cls()
      h.assert_error("moonml.rec." .. name .. ".recommend:", "not fitted", function()
        m:recommend(1, 3)
      end)
      h.assert_error("moonml.rec." .. name .. ".fit:", "expected a rating set", function()
        m:fit(nil)
      end)
      m:fit(data)
      h.assert_error("moonml.rec." .. name .. ".recommend:", "unknown user 'x'", function()
        m:recommend("x", 3)
      end)
      h.assert_error("moonml.rec." .. name .. ".recommend:", "n must be", function()
        m:recommend(1, -1)
      end)
      h.assert_error("moonml.rec." .. name .. ".recommend:", "unknown option 'filter'",
        function() m:recommend(1, 3, { filter = true }) end)
      h.assert_error("moonml.rec." .. name .. ".recommend_new:", "expected a table", function()
        m:recommend_new(5, 3)
      end)
      h.assert_error("moonml.rec." .. name .. ".recommend_new:", "finite number", function()
        m:recommend_new({ [1] = 0 / 0 }, 3)
      end)
      assert.same({}, (m:recommend(1, 0)))
    end)
  end

  it("factor models need a known item to fold in", function()
    local m = rec.ALS({ factors = 2 }):fit(data)
    h.assert_error("moonml.rec.ALS.recommend_new:", "none of the given items", function()
      m:recommend_new({ [99] = 1 }, 3)
    end)
    h.assert_error("moonml.rec.ALS.partial_fit_users:", "expected a rating set", function()
      m:partial_fit_users(3)
    end)
  end)
end)
