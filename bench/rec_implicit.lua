-- Implicit-feedback recommenders against implicit 0.7.3, and the synthetic scale bench.
--
--   lua5.4 bench/rec_implicit.lua [DATA_DIR [REPEAT]]          (make bench-implicit)
--
-- Part 1, ML-100k as implicit feedback (the protocol of ../shared/reference/
-- surprise-and-implicit-more.md): every rating one interaction with value 1; each user's
-- last interaction by timestamp held out (ties: the larger item id counts as last),
-- data:leave_last_out(); HR@10 and NDCG@10 over all 943 users with the seen items left
-- out (rec.ranking_metrics with every test item relevant). Fit: wall-clock seconds, the
-- median of REPEAT (5) fits, at 1 and 2 threads (ml.set_num_threads). recommend: one
-- user's top 10 from Lua, microseconds per call (1000 calls over users in turn, median of
-- 5 runs). implicit's figures are the recorded ones (implicit cannot be installed here),
-- measured on this kind of machine (2-core EPYC VM) with one thread for fits; ratio =
-- moonml's fit time / implicit's (<= 1 is the goal), dNDCG = moonml - implicit.
-- With random_state = 0, ALS and BPR start from implicit's own initial factors (NumPy's
-- default_rng(0) draws, see rec.ALS); BPR's samples still come from other generators.
--
-- Part 2, the synthetic scale bench: rec.synthetic{users = 200000, items = 50000,
-- interactions = 10000000, factors = 64}, and SVD, ALS and ItemKNN fitted on it at 1 and
-- 2 threads, each in a process of its own (bench/rec_implicit.lua --scale-one ...), so
-- that the peak resident memory (VmHWM in /proc/self/status) is the model's: the table
-- shows the process's peak before the fit (the set itself) and after it, and the fit's
-- share over the data's own size (int32 ids + float32 values: 8 bytes per interaction).
-- SCALE=small runs a tenth of it, SCALE=none skips it.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ml = require("moonml")
local rec = ml.rec
local clock = ml.clock

local function loadavg()
  local f = io.open("/proc/loadavg", "r")
  local l = f and f:read("l") or "?"
  if f then
    f:close()
  end
  return l:match("^(%S+ %S+ %S+)") or l
end

-- ------------------------------------------------------------------ scale, one process

local function status_kb(field)
  local f = io.open("/proc/self/status", "r")
  if not f then
    return 0 / 0
  end
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s+(%d+)")) or 0 / 0
end

local SCALES = {
  full = { users = 200000, items = 50000, interactions = 10000000 },
  small = { users = 20000, items = 5000, interactions = 1000000 },
}

if arg[1] == "--scale-one" then
  local which, threads, scale = arg[2], tonumber(arg[3]), SCALES[arg[4]]
  ml.set_num_threads(threads)
  local t0 = clock()
  local data = rec.synthetic({ users = scale.users, items = scale.items,
    interactions = scale.interactions, factors = 64, seed = 1 })
  local gen = clock() - t0
  collectgarbage()
  local before = status_kb("VmHWM")
  local m
  if which == "SVD" then
    m = rec.SVD({ random_state = 0 })
  elseif which == "ALS" then
    m = rec.ALS({ factors = 64, regularization = 0.05, random_state = 0 })
  else
    m = rec.ItemKNN({ K = 20 })
  end
  t0 = clock()
  m:fit(data)
  local fit = clock() - t0
  print(string.format("%.3f %.3f %d %d", gen, fit, before, status_kb("VmHWM")))
  os.exit(0)
end

-- ------------------------------------------------------------------ ML-100k

local dir = arg[1] or os.getenv("MOONML_DATA") or "../shared/data"
local REPEAT = math.tointeger(tonumber(arg[2] or "")) or 5

