-- Per-call cost of element-wise ops from Lua: 16-element tensors (what a game does every
-- frame) and 10M elements (memory bound). Medians of 5 runs.
--   make && lua5.4 bench/elementwise.lua
package.cpath = "./build/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local ml = require("moonml")

local clock = os.clock
local function median(runs, calls, f)
  local times = {}
  for r = 1, runs do
    local t0 = clock()
    for _ = 1, calls do
      f()
    end
    times[r] = (clock() - t0) / calls
  end
  table.sort(times)
  return times[(runs + 1) // 2]
end

local a, b = ml.randn(16), ml.randn(16)
local calls = 1000000
print(string.format("16 elements, %d calls each", calls))
local function small(label, f)
  print(string.format("  %-28s %6.0f ns/call", label, median(5, calls, f) * 1e9))
end
small("a + b", function() return a + b end)
small("a + 1", function() return a + 1 end)
small("a:relu()", function() return a:relu() end)
small("a:add_(b)", function() return a:add_(b) end)
small("a:clone() (allocation only)", function() return a:clone() end)
small("a:numel() (a method call)", function() return a:numel() end)

local n = 10000000
local x, y = ml.rand(n), ml.rand(n)
print("10M elements")
local function big(label, f)
  print(string.format("  %-28s %6.2f ms", label, median(5, 5, f) * 1e3))
end
-- os.clock is CPU time, which is wall time only on one thread; the C bench
-- (bench/elementwise_add.c) times the threaded runs
ml.set_num_threads(1)
big("local c <close> = x + y", function()
  local _ <close> = x + y
end)
big("x:add_(y)", function() x:add_(y) end)
