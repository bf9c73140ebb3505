--- ml.data: datasets and the batch loader, and readers for IDX files and Fashion-MNIST.
--
--   local train = ml.data.TensorDataset(x, y)
--   for xb, yb in ml.data.loader(train, {batch_size = 128, shuffle = true}) do ... end
--
-- @module moonml.data
local ml = require("moonml")

local data = {}

local function fail(fn, msg)
  error("moonml.data." .. fn .. ": " .. msg, 0)
end

--- TensorDataset(t1, t2, ...): sample i is {t1[i], t2[i], ...} (rows along dim 1; every
-- tensor has the same first size). `#ds` is the number of samples.
local TensorDataset = {}
TensorDataset.__index = TensorDataset
TensorDataset.__len = function(ds)
  return ds.n
end
setmetatable(TensorDataset, { __call = function(_, ...)
  return TensorDataset.new(...)
end })

--- Creates the module; the arguments are described at the top of this file.
function TensorDataset.new(...)
  local tensors = table.pack(...)
  if tensors.n == 0 then
    fail("TensorDataset", "needs at least one tensor")
  end
  local n
  for i = 1, tensors.n do -- a nil in the middle is an error, not the end of the list
    local t = tensors[i]
    if not ml.is_tensor(t) then
      fail("TensorDataset", "argument " .. i .. " is a " .. type(t) .. ", not a tensor")
    end
    if t:dim() == 0 then
      fail("TensorDataset", "argument " .. i .. " is 0-d; samples are rows along dim 1")
    end
    n = n or t:size(1)
    if t:size(1) ~= n then
      fail("TensorDataset", string.format("tensors have %d and %d rows", n, t:size(1)))
    end
  end
  tensors.n = nil
  return setmetatable({ tensors = tensors, n = n }, TensorDataset)
end

