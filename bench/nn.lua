-- Training and inference of small networks beside PyTorch 1.13 (issue 4's figures), one
-- thread each, in the same run:
--   - seconds per epoch of examples/fashion_mlp.lua's training loop (784-256-128-10 ReLU,
--     Adam 1e-3, batch 128, shuffled; 469 batches);
--   - seconds per epoch of examples/fashion_cnn.lua's training loop (batch 64, Adam 1e-3),
--     timed over windows of CNN_BATCHES consecutive batches and scaled to 60000 images, to
--     keep the run short (PyTorch's reference bench_cnn.py extrapolates the same way);
--   - forward of a 32-64-4 tanh MLP on one sample under no_grad, and one SGD training
--     step of it (zero_grad, mse_loss, backward, step), per call;
--   - CNN inference (eval mode, no_grad) of 1 image and of 256 images.
-- PyTorch runs bench/nn_torch.py (the loops of the reference workloads copied in
-- bench/torch/) in a subprocess; rounds of PyTorch and moonml alternate and every figure
-- is the median over all rounds. Times are process CPU time (os.clock,
-- time.process_time), so that other processes on a shared machine count less; the load
-- they put on the machine meanwhile is printed. Both sides see the same OPENBLAS_*
-- environment; OPENBLAS_NUM_THREADS=1 is set for both when absent, because PyTorch calls
-- OpenBLAS for its GEMMs and torch.set_num_threads(1) alone leaves OpenBLAS a pool of
-- its own.
--   make bench-nn     (or: make && OPENBLAS_NUM_THREADS=1 lua5.4 bench/nn.lua)
-- Environment: NN_BENCH_ROUNDS (default 5; about 13 s each on an idle machine).
package.cpath = "./build/?.so;" .. package.cpath
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local ml = require("moonml")
local nn = ml.nn

-- The incremental collector: training makes many large short-lived tensors whose buffers
-- return to moonml's cache only when Lua collects them; lua5.4 starts in generational
-- mode, where tensors that live through two minor collections (a batch's activations,
-- kept until backward) wait for a major one, and the CNN's epoch took 1.5x as long.
collectgarbage("incremental")
ml.set_num_threads(1)

local ROUNDS = tonumber(os.getenv("NN_BENCH_ROUNDS")) or 5
local MLP_EPOCHS, CNN_WINDOWS, CNN_BATCHES, SMALL_RUNS = 2, 2, 50, 5
local PYTHON = "/usr/bin/python3"
local DATA = "/usr/share/datasets/fashion-mnist"

-- ------------------------------------------------------------------ load on the machine

local function clock_ticks()
  local p = io.popen("getconf CLK_TCK 2>/dev/null")
  local v = p and tonumber(p:read("*l"))
  if p then
    p:close()
  end
  return v or 100
end
local HZ = clock_ticks()

-- Seconds of CPU the whole machine has spent busy (/proc/stat), or nil.
local function machine_busy()
  local f = io.open("/proc/stat", "r")
  if not f then
    return nil
  end
  local line = f:read("*l")
  f:close()
  local v = {}
  for n in line:gmatch("%d+") do
    v[#v + 1] = tonumber(n)
  end
  return (v[1] + v[2] + v[3] + v[6] + v[7]) / HZ
end

-- Watches the cores other processes use between start() and stop().
local load = { foreign = 0, wall = 0 }
local function watch_start()
  return { busy = machine_busy(), cpu = os.clock(), wall = ml.clock() }
end
local function watch_stop(w)
  local busy = machine_busy()
  if busy and w.busy then
    local wall = ml.clock() - w.wall
    local other = (busy - w.busy) - (os.clock() - w.cpu)
    load.foreign = load.foreign + math.max(0, other)
    load.wall = load.wall + wall
  end
end

-- ------------------------------------------------------------------ moonml side

local cpu = os.clock

local function mlp_model()
  return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
    nn.Linear(128, 10))
end

local function cnn_model()
  return nn.Sequential(
    nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
end

-- Warm-up steps on a throw-away model (as the PyTorch workloads do), then seed 0.
local function warm_up(make, x, y, bs, steps)
  ml.manual_seed(123)
  local m = make()
  local opt = ml.optim.Adam(m:parameters(), { lr = 1e-3 })
  local criterion = nn.CrossEntropyLoss()
  for i = 0, steps - 1 do
    opt:zero_grad()
    criterion(m(x:narrow(1, i * bs + 1, bs)), y:narrow(1, i * bs + 1, bs)):backward()
    opt:step()
  end
  ml.manual_seed(0)
end

local images, labels -- Fashion-MNIST training set, [60000, 1, 28, 28] and [60000]

local function mlp(out)
  local x = images:view(-1, 784)
  warm_up(mlp_model, x, labels, 128, 30)
  local model = mlp_model()
  local opt = ml.optim.Adam(model:parameters(), { lr = 1e-3 })
  local criterion = nn.CrossEntropyLoss()
  local train = ml.data.TensorDataset(x, labels)
  for _ = 1, MLP_EPOCHS do
    local t0 = cpu()
    local running = 0
    for xb, yb in ml.data.loader(train, { batch_size = 128, shuffle = true }) do
      opt:zero_grad()
      local loss = criterion(model(xb), yb)
      loss:backward()
      opt:step()
      running = running + loss:item() * xb:size(1)
    end
    out[#out + 1] = cpu() - t0
  end
end

local function cnn(out)
  warm_up(cnn_model, images, labels, 64, 20)
  local model = cnn_model()
  local opt = ml.optim.Adam(model:parameters(), { lr = 1e-3 })
  local criterion = nn.CrossEntropyLoss()
  local batches = ml.data.loader(ml.data.TensorDataset(images, labels),
    { batch_size = 64, shuffle = true })
  for _ = 1, CNN_WINDOWS do
    local t0 = cpu()
    for _ = 1, CNN_BATCHES do
      local xb, yb = batches()
      opt:zero_grad()
      criterion(model(xb), yb):backward()
      opt:step()
    end
    out[#out + 1] = cpu() - t0
  end
end

-- Seconds per call: SMALL_RUNS runs of a loop sized to about target_s (the PyTorch side
-- does the same).
local function per_call(fn, out, target_s)
  target_s = target_s or 0.1
  local t0, k = cpu(), 0
  while k < 3 or cpu() - t0 < 0.1 do
    fn()
    k = k + 1
  end
  local inner = math.max(1, math.floor(target_s / ((cpu() - t0) / k)))
  for _ = 1, SMALL_RUNS do
    local t = cpu()
    for _ = 1, inner do
      fn()
    end
    out[#out + 1] = (cpu() - t) / inner
  end
end

local function small(fwd_out, train_out)
  ml.manual_seed(0)
  local model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 4))
  local x, t = ml.randn(1, 32), ml.randn(1, 4)
  ml.no_grad(function()
    per_call(function()
      return model(x)
    end, fwd_out)
  end)
  local opt = ml.optim.SGD(model:parameters(), { lr = 0.01 })
  local mse = nn.functional.mse_loss
  per_call(function()
    opt:zero_grad()
    local loss = mse(model(x), t)
    loss:backward()
    opt:step()
  end, train_out)
end

local function infer(out1, out256)
  ml.manual_seed(0)
  local model = cnn_model():eval()
  ml.no_grad(function()
    for _, b in ipairs({ 1, 256 }) do
      local x = ml.rand(b, 1, 28, 28)
      per_call(function()
        return model(x)
      end, b == 1 and out1 or out256, b == 1 and 0.1 or 0.2)
    end
  end)
end

-- ------------------------------------------------------------------ PyTorch side

local function torch_round(res)
  local env = os.getenv("OPENBLAS_NUM_THREADS") and "" or "OPENBLAS_NUM_THREADS=1 "
  local cmd = string.format("%s%s bench/nn_torch.py %d %d %d %d 2>/dev/null", env, PYTHON,
    MLP_EPOCHS, CNN_WINDOWS, CNN_BATCHES, SMALL_RUNS)
  local p = io.popen(cmd)
  if not p then
    return nil
  end
  local version
  for line in p:lines() do
    local name, rest = line:match("^(%S+) (.*)$")
    if name == "torch" then
      version = rest
    elseif name and res[name] then
      for v in rest:gmatch("%S+") do
        table.insert(res[name], tonumber(v))
      end
    end
  end
  p:close()
  return version
end

-- ------------------------------------------------------------------ rounds

local function series()
  return { mlp_epoch = {}, cnn_window = {}, mlp_fwd = {}, mlp_train = {}, cnn_infer1 = {},
    cnn_infer256 = {}, foreign = {} }
end
local ours, theirs, version = series(), series(), nil

io.stderr:write("bench-nn: loading Fashion-MNIST\n")
images, labels = ml.data.fashion_mnist({ split = "train", dir = DATA })
local bench_start = ml.clock()
for round = 1, ROUNDS do
  io.stderr:write(string.format("bench-nn: round %d of %d: PyTorch\n", round, ROUNDS))
  version = torch_round(theirs) or version
  io.stderr:write(string.format("bench-nn: round %d of %d: moonml\n", round, ROUNDS))
  local w = watch_start()
  mlp(ours.mlp_epoch)
  cnn(ours.cnn_window)
  small(ours.mlp_fwd, ours.mlp_train)
  infer(ours.cnn_infer1, ours.cnn_infer256)
  watch_stop(w)
  collectgarbage()
end

-- ------------------------------------------------------------------ report

local function median(ts)
  if #ts == 0 then
    return nil
  end
  local s = { table.unpack(ts) }
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local EPOCH_SCALE = 60000 / (CNN_BATCHES * 64)
local rows = {
  { "MLP training, s per epoch", "mlp_epoch", 1, "%.3f s", "[0.63 s]", 0.8 },
  { "CNN training, s per epoch (scaled)", "cnn_window", EPOCH_SCALE, "%.2f s", "[16.8 s]", 1.0 },
  { "32-64-4 MLP forward, no_grad", "mlp_fwd", 1e6, "%.2f us", "[8.1 us]", 0.2 },
  { "32-64-4 MLP SGD training step", "mlp_train", 1e6, "%.2f us", "[59 us]", 0.2 },
  { "CNN inference, 1 image", "cnn_infer1", 1e6, "%.1f us", "[190 us]", 1.0 },
  { "CNN inference, 256 images", "cnn_infer256", 1e3, "%.1f ms", "[64.6 ms]", 1.0 },
}

print(string.format("Networks beside PyTorch %s, one thread each: CPU time, medians over %d "
  .. "rounds (%s)", version or "(not found at " .. PYTHON .. ")", ROUNDS,
  "PyTorch's figures on an idle machine in brackets"))
print(string.format("  %-36s %12s %12s %10s %7s  %s", "", "moonml", "PyTorch", "[idle ref]",
  "ratio", "goal"))
for _, r in ipairs(rows) do
  local a, b = median(ours[r[2]]), median(theirs[r[2]])
  local mine = string.format(r[4], a * r[3])
  local other, ratio, goal = "-", "-", string.format("<= %.1fx", r[6])
  if b then
    other = string.format(r[4], b * r[3])
    ratio = string.format("%.2fx", a / b)
    goal = goal .. (a / b <= r[6] and "  met" or "  not met")
  end
  print(string.format("  %-36s %12s %12s %10s %7s  %s", r[1], mine, other, r[5], ratio, goal))
end
local m256, t256 = median(ours.cnn_infer256), median(theirs.cnn_infer256)
print(string.format("  CNN inference throughput, 256 images: moonml %.0f images/s, PyTorch %s "
  .. "[3,965 images/s]", 256 / m256, t256 and string.format("%.0f images/s", 256 / t256) or "-"))
print(string.format("  CNN epoch scaled from %d windows of %d batches (x %.3f); MLP: %d full "
  .. "epochs; per-call figures: %d runs per round", ROUNDS * CNN_WINDOWS, CNN_BATCHES,
  EPOCH_SCALE, ROUNDS * MLP_EPOCHS, SMALL_RUNS))
if load.wall > 0 then
  print(string.format("  load (2-core machine): other processes used %.2f cores on average while "
    .. "moonml ran, %s while PyTorch ran; the whole bench took %.0f s", load.foreign / load.wall,
    #theirs.foreign > 0 and string.format("%.2f", median(theirs.foreign)) or "-",
    ml.clock() - bench_start))
end
