--- The contract every rating-prediction algorithm follows (Surprise's AlgoBase).
--
-- An algorithm is a class made with `base.class(name, spec)`; `spec` lists its
-- parameters with Surprise's names and defaults. A subclass implements
--
--   * `_fit(trainset, opts)`: learns from the train set (self.trainset, self.ids,
--     self.mu, self.scale are set before it runs);
--   * `_estimate_many(users, items)`: for Lua arrays of 1-based inner ids of the train
--     set's id space (0 where the raw id is not in it), returns an array of estimates
--     (not clipped) and an array whose entry is false, or the reason string when the
--     pair cannot be predicted (Surprise's PredictionImpossible);
--     A third result may give more details: a table of arrays, e.g. {actual_k = {...}},
--     whose entries (when not false) go into the details of possible predictions;
--   * optionally `_scores(u)`: estimates of user u for every item of the id space
--     (false where there is none), used by recommend;
--   * optionally `_similar(what, x)` (what = "user" or "item", x an inner id): arrays
--     of inner ids and similarities, used by similar_users / similar_items;
--   * optionally `_fold_in(items, ratings)` (sorted inner ids with training ratings and
--     the new user's ratings): estimates over the item space (false where there is none)
--     for a new user, used by recommend_new (with `_fold_in_supported()` when support
--     depends on the parameters, and `_fold_in_name()` for the error message).
--
-- The base class does the rest: raw-id look-ups, the fallback to the train set's mean
-- for impossible predictions (details.was_impossible = true, details.reason), clipping
-- to the rating scale, batches, test, recommend, tostring and error messages.
--
-- To be saved (m:save, rec.load_model) a class declares what _fit leaves on the model
-- with `base.persist(cls, {tensors = ..., arrays = ..., rows = ..., values = ...,
-- restore = ...})`, or defines `_state()` and `_from_state(tensors, values, train, bad)`.
-- @module moonml.rec.base
local core = require("moonml.core")
local data = require("moonml.rec.data")
local C = core._rec

local base = {}

--- Every algorithm class by name (rec.load_model finds a saved model's class here).
base.classes = {}

local Algo = {}
Algo.__index = Algo
base.Algo = Algo

local function fail(self, method, fmt, ...)
  error(string.format("moonml.rec.%s.%s: " .. fmt, self.name, method, ...), 0)
end
base.fail = fail

local function check_param(cls, name, value, spec)
  local kind = spec.type
  local ok
  if kind == "number" then
    ok = type(value) == "number" and value == value
  elseif kind == "integer" then
    ok = math.type(value) == "integer"
  elseif kind == "boolean" then
    ok = type(value) == "boolean"
  elseif kind == "table" then
    ok = type(value) == "table"
  elseif kind == "string" then
    ok = type(value) == "string"
  else
    ok = true
  end
  if not ok then
    error(string.format("moonml.rec.%s: %s must be %s %s, got %s", cls.name, name,
      kind == "integer" and "an" or "a", kind, tostring(value)), 0)
  end
  if spec.min and value < spec.min then
    error(string.format("moonml.rec.%s: %s must be >= %s, got %s", cls.name, name,
      tostring(spec.min), tostring(value)), 0)
  end
end

--- Makes an algorithm class. spec.params is an ordered list of
-- {name, default, type = ..., min = ...}; a default of nil means "absent unless given".
-- Calling the class, `Cls{...}` or `Cls()`, makes an instance with checked parameters.
function base.class(name, spec)
  if type(name) ~= "string" or type(spec) ~= "table" then
    error("moonml.rec.base.class: expected a name and a spec table, got " .. type(name) .. " and "
      .. type(spec), 0)
  end
  local cls = setmetatable({}, { __index = Algo })
  cls.__index = cls
  cls.__tostring = Algo.__tostring
  cls.name = name
  cls.params = spec.params or {}
  local by_name = {}
  for _, p in ipairs(cls.params) do
    by_name[p[1]] = p
  end
  getmetatable(cls).__call = function(c, params)
    if params ~= nil and type(params) ~= "table" then
      error(string.format("moonml.rec.%s: parameters must be a table, got %s", name,
        type(params)), 0)
    end
    params = params or {}
    local self = setmetatable({ _given = {} }, c)
    for k, v in pairs(params) do
      local p = by_name[k]
      if not p then
        error(string.format("moonml.rec.%s: unknown parameter '%s'", name, tostring(k)), 0)
      end
      check_param(c, k, v, p)
      self._given[k] = v
    end
    for _, p in ipairs(c.params) do
      local v = params[p[1]]
      if v == nil then
        v = p[2]
      end
      self[p[1]] = v
    end
    if c._init then
      c._init(self)
    end
    return self
  end
  base.classes[name] = cls
  return cls
end

--- A new unfitted instance with the same parameters.
function Algo:clone()
  return getmetatable(self)(self._given)
end

function Algo:__tostring()
  local parts = {}
  for _, p in ipairs(self.params) do
    local v = self[p[1]]
    if v ~= nil and type(v) ~= "table" then
      parts[#parts + 1] = string.format("%s = %s", p[1],
        type(v) == "string" and string.format("%q", v) or tostring(v))
    elseif type(v) == "table" then
      local sub = {}
      for k, x in pairs(v) do
        sub[#sub + 1] = string.format("%s = %s", k,
          type(x) == "string" and string.format("%q", x) or tostring(x))
      end
      table.sort(sub)
      parts[#parts + 1] = string.format("%s = {%s}", p[1], table.concat(sub, ", "))
    end
  end
  local state = self.trainset and string.format(" fitted on %d ratings", self.trainset:size())
    or " not fitted"
  return string.format("moonml.rec.%s{%s}%s", self.name, table.concat(parts, ", "), state)
end

--- Learns from a rating set; returns self.
function Algo:fit(trainset, opts)
  if not data.is_set(trainset) then
    fail(self, "fit", "expected a rating set as argument 1, got %s", type(trainset))
  end
  if trainset:size() == 0 then
    fail(self, "fit", "the train set is empty")
  end
  if opts ~= nil and type(opts) ~= "table" then
    fail(self, "fit", "options must be a table, got %s", type(opts))
  end
  -- The model learns into a shallow copy whose fields replace this model's only once
  -- _fit has returned (every _fit assigns new tables and tensors): a fit that fails on
  -- bad data or options leaves a fitted model as it was, and usable.
  local work = setmetatable({}, getmetatable(self))
  for k, v in pairs(self) do
    work[k] = v
  end
  work.trainset = nil
  work.ids, work.scale = trainset.ids, trainset.scale
  work.mu = trainset:global_mean()
  work:_fit(trainset, opts or {})
  work.trainset = trainset
  for k in pairs(self) do
    self[k] = nil
  end
  for k, v in pairs(work) do
    self[k] = v
  end
  return self
end

local function check_fitted(self, method)
  if not self.trainset then
    fail(self, method, "the model is not fitted (call fit first)")
  end
end

local function clip(self, est)
  local lo, hi = self.scale[1], self.scale[2]
  if est < lo then
    return lo
  elseif est > hi then
    return hi
  end
  return est
end

--- The 1-based inner id of a raw user / item id in the train set's id space, or 0.
function Algo:_inner(raw_users, raw_items, method)
  local ids = self.ids
  local us, is = {}, {}
  for k = 1, #raw_users do
    local u, i = raw_users[k], raw_items[k]
    if u == nil or i == nil or data.key(u) == nil or data.key(i) == nil then
      fail(self, method, "ids must be numbers or strings (pair %d: %s, %s)", k, tostring(u),
        tostring(i))
    end
    us[k] = ids:user(u) or 0
    is[k] = ids:item(i) or 0
  end
  return us, is
end

-- Clipped estimates and details for inner id arrays.
local function estimate(self, us, is, want_details)
  local est, impossible, extra = self:_estimate_many(us, is)
  local details = want_details and {} or nil
  local default = self.mu
  for k = 1, #us do
    local why = impossible[k]
    if why then
      est[k] = default
    end
    est[k] = clip(self, est[k])
    if details then
      if why then
        details[k] = { was_impossible = true, reason = why }
      else
        local d = { was_impossible = false }
        if extra then
          for field, values in pairs(extra) do
            if values[k] then
              d[field] = values[k]
            end
          end
        end
        details[k] = d
      end
    end
  end
  return est, details
end

--- `est, details = m:predict(user, item[, r_ui])`: the estimate for raw ids, clipped to
-- the rating scale. details.was_impossible tells whether the model fell back to the train
-- set's mean rating (details.reason says why).
function Algo:predict(user, item, r_ui)
  check_fitted(self, "predict")
  if user == nil or item == nil then
    fail(self, "predict", "expected a user id and an item id, got %s and %s",
      tostring(user), tostring(item))
  end
  local us, is = self:_inner({ user }, { item }, "predict")
  local est, details = estimate(self, us, is, true)
  if r_ui ~= nil then
    details[1].r_ui = r_ui
  end
  return est[1], details[1]
end

local function id_array(self, x, method, what)
  if getmetatable(x) == core.Tensor then
    if x:dim() ~= 1 then
      fail(self, method, "%s must be a 1-D tensor", what)
    end
    return x:totable()
  elseif type(x) == "table" then
    return x
  end
  fail(self, method, "%s must be a Lua array or a tensor, got %s", what, type(x))
end

--- Estimates for arrays (or 1-D tensors) of raw user and item ids: a float32 tensor.
function Algo:predict_batch(users, items)
  check_fitted(self, "predict_batch")
  local us = id_array(self, users, "predict_batch", "users")
  local is = id_array(self, items, "predict_batch", "items")
  if #us ~= #is then
    fail(self, "predict_batch", "%d users but %d items", #us, #is)
  end
  local iu, ii = self:_inner(us, is, "predict_batch")
  if #iu == 0 then
    return core.zeros(0)
  end
  local est = estimate(self, iu, ii, false)
  return core.tensor(est)
end

--- Predictions for every rating of a test set: an array of
-- {uid =, iid =, r_ui =, est =, details =} (raw ids).
function Algo:test(testset)
  check_fitted(self, "test")
  if not data.is_set(testset) then
    fail(self, "test", "expected a rating set as argument 1, got %s", type(testset))
  end
  local cu, ci, rs = testset.store:columns()
  local tu, ti = testset.ids.users, testset.ids.items
  local us, is
  if testset.ids == self.ids then
    us, is = cu, ci
  else
    local ru, ri = {}, {}
    for k = 1, #cu do
      ru[k], ri[k] = tu[cu[k]], ti[ci[k]]
    end
    us, is = self:_inner(ru, ri, "test")
  end
  local est, details = estimate(self, us, is, true)
  local out = {}
  for k = 1, #cu do
    out[k] = { uid = tu[cu[k]], iid = ti[ci[k]], r_ui = rs[k], est = est[k], details = details[k] }
  end
  return out
end

--- Default scores: the estimates of user u for every item, false where impossible.
function Algo:_scores(u)
  local n = #self.ids.items
  local us, is = {}, {}
  for i = 1, n do
    us[i], is[i] = u, i
  end
  local est, impossible = self:_estimate_many(us, is)
  for i = 1, n do
    if impossible[i] or self.trainset.store:item_count(i) == 0 then
      est[i] = false
    end
  end
  return est
end

--- The n best items for a user: `ids, scores = m:recommend(user, n, {exclude_seen =
-- true})`, best first. Candidates are the items of the train set; the items the user
-- rated in it are left out unless exclude_seen = false. Scores are the model's estimates
-- before clipping (so items beyond the top of the scale stay ordered); ties go to the
-- smaller item id.
function Algo:recommend(user, n, opts)
  check_fitted(self, "recommend")
  if opts ~= nil and type(opts) ~= "table" then
    fail(self, "recommend", "options must be a table, got %s", type(opts))
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "exclude_seen" then
      fail(self, "recommend", "unknown option '%s'", tostring(k))
    end
  end
  n = n == nil and 10 or n
  if math.type(n) ~= "integer" or n < 0 then
    fail(self, "recommend", "n must be a non-negative integer, got %s", tostring(n))
  end
  if user == nil or data.key(user) == nil then
    fail(self, "recommend", "expected a user id, got %s", tostring(user))
  end
  local u = self.ids:user(user)
  if not u or self.trainset.store:user_count(u) == 0 then
    fail(self, "recommend", "unknown user '%s'", tostring(user))
  end
  local scores = self:_scores(u)
  if opts.exclude_seen ~= false then
    local seen = self.trainset.store:row(false, u)
    for _, i in ipairs(seen) do
      scores[i] = false
    end
  end
  return base.best_items(self, scores, n)
end

--- The n best items of a score array over the inner item ids (false: not a candidate):
-- raw ids and scores, best first, ties to the smaller item id.
function base.best_items(self, scores, n)
  local items = self.ids.items
  local less = data.id_less
  local function better(a, b) -- inner ids a, b
    local sa, sb = scores[a], scores[b]
    if sa ~= sb then
      return sa > sb
    end
    return less(items[a], items[b])
  end
  -- keep the best n in a small sorted list (n is small next to the item count)
  local top = {}
  for i = 1, #scores do
    if scores[i] then
      if #top < n then
        local k = #top + 1
        while k > 1 and better(i, top[k - 1]) do
          top[k] = top[k - 1]
          k = k - 1
        end
        top[k] = i
      elseif n > 0 and better(i, top[n]) then
        local k = n
        while k > 1 and better(i, top[k - 1]) do
          top[k] = top[k - 1]
          k = k - 1
        end
        top[k] = i
      end
    end
  end
  local ids, out = {}, {}
  for k, i in ipairs(top) do
    ids[k], out[k] = items[i], scores[i]
  end
  return ids, out
end

-- ------------------------------------------------------------------ fold-in

--- `ids, scores = m:recommend_new({[raw_item] = rating, ...}, n[, {exclude_seen = true}])`:
-- the n best items for a new user given by its ratings, without refitting the model
-- (raw ids, best first, the given items left out unless exclude_seen = false; items the
-- train set does not know are ignored). Supported by SVD and SVDpp (the user's biases
-- and factors fitted by their SGD with the item parameters fixed), by item-based k-NN
-- (the estimates from the given ratings) and by NeuMF (the user's embeddings fitted by
-- its training loop with the network frozen); the implicit models have their own (see
-- moonml.rec.implicit), and every other model raises "moonml.recommend_new: not
-- supported by <model>".
function Algo:recommend_new(liked, n, opts)
  local supported = self._fold_in ~= nil
  if supported and self._fold_in_supported then
    supported = self:_fold_in_supported()
  end
  if not supported then
    error(string.format("moonml.recommend_new: not supported by %s",
      self._fold_in_name and self:_fold_in_name() or self.name), 0)
  end
  check_fitted(self, "recommend_new")
  if type(liked) ~= "table" then
    fail(self, "recommend_new", "expected a table {[item] = rating}, got %s", type(liked))
  end
  if opts ~= nil and type(opts) ~= "table" then
    fail(self, "recommend_new", "options must be a table, got %s", type(opts))
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "exclude_seen" then
      fail(self, "recommend_new", "unknown option '%s'", tostring(k))
    end
  end
  n = n == nil and 10 or n
  if math.type(n) ~= "integer" or n < 0 then
    fail(self, "recommend_new", "n must be a non-negative integer, got %s", tostring(n))
  end
  local by_id = {}
  for raw, r in pairs(liked) do
    if data.key(raw) == nil then
      fail(self, "recommend_new", "item ids must be numbers or strings, got %s", tostring(raw))
    end
    if type(r) ~= "number" or r ~= r or r == math.huge or r == -math.huge then
      fail(self, "recommend_new", "the rating of item '%s' must be a finite number, got %s",
        tostring(raw), tostring(r))
    end
    local i = self.trainset:inner_item(raw)
    if i then
      by_id[i] = r
    end
  end
  local items = {}
  for i in pairs(by_id) do
    items[#items + 1] = i
  end
  if #items == 0 then
    fail(self, "recommend_new", "none of the given items is known to the model")
  end
  table.sort(items)
  local ratings = {}
  for k, i in ipairs(items) do
    ratings[k] = by_id[i]
  end
  local scores = self:_fold_in(items, ratings)
  if opts.exclude_seen ~= false then
    for _, i in ipairs(items) do
      scores[i] = false
    end
  end
  return base.best_items(self, scores, n)
end

-- ------------------------------------------------------------------ similar users / items

-- The n best of candidates (inner ids) by score, ties to the smaller raw id.
local function top_n(cands, scores, n, raw)
  local less = data.id_less
  local function better(a, b)
    local sa, sb = scores[a], scores[b]
    if sa ~= sb then
      return sa > sb
    end
    return less(raw[a], raw[b])
  end
  local top = {}
  for _, c in ipairs(cands) do
    if #top < n or (n > 0 and better(c, top[n])) then
      local k = #top < n and #top + 1 or n
      while k > 1 and better(c, top[k - 1]) do
        top[k] = top[k - 1]
        k = k - 1
      end
      top[k] = c
    end
  end
  return top
end
base.top_n = top_n

local function similar(self, method, what, raw, n)
  check_fitted(self, method)
  n = n == nil and 10 or n
  if math.type(n) ~= "integer" or n < 0 then
    fail(self, method, "n must be a non-negative integer, got %s", tostring(n))
  end
  if raw == nil or data.key(raw) == nil then
    fail(self, method, "expected %s %s id, got %s", what == "item" and "an" or "a", what,
      tostring(raw))
  end
  local store = self.trainset.store
  local x, count
  if what == "user" then
    x = self.ids:user(raw)
    count = store.user_count
  else
    x = self.ids:item(raw)
    count = store.item_count
  end
  if not x or count(store, x) == 0 then
    fail(self, method, "unknown %s '%s'", what, tostring(raw))
  end
  if not self._similar then
    fail(self, method, "%s has no similarity between %ss", self.name, what)
  end
  local ids, sims = self:_similar(what, x)
  local cands, scores = {}, {}
  for k = 1, #ids do
    local j = ids[k]
    if j ~= x and count(store, j) > 0 and sims[k] == sims[k] then
      cands[#cands + 1] = j
      scores[j] = sims[k]
    end
  end
  local list = what == "user" and self.ids.users or self.ids.items
  local top = top_n(cands, scores, n, list)
  local out_ids, out_scores = {}, {}
  for k, j in ipairs(top) do
    out_ids[k], out_scores[k] = list[j], scores[j]
  end
  return out_ids, out_scores
end

--- The n items most similar to an item: `ids, sims = m:similar_items(item, n)` (raw ids,
-- best first, the item itself left out, ties to the smaller id). What "similar" means
-- depends on the model: the k-NN family uses its similarity measure (sim_options), the
-- factor models the cosine of the item factors; other models raise an error.
function Algo:similar_items(item, n)
  return similar(self, "similar_items", "item", item, n)
end

--- The n users most similar to a user (see similar_items).
function Algo:similar_users(user, n)
  return similar(self, "similar_users", "user", user, n)
end

-- ------------------------------------------------------------------ factor models

--- _estimate_many for the factor models kept in self (see src/rec/rec.h mm_rec_mf).
function base.mf_estimate_many(self, us, is)
  local est, imp = C.predict(self, self.trainset_store, us, is)
  for k = 1, #imp do
    imp[k] = imp[k] and self.impossible_reason or false
  end
  return est, imp
end

--- _scores for the factor models: every item's estimate for user u, in C.
function base.mf_scores(self, u)
  return C.scores(self, self.trainset_store, u)
end

--- _similar for the factor models: the cosine of the factor rows (item factors qi, user
-- factors pu; SVD++ users use pu plus their implicit term, the vector it predicts with).
function base.mf_similar(self, what, x)
  local m
  if what == "item" then
    m = self.qi
  else
    m = self.imp and (self.pu + self.imp) or self.pu
  end
  if not m or self.k == 0 then
    return {}, {}
  end
  local sims = C.factor_cosine(m, x)
  local ids = {}
  for j = 1, #sims do
    ids[j] = j
  end
  return ids, sims
end

-- ------------------------------------------------------------------ saving fitted models

--- Saves the fitted model to a safetensors file: its arrays as tensors, everything else
-- (class, parameters, raw ids, scale, mean) as JSON in the file's metadata. Load it with
-- `rec.load_model(path)`; the loaded model predicts and recommends exactly as this one.
-- The train set's ratings are kept too (recommend leaves out seen items, the k-NN and
-- SlopeOne estimates read them). The save is atomic.
-- @tparam string path
function Algo:save(path)
  return require("moonml.rec.persist").save(self, path)
end

--- What a fitted model keeps beyond the common state: `tensors, values = m:_state()`,
-- tensors by name and a table of JSON values. Classes declare it with base.persist (or
-- define _state and _from_state themselves); one that does not cannot be saved.
function Algo:_state()
  fail(self, "save", "%s does not say what its fitted state is (base.persist), so it " ..
    "cannot be saved", self.name)
end

-- Shape specs of base.persist: "float32[users,k]" -> dtype, {dims}, optional.
local function parse_spec(spec)
  local dtype, dims, opt = spec:match("^(%w+)%[([^%]]*)%](%??)$")
  assert(dtype, "base.persist: bad spec " .. spec)
  local list = {}
  for d in dims:gmatch("[^,]+") do
    list[#list + 1] = d
  end
  return dtype, list, opt == "?"
end

-- The size a dim name stands for: users, items, x / y (users / items, swapped when
-- item-based), a number, a field of the model, or a product "a*b" of those.
local function dim_size(self, train, d)
  local product = 1
  for part in d:gmatch("[^*]+") do
    local nu, ni = train.store:space()
    local v
    if part == "users" then
      v = nu
    elseif part == "items" then
      v = ni
    elseif part == "x" then
      v = self.user_based == false and ni or nu
    elseif part == "y" then
      v = self.user_based == false and nu or ni
    else
      v = tonumber(part) or self[part]
    end
    if math.type(v) ~= "integer" then
      return nil
    end
    product = product * v
  end
  return product
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- The kinds of plain values base.persist keeps, as its load errors name them.
local VALUE_KINDS = { boolean = "a boolean", count = "an integer >= 0",
  scale = "a finite number >= 0" }

--- Declares what `_fit` leaves on a model of class `cls`, so that m:save and
-- rec.load_model keep it. Fields by kind, each with the shape it must have:
--
--     tensors = {pu = "float32[users,k]", bu = "float64[users]", means = "float64[x]?"}
--     arrays  = {cltr_u = "int64[users]", avg_co = "float64[n_cltr_u*n_cltr_i]"}
--               (Lua arrays of numbers, kept as tensors)
--     rows    = {sims = "x"}  (sparse rows from the C kernels, n x n, kept as CSR tensors)
--     values  = {k = "count", user_based = "boolean"}  (plain values by kind: "boolean",
--               "count" (an integer >= 0) or "scale" (a finite number >= 0))
--     restore = function(self, train, bad) ... end  (what follows from the train set, e.g.
--               self.trainset_store = train.store; bad(fmt, ...) raises the load error)
--
-- Dims: users, items, x and y (users and items, swapped when self.user_based is false),
-- numbers, fields of the model (k), products (a*b). A trailing "?" marks a field _fit may
-- leave nil. Loading checks every dtype and shape before the model is used, so a file
-- that does not fit gives an error, not a wrong answer.
function base.persist(cls, spec)
  local tensors, arrays, rows = spec.tensors or {}, spec.arrays or {}, spec.rows or {}
  local values = spec.values or {}

  function cls:_state()
    local out, vals = {}, {}
    for _, name in ipairs(sorted_keys(tensors)) do
      out[name] = self[name]
    end
    for _, name in ipairs(sorted_keys(arrays)) do
      local a = self[name]
      if a ~= nil then
        local dtype = parse_spec(arrays[name])
        out[name] = #a == 0 and core.zeros(0, { dtype = dtype }) or core.tensor(a, dtype)
      end
    end
    for _, name in ipairs(sorted_keys(rows)) do
      if self[name] ~= nil then
        out[name .. ".ptr"], out[name .. ".idx"], out[name .. ".val"] = self[name]:tensors()
      end
    end
    for _, name in ipairs(sorted_keys(values)) do
      vals[name] = self[name]
    end
    return out, vals
  end

  function cls:_from_state(saved, vals, train, bad)
    for _, name in ipairs(sorted_keys(values)) do
      local v, kind = vals[name], values[name]
      local fits = (kind == "boolean" and type(v) == "boolean")
        or (kind == "count" and math.type(v) == "integer" and v >= 0)
        or (kind == "scale" and type(v) == "number" and v >= 0 and v < math.huge)
      assert(VALUE_KINDS[kind], "base.persist: bad value kind " .. tostring(kind))
      if not fits then
        bad("the value '%s' must be %s, the file has %s", name, VALUE_KINDS[kind], tostring(v))
      end
      self[name] = v
    end
    local function check(name, t, spec_text)
      local dtype, dims, optional = parse_spec(spec_text)
      if t == nil then
        if not optional then
          bad("the tensor '%s' is missing", name)
        end
        return nil
      end
      local want = {}
      for k, d in ipairs(dims) do
        want[k] = dim_size(self, train, d) or -1
      end
      local got = t:shape()
      if t:dtype() ~= dtype or table.concat(got, ",") ~= table.concat(want, ",") then
        bad("'%s' should be %s of shape [%s], the file has %s of shape [%s]", name, dtype,
          table.concat(want, ", "), t:dtype(), table.concat(got, ", "))
      end
      return t
    end
    for _, name in ipairs(sorted_keys(tensors)) do
      self[name] = check(name, saved[name], tensors[name])
    end
    for _, name in ipairs(sorted_keys(arrays)) do
      local t = check(name, saved[name], arrays[name])
      self[name] = t and t:totable()
    end
    for _, name in ipairs(sorted_keys(rows)) do
      local n = dim_size(self, train, rows[name]) or bad("no size for the rows '%s'", name)
      local p = check(name .. ".ptr", saved[name .. ".ptr"], "int64[" .. (n + 1) .. "]")
      local ok, r = pcall(C.rows_from_tensors, p, saved[name .. ".idx"], saved[name .. ".val"], n)
      if not ok then
        bad("'%s': %s", name, (tostring(r):gsub("^moonml%.rec: ", "")))
      end
      self[name] = r
    end
    if spec.restore then
      spec.restore(self, train, bad)
    end
  end
end

base.C = C
return base
