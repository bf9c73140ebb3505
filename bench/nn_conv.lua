-- The Fashion-MNIST CNN's convolutions (1->32 3x3 pad 1 on 28x28 and 32->64 3x3 pad 1 on
-- 14x14, batch 64), forward and forward + backward on one thread, side by side with
-- PyTorch (bench/nn_conv_torch.py) when Debian's python3-torch is installed.
-- Medians (and minima) of 7 runs of 10 calls each. Both sides allocate their outputs
-- anew on every call, as a training loop does; the minima show the runs that did not
-- wait for fresh pages.
--   make && lua5.4 bench/nn_conv.lua
package.cpath = "./build/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local ml = require("moonml")

ml.set_num_threads(1)
ml.manual_seed(0)
local RUNS, CALLS = 7, 10

-- median and minimum, in ms
local function timed_ms(f)
  local times = {}
  for r = 1, RUNS do
    local t0 = os.clock()
    for _ = 1, CALLS do
      f()
    end
    times[r] = (os.clock() - t0) / CALLS
  end
  table.sort(times)
  return { times[(RUNS + 1) // 2] * 1e3, times[1] * 1e3 }
end

local ours = {}
local function conv(name, n, c, hw, o, grad_input)
  local x = ml.randn(n, c, hw, hw)
  if grad_input then
    x:requires_grad_()
  end
  local w = ml.randn(o, c, 3, 3):requires_grad_()
  local b = ml.randn(o):requires_grad_()
  local opts = { padding = 1 }
  ours[name .. "_fwd"] = timed_ms(function()
    ml.no_grad(function() return ml.conv2d(x, w, b, opts) end)
  end)
  ours[name .. "_fwdbwd"] = timed_ms(function()
    local y = ml.conv2d(x, w, b, opts)
    y:backward(ml.ones_like(y))
    w.grad, b.grad = nil, nil
    if grad_input then
      x.grad = nil
    end
  end)
end
conv("conv1", 64, 1, 28, 32, false)
conv("conv2", 64, 32, 14, 64, true)

local theirs = {}
local p = io.popen("/usr/bin/python3 bench/nn_conv_torch.py 2>/dev/null")
if p then
  for line in p:lines() do
    local k, med, min = line:match("^(%S+) ([%d.]+) ([%d.]+)$")
    if k then
      theirs[k] = { tonumber(med), tonumber(min) }
    end
  end
  p:close()
end

local function cell(t, i)
  return t and string.format("%.2f", t[i]) or "-"
end

local function ratio(a, b, i)
  return b and string.format("%.2fx", a[i] / b[i]) or "-"
end

print("conv2d, batch 64, one thread, ms          median: moonml PyTorch  ratio"
  .. "   min: moonml PyTorch  ratio")
local names = {
  { "conv1_fwd", "1->32 28x28 forward" },
  { "conv1_fwdbwd", "1->32 28x28 forward+backward (no grad x)" },
  { "conv2_fwd", "32->64 14x14 forward" },
  { "conv2_fwdbwd", "32->64 14x14 forward+backward" },
}
local total = { ours = { 0, 0 }, theirs = { 0, 0 } }
for _, kv in ipairs(names) do
  local k, label = kv[1], kv[2]
  local a, b = ours[k], theirs[k]
  print(string.format("  %-42s %6s %7s %6s  %10s %7s %6s", label, cell(a, 1), cell(b, 1),
    ratio(a, b, 1), cell(a, 2), cell(b, 2), ratio(a, b, 2)))
  if k:find("fwdbwd") then
    for i = 1, 2 do
      total.ours[i] = total.ours[i] + a[i]
      total.theirs[i] = total.theirs[i] + (b and b[i] or 0)
    end
  end
end
if total.theirs[1] > 0 then
  local a, b = total.ours, total.theirs
  print(string.format("  %-42s %6s %7s %6s  %10s %7s %6s", "both convs, forward+backward",
    cell(a, 1), cell(b, 1), ratio(a, b, 1), cell(a, 2), cell(b, 2), ratio(a, b, 2)))
end
