-- Ranking metrics on a tiny case worked out by hand (fixed top-k lists), and grid search.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

-- Train: u1 rated a, b; u2 rated a; u3 rated c, d, e (the catalogue is a..e).
-- Test: u1 c 5, d 2, e 4; u2 b 4, c 1; u9 (unknown to the model) a 5.
local train = rec.from_table({
  { "u1", "a", 4 }, { "u1", "b", 2 }, { "u2", "a", 5 },
  { "u3", "c", 3 }, { "u3", "d", 4 }, { "u3", "e", 1 },
}, { scale = { 1, 5 } })
local test = rec.from_table({
  { "u1", "c", 5 }, { "u1", "d", 2 }, { "u1", "e", 4 },
  { "u2", "b", 4 }, { "u2", "c", 1 }, { "u9", "a", 5 },
}, { scale = { 1, 5 } })

-- A model whose recommendations are fixed lists (seen items already left out).
local lists = { u1 = { "d", "c", "e" }, u2 = { "c", "d", "b" } }
local stub = { trainset = train }
function stub.recommend(_, user, n)
  local out = {}
  for k = 1, math.min(n, #lists[user]) do
    out[k] = lists[user][k]
  end
  return out
end

describe("ranking metrics by hand", function()
  -- Relevant (rating >= 3.5): u1 {c, e}, u2 {b}.
  -- k = 3: u1 hits at positions 2, 3; u2 a hit at position 3.
  it("precision, recall, hit rate at 3", function()
    assert.near((2 / 3 + 1 / 3) / 2, rec.precision_at_k(stub, test, 3), 1e-12)
    assert.near(1, rec.recall_at_k(stub, test, 3), 1e-12)
    assert.near(1, rec.hit_rate(stub, test, 3), 1e-12)
  end)

  it("NDCG and MAP at 3", function()
    local l2 = math.log(2)
    local function g(p) return l2 / math.log(p + 1) end
    local ndcg_u1 = (g(2) + g(3)) / (g(1) + g(2))
    local ndcg_u2 = g(3) / g(1)
    assert.near((ndcg_u1 + ndcg_u2) / 2, rec.ndcg_at_k(stub, test, 3), 1e-12)
    assert.near(0.5967132018086354, rec.ndcg_at_k(stub, test, 3), 1e-12)
    -- AP: u1 (1/2 + 2/3) / min(2, 3), u2 (1/3) / 1
    assert.near(((0.5 + 2 / 3) / 2 + 1 / 3) / 2, rec.map_at_k(stub, test, 3), 1e-12)
  end)

  it("AUC and coverage at 3", function()
    -- u1: candidates c, d, e; d (negative) is ranked above both positives: 0.
    -- u2: candidates b, c, d, e; b is below c and d, above e: 1/3.
    assert.near((0 + 1 / 3) / 2, rec.auc(stub, test, 3), 1e-12)
    -- the lists hold b, c, d, e of the 5 items
    assert.near(4 / 5, rec.coverage(stub, test, 3), 1e-12)
  end)

  it("at 2, and all at once", function()
    -- u1 {d, c}: one hit at 2; u2 {c, d}: none
    local r = rec.ranking_metrics(stub, test, 2)
    assert.near((1 / 2 + 0) / 2, r.precision_at_k, 1e-12)
    assert.near((1 / 2 + 0) / 2, r.recall_at_k, 1e-12)
    assert.near(0.5, r.hit_rate, 1e-12)
    assert.near((0.5 / 2 + 0) / 2, r.map_at_k, 1e-12)
    assert.near(2 / 5, r.coverage, 1e-12) -- c and d
    assert.equal(2, r.n_users)
    -- u1: d above both positives again: 0; u2: c, d listed, b unlisted with one unlisted
    -- negative (e): b counts as half above it, (0 + 1) / 2 * (3 - 2) / (1 * 3)
    assert.near((0 + (0 + 1) / 2 * (3 - 2) / 3) / 2, r.auc, 1e-12)
  end)

  it("the threshold decides relevance", function()
    -- threshold 5: only u1's c is relevant (position 2)
    assert.near(1 / 3, rec.precision_at_k(stub, test, 3, { threshold = 5 }), 1e-12)
    assert.near(1, rec.recall_at_k(stub, test, 3, { threshold = 5 }), 1e-12)
    assert.near(0.5, rec.map_at_k(stub, test, 3, { threshold = 5 }), 1e-12)
  end)
end)

describe("ranking metrics with a real model", function()
  it("leave out the items seen in training and agree with recommend", function()
    local data = rec.from_table((function()
      local rows = {}
      for u = 1, 12 do
        for i = 1, 15 do
          if (u * 7 + i * 3) % 5 ~= 0 then
            rows[#rows + 1] = { u, i, (u * i) % 5 + 1 }
          end
        end
      end
      return rows
    end)(), { scale = { 1, 5 } })
    local tr, te = data:split({ test = 0.3, seed = 4 })
    local m = rec.KNNBaseline():fit(tr)
    local r = rec.ranking_metrics(m, te, 5)
    for _, name in ipairs({ "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k",
      "hit_rate", "auc", "coverage" }) do
      assert.is_true(r[name] >= 0 and r[name] <= 1, name)
      assert.equal(r[name], rec[name](m, te, 5))
    end
    assert.is_true(r.n_users > 0)
    -- k covering every candidate: every relevant item the train set knows is found
    local full = rec.ranking_metrics(m, te, math.huge)
    local rel, order = {}, {}
    for u, i, x in te:ratings() do
      if tr:knows_user(u) and x >= 3.5 then
        if not rel[u] then
          rel[u] = { n = 0, known = 0 }
          order[#order + 1] = u
        end
        rel[u].n = rel[u].n + 1
        rel[u].known = rel[u].known + (tr:knows_item(i) and 1 or 0)
      end
    end
    local want = 0
    for _, u in ipairs(order) do
      want = want + rel[u].known / rel[u].n
    end
    assert.near(want / #order, full.recall_at_k, 1e-12)
    assert.equal(#order, full.n_users)
    assert.near(1, full.coverage, 1e-12)
  end)
end)

describe("ranking metrics bad input", function()
  it("raise moonml.rec.<metric> errors", function()
    h.assert_error("moonml.rec.precision_at_k:", "expected a fitted model", function()
      rec.precision_at_k(nil, test, 3)
    end)
    h.assert_error("moonml.rec.ndcg_at_k:", "expected a rating set", function()
      rec.ndcg_at_k(stub, {}, 3)
    end)
    h.assert_error("moonml.rec.map_at_k:", "k must be a positive integer", function()
      rec.map_at_k(stub, test, 0)
    end)
    h.assert_error("moonml.rec.auc:", "unknown option 'treshold'", function()
      rec.auc(stub, test, 3, { treshold = 4 })
    end)
    h.assert_error("moonml.rec.hit_rate:", "threshold must be a number", function()
      rec.hit_rate(stub, test, 3, { threshold = "4" })
    end)
    h.assert_error("moonml.rec.coverage:", "not fitted", function()
      rec.coverage(rec.SVD(), test, 3)
    end)
  end)
end)

describe("grid_search", function()
  local data = rec.from_table((function()
    local rows = {}
    for u = 1, 20 do
      for i = 1, 12 do
        if (u + 2 * i) % 3 ~= 0 then
          rows[#rows + 1] = { u, i, (u + i) % 5 + 1 }
        end
      end
    end
    return rows
  end)(), { scale = { 1, 5 } })

  it("cross-validates every combination on the same folds and picks the lowest RMSE", function()
    local folds = data:folds(3, { seed = 2 })
    local g = rec.grid_search(rec.KNNBasic,
      { k = { 5, 20 }, sim_options = { { name = "msd" }, { name = "cosine" } } }, nil,
      { folds = folds })
    assert.equal(4, #g.results)
    -- keys sorted (k, sim_options), the last varying fastest
    assert.same({ 5, "msd" }, { g.results[1].params.k, g.results[1].params.sim_options.name })
    assert.same({ 5, "cosine" }, { g.results[2].params.k, g.results[2].params.sim_options.name })
    assert.same({ 20, "msd" }, { g.results[3].params.k, g.results[3].params.sim_options.name })
    local best = 1
    for n, r in ipairs(g.results) do
      local cv = rec.cross_validate(rec.KNNBasic(r.params), nil, { folds = folds })
      assert.near(cv.mean.rmse, r.mean.rmse, 1e-12)
      assert.equal(3, #r.rmse)
      if r.mean.rmse < g.results[best].mean.rmse then
        best = n
      end
    end
    assert.equal(best, g.best_index)
    assert.equal(g.results[best].mean.rmse, g.best_score)
    assert.equal(g.results[best].params, g.best_params)
    assert.equal("rmse", g.measure)
  end)

  it("takes a factory, a fold count with a seed, and fcp as the measure (higher is better)", function()
    local g = rec.grid_search(function(p) return rec.SVD({ n_factors = p.f, random_state = 1 }) end,
      { f = { 1, 3 } }, data, { folds = 2, seed = 1, measure = "fcp" })
    assert.equal(2, #g.results)
    local a, b = g.results[1].mean.fcp, g.results[2].mean.fcp
    assert.equal(a >= b and 1 or 2, g.best_index)
  end)

  it("rejects bad input with moonml.rec.grid_search errors", function()
    h.assert_error("moonml.rec.grid_search:", "expected an algorithm class", function()
      rec.grid_search(42, {}, data)
    end)
    h.assert_error("moonml.rec.grid_search:", "param_grid.k must be a non-empty list", function()
      rec.grid_search(rec.KNNBasic, { k = {} }, data)
    end)
    h.assert_error("moonml.rec.grid_search:", "unknown measure 'auc'", function()
      rec.grid_search(rec.KNNBasic, { k = { 1 } }, data, { measure = "auc" })
    end)
    h.assert_error("moonml.rec.grid_search:", "expected a rating set", function()
      rec.grid_search(rec.KNNBasic, { k = { 1 } }, nil)
    end)
    h.assert_error("moonml.rec.grid_search: moonml.rec.KNNBasic:", "unknown parameter 'kk'", function()
      rec.grid_search(rec.KNNBasic, { kk = { 1 } }, data, { folds = 2 })
    end)
  end)
end)
