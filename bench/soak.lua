--- Memory soak: a long loop must keep the resident size flat without collectgarbage()
-- (DESIGN.md, "Memory"). Run from the checkout after `make`:
--
--   lua5.4 bench/soak.lua mlp [steps] [tolerance]   -- `make soak` runs both with 10^6
--   lua5.4 bench/soak.lua rec [queries] [tolerance]
--
-- mlp: training steps of nn.Linear(32, 64) - Tanh - nn.Linear(64, 4), MSE loss, SGD with
--      momentum, on a fixed batch of 16 (zero_grad, forward, backward, step).
-- rec: queries of an SVD fitted on a generated rating set (300 users, 200 items, ~12,000
--      ratings): nine predict(u, i) for every recommend(u, 10).
-- The first tenth of the run (at least 1,000 iterations) is warm-up; after it the
-- resident size (VmRSS, sampled every `steps / 200` iterations) may not pass the size at
-- the end of warm-up by more than `tolerance` (default 0.05 = 5%). Prints one line
-- "soak <kind>: ..." and exits 1 when the bound is broken. Each run is its own process,
-- so the heap of anything else does not set the collector's pace.
local ml = require("moonml")

local kind = arg[1]
local steps = math.tointeger(tonumber(arg[2] or "1000000"))
local tolerance = tonumber(arg[3] or "0.05")
if (kind ~= "mlp" and kind ~= "rec") or not steps or steps < 2000 or not tolerance then
  io.stderr:write("usage: lua5.4 bench/soak.lua mlp|rec [steps >= 2000] [tolerance]\n")
  os.exit(2)
end

local function rss_kb()
  local f = assert(io.open("/proc/self/status", "r"), "needs /proc/self/status (Linux)")
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

ml.manual_seed(1)

--- One iteration of the loop under test, set up once.
local function mlp_step()
  local nn = ml.nn
  local model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4))
  local opt = ml.optim.SGD(model:parameters(), { lr = 0.01, momentum = 0.9 })
  local x, y = ml.randn(16, 32), ml.randn(16, 4)
  local loss_fn = nn.MSELoss()
  local last
  return function()
    opt:zero_grad()
    local loss = loss_fn(model(x), y)
    loss:backward()
    opt:step()
    last = loss
  end, function()
    return string.format("loss %.4f", last:item())
  end
end

local function rec_query()
  local rec = ml.rec
  local rows, n = {}, 0
  local rand = math.random
  math.randomseed(1)
  for u = 1, 300 do
    for i = 1, 200 do
      if rand() < 0.2 then
        n = n + 1
        rows[n] = { u, i, rand(1, 5) }
      end
    end
  end
  local model = rec.SVD({ n_factors = 16, n_epochs = 5, random_state = 1 }):fit(rec.from_table(rows))
  local k, checksum = 0, 0
  return function()
    k = k + 1
    local u, i = k % 300 + 1, (k * 7) % 200 + 1
    if k % 10 == 0 then
      local items = model:recommend(u, 10)
      checksum = checksum + #items
    else
      checksum = checksum + model:predict(u, i)
    end
  end, function()
    return string.format("%d ratings, checksum %.1f", n, checksum)
  end
end

local step, describe = (kind == "mlp" and mlp_step or rec_query)()
local warm = math.max(1000, steps // 10)
local every = math.max(1, steps // 200)
local t0 = ml.clock()
for _ = 1, warm do
  step()
end
local base = rss_kb()
local peak, last = base, base
for s = 1, steps - warm do
  step()
  if s % every == 0 then
    last = rss_kb()
    if last > peak then
      peak = last
    end
  end
end
local seconds = ml.clock() - t0
local growth = (peak - base) / base
local ok = growth <= tolerance
print(string.format("soak %s: %d iterations in %.1f s (%.1f us each), resident %.1f MB after "
  .. "warm-up, peak %.1f MB (%+.2f%%, bound %.0f%%), end %.1f MB; %s: %s", kind, steps, seconds,
  seconds / steps * 1e6, base / 1024, peak / 1024, growth * 100, tolerance * 100, last / 1024,
  describe(), ok and "ok" or "FAILED"))
os.exit(ok and 0 or 1)