local function median(v)
  table.sort(v)
  return v[(#v + 1) // 2]
end

-- {label, factory, implicit HR@10, NDCG@10, fit s (1 thread), recommend us}
local MODELS = {
  { "ALS 64 f, reg 0.05, alpha 1, 15 it", function()
    return rec.ALS({ factors = 64, regularization = 0.05, alpha = 1, iterations = 15,
      random_state = 0 })
  end, 0.0848, 0.0377, 0.207, 31 },
  { "ALS as above, alpha 40", function()
    return rec.ALS({ factors = 64, regularization = 0.05, alpha = 40, iterations = 15,
      random_state = 0 })
  end, 0.0986, 0.0512, 0.251, 31 },
  { "BPR 64 f, 100 it", function()
    return rec.BPR({ factors = 64, iterations = 100, random_state = 0 })
  end, 0.0986, 0.0451, 1.186, 33 },
  { "ItemKNN cosine, K 20", function() return rec.ItemKNN({ K = 20 }) end,
    0.0710, 0.0323, 0.046, 9.2 },
  { "ItemKNN plain (ItemItem), K 20", function()
    return rec.ItemKNN({ K = 20, similarity = "plain" })
  end, 0.0530, 0.0257, 0.048, 6.6 },
  { "ItemKNN tfidf, K 20", function() return rec.ItemKNN({ K = 20, similarity = "tfidf" }) end },
  { "ItemKNN bm25, K 20", function() return rec.ItemKNN({ K = 20, similarity = "bm25" }) end },
  { "Popular (numpy baseline)", function() return rec.Popular() end, 0.0498, 0.0253 },
}

local function fit_time(make, train, threads)
  ml.set_num_threads(threads)
  local times, m = {}, nil
  for r = 1, REPEAT do
    collectgarbage()
    m = make()
    local t0 = clock()
    m:fit(train)
    times[r] = clock() - t0
  end
  return median(times), m
end

local function recommend_us(m, users)
  local runs = {}
  for r = 1, 5 do
    local t0 = clock()
    for j = 1, 1000 do
      m:recommend(users[(j - 1) % #users + 1], 10)
    end
    runs[r] = (clock() - t0) * 1e3 -- ms per 1000 calls = us per call
  end
  return median(runs)
end

local function cell(fmt, v)
  return v and string.format(fmt, v) or "-"
end

local function ml100k()
  local path = dir .. "/ml-100k/u.data"
  local f = io.open(path, "r")
  if not f then
    print("ML-100k skipped: " .. path .. " is absent\n")
    return
  end
  f:close()
  local data = rec.load(path, { format = "movielens-100k" })
  local train, test = data:leave_last_out()
  local users = train:users()
  print(string.format("ML-100k as implicit feedback: %d train interactions, %d test items " ..
    "(one per user), %d items", #train, #test, #data.ids.items))
  print(string.format("%-32s %6s %7s %7s %7s %6s | %6s %7s %6s %5s | %7s %6s %6s",
    "model", "HR@10", "NDCG@10", "fit 1t", "fit 2t", "rec us", "i HR", "i NDCG", "i fit",
    "i rec", "dNDCG", "fit x", "rec x"))
  local all = { threshold = -math.huge }
  for _, e in ipairs(MODELS) do
    local f2 = fit_time(e[2], train, 2)
    local f1, m = fit_time(e[2], train, 1) -- metrics from the 1-thread fit
    local r = rec.ranking_metrics(m, test, 10, all)
    local us = recommend_us(m, users)
    print(string.format("%-32s %6.4f %7.4f %7.3f %7.3f %6.2f | %6s %7s %6s %5s | %7s %6s %6s",
      e[1], r.hit_rate, r.ndcg_at_k, f1, f2, us, cell("%.4f", e[3]), cell("%.4f", e[4]),
      cell("%.3f", e[5]), cell("%.1f", e[6]), cell("%+.4f", e[4] and r.ndcg_at_k - e[4]),
      cell("%.2f", e[5] and f1 / e[5]), cell("%.2f", e[6] and us / e[6])))
    io.stdout:flush()
  end
  -- ALS's NDCG over initial factors: the seed alone moves it this much
  local vals = {}
  for seed = 0, 4 do
    ml.set_num_threads(1)
    local m = rec.ALS({ factors = 64, regularization = 0.05, alpha = 40, random_state = seed })
    vals[#vals + 1] = string.format("%.4f", rec.ndcg_at_k(m:fit(train), test, 10, all))
  end
  print("ALS alpha 40, NDCG@10 for random_state 0..4: " .. table.concat(vals, " "))
  print("")
end

-- ------------------------------------------------------------------ synthetic scale

local function scale_bench()
  local which = os.getenv("SCALE") == "small" and "small" or "full"
  local s = SCALES[which]
  local data_mb = s.interactions * 8 / 2 ^ 20
  print(string.format("Synthetic scale: rec.synthetic{users = %d, items = %d, interactions = " ..
    "%d, factors = 64, seed = 1}; the data's own size (int32 ids + float32 values) %.0f MB; " ..
    "the rating set holds 16 bytes per rating.", s.users, s.items, s.interactions, data_mb))
  print(string.format("%-32s %7s %7s %9s %9s %9s", "model", "threads", "fit s", "peak MB",
    "set MB", "fit/data"))
  local lua = arg[-1] or "lua5.4"
  local script = arg[0]
  local specs = {
    { "SVD", "SVD (100 factors, 20 epochs)" },
    { "ALS", "ALS (64 factors, 15 it)" },
    { "ItemKNN", "ItemKNN cosine, K 20" },
  }
  for _, sp in ipairs(specs) do
    for _, threads in ipairs({ 1, 2 }) do
      local cmd = string.format("%s %s --scale-one %s %d %s", lua, script, sp[1], threads, which)
      local p = io.popen(cmd, "r")
      local line = p and p:read("l")
      if p then
        p:close()
      end
      local gen, fit, before, after = (line or ""):match("(%S+) (%S+) (%S+) (%S+)")
      if gen then
        before, after = tonumber(before) / 1024, tonumber(after) / 1024
        print(string.format("%-32s %7d %7.2f %9.0f %9.0f %9.2f", sp[2], threads, tonumber(fit),
          after, before, (after - before) / data_mb))
      else
        print(string.format("%-32s %7d failed: %s", sp[2], threads, tostring(line)))
      end
      io.stdout:flush()
    end
  end
  print("peak MB: the process's VmHWM after the fit; set MB: before it (the generated set);")
  print("fit/data: (peak - set) / the data's own size. SVD's SGD runs on one thread. Load " ..
    "average now: " .. loadavg())
end

print(string.format("moonml %s; implicit 0.7.3's figures are recorded ones (not rerun). " ..
  "Load average at the start: %s (other processes on the 2 cores slow the 2-thread figures).\n",
  ml._VERSION or "", loadavg()))
ml100k()
if os.getenv("SCALE") ~= "none" then
  scale_bench()
end
