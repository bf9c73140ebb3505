--- ml.image: PNG files as tensors, sample sheets, and a folder-per-class dataset.
--
--   local img = ml.image.load("cat.png")          -- C x H x W float32 in [0, 1]
--   ml.image.save(img:mul(0.5), "darker.png")
--   ml.image.save(ml.image.grid(batch, {nrow = 8}), "samples.png")
--   local ds = ml.image.folder_dataset("train")   -- train/<class>/<file>.png
--   for xb, yb in ml.data.loader(ds, {batch_size = 32, shuffle = true}) do ... end
--
-- @module moonml.image
local ml = require("moonml")
local core = require("moonml.core")

local draw = core._image
local image = {}

local function fail(fn, msg)
  error("moonml.image." .. fn .. ": " .. msg, 0)
end

--- Reads a PNG file.
-- Gray gives 1 channel, gray + alpha 2, RGB 3, RGBA 4; a palette is expanded to RGB (RGBA
-- when it has transparency), a tRNS colour key becomes an alpha channel, 16-bit samples are
-- divided by 65535 and 8-bit ones by 255; interlaced files are handled.
-- @string path
-- @return a float32 tensor C x H x W with values in [0, 1]
function image.load(path)
  return draw.load(path)
end

--- Writes a float tensor as a PNG file.
-- `t` is H x W (gray) or C x H x W with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA),
-- any strides; values are clamped to [0, 1] and rounded to 8 bits (`floor(v * 255 + 0.5)`,
-- as torchvision's save_image) or, with `{bit_depth = 16}`, to 16 bits. NaN is an error.
-- The file is written beside `path` under a temporary name and renamed over it, so a failed
-- save leaves any older file as it was.
-- @param t float32 or float64 tensor
-- @string path
-- @tab[opt] opts `bit_depth` = 8 (default) or 16
function image.save(t, path, opts)
  draw.save(t, path, opts)
end

local GRID_OPTS = { nrow = true, padding = true, pad_value = true, normalize = true,
  value_range = true }

-- The batch as an N x C x H x W tensor: a tensor as it is, or a Lua array of C x H x W
-- tensors of one shape copied into one.
local function batch_tensor(batch)
  if ml.is_tensor(batch) then
    return batch
  end
  if type(batch) ~= "table" or #batch == 0 then
    fail("grid", "expected a tensor or a non-empty array of tensors, got " .. type(batch))
  end
  local first = batch[1]
  if not ml.is_tensor(first) then
    fail("grid", "element 1 of the array is a " .. type(first) .. ", not a tensor")
  end
  local shape = first:shape()
  local out = ml.empty({ #batch, table.unpack(shape) }, { dtype = first:dtype() })
  for i, t in ipairs(batch) do
    if not ml.is_tensor(t) or table.concat(t:shape(), ",") ~= table.concat(shape, ",") then
      fail("grid", string.format("element %d is not a tensor of shape {%s} like element 1", i,
        table.concat(shape, ", ")))
    end
    out[i] = t
  end
  return out
end

--- Lays a batch of images out in a grid, as torchvision's make_grid.
-- `batch` is N x C x H x W (or a Lua array of C x H x W tensors; a 3-D tensor is one C x H
-- x W image, a 2-D one an H x W image). Single-channel images are repeated to 3 channels. A
-- batch of one image is returned as it is (C x H x W, no padding). Otherwise the grid holds
-- `min(nrow, N)` images per row and `ceil(N / that)` rows, with `padding` pixels of
-- `pad_value` around every image: 3 x (rows * (H + padding) + padding) x (cols * (W +
-- padding) + padding).
-- @param batch tensor or array of tensors
-- @tab[opt] opts `nrow` (8), `padding` (2), `pad_value` (0), `normalize` (false: when true the
-- values are shifted and scaled from `value_range` = {low, high}, default the batch's min and
-- max, into [0, 1])
-- @return a C x H' x W' tensor of the batch's dtype
function image.grid(batch, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("grid", "options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not GRID_OPTS[k] then
      fail("grid", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local nrow, padding, pad_value = opts.nrow or 8, opts.padding or 2, opts.pad_value or 0
  if math.type(nrow) ~= "integer" or nrow < 1 then
    fail("grid", "nrow must be a positive integer, got " .. tostring(nrow))
  end
  if math.type(padding) ~= "integer" or padding < 0 then
    fail("grid", "padding must be an integer >= 0, got " .. tostring(padding))
  end
  if type(pad_value) ~= "number" then
    fail("grid", "pad_value must be a number, got " .. type(pad_value))
  end
  local t = batch_tensor(batch)
  if t:dtype() ~= "float32" and t:dtype() ~= "float64" then
    fail("grid", "expected a float tensor, got " .. t:dtype())
  end
  local nd = t:dim()
  if nd == 2 then
    t = t:unsqueeze(1)
    nd = 3
  end
  if nd == 3 then
    t = t:unsqueeze(1)
  elseif nd ~= 4 then
    fail("grid", "expected N x C x H x W, C x H x W or H x W, got a " .. nd .. "-D tensor")
  end
  if t:size(2) == 1 then
    t = t:expand(t:size(1), 3, t:size(3), t:size(4))
  end
  if opts.normalize then
    local lo, hi
    if opts.value_range ~= nil then
      local r = opts.value_range
      if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number" then
        fail("grid", "value_range must be {low, high}")
      end
      lo, hi = r[1], r[2]
    else
      lo, hi = t:min():item(), t:max():item()
    end
    t = t:clamp(lo, hi):sub(lo):div(math.max(hi - lo, 1e-5))
  end
  local n, c, h, w = t:size(1), t:size(2), t:size(3), t:size(4)
  if n == 0 then
    fail("grid", "the batch is empty")
  end
  if n == 1 then
    return t[1]:clone()
  end
  local cols = math.min(nrow, n)
  local rows = (n + cols - 1) // cols
  local ch, cw = h + padding, w + padding
  local grid = ml.full({ c, rows * ch + padding, cols * cw + padding }, pad_value,
    { dtype = t:dtype() })
  for k = 1, n do
    local y, x = (k - 1) // cols, (k - 1) % cols
    grid:narrow(2, y * ch + padding + 1, h):narrow(3, x * cw + padding + 1, w):copy_(t[k])
  end
  return grid
end

local FOLDER_OPTS = { transform = true }

local Folder = {}
Folder.__index = Folder
Folder.__len = function(ds)
  return #ds.samples
end

--- Sample i: the image (C x H x W float32, through `transform` when given) and its label (a
-- 0-d int64 tensor, 1..K, so that ml.data.loader batches labels as int64).
-- @int i 1..#ds
function Folder:get(i)
  if math.type(i) ~= "integer" or i < 1 or i > #self.samples then
    fail("folder_dataset.get", "index " .. tostring(i) .. " out of range 1.." .. #self.samples)
  end
  local s = self.samples[i]
  local img = draw.load(s[1])
  if self.transform then
    img = self.transform(img)
  end
  return img, ml.tensor(s[2], "int64")
end

local function sorted_entries(dir)
  local names, is_dir = draw.list_dir(dir)
  local order = {}
  for k, name in ipairs(names) do
    order[k] = { name = name, dir = is_dir[k] }
  end
  table.sort(order, function(a, b)
    return a.name < b.name
  end)
  return order
end

--- A dataset of the PNG files in a folder-per-class tree, as torchvision's ImageFolder:
-- `root/<class>/<name>.png`. Classes are the sub-folders of `root` sorted by name and get
-- labels 1..K; files are taken in name order in each class (sub-folders inside a class are
-- searched too). Files are read when a sample is asked for.
-- Fields: `classes` (names in label order), `class_to_idx` (name -> label), `samples`
-- ({path, label} pairs), `targets` (int64 tensor of every label).
-- @string root
-- @tab[opt] opts `transform` = function(img) -> img, applied by `get`
-- @return a dataset with `#ds` and `ds:get(i)` -> image, label
function image.folder_dataset(root, opts)
  if type(root) ~= "string" then
    fail("folder_dataset", "expected a folder name, got " .. type(root))
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("folder_dataset", "options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not FOLDER_OPTS[k] then
      fail("folder_dataset", "unknown option '" .. tostring(k) .. "'")
    end
  end
  if opts.transform ~= nil and type(opts.transform) ~= "function" then
    fail("folder_dataset", "transform must be a function, got " .. type(opts.transform))
  end
  local ok, entries = pcall(sorted_entries, root)
  if not ok then
    fail("folder_dataset", (tostring(entries):gsub("^moonml%.image%.list_dir: ", "")))
  end
  local ds = setmetatable({ root = root, classes = {}, class_to_idx = {}, samples = {},
    transform = opts.transform }, Folder)
  local function collect(dir, label)
    for _, e in ipairs(sorted_entries(dir)) do
      local path = dir .. "/" .. e.name
      if e.dir then
        collect(path, label)
      elseif e.name:lower():sub(-4) == ".png" then
        ds.samples[#ds.samples + 1] = { path, label }
      end
    end
  end
  for _, e in ipairs(entries) do
    if e.dir then
      local label = #ds.classes + 1
      local before = #ds.samples
      collect(root .. "/" .. e.name, label)
      if #ds.samples == before then
        fail("folder_dataset", "the class folder " .. root .. "/" .. e.name .. " holds no PNG file")
      end
      ds.classes[label] = e.name
      ds.class_to_idx[e.name] = label
    end
  end
  if #ds.classes == 0 then
    fail("folder_dataset", "no class folders in " .. root)
  end
  local labels = {}
  for k, s in ipairs(ds.samples) do
    labels[k] = s[2]
  end
  ds.targets = ml.tensor(labels, "int64")
  return ds
end

return image
