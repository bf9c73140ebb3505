--- Neural collaborative filtering (He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative
-- Filtering", WWW 2017): NeuMF, the fusion of a GMF and an MLP tower, for implicit
-- feedback, built on moonml.nn and trained with Adam.
--
--   local m = rec.NeuMF{factors = 8, layers = {64, 32, 16, 8}, epochs = 20,
--     random_state = 1}:fit(train)
--   local ids, scores = m:recommend(196, 10)   -- seen items left out
--
-- Parameters (defaults): factors = 8 (GMF embedding size), layers = {64, 32, 16, 8}
-- (the MLP tower: layers[1] is the size of the concatenated user and item embeddings,
-- each layers[1] / 2, then Linear + ReLU to each next size), epochs = 20, batch_size =
-- 256, lr = 1e-3 (Adam), negatives = 4, reg = 0 (L2 penalty: Adam's weight_decay on
-- every parameter), random_state (an integer seeds the initial weights, the negatives and
-- the shuffling with a generator of the model's own; without one the generator is seeded
-- from moonml's, so ml.manual_seed makes a fit reproducible).
--
-- Model: logit(u, i) = h^T [p_u (.) q_i ; MLP([p'_u ; q'_i])] + b, with separate
-- embeddings for the two towers (GMF p, q: factors wide; MLP p', q': layers[1] / 2) and
-- the score is sigmoid(logit), a probability in (0, 1). The network is `m.net`, an
-- nn.Module (`m.net:forward(users, items)` gives logits for 1-based inner ids; parameter
-- names gmf_user.weight, gmf_item.weight, mlp_user.weight, mlp_item.weight, mlp.1.weight,
-- ..., predict.weight, predict.bias). Initial weights as in the common PyTorch port of the
-- paper's code: embeddings Normal(0, 0.01), MLP weights Xavier-uniform, the last layer
-- Kaiming-uniform (a = 1), biases 0.
--
-- Data: any rating set; every rating is one interaction (its value is ignored; a pair
-- given twice counts once). Each epoch takes every positive pair with label 1 and, per
-- positive, `negatives` items drawn uniformly (with replacement) among the items with
-- training interactions that the user has not interacted with, label 0 (drawn anew every
-- epoch, in C: src/rec/neumf.c), shuffles them, and takes Adam steps on the mean binary
-- cross-entropy with logits of each batch of batch_size rows. `m.loss_history[e]` is the
-- mean loss of epoch e.
--
-- Contract (moonml.rec.base), as the implicit models: estimates are scores, in [0, 1];
-- `predict(u, i)` for a user or item without training interactions falls back to 0 with
-- details.was_impossible = true. `recommend(user, n, {exclude_seen = true})` scores every
-- item in one batched forward and picks the best with topk; candidates are the items with
-- training interactions, ties go to the smaller item id.
--
-- Fold-in: `m:recommend_new({[raw_item] = value, ...}, n[, {exclude_seen = true}])` learns
-- the new user's two embedding rows (GMF and MLP) with the whole network frozen, by fit's
-- own loop with these rows as its only parameters: each given item known to the train set
-- is one interaction (the values are ignored), each epoch adds `negatives` fresh
-- negatives per item and takes Adam steps (weight_decay = reg) on batches of batch_size
-- rows, 100 steps in all at 10 * lr. The rows start Normal(0, 0.01) as in fit; the start
-- and the negatives come from a generator seeded with random_state, so the same call
-- gives the same list (without random_state the seed is a draw of moonml's generator, as
-- in fit). Every item is then scored in one forward, as recommend does. Steps and rate
-- were picked on the share of a training user's top 10 that folding its own items in
-- gives back (more steps fit the new user past where fit leaves its users, and the share
-- falls): 0.80 on the synthetic set of spec/rec_implicit_contract_spec.lua (factors 8,
-- layers {16, 8}), 0.74 and 0.64 on ML-100k with the default network after 5 and 20
-- epochs (a refit with another seed keeps 0.63, 0.61 and 0.42). A call takes about 8 ms
-- on ML-100k (100 batches of at most batch_size rows, then one forward over the items).
-- @module moonml.rec.neumf
local ml = require("moonml")
local nn = require("moonml.nn")
local optim = require("moonml.optim")
local base = require("moonml.rec.base")
local data = require("moonml.rec.data")
local C = base.C

local fail = base.fail

-- ------------------------------------------------------------------ the network

local Net = nn.Module:extend("NeuMFNet")

--- nn module of NeuMF: Net(n_users, n_items, factors, layers).
function Net.new(n_users, n_items, factors, layers)
  local self = nn.Module.init(Net)
  self.factors, self.layers = factors, layers
  local half = layers[1] // 2
  self:add_module("gmf_user", nn.Embedding(n_users, factors))
  self:add_module("gmf_item", nn.Embedding(n_items, factors))
  self:add_module("mlp_user", nn.Embedding(n_users, half))
  self:add_module("mlp_item", nn.Embedding(n_items, half))
  local tower = {}
  for k = 1, #layers - 1 do
    tower[#tower + 1] = nn.Linear(layers[k], layers[k + 1])
    tower[#tower + 1] = nn.ReLU()
  end
  if #tower > 0 then
    self:add_module("mlp", nn.Sequential(table.unpack(tower)))
  end
  self:add_module("predict", nn.Linear(factors + layers[#layers], 1))
  return self
end

--- The number of weights of Net(n_users, n_items, factors, layers), without building it
-- (a float: exact while it is below 2^53, and no integer wrap-around for huge layers).
function Net.count(n_users, n_items, factors, layers)
  local n = (0.0 + n_users + n_items) * (factors + layers[1] // 2)
  for k = 1, #layers - 1 do
    n = n + (0.0 + layers[k]) * layers[k + 1] + layers[k + 1]
  end
  return n + factors + layers[#layers] + 1
end

--- Logits for 1-D int64 tensors of 1-based user and item ids (same length).
function Net:forward(users, items)
  return self:_logits_for(self.gmf_user(users), self.mlp_user(users), items)
end

-- Logits of the pairs whose user rows are given (gmf: n x factors, mlp: n x layers[1] / 2,
-- one row per item id): the network past the user embeddings, which fold-in uses with
-- the rows of a new user.
function Net:_logits_for(gmf, mlp, items)
  local g = gmf * self.gmf_item(items)
  local h = ml.cat({ mlp, self.mlp_item(items) }, 2)
  if self.mlp then
    h = self.mlp(h)
  end
  return self.predict(ml.cat({ g, h }, 2)):view(-1)
end

--- The settings shown by tostring.
function Net:extra_repr()
  local sizes = {}
  for k, v in ipairs(self.layers) do
    sizes[k] = tostring(v)
  end
  return string.format("factors=%d, layers={%s}", self.factors, table.concat(sizes, ", "))
end

-- Initial weights from the index's generator (see the module notes).
local function init_weights(net, index)
  for _, e in ipairs({ net.gmf_user, net.gmf_item, net.mlp_user, net.mlp_item }) do
    index:fill(e.weight, "normal", 0, 0.01)
  end
  local function zero(b)
    ml.no_grad(function() b:zero_() end)
  end
  if net.mlp then
    for _, m in ipairs(net.mlp:children()) do
      if m.weight then
        local out_f, in_f = m.weight:size(1), m.weight:size(2)
        local bound = math.sqrt(6 / (in_f + out_f))
        index:fill(m.weight, "uniform", -bound, bound)
        zero(m.bias)
      end
    end
  end
  local w = net.predict.weight
  local bound = math.sqrt(3 / w:size(2)) -- Kaiming-uniform, a = 1: gain 1
  index:fill(w, "uniform", -bound, bound)
  zero(net.predict.bias)
end

-- ------------------------------------------------------------------ training

-- NeuMF's training loop, for fit and fold-in: for each of `epochs` epochs, index:epoch
-- draws every positive and `negatives` fresh negatives per positive, shuffled; then one
-- Adam step (opt) per batch of batch_size rows on the mean binary cross-entropy of
-- forward(users, items), the logits; it stops after max_steps steps in all. Returns each
-- epoch's mean loss.
local function train_loop(forward, opt, index, negatives, batch_size, epochs, max_steps)
  local bce = ml.binary_cross_entropy_with_logits
  local history, steps = {}, 0
  for epoch = 1, epochs do
    local users, items, labels = index:epoch(negatives)
    local n = users:size(1)
    local total, done = 0, 0
    for s = 1, n, batch_size do
      local len = math.min(batch_size, n - s + 1)
      local loss = bce(forward(users:narrow(1, s, len), items:narrow(1, s, len)),
        labels:narrow(1, s, len))
      opt:zero_grad()
      loss:backward()
      opt:step()
      total, done = total + loss:item() * len, done + len
      steps = steps + 1
      if steps == max_steps then
        break
      end
    end
    history[epoch] = total / done
    if steps == max_steps then
      break
    end
  end
  opt:zero_grad()
  return history
end

-- ------------------------------------------------------------------ the model

local NeuMF = base.class("NeuMF", {
  params = {
    { "factors", 8, type = "integer", min = 1 },
    { "layers", { 64, 32, 16, 8 }, type = "table" },
    { "epochs", 20, type = "integer", min = 1 },
    { "batch_size", 256, type = "integer", min = 1 },
    { "lr", 1e-3, type = "number", min = 0 },
    { "negatives", 4, type = "integer", min = 1 },
    { "reg", 0, type = "number", min = 0 },
    { "random_state", nil, type = "integer", min = 0 },
  },
})
NeuMF.Net = Net

function NeuMF:_init()
  local layers = self.layers
  local n = #layers
  local bad = n == 0
  for k, v in pairs(layers) do
    if math.type(k) ~= "integer" or k < 1 or k > n or math.type(v) ~= "integer" or v < 1 then
      bad = true
    end
  end
  if bad then
    error("moonml.rec.NeuMF: layers must be a non-empty array of positive integers", 0)
  end
  if layers[1] % 2 ~= 0 then
    error(string.format("moonml.rec.NeuMF: layers[1] must be even (the user and item " ..
      "embeddings are layers[1] / 2 each), got %d", layers[1]), 0)
  end
  if not (self.lr > 0 and self.lr < math.huge) then
    error("moonml.rec.NeuMF: lr must be a positive finite number, got " .. tostring(self.lr), 0)
  end
  if self.reg == math.huge then
    error("moonml.rec.NeuMF: reg must be finite, got inf", 0)
  end
  self.layers = table.move(layers, 1, n, 1, {})
end

function NeuMF:__tostring()
  local s = base.Algo.__tostring(self)
  local sizes = {}
  for k, v in ipairs(self.layers) do
    sizes[k] = tostring(v)
  end
  return (s:gsub("layers = {[^}]*}", "layers = {" .. table.concat(sizes, ", ") .. "}", 1))
end

function NeuMF:_fit(trainset, opts)
  if type(opts) ~= "table" then
    fail(self, "fit", "options must be a table, got %s", type(opts))
  end
  if next(opts) ~= nil then
    fail(self, "fit", "unknown option '%s'", tostring(next(opts)))
  end
  local index = C.neumf_index(trainset.store, self.random_state)
  local n_users, n_items = index:counts()
  local net = Net(n_users, n_items, self.factors, self.layers)
  init_weights(net, index)
  local opt = optim.Adam(net:parameters(), { lr = self.lr, weight_decay = self.reg })
  self.loss_history = train_loop(net, opt, index, self.negatives, self.batch_size, self.epochs,
    math.huge)
  self:_adopt(net, index)
end

-- Makes a trained (or loaded) network the model's: what recommend and predict use, and
-- the flat copy of its weights that m:save keeps.
function NeuMF:_adopt(net, index)
  net:eval()
  local n_items = select(2, index:counts())
  local n_cand = select(3, index:counts())
  -- rank of every inner item by raw id, for ties in recommend
  local raw = self.ids.items
  local order = {}
  for i = 1, n_items do
    order[i] = i
  end
  table.sort(order, function(a, b) return data.id_less(raw[a], raw[b]) end)
  local rank = {}
  for r, i in ipairs(order) do
    rank[i] = r
  end
  self.net = net
  self._index, self._rank, self._n_cand = index, rank, n_cand
  self._not_candidate = index:candidates():eq(0)
  self._all_items = ml.arange(1, n_items, { dtype = "int64" })
  local flat = {}
  for k, p in ipairs(net:parameters()) do
    flat[k] = p:detach():reshape(-1)
  end
  self.weights = ml.cat(flat)
  self.n_params = self.weights:numel()
  -- scores are probabilities; a pair without data scores 0
  self.scale = { 0, 1 }
  self.mu = 0
end

-- m:save keeps the flat weights; loading rebuilds the network around them.
base.persist(NeuMF, {
  tensors = { weights = "float32[n_params]" },
  values = { n_params = "count" },
  restore = function(self, train, bad)
    self.trainset_store = train.store
    local index = C.neumf_index(train.store, self.random_state)
    local n_users, n_items = index:counts()
    -- checked before the network is built: a file's layers may not make it allocate more
    -- than the weights it holds
    local need = Net.count(n_users, n_items, self.factors, self.layers)
    if need ~= self.n_params then
      bad("weights hold %d values, the network needs %.0f", self.n_params, need)
    end
    local net = Net(n_users, n_items, self.factors, self.layers)
    local at = 1
    ml.no_grad(function()
      for _, p in ipairs(net:parameters()) do
        local n = p:numel()
        p:copy_(self.weights:narrow(1, at, n):view(p:shape()))
        at = at + n
      end
    end)
    assert(at - 1 == self.n_params, "NeuMF: Net.count disagrees with the network")
    self:_adopt(net, index)
  end,
})

local CHUNK = 65536

local IMPOSSIBLE = "User and/or item is unknown."

function NeuMF:_estimate_many(us, is)
  local store = self.trainset.store
  local est, imp = {}, {}
  local pu, pi, at = {}, {}, {}
  for k = 1, #us do
    local u, i = us[k], is[k]
    if u > 0 and i > 0 and store:user_count(u) > 0 and store:item_count(i) > 0 then
      pu[#pu + 1], pi[#pi + 1], at[#at + 1] = u, i, k
      imp[k] = false
    else
      imp[k] = IMPOSSIBLE
    end
    est[k] = 0
  end
  local net = self.net
  for s = 1, #pu, CHUNK do
    local e = math.min(#pu, s + CHUNK - 1)
    local tu = ml.tensor(table.move(pu, s, e, 1, {}), "int64")
    local ti = ml.tensor(table.move(pi, s, e, 1, {}), "int64")
    local p = ml.no_grad(function() return net(tu, ti):sigmoid() end):totable()
    for k = 1, #p do
      est[at[s + k - 1]] = p[k]
    end
  end
  return est, imp
end

-- The logits of the user with embedding rows gmf (1 x factors) and mlp (1 x layers[1] / 2)
-- for every item of the id space, in one forward: a float32 tensor.
function NeuMF:_item_logits(gmf, mlp)
  local items = self._all_items
  local n = items:size(1)
  return ml.no_grad(function()
    return self.net:_logits_for(gmf:expand(n, -1), mlp:expand(n, -1), items)
  end)
end

--- The logits of user u (inner id) for every item of the id space: a float32 tensor.
function NeuMF:_logits(u)
  local net = self.net
  return self:_item_logits(net.gmf_user.weight:narrow(1, u, 1), net.mlp_user.weight:narrow(1, u, 1))
end

-- Scores (sigmoid) from the logits over the item space, false where the item has no
-- training interactions.
local function item_scores(self, logits)
  local s = logits:sigmoid():totable()
  local store = self.trainset.store
  for i = 1, #s do
    if store:item_count(i) == 0 then
      s[i] = false
    end
  end
  return s
end

--- Scores of user u (inner id) for every item (false where the item has no training
-- interactions).
function NeuMF:_scores(u)
  return item_scores(self, self:_logits(u))
end

-- Adam steps of a fold-in, and their learning rate as a multiple of lr (see the module
-- notes)
local FOLD_STEPS = 100
local FOLD_LR = 10

--- Fold-in (recommend_new): the new user's two embedding rows learnt with everything
-- else frozen, by NeuMF's training loop with these rows as the only parameters; scores
-- of every item as _scores gives them. items: sorted inner ids with training
-- interactions (their values are ignored: each is one interaction).
function NeuMF:_fold_in(items)
  local net = self.net
  local index = self._index:user(items, self.random_state)
  local gmf = ml.empty(1, self.factors)
  local mlp = ml.empty(1, self.layers[1] // 2)
  index:fill(gmf, "normal", 0, 0.01) -- as init_weights, GMF first
  index:fill(mlp, "normal", 0, 0.01)
  gmf:requires_grad_(true)
  mlp:requires_grad_(true)
  local opt = optim.Adam({ gmf, mlp }, { lr = FOLD_LR * self.lr, weight_decay = self.reg })
  local function forward(users, its) -- users: all 1, the new user's rows
    return net:_logits_for(gmf:index_select(1, users), mlp:index_select(1, users), its)
  end
  -- the network takes no gradient (its weights stay as they are), then gets its flags back
  local params, flags = net:parameters(), {}
  for k, p in ipairs(params) do
    flags[k] = p.requires_grad
    p:requires_grad_(false)
  end
  local ok, err = pcall(ml.enable_grad, function()
    train_loop(forward, opt, index, self.negatives, self.batch_size, math.maxinteger, FOLD_STEPS)
  end)
  for k, p in ipairs(params) do
    p:requires_grad_(flags[k])
  end
  if not ok then
    error(err, 0)
  end
  return item_scores(self, self:_item_logits(gmf:detach(), mlp:detach()))
end

--- `ids, scores = m:recommend(user, n, {exclude_seen = true})`: the n best items for a
-- user of the train set (raw ids, scores sigmoid(logit)), best first; one forward over
-- every item, then topk.
function NeuMF:recommend(user, n, opts)
  if not self.trainset then
    fail(self, "recommend", "the model is not fitted (call fit first)")
  end
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
  local logits = self:_logits(u)
  logits:masked_fill_(self._not_candidate, -math.huge)
  local avail = self._n_cand
  if opts.exclude_seen ~= false then
    local seen = self._index:seen(u)
    logits:scatter_(1, seen, -math.huge)
    avail = avail - seen:size(1)
  end
  local k = math.min(n, avail)
  if k == 0 then
    return {}, {}
  end
  local vals, idx = logits:topk(k)
  local v, ix = vals:totable(), idx:totable()
  local rank = self._rank
  -- ties: topk keeps equal logits in inner-id order; the contract wants raw-id order, and
  -- the last value may tie with items left out of the list
  local last, in_list = v[k], 0
  for j = 1, k do
    if v[j] == last then
      in_list = in_list + 1
    end
  end
  local eq = logits:eq(last)
  if eq:sum():item() > in_list then
    local all = eq:nonzero():view(-1):totable()
    table.sort(all, function(a, b) return rank[a] < rank[b] end)
    for t = 1, in_list do
      ix[k - in_list + t] = all[t]
    end
  end
  for j = 2, k do -- insertion sort of runs of equal values by raw id (v is descending)
    local x, vx, p = ix[j], v[j], j
    while p > 1 and v[p - 1] == vx and rank[ix[p - 1]] > rank[x] do
      ix[p] = ix[p - 1]
      p = p - 1
    end
    ix[p] = x
  end
  local scores = vals:sigmoid():totable()
  local raw = self.ids.items
  local ids = {}
  for j = 1, k do
    ids[j] = raw[ix[j]]
  end
  return ids, scores
end

return NeuMF
