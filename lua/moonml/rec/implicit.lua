--- Implicit-feedback recommenders with the `implicit` library's definitions, parameter
-- names and defaults (benfred/implicit 0.7.3): ALS, BPR, ItemKNN, and Popular.
--
--   local als = rec.ALS{factors = 64, regularization = 0.05, iterations = 15,
--     random_state = 0}:fit(train)
--   local ids, scores = als:recommend(196, 10)           -- seen items left out
--   local ids2 = als:recommend_new({[50] = 1, [181] = 1}, 10)  -- a new user, no refit
--
-- Data: any rating set. Every rating is one interaction with value 1 (values = "binary",
-- the default), or with the rating as its value (values = "rating"); a (user, item) pair
-- given twice counts once (binary) or adds its values (rating), as scipy's COO -> CSR
-- conversion that implicit's users go through. The interactions are kept as compressed
-- rows by user and by item (int32 ids, float32 values), built in C.
--
-- The contract is moonml.rec.base's (raw ids in and out, `predict`, `predict_batch`,
-- `test`, `recommend(user, n, {exclude_seen = true})`, `similar_items`), except that
-- every estimate is the model's score, never clipped: `predict(u, i)` is the score of
-- the pair (0 with details.was_impossible = true when the user or the item has no
-- interactions; Popular needs the item only). `recommend` runs in one C call; candidates
-- are the items with training interactions (ItemKNN: those its neighbour lists reach, so
-- its list may be shorter than n, as implicit's), ties go to the smaller item id.
--
-- `recommend_new({[raw_item] = value, ...}, n[, {exclude_seen = true}])` folds a new user
-- in without refitting (values follow the model's `values` mode; items the model does
-- not know are ignored):
--
--   * ALS: the user's exact least-squares factors against the item factors (implicit's
--     recalculate_user, Cholesky in float64);
--   * BPR: the user's factors fitted by BPR's own SGD with the item factors fixed:
--     `iterations` epochs over the given items with popularity-proportional negatives,
--     from implicit's initial values, seeded by random_state (see BPR below for why not
--     a least-squares fit);
--   * ItemKNN: the given items' neighbour rows, as for a known user;
--   * Popular: popularity, with the given items left out.
--
-- @module moonml.rec.implicit
local core = require("moonml.core")
local base = require("moonml.rec.base")
local data = require("moonml.rec.data")
local C = base.C
-- scores are never clipped: a bound past any score that JSON (m:save) can still write
local NO_CLIP = 1e308

local implicit = {}

local key = data.key
local fail = base.fail

-- ------------------------------------------------------------------ shared methods

local VALUES = { binary = true, rating = true }

local function check_values(cls_name, v)
  if not VALUES[v] then
    error(string.format("moonml.rec.%s: values must be \"binary\" or \"rating\", got %s",
      cls_name, tostring(v)), 0)
  end
end

local Implicit = {}

local function check_fitted(self, method)
  if not self.trainset then
    fail(self, method, "the model is not fitted (call fit first)")
  end
end

--- Learns from a rating set (see the module notes for how ratings become interactions);
-- returns self.
function Implicit:fit(trainset, opts)
  if not data.is_set(trainset) then
    fail(self, "fit", "expected a rating set as argument 1, got %s", type(trainset))
  end
  if trainset:size() == 0 then
    fail(self, "fit", "the train set is empty")
  end
  if opts ~= nil and type(opts) ~= "table" then
    fail(self, "fit", "options must be a table, got %s", type(opts))
  end
  self.trainset = nil
  self.ids = trainset.ids
  -- scores are never clipped, and an impossible pair scores 0
  self.scale = { -NO_CLIP, NO_CLIP }
  self.mu = 0
  self.inter = C.inter_build(trainset.store, self.values == "binary")
  self._rank = C.make_rank(self.ids.items)
  self:_fit(trainset, opts or {})
  self.trainset = trainset
  return self
end

