-- ml.data: the IDX reader on small files written here, TensorDataset, the loader, and
-- Fashion-MNIST when Debian's dataset-fashion-mnist package is installed.
local ml = require("moonml")
local h = require("helpers")

local tmp = os.tmpname()

-- Writes an IDX file: type code, dims, big-endian elements packed with `fmt`.
local function write_idx(path, code, dims, fmt, values, extra)
  local parts = { string.char(0, 0, code, #dims) }
  for _, d in ipairs(dims) do
    parts[#parts + 1] = string.pack(">I4", d)
  end
  for _, v in ipairs(values) do
    parts[#parts + 1] = string.pack(fmt, v)
  end
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(parts), extra or "")
  f:close()
end

local function write_raw(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

describe("ml.data.read_idx", function()
  teardown(function()
    os.remove(tmp)
    os.remove(tmp .. ".gz")
  end)

  it("reads every element type with its stored shape", function()
    local cases = {
      { 0x08, ">B", { 0, 7, 255, 128, 1, 2 } },
      { 0x09, ">b", { -128, -1, 0, 1, 127, 5 } },
      { 0x0B, ">i2", { -32768, 32767, 0, -1, 300, 7 } },
      { 0x0C, ">i4", { -2147483648, 2147483647, 0, -1, 70000, 9 } },
      { 0x0D, ">f", { 1.5, -2.25, 0, 1e-3, 3.0e5, -7 } },
      { 0x0E, ">d", { 1.5, -2.25, 0, 1e-300, 3.0e5, -7 } },
    }
    for _, c in ipairs(cases) do
      write_idx(tmp, c[1], { 2, 3 }, c[2], c[3])
      local t = ml.data.read_idx(tmp, { dtype = "float64" })
      h.assert_close(t, { shape = { 2, 3 }, values = c[3] }, { rtol = 1e-7, dtype = "float64" })
      assert.are.equal("float32", ml.data.read_idx(tmp):dtype())
      if c[1] <= 0x0C then
        h.assert_close(ml.data.read_idx(tmp, { dtype = "int64" }), { shape = { 2, 3 }, values = c[3] })
      end
    end
  end)

  it("reads gzip-compressed files", function()
    write_idx(tmp, 0x08, { 3, 1, 2 }, ">B", { 1, 2, 3, 4, 5, 6 })
    assert(os.execute("gzip -c " .. tmp .. " > " .. tmp .. ".gz"))
    h.assert_close(ml.data.read_idx(tmp .. ".gz"), { { { 1, 2 } }, { { 3, 4 } }, { { 5, 6 } } })
  end)

  it("refuses malformed and hostile files with the path in the message", function()
    write_raw(tmp, "\1\0\8\1")
    h.assert_error("moonml.read_idx:", "bad magic", ml.data.read_idx, tmp)
    write_raw(tmp, "\0\0\7\1\0\0\0\1\0")
    h.assert_error("moonml.read_idx:", "unknown element type", ml.data.read_idx, tmp)
    write_raw(tmp, "\0\0\8\9")
    h.assert_error("moonml.read_idx:", "9 dimensions", ml.data.read_idx, tmp)
    write_raw(tmp, "\0\0\8\2\0\0\0\2")
    h.assert_error("moonml.read_idx:", "truncated in its header", ml.data.read_idx, tmp)
    write_idx(tmp, 0x08, { 2, 3 }, ">B", { 1, 2, 3, 4, 5 })
    h.assert_error("moonml.read_idx:", "truncated", ml.data.read_idx, tmp)
    write_idx(tmp, 0x08, { 2, 2 }, ">B", { 1, 2, 3, 4 }, "x")
    h.assert_error("moonml.read_idx:", "data past", ml.data.read_idx, tmp)
    -- a header asking for 2^32-1 x 2^32-1 elements is refused before any allocation
    write_raw(tmp, "\0\0\8\2\255\255\255\255\255\255\255\255")
    h.assert_error("moonml.read_idx:", "too large", ml.data.read_idx, tmp)
    write_idx(tmp, 0x0D, { 2 }, ">f", { 1.5, 2 })
    h.assert_error("moonml.read_idx:", "int64 cannot hold", ml.data.read_idx, tmp, { dtype = "int64" })
    h.assert_error("moonml.read_idx:", "cannot open", ml.data.read_idx, tmp .. ".absent")
    h.assert_error("moonml.read_idx:", "file path", ml.data.read_idx, 5)
    h.assert_error("moonml.read_idx:", "dtype", ml.data.read_idx, tmp, { dtype = "bool" })
  end)
end)

describe("ml.data.TensorDataset", function()
  it("gives rows of each tensor", function()
    local ds = ml.data.TensorDataset(ml.arange(6):view(3, 2), ml.tensor({ 7, 8, 9 }, "int64"))
    assert.are.equal(3, #ds)
    local x, y = ds:get(2)
    h.assert_close(x, { 3, 4 })
    assert.are.equal(8, y)
  end)

  it("rejects mismatched or bad tensors", function()
    h.assert_error("moonml.data.TensorDataset:", "3 and 2", ml.data.TensorDataset, ml.zeros(3), ml.zeros(2))
    h.assert_error("moonml.data.TensorDataset:", "not a tensor", ml.data.TensorDataset, ml.zeros(3), {})
    h.assert_error("moonml.data.TensorDataset:", "at least one", ml.data.TensorDataset)
    h.assert_error("moonml.data.TensorDataset:", "0-d", ml.data.TensorDataset, ml.tensor(1))
    local ds = ml.data.TensorDataset(ml.zeros(3))
    h.assert_error("moonml.data.TensorDataset.get:", "out of range", ds.get, ds, 4)
  end)
end)

describe("ml.data.loader", function()
  local x = ml.arange(10):view(10, 1)
  local y = ml.arange(10, { dtype = "int64" })
  local ds = ml.data.TensorDataset(x, y)

  local function collect(opts)
    local sizes, seen = {}, {}
    for xb, yb in ml.data.loader(ds, opts) do
      sizes[#sizes + 1] = xb:size(1)
      assert.are.equal(xb:size(1), yb:size(1))
      for i = 1, yb:size(1) do
        assert.are.equal(yb[i], xb:get(i, 1)) -- rows stay paired
        seen[#seen + 1] = yb[i]
      end
    end
    return sizes, seen
  end

  it("batches in order, with a short last batch unless drop_last", function()
    local sizes, seen = collect({ batch_size = 4 })
    assert.are.same({ 4, 4, 2 }, sizes)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
    sizes = collect({ batch_size = 4, drop_last = true })
    assert.are.same({ 4, 4 }, sizes)
    sizes = collect({})
    assert.are.equal(10, #sizes)
  end)

  it("shuffles every sample exactly once, reproducibly with a seed", function()
    local _, a = collect({ batch_size = 3, shuffle = true, seed = 7 })
    local _, b = collect({ batch_size = 3, shuffle = true, seed = 7 })
    local _, c = collect({ batch_size = 3, shuffle = true, seed = 8 })
    assert.are.same(a, b)
    assert.are_not.same(a, c)
    table.sort(a)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, a)
    ml.manual_seed(3)
    local _, d = collect({ batch_size = 3, shuffle = true })
    ml.manual_seed(3)
    local _, e = collect({ batch_size = 3, shuffle = true })
    assert.are.same(d, e)
  end)

  it("stacks the samples of any dataset with get and #", function()
    local custom = setmetatable({}, { __len = function()
      return 5
    end })
    function custom.get(_, i)
      return ml.full({ 2 }, i), i * 10
    end
    local batches = {}
    for xb, yb in ml.data.loader(custom, { batch_size = 2 }) do
      batches[#batches + 1] = { xb, yb }
    end
    assert.are.equal(3, #batches)
    h.assert_close(batches[2][1], { { 3, 3 }, { 4, 4 } })
    h.assert_close(batches[3][2], { 50 })
  end)

  it("rejects bad options and datasets", function()
    h.assert_error("moonml.data.loader:", "batch_size", ml.data.loader, ds, { batch_size = 0 })
    h.assert_error("moonml.data.loader:", "unknown option", ml.data.loader, ds, { batchsize = 2 })
    h.assert_error("moonml.data.loader:", "seed", ml.data.loader, ds, { seed = 1.5 })
    h.assert_error("moonml.data.loader:", "dataset", ml.data.loader, 5)
  end)
end)

describe("ml.data.fashion_mnist", function()
  local dir = "/usr/share/datasets/fashion-mnist"
  local present = io.open(dir .. "/t10k-images-idx3-ubyte.gz", "rb")
  if not present then
    pending("skipped: " .. dir .. " is absent (Debian package dataset-fashion-mnist; make deps)")
    return
  end
  present:close()

  it("returns N x 1 x 28 x 28 images in [0, 1] and labels 1..10", function()
    local images, labels = ml.data.fashion_mnist({ split = "test" })
    assert.are.same({ 10000, 1, 28, 28 }, images:shape())
    assert.are.same({ 10000 }, labels:shape())
    assert.are.equal("int64", labels:dtype())
    assert.are.equal(0, images:min():item())
    assert.are.equal(1, images:max():item())
    assert.are.equal(1, labels:min():item())
    assert.are.equal(10, labels:max():item())
    -- the test split is balanced: 1,000 images per class
    for c = 1, 10 do
      assert.are.equal(1000, labels:eq(c):sum():item())
    end
  end)

  it("rejects a bad split or folder", function()
    h.assert_error("moonml.data.fashion_mnist:", "split", ml.data.fashion_mnist, { split = "val" })
    h.assert_error("moonml.data.fashion_mnist:", "not found", ml.data.fashion_mnist, { dir = "/nonexistent" })
  end)
end)

describe("ml.clock", function()
  it("is a monotonic wall clock in seconds", function()
    local a = ml.clock()
    local t = os.time()
    while os.time() == t do -- spin until the calendar second changes (at most 1 s)
    end
    local b = ml.clock()
    assert.is_true(b > a and b - a < 1.5, "elapsed " .. (b - a))
  end)
end)
