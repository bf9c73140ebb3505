-- recommend_new of the rating models, checked by hand: SVD / SVD++ fold-in is their SGD on
-- the new user's parameters alone, item-based k-NN the estimates from the given ratings.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

-- 5 users x 6 items; user 1 rates items 1..4 in the order the items first appear
local function ratings()
  return rec.from_table({ { 1, 1, 5 }, { 1, 2, 3 }, { 1, 3, 4 }, { 1, 4, 1 }, { 2, 1, 4 }, { 2, 5, 2 },
    { 2, 3, 5 }, { 3, 2, 2 }, { 3, 6, 5 }, { 3, 4, 2 }, { 4, 1, 3 }, { 4, 6, 4 }, { 4, 5, 1 },
    { 5, 3, 3 }, { 5, 2, 4 }, { 5, 6, 2 } }, { scale = { 1, 5 } })
end

local function f32(x)
  return ml.tensor({ x }):item()
end

-- Surprise's SGD for the new user only (items fixed), in the item-id order of the given
-- ratings, transcribed in Lua with float32 roundings where mf.c keeps float32.
local function fold_in_by_hand(m, given, with_imp)
  local k = m.k
  local qi = m.qi:totable()
  local bi = m.bi:totable()
  local items = {}
  for i in pairs(given) do
    items[#items + 1] = i
  end
  table.sort(items)
  local imp = {}
  for f = 1, k do
    imp[f] = 0
  end
  if with_imp then
    local yj = m.yj:totable()
    for _, i in ipairs(items) do
      for f = 1, k do
        imp[f] = f32(imp[f] + yj[i][f])
      end
    end
    local s = f32(1 / math.sqrt(#items))
    for f = 1, k do
      imp[f] = f32(imp[f] * s)
    end
  end
  local bu, pu = 0, {}
  for f = 1, k do
    pu[f] = 0
  end
  for _ = 1, m.n_epochs do
    for _, i in ipairs(items) do
      local dot = 0
      for f = 1, k do
        dot = dot + qi[i][f] * (pu[f] + imp[f])
      end
      local err = f32(given[i] - (m.mu + bu + bi[i] + dot))
      bu = bu + m.lr_bu * (err - m.reg_bu * bu)
      for f = 1, k do
        pu[f] = f32(pu[f] + f32(m.lr_pu) * (err * qi[i][f] - f32(m.reg_pu) * pu[f]))
      end
    end
  end
  local scores = {}
  for i = 1, #qi do
    local s = m.mu + bu + bi[i]
    for f = 1, k do
      s = s + qi[i][f] * (pu[f] + imp[f])
    end
    scores[i] = s
  end
  return scores
end

describe("recommend_new of the rating models", function()
  local data = ratings()
  local given = { [1] = 4, [3] = 2, [6] = 5 } -- raw ids = inner ids here

  it("SVD: its SGD on the new user's b_u and p_u, item parameters fixed", function()
    local m = rec.SVD({ n_factors = 3, n_epochs = 4, random_state = 1 }):fit(data)
    local want = fold_in_by_hand(m, given, false)
    local ids, scores = m:recommend_new(given, 10, { exclude_seen = false })
    assert.equal(6, #ids)
    for j, i in ipairs(ids) do
      assert.near(want[i], scores[j], 1e-5)
    end
    local kept = m:recommend_new(given, 10)
    assert.same({}, (function()
      local bad = {}
      for _, i in ipairs(kept) do
        if given[i] then
          bad[#bad + 1] = i
        end
      end
      return bad
    end)())
    assert.equal(3, #kept)
  end)

  it("SVD++: the same with the given items' implicit term", function()
    local m = rec.SVDpp({ n_factors = 3, n_epochs = 3, random_state = 2 }):fit(data)
    local want = fold_in_by_hand(m, given, true)
    local ids, scores = m:recommend_new(given, 10, { exclude_seen = false })
    for j, i in ipairs(ids) do
      assert.near(want[i], scores[j], 1e-5)
    end
  end)

  it("unbiased SVD: p_u only", function()
    local m = rec.SVD({ n_factors = 2, n_epochs = 3, biased = false, random_state = 3 }):fit(data)
    local qi = m.qi:totable()
    local pu = { 0, 0 }
    for _ = 1, 3 do
      for _, i in ipairs({ 1, 3, 6 }) do
        local err = f32(given[i] - (qi[i][1] * pu[1] + qi[i][2] * pu[2]))
        for f = 1, 2 do
          pu[f] = f32(pu[f] + f32(m.lr_pu) * (err * qi[i][f] - f32(m.reg_pu) * pu[f]))
        end
      end
    end
    local ids, scores = m:recommend_new(given, 10, { exclude_seen = false })
    for j, i in ipairs(ids) do
      assert.near(qi[i][1] * pu[1] + qi[i][2] * pu[2], scores[j], 1e-6)
    end
  end)

  for _, kind in ipairs({ "KNNBasic", "KNNWithMeans", "KNNWithZScore", "KNNBaseline" }) do
    it(kind .. " item-based: a training user's ratings give its own estimates", function()
      local m = rec[kind]({ k = 2, sim_options = { name = "cosine", user_based = false } })
      m:fit(data)
      local is, rs = data:user_ratings(1)
      local liked = {}
      for j, i in ipairs(is) do
        liked[i] = rs[j]
      end
      local a_ids, a_scores = m:recommend(1, 10, { exclude_seen = false })
      local b_ids, b_scores = m:recommend_new(liked, 10, { exclude_seen = false })
      assert.same(a_ids, b_ids)
      h.assert_close(ml.tensor(b_scores, "float64"), ml.tensor(a_scores, "float64"),
        { rtol = 1e-12, atol = 1e-12 })
    end)
  end

  it("KNNBaseline item-based: a new user's b_u is one ALS step over its ratings", function()
    local m = rec.KNNBaseline({ k = 2, sim_options = { name = "cosine", user_based = false } })
    m:fit(data)
    -- only item 5 (users 2 and 4) rated 5: item 2 (users 1, 3, 5) shares no user with it,
    -- so its estimate is the baseline mu + b_i + b_u, b_u = (5 - mu - b_5) / (reg_u + 1)
    local bu = (5 - m.mu - m.bi[5]) / (15 + 1)
    local ids, scores = m:recommend_new({ [5] = 5 }, 10)
    local got
    for j, i in ipairs(ids) do
      if i == 2 then
        got = scores[j]
      end
    end
    assert.near(m.mu + m.bi[2] + bu, got, 1e-12)
    -- bsl_options method = "sgd": n_epochs of SGD on b_u alone (lr 0.005, reg 0.02)
    local s = rec.KNNBaseline({ k = 2, sim_options = { name = "cosine", user_based = false },
      bsl_options = { method = "sgd", n_epochs = 3 } }):fit(data)
    local b = 0
    for _ = 1, 3 do
      b = b + 0.005 * ((5 - (s.mu + b + s.bi[5])) - 0.02 * b)
    end
    ids, scores = s:recommend_new({ [5] = 5 }, 10)
    for j, i in ipairs(ids) do
      if i == 2 then
        got = scores[j]
      end
    end
    assert.near(s.mu + s.bi[2] + b, got, 1e-12)
  end)
end)
