--- NormalPredictor: a rating drawn from the normal distribution of the train set's
-- ratings (mean mu, standard deviation sigma by maximum likelihood), as Surprise's.
-- Draws come from moonml's generator (ml.manual_seed makes them reproducible).
-- @module moonml.rec.random_pred
local core = require("moonml.core")
local base = require("moonml.rec.base")

local NormalPredictor = base.class("NormalPredictor", { params = {} })

function NormalPredictor:_fit(train)
  local _, var = train.store:stats()
  self.sigma = math.sqrt(var)
end

function NormalPredictor:_estimate_many(us)
  local n = #us
  local est, imp = {}, {}
  if n == 0 then
    return est, imp
  end
  local z = core.randn(n):totable()
  for k = 1, n do
    est[k] = self.mu + self.sigma * z[k]
    imp[k] = false
  end
  return est, imp
end

base.persist(NormalPredictor, { values = { sigma = "scale" } })

return NormalPredictor
