-- Pictures of a training run, without Python: a small classifier is trained on made-up 2-D
-- data (four overlapping clouds of points), and the script draws
--   loss.png       the training and test loss per epoch,
--   confusion.png  the test set's confusion matrix,
--   data.png       the test points, coloured by class.
-- A progress bar shows the epochs on stderr.
--
--   lua5.4 examples/plots.lua [output folder]    (default: the current folder)
local ml = require("moonml")
local nn, optim = ml.nn, ml.optim

local out = arg and arg[1] or "."
local classes = { "north", "east", "south", "west" }
local centres = { { 0, 1 }, { 1, 0 }, { 0, -1 }, { -1, 0 } }

ml.manual_seed(3)

-- n points per class around its centre (std 0.55: the clouds overlap), shuffled
local function make_data(n)
  local k = #classes
  local x = ml.randn(n * k, 2):mul(0.55)
  local labels = {}
  for c = 1, k do
    local rows = x:narrow(1, (c - 1) * n + 1, n)
    rows:add_(ml.tensor({ centres[c] }))
    for i = 1, n do
      labels[(c - 1) * n + i] = c
    end
  end
  local order = ml.randperm(n * k):totable()
  local xs, ys = {}, {}
  local xt = x:totable()
  for i, j in ipairs(order) do
    xs[i], ys[i] = xt[j], labels[j]
  end
  return ml.tensor(xs), ys
end

local function one_hot(labels, k)
  local t = ml.zeros(#labels, k)
  for i, c in ipairs(labels) do
    t:set(i, c, 1)
  end
  return t
end

local x_train, y_train = make_data(150)
local x_test, y_test = make_data(50)
local t_train, t_test = one_hot(y_train, #classes), one_hot(y_test, #classes)

local model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, #classes))
local opt = optim.Adam(model:parameters(), { lr = 0.003 })

local function cross_entropy(logits, targets)
  return -(targets * logits:log_softmax(2)):sum(2):mean()
end

local epochs, batch = 40, 50
local n = x_train:size(1)
local train_loss, test_loss, epoch_ids = {}, {}, {}
local bar = ml.progress.bar({ total = epochs, desc = "training" })
for epoch = 1, epochs do
  local sum = 0
  for first = 1, n, batch do
    local count = math.min(batch, n - first + 1)
    local loss = cross_entropy(model(x_train:narrow(1, first, count)),
      t_train:narrow(1, first, count))
    opt:zero_grad()
    loss:backward()
    opt:step()
    sum = sum + loss:item() * count
  end
  epoch_ids[epoch] = epoch
  train_loss[epoch] = sum / n
  test_loss[epoch] = ml.no_grad(function()
    return cross_entropy(model(x_test), t_test):item()
  end)
  bar:update(1, { train = train_loss[epoch], test = test_loss[epoch] })
end
bar:close()

-- the loss curves
local fig = ml.plot.figure({ width = 640, height = 400, title = "Cross-entropy per epoch" })
fig:line(epoch_ids, train_loss, { label = "train" })
fig:line(epoch_ids, test_loss, { label = "test" })
fig:xlabel("epoch")
fig:ylabel("loss")
fig:save(out .. "/loss.png")

-- the confusion matrix: rows the true class, columns the predicted one
local predicted = ml.no_grad(function()
  return model(x_test):argmax(2):totable()
end)
local cm, correct = {}, 0
for i = 1, #classes do
  cm[i] = {}
  for j = 1, #classes do
    cm[i][j] = 0
  end
end
for i, c in ipairs(y_test) do
  cm[c][predicted[i]] = cm[c][predicted[i]] + 1
  correct = correct + (c == predicted[i] and 1 or 0)
end
local accuracy = correct / #y_test
ml.plot.heatmap(cm, { labels = classes, title = string.format("Test accuracy %.1f%%",
  100 * accuracy), xlabel = "predicted", ylabel = "true", path = out .. "/confusion.png" })

-- the test points by class
local scatter = ml.plot.figure({ width = 480, height = 480, title = "Test points",
  legend = "upper right" })
local pts = x_test:totable()
for c, name in ipairs(classes) do
  local xs, ys = {}, {}
  for i, p in ipairs(pts) do
    if y_test[i] == c then
      xs[#xs + 1], ys[#ys + 1] = p[1], p[2]
    end
  end
  scatter:scatter(xs, ys, { label = name, size = 3 })
end
scatter:xlim(-3, 3.8)
scatter:ylim(-3, 3.4)
scatter:save(out .. "/data.png")

print(string.format("final losses: train %.4f, test %.4f; test accuracy %.1f%%",
  train_loss[epochs], test_loss[epochs], 100 * accuracy))
print("wrote " .. out .. "/loss.png, " .. out .. "/confusion.png, " .. out .. "/data.png")
