--- Matrix factorisation by SGD with Surprise's definitions and defaults: SVD (biased or
-- not), SVDpp and NMF. The epochs run in C (src/rec/mf.c); factors are float32 tensors
-- (n x n_factors, rows in inner-id order), biases float64 tensors, kept on the model as
-- pu, qi (SVDpp also yj), bu, bi after fit.
--
-- fit(trainset, {init = {pu =, qi =, yj =, bu =, bi =}}) starts from the given tensors
-- (copied) instead of the random initialisation: with n_epochs = 1 on a tiny set this
-- gives one SGD pass that can be checked by hand.
-- @module moonml.rec.matrix_factorization
local core = require("moonml.core")
local base = require("moonml.rec.base")
local C = base.C

local mf = {}

local function lr_reg(self, names)
  for _, n in ipairs(names) do
    if self["lr_" .. n] == nil then
      self["lr_" .. n] = self.lr_all
    end
    if self["reg_" .. n] == nil then
      self["reg_" .. n] = self.reg_all
    end
  end
end

-- Copies the user's initial values over the fresh tensors (shape-checked).
local function apply_init(self, init, t)
  if init == nil then
    return
  end
  if type(init) ~= "table" then
    base.fail(self, "fit", "init must be a table of tensors, got %s", type(init))
  end
  for name, x in pairs(init) do
    local dst = t[name]
    if not dst then
      base.fail(self, "fit", "init: unknown or unused tensor '%s'", tostring(name))
    end
    if getmetatable(x) ~= core.Tensor then
      base.fail(self, "fit", "init.%s must be a tensor, got %s", name, type(x))
    end
    local a, b = table.concat(x:shape(), ", "), table.concat(dst:shape(), ", ")
    if a ~= b then
      base.fail(self, "fit", "init.%s has shape [%s], expected [%s]", name, a, b)
    end
    dst:copy_(x)
  end
end

local function check_fit_opts(self, opts)
  for k in pairs(opts) do
    if k ~= "init" then
      base.fail(self, "fit", "unknown option '%s'", tostring(k))
    end
  end
end

local function zeros64(n)
  return core.zeros(n, { dtype = "float64" })
end

-- ------------------------------------------------------------------ SVD

local SVD = base.class("SVD", {
  params = {
    { "n_factors", 100, type = "integer", min = 0 },
    { "n_epochs", 20, type = "integer", min = 0 },
    { "biased", true, type = "boolean" },
    { "init_mean", 0, type = "number" },
    { "init_std_dev", 0.1, type = "number", min = 0 },
    { "lr_all", 0.005, type = "number" },
    { "reg_all", 0.02, type = "number" },
    { "lr_bu", nil, type = "number" }, { "lr_bi", nil, type = "number" },
    { "lr_pu", nil, type = "number" }, { "lr_qi", nil, type = "number" },
    { "reg_bu", nil, type = "number" }, { "reg_bi", nil, type = "number" },
    { "reg_pu", nil, type = "number" }, { "reg_qi", nil, type = "number" },
    { "random_state", nil, type = "integer" },
  },
})

-- After loading: the factor tensors' width (k, checked against them) must be the
-- n_factors the model's parameters say.
local function restore_factors(self, train, bad)
  if self.k ~= self.n_factors then
    bad("the factors have %d columns but n_factors is %d", self.k, self.n_factors)
  end
  self.trainset_store = train.store
end

function SVD:_init()
  lr_reg(self, { "bu", "bi", "pu", "qi" })
  self.impossible_reason = "User and item are unknown."
end

function SVD:_fit(train, opts)
  check_fit_opts(self, opts)
  local nu, ni = train.store:space()
  local k = self.n_factors
  self.k = k
  self.bu, self.bi = zeros64(nu), zeros64(ni)
  self.pu, self.qi = core.zeros(nu, k), core.zeros(ni, k)
  C.init({ self.pu, self.qi }, "normal", self.init_mean, self.init_std_dev, self.random_state)
  apply_init(self, opts.init, { pu = self.pu, qi = self.qi, bu = self.bu, bi = self.bi })
  C.fit("svd", train.store, self)
  self.trainset_store = train.store
end

SVD._estimate_many = base.mf_estimate_many
SVD._scores = base.mf_scores
SVD._similar = base.mf_similar
base.persist(SVD, {
  tensors = { bu = "float64[users]", bi = "float64[items]", pu = "float32[users,k]",
    qi = "float32[items,k]" },
  values = { k = "count" },
  restore = restore_factors,
})

-- Fold-in (recommend_new): n_epochs of the SGD updates of the new user's b_u and p_u over
-- its ratings, in item-id order, from b_u = 0 and p_u = 0, with the model's learning rates
-- and regularisation and every item parameter fixed; SVD++ adds the implicit term of the
-- given items (|N(u)|^-1/2 sum y_j, fixed too).
--- A new user's estimates from its ratings without a refit (see the comment above).
function mf.fold_in(self, items, ratings)
  return C.mf_fold_in(self, self.trainset_store, items, ratings)