function Implicit:_estimate_many(us, is)
  local est, imp = C.predict_pairs(self.inter, self._kind, self._a, self._b, us, is)
  for k = 1, #imp do
    imp[k] = imp[k] and "User and/or item is unknown." or false
  end
  return est, imp
end

local function check_n(self, method, n)
  n = n == nil and 10 or n
  if math.type(n) ~= "integer" or n < 0 then
    fail(self, method, "n must be a non-negative integer, got %s", tostring(n))
  end
  return n
end

local function check_rec_opts(self, method, opts)
  if opts == nil then
    return true
  end
  if type(opts) ~= "table" then
    fail(self, method, "options must be a table, got %s", type(opts))
  end
  for k in pairs(opts) do
    if k ~= "exclude_seen" then
      fail(self, method, "unknown option '%s'", tostring(k))
    end
  end
  return opts.exclude_seen ~= false
end

--- `ids, scores = m:recommend(user, n, {exclude_seen = true})`: the n best items for a
-- user of the train set (raw ids), best first.
function Implicit:recommend(user, n, opts)
  check_fitted(self, "recommend")
  local exclude = check_rec_opts(self, "recommend", opts)
  n = check_n(self, "recommend", n)
  local k = key(user)
  if k == nil then
    fail(self, "recommend", "expected a user id, got %s", tostring(user))
  end
  local u = self.ids.uindex[k]
  if not u or self.inter:user_count(u) == 0 then
    fail(self, "recommend", "unknown user '%s'", tostring(user))
  end
  return C.recommend(self.inter, n, exclude, self.ids.items, self._rank, u, self._kind, self._a,
    self._b)
end

