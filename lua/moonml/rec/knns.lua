--- The k-NN family with Surprise's definitions and defaults (prediction_algorithms/knns.py):
-- KNNBasic, KNNWithMeans, KNNWithZScore and KNNBaseline.
--
--     rec.KNNBasic{k = 40, min_k = 1, sim_options = {name = "msd", user_based = true,
--       min_support = 1, shrinkage = 100}, bsl_options = {}}
--
-- sim_options.name is "msd" (default), "cosine", "pearson" or "pearson_baseline"
-- (surprise/similarities.pyx; shrinkage is used by pearson_baseline only, which also
-- needs at least 2 common ratings). bsl_options configures the baselines of KNNBaseline
-- and of pearson_baseline (see rec.BaselineOnly). With user_based = false everything is
-- computed between items.
--
-- An estimate for (u, i) uses the k users most similar to u among those who rated i (or,
-- item-based, the k items most similar to i among those u rated), ties to the earlier
-- rating as in Surprise, counting only similarities > 0; details.actual_k tells how many.
-- KNNBasic cannot predict with fewer than min_k neighbours, nor with none at all when
-- min_k = 0 (the estimate falls back to the mean rating, details.reason = "Not enough
-- neighbors."); the others then use their mean / baseline alone. Unknown users or
-- items: KNNBaseline predicts the baseline, the others fall back to the mean rating.
--
-- The model keeps, for every user (item), the sparse row of its positive similarities
-- over co-rated pairs, computed in C in parallel; no n x n array is ever built.
-- `verbose` is accepted for Surprise compatibility and ignored (moonml prints nothing).
-- @module moonml.rec.knns
local base = require("moonml.rec.base")
local baseline = require("moonml.rec.baseline")
local core = require("moonml.core")
local C = base.C

local knns = {}

local SIMS = { msd = true, cosine = true, pearson = true, pearson_baseline = true }

local function check_sim_options(cls, so)
  local out = { name = "msd", user_based = true, min_support = 1, shrinkage = 100 }
  for k, v in pairs(so) do
    if k == "name" then
      if type(v) ~= "string" or not SIMS[v:lower()] then
        error(string.format("moonml.rec.%s: unknown similarity '%s' (msd, cosine, pearson " ..
          "or pearson_baseline)", cls, tostring(v)), 0)
      end
      out.name = v:lower()
    elseif k == "user_based" then
      if type(v) ~= "boolean" then
        error(string.format("moonml.rec.%s: sim_options.user_based must be a boolean", cls), 0)
      end
      out.user_based = v
    elseif k == "min_support" then
      if math.type(v) ~= "integer" or v < 0 then
        error(string.format("moonml.rec.%s: sim_options.min_support must be a " ..
          "non-negative integer", cls), 0)
      end
      out.min_support = v
    elseif k == "shrinkage" then
      if type(v) ~= "number" or v ~= v or v < 0 then
        error(string.format("moonml.rec.%s: sim_options.shrinkage must be a number >= 0", cls), 0)
      end
      out.shrinkage = v
    else
      error(string.format("moonml.rec.%s: unknown sim_options key '%s'", cls, tostring(k)), 0)
    end
  end
  return out
end

local function make(name, kind)
  local cls = base.class(name, {
    params = {
      { "k", 40, type = "integer", min = 1 },
      { "min_k", 1, type = "integer", min = 0 },
      { "sim_options", {}, type = "table" },
      { "bsl_options", {}, type = "table" },
      { "verbose", false, type = "boolean" },
    },
  })

  function cls:_init()
    self.sim = check_sim_options(name, self.sim_options)
    self.kind = kind
  end

  function cls:_fit(train)
    local store = train.store
    local so = self.sim
    local ub = so.user_based
    self.user_based = ub
    self.bu, self.bi = nil, nil
    if kind == "baseline" or so.name == "pearson_baseline" then
      self.bu, self.bi = baseline.compute(train, self.bsl_options, name)
    end
    if ub then
      self.bx, self.by = self.bu, self.bi
    else
      self.bx, self.by = self.bi, self.bu
    end
    self.means, self.sigmas = nil, nil
    if kind == "means" or kind == "zscore" then
      self.means, self.sigmas = C.row_stats(store, not ub)
    end
    if kind == "zscore" then
      -- a zero deviation is replaced by the deviation of all ratings (Surprise)
      local _, var = store:stats()
      local overall = math.sqrt(var)
      local s = self.sigmas:totable()
      for x = 1, #s do
        if s[x] == 0 then
          s[x] = overall
        end
      end
      self.sigmas = core.tensor(s, "float64")
    else
      self.sigmas = nil
    end
    self.store = store
    self.sims = C.sims(store, ub, so.name, so.min_support, so.shrinkage, self.mu, self.bx,
      self.by)
  end

  function cls:_estimate_many(us, is)
    local xs, ys = us, is
    if not self.user_based then
      xs, ys = is, us
    end
    local est, ak = C.knn_predict(kind, self.sims, self.store, self.user_based, self.k,
      self.min_k, xs, ys, self.means, self.sigmas, self.mu, self.bx, self.by)
    local imp = {}
    for j = 1, #est do
      local a = ak[j]
      if a < 0 then
        imp[j] = kind ~= "baseline" and "User and/or item is unknown." or false
        ak[j] = false
      elseif kind == "basic" and (a < self.min_k or a == 0) then
        imp[j] = "Not enough neighbors."
      else
        imp[j] = false
      end
    end
    return est, imp, { actual_k = ak }
  end

  -- Item-based: every item's estimate for one user from the user's items' rows (the
  -- same estimates as _estimate_many, without a gather per item).
  function cls:_scores(u)
    if self.user_based then
      return base.Algo._scores(self, u)
    end
    local est, ak = C.knn_scores(kind, self.sims, self.store, false, self.k, self.min_k, u,
      self.means, self.sigmas, self.mu, self.bx, self.by)
    for i = 1, #est do
      if ak[i] < 0 or (kind == "basic" and (ak[i] < self.min_k or ak[i] == 0)) then
        est[i] = false
      end
    end
    return est
  end

  -- Fold-in of a new user (item-based only): the estimates of every item from the given
  -- ratings with the fitted similarity rows, as for a user of the train set; KNNBaseline's
  -- new b_u is one ALS step over the given ratings (b_u = sum(r - mu - b_i) / (reg_u + n),
  -- reg_u from bsl_options, 15 by default; with method = "sgd", n_epochs of its SGD on b_u).
  function cls:_fold_in_supported()
    return not self.sim.user_based
  end

  function cls:_fold_in_name()
    return name .. " (user-based)"
  end

  function cls:_fold_in(items, ratings)
    local bu_new = 0
    if self.bi then
      local o, bi = self.bsl_options, self.bi
      if (o.method or "als") == "als" then
        local s = 0
        for k, i in ipairs(items) do
          s = s + ratings[k] - self.mu - bi[i]
        end
        bu_new = s / ((o.reg_u or 15) + #items)
      else
        local reg, lr = o.reg or 0.02, o.learning_rate or 0.005
        for _ = 1, o.n_epochs or 20 do
          for k, i in ipairs(items) do
            local err = ratings[k] - (self.mu + bu_new + bi[i])
            bu_new = bu_new + lr * (err - reg * bu_new)
          end
        end
      end
    end
    local est, ak = C.knn_scores_new(kind, self.sims, self.store, false, self.k, self.min_k,
      items, ratings, self.means, self.sigmas, self.mu, self.bx, self.by, bu_new)
    for i = 1, #est do
      if ak[i] < 0 or (kind == "basic" and (ak[i] < self.min_k or ak[i] == 0)) then
        est[i] = false
      end
    end
    return est
  end

  -- Rows of the kept orientation come from the model; the other one is computed on
  -- demand with the same measure and options.
  function cls:_similar(what, x)
    local so = self.sim
    if (what == "user") == self.user_based then
      return self.sims:row(x)
    end
    return C.sim_row(self.store, not self.user_based, so.name, so.min_support, so.shrinkage,
      self.mu, self.by, self.bx, x)
  end

  base.persist(cls, {
    tensors = { bu = "float64[users]?", bi = "float64[items]?", means = "float64[x]?",
      sigmas = "float64[x]?" },
    values = { user_based = "boolean" },
    rows = { sims = "x" },
    restore = function(self, train, bad)
      if self.user_based ~= self.sim.user_based then
        bad("the similarities are %s-based but sim_options.user_based is %s",
          self.user_based and "user" or "item", tostring(self.sim.user_based))
      end
      self.store = train.store
      if self.user_based then
        self.bx, self.by = self.bu, self.bi
      else
        self.bx, self.by = self.bi, self.bu
      end
    end,
  })

  return cls
end

knns.KNNBasic = make("KNNBasic", "basic")
knns.KNNWithMeans = make("KNNWithMeans", "means")
knns.KNNWithZScore = make("KNNWithZScore", "zscore")
knns.KNNBaseline = make("KNNBaseline", "baseline")

return knns
