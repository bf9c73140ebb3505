-- LSTM forward + backward beside PyTorch: input 64, hidden 128, T = 50, batch 32, one
-- thread each (PyTorch 1.13 measured 10.7 ms on an idle machine of this kind; goal <= 1.0x).
-- One step: gradients dropped, out = lstm(x), out:sum():backward() (x needs no gradient).
-- Times are process CPU time (os.clock, time.process_time), so that other processes on a
-- shared machine count less; on one thread it is the wall time of an idle machine.
-- Rounds of moonml and PyTorch alternate; the figures are medians over every round.
--   make bench-lstm     (or: make && lua5.4 bench/lstm.lua)
package.cpath = "./build/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local ml = require("moonml")

local T, N, IN, HID = 50, 32, 64, 128
local ROUNDS, RUNS, WARMUP = 3, 15, 5
local PYTHON = "/usr/bin/python3"

local TORCH = [[
import sys, time
try:
    import torch
except ImportError:
    print("none"); sys.exit(0)
torch.set_num_threads(1)
torch.manual_seed(0)
T, N, IN, HID, RUNS, WARMUP = %d, %d, %d, %d, %d, %d
m = torch.nn.LSTM(IN, HID)
x = torch.randn(T, N, IN)
def step():
    m.zero_grad(set_to_none=True)
    out, _ = m(x)
    out.sum().backward()
def fwd():
    with torch.no_grad():
        m(x)
def times(f):
    for _ in range(WARMUP):
        f()
    ts = []
    for _ in range(RUNS):
        t0 = time.process_time()
        f()
        ts.append(time.process_time() - t0)
    return ts
print(torch.__version__, " ".join("%%.6f" %% t for t in times(step)), "|",
      " ".join("%%.6f" %% t for t in times(fwd)))
]]

local function torch_round()
  local script = string.format(TORCH, T, N, IN, HID, RUNS, WARMUP)
  local p = io.popen(PYTHON .. " -c '" .. script .. "' 2>/dev/null")
  local line = p and p:read("*l")
  if p then
    p:close()
  end
  if not line or line == "none" then
    return nil
  end
  local version, a, b = line:match("^(%S+) (.-) | (.*)$")
  local step, fwd = {}, {}
  for v in a:gmatch("%S+") do
    step[#step + 1] = tonumber(v)
  end
  for v in b:gmatch("%S+") do
    fwd[#fwd + 1] = tonumber(v)
  end
  return version, step, fwd
end

ml.set_num_threads(1)
ml.manual_seed(0)
local lstm = ml.nn.LSTM(IN, HID)
local x = ml.randn(T, N, IN)
local function step()
  lstm:zero_grad()
  local out = lstm(x)
  out:sum():backward()
end
local function fwd()
  ml.no_grad(function()
    return lstm(x)
  end)
end
local function times(f, out)
  for _ = 1, WARMUP do
    f()
  end
  for _ = 1, RUNS do
    local t0 = os.clock()
    f()
    out[#out + 1] = os.clock() - t0
  end
end

local function median(ts)
  table.sort(ts)
  local n = #ts
  return n % 2 == 1 and ts[(n + 1) // 2] or (ts[n // 2] + ts[n // 2 + 1]) / 2
end

local ml_step, ml_fwd, th_step, th_fwd, version = {}, {}, {}, {}, nil
for _ = 1, ROUNDS do
  local v, s, f = torch_round()
  if v then
    version = v
    table.move(s, 1, #s, #th_step + 1, th_step)
    table.move(f, 1, #f, #th_fwd + 1, th_fwd)
  end
  times(step, ml_step)
  times(fwd, ml_fwd)
  collectgarbage()
end

print(string.format("LSTM, input %d, hidden %d, T = %d, batch %d, one thread (CPU time, median "
  .. "of %d runs)", IN, HID, T, N, ROUNDS * RUNS))
local function line(label, a, b)
  if b then
    print(string.format("  %-24s moonml %7.2f ms   PyTorch %s %7.2f ms   ratio %.2f", label,
      a * 1e3, version, b * 1e3, a / b))
  else
    print(string.format("  %-24s moonml %7.2f ms   (PyTorch not found at %s)", label, a * 1e3,
      PYTHON))
  end
end
line("forward + backward", median(ml_step), #th_step > 0 and median(th_step) or nil)
line("forward under no_grad", median(ml_fwd), #th_fwd > 0 and median(th_fwd) or nil)
if #th_step > 0 then
  print(string.format("  goal: forward + backward <= 1.0x PyTorch: %s",
    median(ml_step) <= median(th_step) and "met" or "not met"))
end