end
SVD._fold_in = mf.fold_in
mf.SVD = SVD

-- ------------------------------------------------------------------ SVD++

local SVDpp = base.class("SVDpp", {
  params = {
    { "n_factors", 20, type = "integer", min = 0 },
    { "n_epochs", 20, type = "integer", min = 0 },
    { "init_mean", 0, type = "number" },
    { "init_std_dev", 0.1, type = "number", min = 0 },
    { "lr_all", 0.007, type = "number" },
    { "reg_all", 0.02, type = "number" },
    { "lr_bu", nil, type = "number" }, { "lr_bi", nil, type = "number" },
    { "lr_pu", nil, type = "number" }, { "lr_qi", nil, type = "number" },
    { "lr_yj", nil, type = "number" },
    { "reg_bu", nil, type = "number" }, { "reg_bi", nil, type = "number" },
    { "reg_pu", nil, type = "number" }, { "reg_qi", nil, type = "number" },
    { "reg_yj", nil, type = "number" },
    { "random_state", nil, type = "integer" },
  },
})

function SVDpp:_init()
  lr_reg(self, { "bu", "bi", "pu", "qi", "yj" })
  self.biased = true
end

function SVDpp:_fit(train, opts)
  check_fit_opts(self, opts)
  local nu, ni = train.store:space()
  local k = self.n_factors
  self.k = k
  self.bu, self.bi = zeros64(nu), zeros64(ni)
  self.pu, self.qi, self.yj = core.zeros(nu, k), core.zeros(ni, k), core.zeros(ni, k)
  self.imp = core.zeros(nu, k)
  C.init({ self.pu, self.qi, self.yj }, "normal", self.init_mean, self.init_std_dev,
    self.random_state)
  apply_init(self, opts.init,
    { pu = self.pu, qi = self.qi, yj = self.yj, bu = self.bu, bi = self.bi })
  C.fit("svdpp", train.store, self)
  self.trainset_store = train.store
end

SVDpp._estimate_many = base.mf_estimate_many
SVDpp._scores = base.mf_scores
SVDpp._similar = base.mf_similar
base.persist(SVDpp, {
  tensors = { bu = "float64[users]", bi = "float64[items]", pu = "float32[users,k]",
    qi = "float32[items,k]", yj = "float32[items,k]", imp = "float32[users,k]" },
  values = { k = "count" },
  restore = restore_factors,
})
SVDpp._fold_in = mf.fold_in
mf.SVDpp = SVDpp

-- ------------------------------------------------------------------ NMF

local NMF = base.class("NMF", {
  params = {
    { "n_factors", 15, type = "integer", min = 0 },
    { "n_epochs", 50, type = "integer", min = 0 },
    { "biased", false, type = "boolean" },
    { "reg_pu", 0.06, type = "number" }, { "reg_qi", 0.06, type = "number" },
    { "reg_bu", 0.02, type = "number" }, { "reg_bi", 0.02, type = "number" },
    { "lr_bu", 0.005, type = "number" }, { "lr_bi", 0.005, type = "number" },
    { "init_low", 0, type = "number" }, { "init_high", 1, type = "number" },
    { "random_state", nil, type = "integer" },
  },
})

function NMF:_init()
  if self.init_low < 0 then
    error("moonml.rec.NMF: init_low should be greater than zero, got " ..
      tostring(self.init_low), 0)
  end
  if self.init_high < self.init_low then
    error("moonml.rec.NMF: init_high must not be below init_low", 0)
  end
  self.impossible_reason = "User and item are unknown."
end

function NMF:_fit(train, opts)
  check_fit_opts(self, opts)
  local nu, ni = train.store:space()
  local k = self.n_factors
  self.k = k
  self.bu, self.bi = zeros64(nu), zeros64(ni)
  self.pu, self.qi = core.zeros(nu, k), core.zeros(ni, k)
  C.init({ self.pu, self.qi }, "uniform", self.init_low, self.init_high, self.random_state)
  apply_init(self, opts.init, { pu = self.pu, qi = self.qi, bu = self.bu, bi = self.bi })
  C.fit("nmf", train.store, self)
  self.trainset_store = train.store
end

NMF._estimate_many = base.mf_estimate_many
NMF._scores = base.mf_scores
NMF._similar = base.mf_similar
base.persist(NMF, {
  tensors = { bu = "float64[users]", bi = "float64[items]", pu = "float32[users,k]",
    qi = "float32[items,k]" },
  values = { k = "count" },
  restore = restore_factors,
})
mf.NMF = NMF

return mf
