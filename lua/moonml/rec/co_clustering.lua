--- CoClustering (George & Merugu) as Surprise's (prediction_algorithms/co_clustering.pyx):
-- users and items are put in n_cltr_u and n_cltr_i clusters, and
-- r_hat(u, i) = avg(C_ui) + (mean_u - avg(C_u)) + (mean_i - avg(C_i)),
-- the averages of u's and i's co-cluster, user cluster and item cluster. The clusters
-- start at random (moonml's generator; random_state seeds a generator of its own) and
-- are improved n_epochs times, each user and then each item moving to the cluster that
-- minimises the squared error of its ratings. Unknown users or items fall back to the
-- mean rating.
-- `verbose` is accepted for Surprise compatibility and ignored (moonml prints nothing).
-- @module moonml.rec.co_clustering
local base = require("moonml.rec.base")
local C = base.C

local CoClustering = base.class("CoClustering", {
  params = {
    { "n_cltr_u", 3, type = "integer", min = 1 },
    { "n_cltr_i", 3, type = "integer", min = 1 },
    { "n_epochs", 20, type = "integer", min = 0 },
    { "random_state", nil, type = "integer" },
    { "verbose", false, type = "boolean" },
  },
})

-- Which users and items have ratings in the train set.
local function set_known(self, store)
  local nu, ni = store:space()
  local ku, ki = {}, {}
  for u = 1, nu do
    ku[u] = store:user_count(u) > 0
  end
  for i = 1, ni do
    ki[i] = store:item_count(i) > 0
  end
  self.user_known, self.item_known = ku, ki
end

function CoClustering:_fit(train)
  local store = train.store
  local m = C.coclustering_fit(store, self.mu, self.n_cltr_u, self.n_cltr_i, self.n_epochs,
    self.random_state)
  for k, v in pairs(m) do
    self[k] = v
  end
  set_known(self, store)
end

function CoClustering:_estimate_many(us, is)
  local est, imp = {}, {}
  local ku, ki = self.user_known, self.item_known
  local cu, ci, um, im = self.cltr_u, self.cltr_i, self.user_mean, self.item_mean
  local au, ai, aco, nci = self.avg_u, self.avg_i, self.avg_co, self.n_cltr_i
  for k = 1, #us do
    local u, i = us[k], is[k]
    if ku[u] and ki[i] then
      local uc, ic = cu[u], ci[i]
      est[k] = aco[(uc - 1) * nci + ic] + um[u] - au[uc] + im[i] - ai[ic]
      imp[k] = false
    else
      est[k] = 0 / 0
      imp[k] = "User and/or item is unknown."
    end
  end
  return est, imp
end

base.persist(CoClustering, {
  arrays = { cltr_u = "int64[users]", cltr_i = "int64[items]", user_mean = "float64[users]",
    item_mean = "float64[items]", avg_u = "float64[n_cltr_u]", avg_i = "float64[n_cltr_i]",
    avg_co = "float64[n_cltr_u*n_cltr_i]" },
  restore = function(self, train, bad)
    for _, c in ipairs({ { self.cltr_u, self.n_cltr_u }, { self.cltr_i, self.n_cltr_i } }) do
      for _, x in ipairs(c[1]) do
        if x < 1 or x > c[2] then
          bad("cluster %d out of range 1..%d", x, c[2])
        end
      end
    end
    set_known(self, train.store)
  end,
})

return CoClustering
