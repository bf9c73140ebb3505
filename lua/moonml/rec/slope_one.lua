--- SlopeOne (Lemire & Maclachlan) as Surprise's (prediction_algorithms/slope_one.pyx):
-- r_hat(u, i) = mean_u + the average of dev(i, j) over the items j rated by u that share
-- at least one user with i, where dev(i, j) is the mean of r_vi - r_vj over the users v
-- who rated both. No parameters. Unknown users or items fall back to the mean rating.
-- Surprise 1.1.4 sums the deviations with the ratings declared as C ints, so half stars
-- are truncated there (3.5 -> 3; on ML-latest-small that costs 0.006 RMSE); moonml keeps
-- the ratings as they are, so results agree with Surprise's on whole-star data only.
--
-- The model keeps one sparse row of deviations per item (only the pairs of items rated
-- by a common user), computed in C in parallel.
-- `verbose` is accepted for Surprise compatibility and ignored (moonml prints nothing).
-- @module moonml.rec.slope_one
local base = require("moonml.rec.base")
local C = base.C

local SlopeOne = base.class("SlopeOne", { params = { { "verbose", false, type = "boolean" } } })

function SlopeOne:_fit(train)
  self.store = train.store
  self.user_mean = C.row_stats(train.store, false)
  self.dev = C.slope_one_fit(train.store)
end

function SlopeOne:_estimate_many(us, is)
  local est = C.slope_one_predict(self.dev, self.store, us, is, self.user_mean)
  local imp = {}
  for k = 1, #est do
    imp[k] = est[k] ~= est[k] and "User and/or item is unknown." or false
  end
  return est, imp
end

function SlopeOne:_scores(u)
  return C.slope_one_scores(self.dev, self.store, u, self.user_mean)
end

base.persist(SlopeOne, {
  tensors = { user_mean = "float64[users]" },
  rows = { dev = "items" },
  restore = function(self, train) self.store = train.store end,
})

return SlopeOne
