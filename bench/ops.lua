-- moonml's side of `make bench` (bench/run.lua runs it, alternating with ops_torch.py).
--   lua5.4 bench/ops.lua --threads N --only small|large [--target S] [--runs R] [--clock cpu]
-- Prints "name seconds_per_call" lines: the median of R runs, each a loop of calls sized to
-- last S seconds after at least 0.2 s of warm-up (the method of
-- ../shared/reference/torch/benchutil.py). All tensors are float32 from ml.randn.
--   small (per-call cost from Lua, loop included):
--     add16    a + b              a, b: [16]
--     mm4      a:matmul(b)        a, b: [4, 4]
--     relu16   x:relu()           x: [16]
--   large (N = 10,000,000):
--     mm1024   a:matmul(b)        a, b: [1024, 1024]
--     add      a + b              new result each call, left to the collector
--     add_     o:add_(b)          in place, as the C loop writes into a reused buffer
--     mul_add  a * b + c          two ops and a temporary, as written
--     sum      a:sum()
--     softmax  x:softmax(2)       x: [4096, 1000]
-- from the checkout, unless the caller (make bench) says where the module is
if not (os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH")) then
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./build/?.so;" .. package.cpath
end
local ml = require("moonml")

local function option(name, default)
  for i = 1, #arg - 1 do
    if arg[i] == "--" .. name then
      return arg[i + 1]
    end
  end
  return default
end

local threads = tonumber(option("threads", "1"))
local only = option("only", "small")
local target = tonumber(option("target", "0.25"))
local runs = tonumber(option("runs", "5"))

-- Wall-clock time by default; --clock cpu times with the process's CPU time (os.clock),
-- which leaves out the time other processes held the CPU, for 1-thread runs on a shared
-- machine (it would count every thread of a 2-thread run).
local wall = ml.clock
if option("clock", "wall") == "cpu" then
  wall = os.clock
elseif not wall then
  io.stderr:write("ops.lua: moonml has no wall clock; timing with os.clock (CPU time)\n")
  wall = os.clock
end

local function median_time(fn)
  local t0, calls = wall(), 0
  repeat
    fn()
    calls = calls + 1
  until calls >= 3 and wall() - t0 >= 0.2
  local inner = math.max(1, math.floor(target / ((wall() - t0) / calls)))
  local times = {}
  for r = 1, runs do
    local t = wall()
    for _ = 1, inner do
      fn()
    end
    times[r] = (wall() - t) / inner
  end
  table.sort(times)
  return times[(runs + 1) // 2]
end

local function report(name, fn)
  print(string.format("%s %.9g", name, median_time(fn)))
  io.stdout:flush()
end

ml.set_num_threads(threads)
ml.manual_seed(0)
local cpu0 = os.clock()

if only == "small" then
  local a, b = ml.randn(16), ml.randn(16)
  report("add16", function()
    return a + b
  end)
  local m1, m2 = ml.randn(4, 4), ml.randn(4, 4)
  report("mm4", function()
    return m1:matmul(m2)
  end)
  local x = ml.randn(16)
  report("relu16", function()
    return x:relu()
  end)
else
  do
    local g1, g2 = ml.randn(1024, 1024), ml.randn(1024, 1024)
    report("mm1024", function()
      return g1:matmul(g2)
    end)
  end
  local n = 10000000
  local a, b, c = ml.randn(n), ml.randn(n), ml.randn(n)
  report("add", function()
    return a + b
  end)
  do
    local o = a:clone()
    report("add_", function()
      return o:add_(b)
    end)
  end
  report("mul_add", function()
    return a * b + c
  end)
  report("sum", function()
    return a:sum()
  end)
  local x = ml.randn(4096, 1000)
  report("softmax", function()
    return x:softmax(2)
  end)
  -- results are right (as the PyTorch script checks too)
  local rows = x:softmax(2):sum(2)
  assert(math.abs(rows:min():item() - 1) < 1e-4 and math.abs(rows:max():item() - 1) < 1e-4)
end
print(string.format("cpu %.6f", os.clock() - cpu0))