--- Sample i: the i-th row of each tensor (numbers for 1-D tensors), as several values.
function TensorDataset:get(i)
  if math.type(i) ~= "integer" or i < 1 or i > self.n then
    fail("TensorDataset.get", "index " .. tostring(i) .. " out of range 1.." .. self.n)
  end
  local out = {}
  for k, t in ipairs(self.tensors) do
    out[k] = t[i]
  end
  return table.unpack(out, 1, #self.tensors)
end

-- Rows `first..first+count-1` of every tensor, as views.
local function slice_rows(ds, first, count)
  local out = {}
  for k, t in ipairs(ds.tensors) do
    out[k] = t:narrow(1, first, count)
  end
  return out
end

-- Rows listed in idx (an int64 tensor) of every tensor, as new tensors.
local function take_rows(ds, idx)
  local out = {}
  for k, t in ipairs(ds.tensors) do
    out[k] = t:index_select(1, idx)
  end
  return out
end

-- A small local generator (splitmix64) so that a seeded loader does not touch ml's own.
local function seeded_random(seed)
  local state = math.tointeger(seed) or 0
  return function(n) -- integer in 1..n
    state = state + 0x9e3779b97f4a7c15
    local z = state
    z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
    z = (z ~ (z >> 27)) * 0x94d049bb133111eb
    z = z ~ (z >> 31)
    return (z >> 1) % n + 1
  end
end

local function permutation(n, seed)
  if seed == nil then -- from ml's generator, in C: reproducible under ml.manual_seed
    return ml.randperm(n):totable()
  end
  local order = {}
  for i = 1, n do
    order[i] = i
  end
  local draw = seeded_random(seed)
  for i = n, 2, -1 do
    local j = draw(i)
    order[i], order[j] = order[j], order[i]
  end
  return order
end

local function check_loader_opts(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("loader", "options must be a table, got " .. type(opts))
  end
  local allowed = { batch_size = true, shuffle = true, drop_last = true, seed = true }
  for k in pairs(opts) do
    if not allowed[k] then
      fail("loader", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local bs = opts.batch_size or 1
  if math.type(bs) ~= "integer" or bs < 1 then
    fail("loader", "batch_size must be a positive integer, got " .. tostring(bs))
  end
  if opts.seed ~= nil and math.type(opts.seed) ~= "integer" then
    fail("loader", "seed must be an integer, got " .. tostring(opts.seed))
  end
  return opts, bs
end

--- An iterator over one pass of the dataset in batches: `for xb, yb in loader(ds, opts)`.
-- opts: batch_size (1), shuffle (false), drop_last (false), seed (with shuffle: the order
-- is a function of the seed alone — pass seed + epoch for a new order each epoch; without
-- a seed the order comes from ml's generator, reproducible under ml.manual_seed).
-- A TensorDataset gives batches of its tensors; any other dataset (a table with `#ds`
-- and `ds:get(i)` returning tensors) gives its samples stacked along a new first dim.
function data.loader(dataset, opts)
  local bs
  opts, bs = check_loader_opts(opts)
  if type(dataset) ~= "table" or type(dataset.get) ~= "function" then
    fail("loader", "expected a dataset (a table with get(i) and #), got " .. type(dataset))
  end
  local n = #dataset
  local order = opts.shuffle and permutation(n, opts.seed) or nil
  local pos = 1
  local tensor_ds = getmetatable(dataset) == TensorDataset
  return function()
    if pos > n then
      return nil
    end
    local count = math.min(bs, n - pos + 1)
    if count < bs and opts.drop_last then
      pos = n + 1
      return nil
    end
    local batch
    if tensor_ds and not order then
      batch = slice_rows(dataset, pos, count)
    elseif tensor_ds then
      batch = take_rows(dataset, ml.tensor(table.move(order, pos, pos + count - 1, 1, {}), "int64"))
    else
      local samples = {}
      for i = pos, pos + count - 1 do
        samples[#samples + 1] = { dataset:get(order and order[i] or i) }
      end
      batch = {}
      for k = 1, #samples[1] do
        local column = {}
        for s = 1, count do
          local v = samples[s][k]
          column[s] = ml.is_tensor(v) and v or ml.tensor(v)
        end
        batch[k] = ml.stack(column, 1)
      end
    end
    pos = pos + count
    return table.unpack(batch)
  end
end

data.TensorDataset = TensorDataset

--- Reads an IDX file (gzip or plain) into a tensor of the stored shape; opts.dtype
-- float32 (default), float64 or int64.
data.read_idx = ml.read_idx

local FASHION_DIR = "/usr/share/datasets/fashion-mnist"

--- Class names of Fashion-MNIST, in label order 1..10.
data.fashion_mnist_classes = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
  "Shirt", "Sneaker", "Bag", "Ankle boot" }

--- Fashion-MNIST from the files of Debian's dataset-fashion-mnist package (or opts.dir):
-- returns images (N x 1 x 28 x 28 float32 in [0, 1]) and labels (int64, 1..10).
-- opts.split: "train" (60,000) or "test" (10,000).
function data.fashion_mnist(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("fashion_mnist", "options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if k ~= "split" and k ~= "dir" then
      fail("fashion_mnist", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local split = opts.split or "train"
  local prefix = ({ train = "train", test = "t10k" })[split]
  if not prefix then
    fail("fashion_mnist", "split must be \"train\" or \"test\", got " .. tostring(split))
  end
  local dir = opts.dir or FASHION_DIR
  local images_path = dir .. "/" .. prefix .. "-images-idx3-ubyte.gz"
  local f = io.open(images_path, "rb")
  if not f then
    fail("fashion_mnist", images_path .. " not found: install Debian's dataset-fashion-mnist "
      .. "package (make deps) or pass {dir = ...}")
  end
  f:close()
  local images = ml.read_idx(images_path)
  local labels = ml.read_idx(dir .. "/" .. prefix .. "-labels-idx1-ubyte.gz", { dtype = "int64" })
  if images:dim() ~= 3 or labels:dim() ~= 1 or images:size(1) ~= labels:size(1) then
    fail("fashion_mnist", "the image and label files in " .. dir .. " do not match")
  end
  images:div_(255)
  labels:add_(1)
  return images:view(images:size(1), 1, images:size(2), images:size(3)), labels
end

return data