-- The known items of a {[raw_item] = value} table as sorted inner ids and values (the
-- model's values mode applied); the count of unknown items.
local function read_items(self, method, liked)
  if type(liked) ~= "table" then
    fail(self, method, "expected a table {[item] = value}, got %s", type(liked))
  end
  local by_id, unknown = {}, 0
  for raw, v in pairs(liked) do
    local k = key(raw)
    if k == nil then
      fail(self, method, "item ids must be numbers or strings, got %s", tostring(raw))
    end
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      fail(self, method, "the value of item '%s' must be a finite number, got %s",
        tostring(raw), tostring(v))
    end
    local i = self.ids.iindex[k]
    if i and self.inter:item_count(i) > 0 then
      by_id[i] = self.values == "binary" and 1 or v
    else
      unknown = unknown + 1
    end
  end
  local ids = {}
  for i in pairs(by_id) do
    ids[#ids + 1] = i
  end
  table.sort(ids)
  local vals = {}
  for j, i in ipairs(ids) do
    vals[j] = by_id[i]
  end
  return ids, vals, unknown
end

--- `ids, scores = m:recommend_new({[raw_item] = value, ...}, n[, {exclude_seen = true}])`:
-- the n best items for a new user given by its interactions, without refitting (see the
-- module notes for each model's fold-in). The given items are left out unless
-- exclude_seen = false.
function Implicit:recommend_new(liked, n, opts)
  check_fitted(self, "recommend_new")
  local ids, vals = read_items(self, "recommend_new", liked)
  local exclude = check_rec_opts(self, "recommend_new", opts)
  n = check_n(self, "recommend_new", n)
  if #ids == 0 and self._needs_items then
    fail(self, "recommend_new", "none of the given items is known to the model")
  end
  local kind, a, b = self:_fold_in(ids, vals)
  return C.recommend(self.inter, n, exclude, self.ids.items, self._rank, { ids, vals }, kind, a, b)
end

-- n best of the rows of `list` other than x with interactions, by cosine of factor rows.
local function similar(self, method, what, raw, n)
  check_fitted(self, method)
  n = check_n(self, method, n)
  local k = key(raw)
  if k == nil then
    fail(self, method, "expected %s %s id, got %s", what == "item" and "an" or "a", what,
      tostring(raw))
  end
  local inter = self.inter
  local x, count, list
  if what == "user" then
    x, count, list = self.ids.uindex[k], inter.user_count, self.ids.users
  else
    x, count, list = self.ids.iindex[k], inter.item_count, self.ids.items
  end
  if not x or count(inter, x) == 0 then
    fail(self, method, "unknown %s '%s'", what, tostring(raw))
  end
  local ids, sims = self:_similar(what, x)
  if not ids then
    fail(self, method, "%s has no similarity between %ss", self.name, what)
  end
  local cands, scores = {}, {}
  for j = 1, #ids do
    local y = ids[j]
    if y ~= x and count(inter, y) > 0 and sims[j] == sims[j] then
      cands[#cands + 1] = y
      scores[y] = sims[j]
    end
  end
  local top = base.top_n(cands, scores, n, list)
  local out_ids, out_scores = {}, {}
  for j, y in ipairs(top) do
    out_ids[j], out_scores[j] = list[y], scores[y]
  end
  return out_ids, out_scores
end

--- `ids, sims = m:similar_items(item, n)`: the items most similar to an item, best first
-- (the item itself left out): the cosine of the item factors for ALS and BPR (BPR's
-- include the bias column, as implicit's), the kept similarity row for ItemKNN.
function Implicit:similar_items(item, n)
  return similar(self, "similar_items", "item", item, n)
end

--- `ids, sims = m:similar_users(user, n)`: the cosine of the user factors (ALS, BPR).
function Implicit:similar_users(user, n)
  return similar(self, "similar_users", "user", user, n)
end

-- cosine of factor rows
local function factor_similar(self, what, x)
  local m = what == "item" and self.item_factors or self.user_factors
  local sims = C.factor_cosine(m, x)
  local ids = {}
  for j = 1, #sims do
    ids[j] = j
  end
  return ids, sims
end

local function make_class(name, params)
  params[#params + 1] = { "values", "binary", type = "string" }
  local cls = base.class(name, { params = params })
  for k, v in pairs(Implicit) do
    cls[k] = v
  end
  return cls
end

local function check_fit_opts(self, opts, allowed)
  for k in pairs(opts) do
    if not allowed[k] then
      fail(self, "fit", "unknown option '%s'", tostring(k))
    end
  end
end

-- Copies the given initial tensors over the fresh ones (shape-checked).
local function apply_init(self, init, t)
  if init == nil then
    return
  end
  if type(init) ~= "table" then
    fail(self, "fit", "init must be a table of tensors, got %s", type(init))
  end
  for name, x in pairs(init) do
    local dst = t[name]
    if not dst then
      fail(self, "fit", "init: unknown tensor '%s'", tostring(name))
    end
    if getmetatable(x) ~= core.Tensor then
      fail(self, "fit", "init.%s must be a tensor, got %s", name, type(x))
    end
    local a, b = table.concat(x:shape(), ", "), table.concat(dst:shape(), ", ")
    if a ~= b then
      fail(self, "fit", "init.%s has shape [%s], expected [%s]", name, a, b)
    end
    dst:copy_(x)
  end
end

-- ------------------------------------------------------------------ ALS

--- `rec.ALS{factors = 100, regularization = 0.01, alpha = 1, iterations = 15, cg_steps = 3,
-- calculate_training_loss = false, random_state = nil, values = "binary"}`: implicit's
-- AlternatingLeastSquares (Hu, Koren & Volinsky 2008) with its conjugate-gradient solver.
-- The confidence of an interaction is alpha * value (implicit multiplies the matrix by
-- alpha when alpha ~= 1); a positive value means preference 1, a negative one preference 0
-- with confidence |alpha * value|; missing pairs have confidence 1 and preference 0. Each
-- iteration solves every user's factors from the item factors, then every item's from the
-- user factors, with cg_steps conjugate-gradient steps warm-started from the current
-- factors (regularization is not scaled by the row's size; no bias terms). Factors start
-- uniform in [0, 0.01), users then items, as implicit draws them: with random_state = s
-- (an integer >= 0) they are NumPy's np.random.default_rng(s) float32 draws bit for bit,
-- rows in raw-id order (for ids 1..n, implicit's rows id - 1), so a fit starts from the
-- very numbers implicit's AlternatingLeastSquares(random_state = s) starts from; without
-- random_state they come from moonml's generator (ml.manual_seed). Rows without
-- interactions become zero. Threads: ml.set_num_threads; each row's solve
-- uses small loops of its own, OpenBLAS only for Y^T Y outside the parallel loop.
--
-- After fit: user_factors (n_users x factors) and item_factors (n_items x factors),
-- float32 tensors over the train set's id space; with calculate_training_loss = true,
-- losses (implicit's loss after every iteration) and loss (the last one).
--
-- `m:partial_fit_users(rows)` / `m:partial_fit_items(rows)` (implicit's names) add or
-- update users / items without a refit: rows is `{[raw_user] = {[raw_item] = value, ...},
-- ...}` (items: `{[raw_item] = {[raw_user] = value}}`) or a rating set. Every listed user's
-- interactions are replaced by the given ones and its factors recomputed exactly against
-- the current item factors (implicit's recalculate_user); users the model does not know
-- are added. The items (users) named must be known to the model. The fit's train set is
-- left as it was (ranking metrics still read the seen items from it).
local ALS = make_class("ALS", {
  { "factors", 100, type = "integer", min = 1 },
  { "regularization", 0.01, type = "number", min = 0 },
  { "alpha", 1.0, type = "number" },
  { "iterations", 15, type = "integer", min = 0 },
  { "cg_steps", 3, type = "integer", min = 1 },
  { "calculate_training_loss", false, type = "boolean" },
  { "random_state", nil, type = "integer", min = 0 },
})

function ALS:_init()
  check_values("ALS", self.values)
  self._kind = "factors"
  self._needs_items = true
end

function ALS:_fit(_, opts)
  check_fit_opts(self, opts, { init = true })
  local nu, ni = self.inter:space()
  local k = self.factors
  self.user_factors, self.item_factors = core.zeros(nu, k), core.zeros(ni, k)
  if self.random_state then
    C.implicit_init("als", self.user_factors, self.item_factors, self.random_state,
      C.make_rank(self.ids.users), self._rank)
  else
    C.init({ self.user_factors, self.item_factors }, "uniform", 0, 0.01)
  end
  apply_init(self, opts.init, { user_factors = self.user_factors,
    item_factors = self.item_factors })
  self._gram = nil
  self.losses = C.als_fit(self.inter, self.user_factors, self.item_factors,
    self.regularization, self.alpha, self.iterations, self.cg_steps,
    self.calculate_training_loss)
  self.loss = self.losses and self.losses[#self.losses]
  self._a, self._b = self.user_factors, self.item_factors
end

local function item_gram(self)
  if not self._gram then
    self._gram = C.gram(self.item_factors)
  end
  return self._gram
end

function ALS:_fold_in(ids, vals)
  local x = C.als_fold_in(self.item_factors, item_gram(self), ids, vals, self.regularization,
    self.alpha)
  return "factors", x, self.item_factors
end

ALS._similar = factor_similar

-- A copy of the id map, so that adding users or items leaves the train set's alone.
local function own_ids(self)
  if self._own_ids then
    return self.ids
  end
  local old, ids = self.ids, data.IdMap()
  for k, v in ipairs(old.users) do
    ids.users[k], ids.uindex[v] = v, k
  end
  for k, v in ipairs(old.items) do
    ids.items[k], ids.iindex[v] = v, k
  end
  self.ids, self._own_ids = ids, true
  return ids
end

-- rows -> {[raw row] = {[raw col] = value}} from a rating set or such a table.
local function read_rows(self, method, rows, by_item)
  if data.is_set(rows) then
    local out = {}
    for u, i, r in rows:ratings() do
      local a, b = u, i
      if by_item then
        a, b = i, u
      end
      out[a] = out[a] or {}
      out[a][b] = (self.values == "binary" or out[a][b] == nil) and r or out[a][b] + r
    end
    return out
  end
  if type(rows) ~= "table" then
    fail(self, method, "expected a rating set or a table {[id] = {[id] = value}}, got %s",
      type(rows))
  end
  return rows
end

local function partial_fit(self, method, rows, by_item)
  check_fitted(self, method)
  rows = read_rows(self, method, rows, by_item)
  local what, other = by_item and "item" or "user", by_item and "user" or "item"
  -- check everything before anything changes
  local entries = {}
  for raw, row in pairs(rows) do
    local k = key(raw)
    if k == nil then
      fail(self, method, "%s ids must be numbers or strings, got %s", what, tostring(raw))
    end
    if type(row) ~= "table" then
      fail(self, method, "the interactions of %s '%s' must be a table, got %s", what,
        tostring(raw), type(row))
    end
    for raw2, v in pairs(row) do
      local k2 = key(raw2)
      local j = k2 ~= nil and (by_item and self.ids.uindex[k2] or self.ids.iindex[k2])
      if not j then
        fail(self, method, "unknown %s '%s' (add it with partial_fit_%ss first)", other,
          tostring(raw2), other)
      end
      if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
        fail(self, method, "the value of %s '%s' must be a finite number, got %s", other,
          tostring(raw2), tostring(v))
      end
      entries[#entries + 1] = { k, j, v }
    end
    entries[#entries + 1] = { k }
  end
  local ids = own_ids(self)
  local add = by_item and ids.add_item or ids.add_user
  local replace, rs, cs, vs, seen = {}, {}, {}, {}, {}
  for _, e in ipairs(entries) do
    local r = add(ids, e[1])
    if not seen[r] then
      seen[r] = true
      replace[#replace + 1] = r
    end
    if e[2] then
      rs[#rs + 1], cs[#cs + 1] = r, e[2]
      vs[#vs + 1] = self.values == "binary" and 1 or e[3]
    end
  end
  local nu, ni = self.inter:space()
  local n_rows = by_item and #ids.items or #ids.users
  self.inter = C.inter_replace(self.inter, by_item, n_rows, by_item and nu or ni, replace, rs, cs,
    vs, self.values == "binary")
  -- grow the factors to the new id space
  local k = self.factors
  local name = by_item and "item_factors" or "user_factors"
  local old = self[name]
  if #old < n_rows then
    local grown = core.zeros(n_rows, k)
    if #old > 0 then
      grown:narrow(1, 1, #old):copy_(old)
    end
    self[name] = grown
  end
  local against = by_item and self.user_factors or self.item_factors
  C.als_solve(self.inter, by_item, replace, self[name], against, C.gram(against),
    self.regularization, self.alpha)
  if by_item then
    self._gram = nil
    self._rank = C.make_rank(ids.items)
  end
  self._a, self._b = self.user_factors, self.item_factors
  return self
end

--- Adds or updates users without a refit (see rec.ALS); returns self.
function ALS:partial_fit_users(rows)
  return partial_fit(self, "partial_fit_users", rows, false)
end

--- Adds or updates items without a refit (see rec.ALS); returns self.
function ALS:partial_fit_items(rows)
  return partial_fit(self, "partial_fit_items", rows, true)
end

implicit.ALS = ALS

-- ------------------------------------------------------------------ BPR

--- `rec.BPR{factors = 100, learning_rate = 0.01, regularization = 0.01, iterations = 100,
-- verify_negative_samples = true, random_state = nil, values = "binary"}`: implicit's
-- BayesianPersonalizedRanking. Every epoch draws as many (user, liked, disliked) samples
-- as there are interactions: the liked item is a uniformly drawn interaction (so users
-- weigh by their activity), the disliked one the item of another uniformly drawn
-- interaction (popularity-proportional negatives); with verify_negative_samples a
-- disliked item the user has is skipped (binary search in the user's sorted row). The
-- factors have factors + 1 columns: the items' last column is their bias, the users'
-- stays 1 (implicit's trick), so a score is one dot product. Initial values uniform in
-- [-0.5, 0.5) / factors, items then users, zero for rows without interactions; with
-- random_state they are implicit's own (NumPy's default_rng draws, rows in raw-id order,
-- as for ALS), but the samples come from moonml's generators, not implicit's mt19937. Threads (ml.set_num_threads)
-- update without locks as implicit's (Hogwild); each has its own generator seeded from
-- random_state, so a fit is reproducible for a given thread count (and with one thread).
-- After fit: user_factors, item_factors (float32, factors + 1 columns); train_auc and
-- skipped: the last epoch's share of samples ranked right and of samples skipped.
--
-- recommend_new: a least-squares fit of the user's vector against the item factors
-- (ridge regression of the 0/1 row, implicit's way for ALS) ranks by another objective
-- than BPR's: on ML-100k it kept 9% of a training user's top 10. So the fold-in runs
-- BPR's own updates for the new user only (item factors fixed, `iterations` epochs of as
-- many samples as given items, negatives drawn by popularity and verified), from
-- implicit's initial values, seeded by random_state: it keeps 80% of the top 10, more
-- than a refit with another seed keeps (68%).
local BPR = make_class("BPR", {
  { "factors", 100, type = "integer", min = 1 },
  { "learning_rate", 0.01, type = "number" },
  { "regularization", 0.01, type = "number" },
  { "iterations", 100, type = "integer", min = 0 },
  { "verify_negative_samples", true, type = "boolean" },
  { "random_state", nil, type = "integer", min = 0 },
})

function BPR:_init()
  check_values("BPR", self.values)
  self._kind = "factors"
  self._needs_items = true
end

function BPR:_fit(_, opts)
  check_fit_opts(self, opts, { init = true })
  local nu, ni = self.inter:space()
  local k = self.factors
  self.columns = k + 1 -- the factors and implicit's bias column
  self.user_factors, self.item_factors = core.zeros(nu, k + 1), core.zeros(ni, k + 1)
  if self.random_state then
    C.implicit_init("bpr", self.user_factors, self.item_factors, self.random_state,
      C.make_rank(self.ids.users), self._rank)
  else
    C.init({ self.item_factors, self.user_factors }, "uniform", -0.5 / k, 0.5 / k)
  end
  C.bpr_prepare(self.inter, self.user_factors, self.item_factors)
  apply_init(self, opts.init, { user_factors = self.user_factors,
    item_factors = self.item_factors })
  local nnz = select(3, self.inter:space())
  local correct, skipped = C.bpr_fit(self.inter, self.user_factors, self.item_factors,
    self.learning_rate, self.regularization, self.iterations, self.verify_negative_samples,
    self.random_state)
  self.train_auc = nnz > skipped and correct / (nnz - skipped) or 0 / 0
  self.skipped = nnz > 0 and skipped / nnz or 0 / 0
  self._a, self._b = self.user_factors, self.item_factors
end

function BPR:_fold_in(ids)
  local x = C.bpr_fold_in(self.inter, self.item_factors, ids, self.learning_rate,
    self.regularization, self.iterations, self.verify_negative_samples, self.random_state)
  return "factors", x, self.item_factors
end

BPR._similar = factor_similar
implicit.BPR = BPR

-- ------------------------------------------------------------------ ItemKNN

local SIMILARITIES = { cosine = true, tfidf = true, bm25 = true, plain = true }

--- `rec.ItemKNN{K = 20, similarity = "cosine" | "tfidf" | "bm25" | "plain", K1 = 1.2, B =
-- 0.75, values = "binary"}`: implicit's CosineRecommender, TFIDFRecommender,
-- BM25Recommender and (plain: raw values) ItemItemRecommender. The user x item matrix is
-- weighted as implicit does over the item rows: cosine divides every item's row by its L2
-- norm; tfidf takes sqrt(value) * idf(user), idf = log(n_items) - log1p(the user's
-- interactions), then the same L2 normalisation; bm25 takes value (K1 + 1) / (K1 len_i +
-- value) * idf(user), len_i = (1 - B) + B * (the item's value sum) / (the mean over all
-- items). For every item the K items of largest sum_u w_ui w_uj are kept (the item itself
-- included), with implicit's top-K rule for ties at the cut. A user's score for item j is
-- sum over the user's items i of value_ui * sim(i, j) over the kept rows (items no row
-- reaches are not candidates). After fit: sims (the rows; `m.sims:row(inner_id)`).
local ItemKNN = make_class("ItemKNN", {
  { "K", 20, type = "integer", min = 1 },
  { "similarity", "cosine", type = "string" },
  { "K1", 1.2, type = "number" },
  { "B", 0.75, type = "number" },
})

function ItemKNN:_init()
  check_values("ItemKNN", self.values)
  if not SIMILARITIES[self.similarity] then
    error(string.format("moonml.rec.ItemKNN: unknown similarity '%s' (cosine, tfidf, bm25 " ..
      "or plain)", tostring(self.similarity)), 0)
  end
  self._kind = "iknn"
  self._needs_items = true
end

function ItemKNN:_fit(_, opts)
  check_fit_opts(self, opts, {})
  self.sims = C.iknn_fit(self.inter, self.similarity, self.K, self.K1, self.B)
  self._a = self.sims
end

function ItemKNN:_fold_in()
  return "iknn", self.sims
end

function ItemKNN:_similar(what, x)
  if what ~= "item" then
    return nil
  end
  return self.sims:row(x)
end

implicit.ItemKNN = ItemKNN

-- ------------------------------------------------------------------ Popular

--- `rec.Popular{values = "binary"}`: every user gets the items with the most interactions
-- (the largest sum of values with values = "rating"); seen items left out. predict(u, i)
-- is the item's count (any user). After fit: popularity (float64, per inner item id).
local Popular = make_class("Popular", {})

function Popular:_init()
  check_values("Popular", self.values)
  self._kind = "popular"
  self._needs_items = false
end

function Popular:_fit(_, opts)
  check_fit_opts(self, opts, {})
  self.popularity = self.inter:popularity()
  self._a = self.popularity
end

function Popular:_fold_in()
  return "popular", self.popularity
end

function Popular:_similar()
  return nil
end

implicit.Popular = Popular

-- ------------------------------------------------------------------ saving

-- m:save keeps the learned factors. What follows from the train set and the options is
-- rebuilt on load: the interaction matrix, the item ranks, and ItemKNN's neighbour rows
-- and Popular's counts (deterministic functions of the two).
local function rebuild(self, train)
  self.trainset_store = train.store
  self.scale = { -NO_CLIP, NO_CLIP }
  self.mu = 0
  self.inter = C.inter_build(train.store, self.values == "binary")
  self._rank = C.make_rank(self.ids.items)
end

base.persist(ALS, {
  tensors = { user_factors = "float32[users,factors]", item_factors = "float32[items,factors]" },
  restore = function(self, train)
    rebuild(self, train)
    self._a, self._b = self.user_factors, self.item_factors
  end,
})

base.persist(BPR, {
  tensors = { user_factors = "float32[users,columns]", item_factors = "float32[items,columns]" },
  values = { columns = "count" },
  restore = function(self, train)
    rebuild(self, train)
    self._a, self._b = self.user_factors, self.item_factors
  end,
})

base.persist(ItemKNN, {
  restore = function(self, train)
    rebuild(self, train)
    self.sims = C.iknn_fit(self.inter, self.similarity, self.K, self.K1, self.B)
    self._a = self.sims
  end,
})

base.persist(Popular, {
  restore = function(self, train)
    rebuild(self, train)
    self.popularity = self.inter:popularity()
    self._a = self.popularity
  end,
})

return implicit
