-- Shared by the specs that save recommenders: a loaded model must answer exactly as the one
-- that was saved (every estimate, detail, recommendation and similarity, bit for bit).
local ml = require("moonml")
local assert = require("luassert")

local M = {}

-- Calls fn twice, once per model, from the same random state (NormalPredictor draws).
local function both(a, b, fn)
  ml.manual_seed(77)
  local ra = table.pack(pcall(fn, a))
  ml.manual_seed(77)
  local rb = table.pack(pcall(fn, b))
  return ra, rb
end

local function same(ra, rb, what)
  assert.same(ra, rb, what)
  -- assert.same compares numbers with ==; NaN would need care, estimates are never NaN
end

function M.assert_same_model(a, b, train, test)
  assert.equal(tostring(a), tostring(b))
  assert.equal(getmetatable(a), getmetatable(b))
  local pairs_ = {}
  for _, set in ipairs({ train, test }) do
    for u, i, r in set:ratings() do
      pairs_[#pairs_ + 1] = { u, i, r }
    end
  end
  pairs_[#pairs_ + 1] = { "nobody", pairs_[1][2] }
  pairs_[#pairs_ + 1] = { pairs_[1][1], "no such item" }
  for _, p in ipairs(pairs_) do
    local ra, rb = both(a, b, function(m) return m:predict(p[1], p[2], p[3]) end)
    assert.is_true(ra[1], tostring(ra[2]))
    same(ra, rb, "predict " .. tostring(p[1]) .. ", " .. tostring(p[2]))
  end
  local us, is = {}, {}
  for k, p in ipairs(pairs_) do
    us[k], is[k] = p[1], p[2]
  end
  local ra, rb = both(a, b, function(m) return m:predict_batch(us, is):to_bytes() end)
  same(ra, rb, "predict_batch")
  ra, rb = both(a, b, function(m) return m:test(test) end)
  same(ra, rb, "test")
  for _, u in ipairs(train:users()) do
    for _, opts in ipairs({ {}, { exclude_seen = false } }) do
      ra, rb = both(a, b, function(m) return m:recommend(u, 100, opts) end)
      assert.is_true(ra[1], tostring(ra[2]))
      same(ra, rb, "recommend " .. tostring(u))
    end
    ra, rb = both(a, b, function(m) return m:similar_users(u, 5) end)
    same(ra, rb, "similar_users " .. tostring(u))
  end
  for _, i in ipairs(train:items()) do
    ra, rb = both(a, b, function(m) return m:similar_items(i, 5) end)
    same(ra, rb, "similar_items " .. tostring(i))
  end
end

return M
