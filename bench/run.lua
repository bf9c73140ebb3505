-- `make bench-ops`: moonml against PyTorch (Debian's python3-torch) and against plain C
-- (raw OpenBLAS sgemm, loops into a reused buffer), side by side in one run.
--
--   lua5.4 bench/run.lua            (after `make`; `make bench` builds build/bench/ref)
--
-- Each round runs bench/ops.lua, bench/ops_torch.py and build/bench/ref once per setting
-- (small ops at 1 thread; large ops at 1 and at 2 threads), alternating which goes first,
-- all under the same OPENBLAS_* environment with OPENBLAS_NUM_THREADS set to the setting's
-- thread count. Each figure is a median of runs inside a process; the table shows the
-- median over the rounds. Without PyTorch the table shows moonml's figures and says so.
-- Settings (environment): BENCH_ROUNDS (3), BENCH_TARGET (seconds per timed run, 0.12),
-- BENCH_RUNS (timed runs per figure, 5), BENCH_PYTHON (/usr/bin/python3), BENCH_LUA (lua5.4),
-- BENCH_REF (build/bench/ref), BENCH_WAIT (seconds it may wait for a quiet machine, 30),
-- BENCH_CLOCK ("wall" times 1-thread runs with wall time too instead of CPU time).
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS") or "3")
local TARGET = tonumber(os.getenv("BENCH_TARGET") or "0.12")
local RUNS = tonumber(os.getenv("BENCH_RUNS") or "5")
local PYTHON = os.getenv("BENCH_PYTHON") or "/usr/bin/python3"
local LUA = os.getenv("BENCH_LUA") or "lua5.4"
-- 1-thread runs time with each process's CPU time (see ops.lua): on a quiet machine the
-- same as wall time, and it leaves out the time other processes held the CPU. 2-thread
-- runs need wall time. BENCH_CLOCK=wall times every run with wall time.
local CPU_CLOCK = os.getenv("BENCH_CLOCK") ~= "wall"
local REF = os.getenv("BENCH_REF") or "build/bench/ref"
if not (os.getenv("LUA_CPATH_5_4") or os.getenv("LUA_CPATH")) then
  package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
  package.cpath = "./build/?.so;" .. package.cpath
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function now()
  return tonumber((capture("date +%s.%N"))) or os.time()
end

-- Seconds the whole machine spent busy so far (/proc/stat), or nil without /proc.
local function busy_seconds()
  local f = io.open("/proc/stat", "r")
  if not f then
    return nil
  end
  local line = f:read("l")
  f:close()
  local v = {}
  for x in line:gmatch("%d+") do
    v[#v + 1] = tonumber(x)
  end
  -- user nice system idle iowait irq softirq, in clock ticks (USER_HZ, 100 on Linux)
  return (v[1] + v[2] + v[3] + v[6] + v[7]) / 100
end

local torch_version
do
  local out, ok = capture(PYTHON .. " -c 'import torch; print(torch.__version__)' 2>/dev/null")
  torch_version = ok and out:match("^%s*(%S+)") or nil
end

-- Waits (within a budget of BENCH_WAIT seconds for the whole bench, 30 by default) until
-- other processes use under a third of a core, as ../shared/reference/torch/benchutil.py
-- does: this machine may be shared.
local wait_budget = tonumber(os.getenv("BENCH_WAIT") or "30")
local function wait_quiet()
  while wait_budget > 0 do
    local b0, t0 = busy_seconds(), now()
    if not b0 then
      return
    end
    os.execute("sleep 0.5")
    local dt = now() - t0
    wait_budget = wait_budget - dt
    if (busy_seconds() - b0) / dt < 0.33 then
      return
    end
  end
end

-- Runs one side; returns {name = seconds} and the cores other processes used meanwhile.
local function run(cmd, threads)
  wait_quiet()
  local env = "OPENBLAS_NUM_THREADS=" .. threads .. " OMP_NUM_THREADS=" .. threads .. " "
  local b0, t0 = busy_seconds(), now()
  local out, ok = capture(env .. cmd)
  local wall = now() - t0
  if not ok then
    io.stderr:write("bench: failed: " .. cmd .. "\n" .. out .. "\n")
    os.exit(1)
  end
  local res = {}
  for name, value in out:gmatch("([%w_]+) ([%d.e+-]+)") do
    res[name] = tonumber(value)
  end
  local foreign
  if b0 and res.cpu then
    foreign = math.max(0, (busy_seconds() - b0 - res.cpu) / wall)
  end
  return res, foreign
end

local sides = {
  {
    name = "moonml",
    cmd = function(only, threads)
      return string.format(
        "%s bench/ops.lua --only %s --threads %d --target %g --runs %d%s",
        LUA,
        only,
        threads,
        TARGET,
        RUNS,
        CPU_CLOCK and threads == 1 and " --clock cpu" or ""
      )
    end,
  },
}
if torch_version then
  sides[#sides + 1] = {
    name = "torch",
    cmd = function(only, threads)
      return string.format(
        "%s bench/ops_torch.py --only %s --threads %d --target %g --runs %d%s",
        PYTHON,
        only,
        threads,
        TARGET,
        RUNS,
        CPU_CLOCK and threads == 1 and " --clock cpu" or ""
      )
    end,
  }
end
sides[#sides + 1] = {
  name = "c",
  large_only = true,
  cmd = function(_, threads)
    return string.format(
      "%s %d %g %d%s",
      REF,
      threads,
      TARGET,
      RUNS,
      CPU_CLOCK and threads == 1 and " cpu" or ""
    )
  end,
}

local settings = { { "small", 1 }, { "large", 1 }, { "large", 2 } }
-- samples[side][setting key][name] = list of per-round medians
local samples, max_foreign = {}, 0
local started = now()
io.stderr:write(
  string.format(
    "bench: %d rounds of moonml%s and C (about %d s)\n",
    ROUNDS,
    torch_version and ", PyTorch " .. torch_version or "",
    math.floor(ROUNDS * (torch_version and 20 + 230 * TARGET or 10 + 120 * TARGET))
  )
)
for round = 1, ROUNDS do
  for _, setting in ipairs(settings) do
    local only, threads = setting[1], setting[2]
    local key = only .. threads
    -- alternate the order from round to round, so that drift hits every side alike
    for i = 1, #sides do
      local side = sides[round % 2 == 1 and i or #sides + 1 - i]
      if not (side.large_only and only == "small") then
        local res, foreign = run(side.cmd(only, threads), threads)
        max_foreign = math.max(max_foreign, foreign or 0)
        samples[side.name] = samples[side.name] or {}
        local s = samples[side.name]
        s[key] = s[key] or {}
        for name, v in pairs(res) do
          s[key][name] = s[key][name] or {}
          table.insert(s[key][name], v)
        end
      end
    end
  end
  io.stderr:write(string.format("bench: round %d of %d done\n", round, ROUNDS))
end

local function median(list)
  if not list or #list == 0 then
    return nil
  end
  local t = {}
  for i, v in ipairs(list) do
    t[i] = v
  end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function get(side, key, name)
  local s = samples[side]
  return s and s[key] and median(s[key][name])
end

local function fmt(v, pattern)
  return v and string.format(pattern, v) or "-"
end

local function verdict(ok)
  if ok == nil then
    return ""
  end
  return ok and "met" or "MISSED"
end

local N = 10000000
local out = {}
local function line(...)
  out[#out + 1] = string.format(...)
end

line("")
line(
  "moonml %s against %s and plain C; medians of %d rounds (runs of %.2f s, median of %d)",
  require("moonml")._VERSION,
  torch_version and ("PyTorch " .. torch_version) or "PyTorch (absent)",
  ROUNDS,
  TARGET,
  RUNS
)
local envs = {}
for _, k in ipairs({ "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE" }) do
  if os.getenv(k) then
    envs[#envs + 1] = k .. "=" .. os.getenv(k)
  end
end
line(
  "environment: %s; OPENBLAS_NUM_THREADS = the thread count",
  #envs > 0 and table.concat(envs, " ") or "no OPENBLAS_* set"
)
line(
  "clock: %s",
  CPU_CLOCK and "CPU time of each process at 1 thread, wall time at 2 (BENCH_CLOCK=wall: all wall)"
    or "wall time (BENCH_CLOCK=wall)"
)
if not torch_version then
  line(
    "PyTorch reference absent (%s cannot import torch; apt-get install python3-torch):"
      .. " moonml and C figures only",
    PYTHON
  )
end

local W = 27 -- width of the first column

line("")
line("per call from the interpreter, 1 thread (microseconds; loop included)")
line("  %-" .. W .. "s %9s %9s %9s  %-9s", "", "moonml", "PyTorch", "ratio", "goal")
for _, w in ipairs({
  { "add16", "a + b, 16 elements", 0.2 },
  { "mm4", "matmul 4x4", 0.3 },
  { "relu16", "relu, 16 elements", nil },
}) do
  local m, t = get("moonml", "small1", w[1]), get("torch", "small1", w[1])
  local ratio = m and t and m / t
  line(
    "  %-" .. W .. "s %9s %9s %9s  %-9s %s",
    w[2],
    fmt(m and m * 1e6, "%.3f"),
    fmt(t and t * 1e6, "%.3f"),
    fmt(ratio, "%.2fx"),
    w[3] and string.format("<= %.1fx", w[3]) or "",
    verdict(ratio and w[3] and ratio <= w[3])
  )
end

line("")
line("matmul 1024x1024 float32 (GFLOP/s)")
line("  %-" .. W .. "s %9s %9s %9s %9s  %-9s", "", "moonml", "sgemm", "of sgemm", "PyTorch", "goal")
for _, threads in ipairs({ 1, 2 }) do
  local key = "large" .. threads
  local flop = 2 * 1024 ^ 3
  local m, c = get("moonml", key, "mm1024"), get("c", key, "sgemm1024")
  local t = get("torch", key, "mm1024")
  local share = m and c and c / m
  line(
    "  %-" .. W .. "s %9s %9s %9s %9s  %-9s %s",
    threads .. " thread" .. (threads > 1 and "s" or ""),
    fmt(m and flop / m / 1e9, "%.1f"),
    fmt(c and flop / c / 1e9, "%.1f"),
    fmt(share and share * 100, "%.0f%%"),
    fmt(t and flop / t / 1e9, "%.1f"),
    ">= 90%",
    verdict(share and share >= 0.9)
  )
end

local function ms_gbs(s, bytes)
  return s and string.format("%.2f (%.1f)", s * 1e3, bytes / s / 1e9) or "-"
end

line("")
line("10M float32 elements: milliseconds (GB/s, counting each input read once and the output")
line("written once); the C loops write into a reused buffer")
line(
  "  %-" .. W .. "s %14s %14s %8s %14s %7s  %-8s",
  "",
  "moonml",
  "C loop",
  "of loop",
  "PyTorch",
  "ratio",
  "goal"
)
for _, threads in ipairs({ 1, 2 }) do
  local key = "large" .. threads
  for _, w in ipairs({
    { "add", "add_loop", "a + b (new tensor)", 12 * N, 0.8 },
    { "add_", "add_loop", "o:add_(b) (in place)", 12 * N },
    { "mul_add", "mul_add_loop", "a * b + c (two ops)", 16 * N },
  }) do
    local m, c, t = get("moonml", key, w[1]), get("c", key, w[2]), get("torch", key, w[1])
    local share = m and c and c / m
    line(
      "  %-" .. W .. "s %14s %14s %8s %14s %7s  %-8s %s",
      w[3] .. ", " .. threads .. "t",
      ms_gbs(m, w[4]),
      ms_gbs(c, w[4]),
      fmt(share and share * 100, "%.0f%%"),
      ms_gbs(t, w[4]),
      fmt(m and t and m / t, "%.2fx"),
      w[5] and string.format(">= %.0f%%", w[5] * 100) or "",
      verdict(share and w[5] and share >= w[5])
    )
  end
end

line("")
line("reductions: milliseconds (GB/s)")
line(
  "  %-" .. W .. "s %14s %14s %7s %14s  %-8s",
  "",
  "moonml",
  "PyTorch",
  "ratio",
  "C loop",
  "goal"
)
for _, threads in ipairs({ 1, 2 }) do
  local key = "large" .. threads
  for _, w in ipairs({
    { "sum", "sum of 10M", 4 * N, "sum_loop" },
    { "softmax", "softmax 4096x1000", 8 * 4096 * 1000 },
  }) do
    local m, t = get("moonml", key, w[1]), get("torch", key, w[1])
    local c = w[4] and get("c", key, w[4])
    local ratio = m and t and m / t
    line(
      "  %-" .. W .. "s %14s %14s %7s %14s  %-8s %s",
      w[2] .. ", " .. threads .. "t",
      ms_gbs(m, w[3]),
      ms_gbs(t, w[3]),
      fmt(ratio, "%.2fx"),
      ms_gbs(c, w[3]),
      "<= 1.0x",
      verdict(ratio and ratio <= 1.0)
    )
  end
end

line("")
line("ratio = moonml's time / PyTorch's; \"of sgemm\", \"of loop\" = the C time / moonml's.")
line("a * b + c makes a temporary: 24 bytes of traffic per element against the fused C loop's")
line("16, so two passes reach at most about 67%% of it.")
if max_foreign > 0.25 then
  line(
    "note: other processes used up to %.1f cores during the runs; figures may be noisy.",
    max_foreign
  )
end
line("total %.0f s", now() - started)
print(table.concat(out, "\n"))
