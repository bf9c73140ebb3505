--- Ranking metrics of top-k recommendation lists (Surprise has none in its library; its
-- FAQ shows precision@k and recall@k with a rating threshold of 3.5).
--
-- Every metric takes `(model, testset, k[, opts])`: for each user of the test set that
-- the model knows, the list is `model:recommend(user, k)` over all the items of the train
-- set that the user did not rate in it (items seen in training are left out). The
-- relevant items of a user are the test items rated at least `opts.threshold` (default
-- 3.5, as in Surprise's FAQ example; with 0.5..5 or 1..5 ratings this means 4 stars and
-- up) that the user did not rate in training. Users without a relevant item are left out
-- of every metric but coverage. With R the relevant items and hits the relevant items in
-- the list:
--
--   * precision_at_k: |hits| / k
--   * recall_at_k: |hits| / |R|
--   * ndcg_at_k: binary gains, DCG = sum over hit positions p of 1 / log2(p + 1), divided
--     by the DCG of a perfect list (min(|R|, k) hits on top)
--   * map_at_k: average precision, sum over hit positions p of (hits up to p) / p, divided
--     by min(|R|, k)
--   * hit_rate: the fraction of users with at least one hit
--   * auc: implicit's AUC of a top-k list: positives are the relevant items among the
--     candidates, every other candidate is a negative; items below the list count as
--     ranked half above, half below the unlisted positives. With k at least the number
--     of candidates (k = math.huge) it is the exact AUC of the full ranking. Users with no
--     negative are left out.
--   * coverage: the fraction of the train set's items that appear in at least one
--     user's list (every test user the model knows counts).
--
-- Each is the mean over the users; `rec.ranking_metrics` returns them all from one pass.
-- @module moonml.rec.ranking
local data = require("moonml.rec.data")

local ranking = {}

local NAMES = { "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "hit_rate", "auc",
  "coverage" }

local function check(name, model, testset, k, opts)
  local function fail(fmt, ...)
    error(string.format("moonml.rec.%s: " .. fmt, name, ...), 0)
  end
  if type(model) ~= "table" or type(model.recommend) ~= "function" then
    fail("expected a fitted model as argument 1, got %s", type(model))
  end
  if not model.trainset then
    fail("the model is not fitted (call fit first)")
  end
  if not data.is_set(testset) then
    fail("expected a rating set as argument 2, got %s", type(testset))
  end
  if not ((math.type(k) == "integer" and k >= 1) or k == math.huge) then
    fail("k must be a positive integer, got %s", tostring(k))
  end
  if opts ~= nil and type(opts) ~= "table" then
    fail("options must be a table, got %s", type(opts))
  end
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "threshold" then
      fail("unknown option '%s'", tostring(key))
    end
  end
  local threshold = opts.threshold == nil and 3.5 or opts.threshold
  if type(threshold) ~= "number" or threshold ~= threshold then
    fail("threshold must be a number, got %s", tostring(threshold))
  end
  return threshold
end

local function compute(name, model, testset, k, opts)
  local threshold = check(name, model, testset, k, opts)
  local train = model.trainset
  -- test ratings by user (raw ids), in order of first appearance
  local order, rel = {}, {}
  for u, i, r in testset:ratings() do
    if not rel[u] then
      rel[u] = {}
      order[#order + 1] = u
    end
    if r >= threshold then
      rel[u][i] = true
    end
  end
  local n_items = #train:items()
  local sums = { precision_at_k = 0, recall_at_k = 0, ndcg_at_k = 0, map_at_k = 0,
    hit_rate = 0, auc = 0 }
  local n_users, n_auc = 0, 0
  local covered, n_covered = {}, 0
  local list_len = k == math.huge and n_items or k
  for _, u in ipairs(order) do
    if train:knows_user(u) then
      local seen, n_seen = {}, 0
      for _, i in ipairs((train:user_ratings(u))) do
        if not seen[i] then
          seen[i] = true
          n_seen = n_seen + 1
        end
      end
      local top = model:recommend(u, list_len)
      for _, i in ipairs(top) do
        if not covered[i] then
          covered[i] = true
          n_covered = n_covered + 1
        end
      end
      local R, n_rel, n_pos = rel[u], 0, 0
      for i in pairs(R) do
        if not seen[i] then
          n_rel = n_rel + 1
          if train:knows_item(i) then
            n_pos = n_pos + 1
          end
        end
      end
      if n_rel > 0 then
        n_users = n_users + 1
        local hits, dcg, ap, misses, auc = 0, 0, 0, 0, 0
        for p, i in ipairs(top) do
          if R[i] then
            hits = hits + 1
            dcg = dcg + 1 / (math.log(p + 1, 2))
            ap = ap + hits / p
          else
            misses = misses + 1
            auc = auc + hits
          end
        end
        local ideal = 0
        for p = 1, math.min(n_rel, list_len) do
          ideal = ideal + 1 / (math.log(p + 1, 2))
        end
        sums.precision_at_k = sums.precision_at_k + hits / list_len
        sums.recall_at_k = sums.recall_at_k + hits / n_rel
        sums.ndcg_at_k = sums.ndcg_at_k + dcg / ideal
        sums.map_at_k = sums.map_at_k + ap / math.min(n_rel, list_len)
        sums.hit_rate = sums.hit_rate + (hits > 0 and 1 or 0)
        local n_neg = n_items - n_seen - n_pos
        if n_pos > 0 and n_neg > 0 then
          auc = auc + (hits + n_pos) / 2 * (n_neg - misses)
          sums.auc = sums.auc + auc / (n_pos * n_neg)
          n_auc = n_auc + 1
        end
      end
    end
  end
  local out = {}
  for key, s in pairs(sums) do
    if key == "auc" then
      out[key] = n_auc > 0 and s / n_auc or 0 / 0
    else
      out[key] = n_users > 0 and s / n_users or 0 / 0
    end
  end
  out.coverage = n_items > 0 and n_covered / n_items or 0 / 0
  out.n_users = n_users
  return out
end

--- All the ranking metrics at once: a table {precision_at_k =, recall_at_k =, ndcg_at_k
-- =, map_at_k =, hit_rate =, auc =, coverage =, n_users =} (n_users: users with a
-- relevant item). NaN where no user qualifies.
function ranking.ranking_metrics(model, testset, k, opts)
  return compute("ranking_metrics", model, testset, k, opts)
end

for _, name in ipairs(NAMES) do
  ranking[name] = function(model, testset, k, opts)
    return compute(name, model, testset, k, opts)[name]
  end
end

return ranking
