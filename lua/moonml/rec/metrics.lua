--- Accuracy of rating predictions, with Surprise's definitions (surprise/accuracy.py).
-- Each takes a fitted model and a test set, or the predictions of model:test(testset).
-- @module moonml.rec.metrics
local data = require("moonml.rec.data")

local metrics = {}

local function predictions(name, a, b)
  if data.is_set(b) then
    if type(a) ~= "table" or type(a.test) ~= "function" then
      error(string.format("moonml.rec.%s: expected a fitted model as argument 1, got %s",
        name, type(a)), 0)
    end
    if not a.trainset then
      error(string.format("moonml.rec.%s: the model is not fitted (call fit first)", name), 0)
    end
    a = a:test(b)
  elseif type(a) ~= "table" or (a[1] ~= nil and type(a[1]) ~= "table") then
    error(string.format("moonml.rec.%s: expected (model, testset) or a list of predictions",
      name), 0)
  end
  if #a == 0 then
    error(string.format("moonml.rec.%s: the prediction list is empty", name), 0)
  end
  return a
end

--- Mean squared error.
function metrics.mse(model, testset)
  local p = predictions("mse", model, testset)
  local s = 0
  for k = 1, #p do
    local e = p[k].r_ui - p[k].est
    s = s + e * e
  end
  return s / #p
end

--- Root mean squared error.
function metrics.rmse(model, testset)
  local p = predictions("rmse", model, testset)
  return math.sqrt(metrics.mse(p))
end

--- Mean absolute error.
function metrics.mae(model, testset)
  local p = predictions("mae", model, testset)
  local s = 0
  for k = 1, #p do
    s = s + math.abs(p[k].r_ui - p[k].est)
  end
  return s / #p
end

--- Fraction of concordant pairs (Koren & Sill), as Surprise computes it: per user, nc
-- counts pairs with est_i > est_j and r_i > r_j, nd pairs with est_i >= est_j and
-- r_i < r_j; nc and nd are each averaged over the users where they are non-zero, and
-- FCP = nc / (nc + nd).
function metrics.fcp(model, testset)
  local p = predictions("fcp", model, testset)
  local by_user, order = {}, {}
  for k = 1, #p do
    local u = p[k].uid
    if not by_user[u] then
      by_user[u] = {}
      order[#order + 1] = u
    end
    local l = by_user[u]
    l[#l + 1] = p[k]
  end
  local nc_sum, nc_n, nd_sum, nd_n = 0, 0, 0, 0
  for _, u in ipairs(order) do
    local l = by_user[u]
    local nc, nd = 0, 0
    for a = 1, #l do
      local ra, ea = l[a].r_ui, l[a].est
      for b = 1, #l do
        local rb, eb = l[b].r_ui, l[b].est
        if ea > eb and ra > rb then
          nc = nc + 1
        end
        if ea >= eb and ra < rb then
          nd = nd + 1
        end
      end
    end
    if nc > 0 then
      nc_sum, nc_n = nc_sum + nc, nc_n + 1
    end
    if nd > 0 then
      nd_sum, nd_n = nd_sum + nd, nd_n + 1
    end
  end
  local nc = nc_n > 0 and nc_sum / nc_n or 0
  local nd = nd_n > 0 and nd_sum / nd_n or 0
  if nc + nd == 0 then
    error("moonml.rec.fcp: cannot compute FCP on these predictions (does every user " ..
      "have at least two predictions with different ratings?)", 0)
  end
  return nc / (nc + nd)
end

return metrics
