-- ml.image: PNG load/save through libpng, grid (torchvision's make_grid), folder_dataset.
-- The PNG fixtures are written byte by byte by spec/fixtures/gen_png.py (every colour type,
-- bit depth, palette, tRNS and Adam7 interlacing), with the tensors they must load to.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("png")
local DIR = "spec/fixtures/png/"
local exact = { rtol = 0, atol = 0 }

-- A fresh empty folder under /tmp, removed by cleanup().
local function temp_dir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir " .. d))
  return d
end

local function cleanup(d)
  os.execute("rm -rf " .. d)
end

local function listing(d)
  local names = ml._image.list_dir(d)
  table.sort(names)
  return names
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Values on the 8- or 16-bit grid, so that a round trip is exact.
local function grid_values(shape, bits, seed)
  ml.manual_seed(seed)
  local levels = bits == 16 and 65535 or 255
  return ml.randint(0, levels, shape):double():div(levels)
end

describe("ml.image.load", function()
  for name, expected in pairs(fx.files) do
    it("loads " .. name .. ".png to the expected values", function()
      local t = ml.image.load(DIR .. name .. ".png")
      assert.are.equal("float32", t:dtype())
      -- samples / 255 or / 65535 in float32: within one float32 rounding of the reference
      h.assert_close(t, expected, { rtol = 1e-7, atol = 0 })
    end)
  end

  it("gives the channel counts of each colour type", function()
    local channels = { gray8 = 1, gray16 = 1, gray1 = 1, gray_alpha8 = 2, rgb8 = 3, rgba16 = 4,
      palette8 = 3, palette2_trns = 4, gray8_trns = 2, rgb8_trns = 4 }
    for name, c in pairs(channels) do
      assert.are.equal(c, ml.image.load(DIR .. name .. ".png"):size(1), name)
    end
  end)

  it("turns a tRNS colour key into alpha 0 exactly where the key is", function()
    local t = ml.image.load(DIR .. "gray8_trns.png")
    -- the generator put gray 77 at (1, 2) and (3, 4) (1-based row, column)
    assert.are.equal(0, t:get(2, 1, 2))
    assert.are.equal(0, t:get(2, 3, 4))
    assert.is_near(77 / 255, t:get(1, 1, 2), 1e-7)
    assert.are.equal(1, t:get(2, 1, 1))
    local rgb = ml.image.load(DIR .. "rgb8_trns.png")
    assert.are.equal(0, rgb:get(4, 1, 1))
    assert.are.equal(0, rgb:get(4, 2, 3))
    assert.are.equal(7, rgb:select(1, 4):sum():item()) -- the other 7 of 9 pixels are opaque
  end)

  for _, name in ipairs(fx.damaged) do
    it("refuses the damaged file " .. name .. ".png with an error, not a crash", function()
      local err = h.assert_error("moonml.image.load:", name .. ".png", ml.image.load,
        DIR .. name .. ".png")
      assert.is_truthy(err:find("corrupt or truncated", 1, true) or err:find("not a PNG", 1, true))
    end)
  end

  it("names what is wrong", function()
    h.assert_error("moonml.image.load:", "not a PNG file", ml.image.load, DIR .. "not_a_png.png")
    h.assert_error("moonml.image.load:", "not a PNG file", ml.image.load, DIR .. "empty.png")
    h.assert_error("moonml.image.load:", "CRC error", ml.image.load, DIR .. "bad_crc.png")
    h.assert_error("moonml.image.load:", "Read Error", ml.image.load, DIR .. "truncated_idat.png")
    h.assert_error("moonml.image.load:", "cannot open", ml.image.load, DIR .. "absent.png")
    h.assert_error("moonml.image.load:", "expected a file name", ml.image.load, nil)
    h.assert_error("moonml.image.load:", "expected a file name", ml.image.load, 3)
    h.assert_error("moonml.image.load:", "zero byte", ml.image.load, "a\0b.png")
  end)

  it("keeps working after many failed loads (nothing left half-open)", function()
    for _ = 1, 300 do
      pcall(ml.image.load, DIR .. "truncated_idat.png")
      pcall(ml.image.load, DIR .. "bad_zlib.png")
    end
    h.assert_close(ml.image.load(DIR .. "rgb8.png"), fx.files.rgb8, { rtol = 1e-7, atol = 0 })
  end)
end)

describe("ml.image.save", function()
  local dir
  before_each(function()
    dir = temp_dir()
  end)
  after_each(function()
    cleanup(dir)
  end)

  for _, bits in ipairs({ 8, 16 }) do
    for c = 1, 4 do
      it(string.format("round-trips %d channel(s) at %d bits exactly", c, bits), function()
        local t = grid_values({ c, 5, 7 }, bits, 10 * c + bits)
        local path = dir .. "/img.png"
        ml.image.save(t, path, { bit_depth = bits })
        local back = ml.image.load(path)
        h.assert_close(back, t, { rtol = 1e-7, atol = 0 })
      end)
    end
    it("round-trips a 2-D tensor as gray at " .. bits .. " bits", function()
      local t = grid_values({ 4, 6 }, bits, bits)
      ml.image.save(t:float(), dir .. "/g.png", { bit_depth = bits })
      local back = ml.image.load(dir .. "/g.png")
      assert.are.same({ 1, 4, 6 }, back:shape())
      h.assert_close(back[1], t, { rtol = 1e-7, atol = 0 })
    end)
  end

  it("writes the colour type and bit depth into the header", function()
    local kinds = { { 1, 8, 0 }, { 2, 8, 4 }, { 3, 8, 2 }, { 4, 8, 6 }, { 3, 16, 2 } }
    for _, k in ipairs(kinds) do
      ml.image.save(ml.zeros(k[1], 3, 2), dir .. "/h.png", { bit_depth = k[2] })
      local s = read_file(dir .. "/h.png")
      assert.are.equal("\137PNG\r\n\26\n", s:sub(1, 8))
      local w, ht, depth, ctype = string.unpack(">I4I4BB", s, 17)
      assert.are.same({ 2, 3, k[2], k[3] }, { w, ht, depth, ctype })
    end
  end)

  it("saves non-contiguous views in their logical order", function()
    local base = grid_values({ 3, 6, 5 }, 8, 3)
    local views = { base:transpose(2, 3), base:slice(3, 1, 5, 2), base:narrow(1, 2, 1):expand(3, 6, 5),
      ml.tensor({ 0.2, 0.4 }):view(1, 1, 2):expand(3, 4, 2) }
    for _, v in ipairs(views) do
      assert.is_false(v:is_contiguous())
      ml.image.save(v, dir .. "/v.png")
      h.assert_close(ml.image.load(dir .. "/v.png"), v:float(), { rtol = 1e-7, atol = 0 })
    end
  end)

  it("clamps to [0, 1] and rounds as torchvision's save_image", function()
    -- floor(v * 255 + 0.5), v clamped first
    local values = { 0, 1, 0.2, 0.1, 0.5, 0.498, -0.5, 1.7, 1 / 0, -1 / 0, 0.0019, 0.002 }
    local bytes = { 0, 255, 51, 26, 128, 127, 0, 255, 255, 0, 0, 1 }
    ml.image.save(ml.tensor({ values }), dir .. "/c.png")
    local back = ml.image.load(dir .. "/c.png")
    for i, b in ipairs(bytes) do
      assert.are.equal(b, math.floor(back:get(1, 1, i) * 255 + 0.5), "value " .. values[i])
    end
  end)

  it("rounds to 16 bits with {bit_depth = 16}", function()
    ml.image.save(ml.tensor({ { 0.5, 1 / 3, 1e-5 } }, "float64"), dir .. "/s.png",
      { bit_depth = 16 })
    local back = ml.image.load(dir .. "/s.png")
    assert.is_near(32768 / 65535, back:get(1, 1, 1), 1e-7)
    assert.is_near(21845 / 65535, back:get(1, 1, 2), 1e-7)
    assert.is_near(1 / 65535, back:get(1, 1, 3), 1e-7)
  end)

  it("replaces a file atomically and leaves no temporary file", function()
    local path = dir .. "/a.png"
    ml.image.save(ml.zeros(1, 2, 2), path)
    ml.image.save(ml.ones(3, 4, 4), path)
    assert.are.same({ "a.png" }, listing(dir))
    assert.are.same({ 3, 4, 4 }, ml.image.load(path):shape())
  end)

  it("refuses bad tensors and leaves an older file as it was", function()
    local path = dir .. "/keep.png"
    ml.image.save(ml.full({ 1, 2, 2 }, 0.4), path)
    local before = read_file(path)
    local bad = {
      { ml.zeros(5), "got shape [5]" },
      { ml.zeros(1, 1, 2, 2), "got shape [1, 1, 2, 2]" },
      { ml.zeros(5, 2, 2), "got 5" },
      { ml.zeros(0, 2, 2), "got 0" },
      { ml.zeros(3, 0, 2), "0 x 2" },
      { ml.zeros(3, 2, 2, { dtype = "int64" }), "got int64" },
      { ml.zeros(3, 2, 2, { dtype = "bool" }), "got bool" },
      { ml.tensor({ { 0.5, 0 / 0 } }), "NaN at (1, 2)" },
      { ml.tensor({ { { 0.5 } }, { { 0 / 0 } } }), "NaN at (2, 1, 1)" },
    }
    for _, case in ipairs(bad) do
      h.assert_error("moonml.image.save:", case[2], ml.image.save, case[1], path)
    end
    assert.are.equal(before, read_file(path))
    assert.are.same({ "keep.png" }, listing(dir))
  end)

  it("refuses bad arguments", function()
    local t = ml.zeros(1, 2, 2)
    h.assert_error("moonml.image.save:", "expected a tensor", ml.image.save, nil, dir .. "/x.png")
    h.assert_error("moonml.image.save:", "expected a tensor", ml.image.save, { 1 }, dir .. "/x.png")
    h.assert_error("moonml.image.save:", "expected a file name", ml.image.save, t, nil)
    h.assert_error("moonml.image.save:", "unknown option 'depth'", ml.image.save, t,
      dir .. "/x.png", { depth = 8 })
    h.assert_error("moonml.image.save:", "8 or 16", ml.image.save, t, dir .. "/x.png",
      { bit_depth = 12 })
    h.assert_error("moonml.image.save:", "options must be a table", ml.image.save, t,
      dir .. "/x.png", 8)
    h.assert_error("moonml.image.save:", "No such file", ml.image.save, t, dir .. "/no/x.png")
    h.assert_error("moonml.image.save:", "Is a directory", ml.image.save, t, dir)
    assert.are.same({}, listing(dir))
  end)
end)

-- make_grid's layout, written out: image k (1-based) sits at row (k-1) // cols, column
-- (k-1) % cols, its top-left pixel at (r * (H + p) + p, c * (W + p) + p) (0-based).
local function expected_grid(images, nrow, p, pad)
  local n, c, ih, iw = #images, images[1].c, images[1].h, images[1].w
  local cols = math.min(nrow, n)
  local rows = math.ceil(n / cols)
  local gh, gw = rows * (ih + p) + p, cols * (iw + p) + p
  local g = {}
  for ch = 1, c do
    g[ch] = {}
    for y = 1, gh do
      g[ch][y] = {}
      for x = 1, gw do
        g[ch][y][x] = pad
      end
    end
  end
  for k, img in ipairs(images) do
    local r, col = (k - 1) // cols, (k - 1) % cols
    for ch = 1, c do
      for y = 1, ih do
        for x = 1, iw do
          g[ch][r * (ih + p) + p + y][col * (iw + p) + p + x] = img.v[ch][y][x]
        end
      end
    end
  end
  return g
end

local function as_images(batch)
  local out = {}
  local v = batch:totable()
  for k = 1, #v do
    out[k] = { c = batch:size(2), h = batch:size(3), w = batch:size(4), v = v[k] }
  end
  return out
end

describe("ml.image.grid", function()
  it("lays out 5 images, 2 per row, as make_grid", function()
    local batch = ml.arange(1, 5 * 3 * 2 * 3):view(5, 3, 2, 3)
    local g = ml.image.grid(batch, { nrow = 2, padding = 1, pad_value = 0.5 })
    assert.are.same({ 3, 3 * 3 + 1, 2 * 4 + 1 }, g:shape())
    h.assert_close(g, expected_grid(as_images(batch), 2, 1, 0.5), exact)
  end)

  it("uses nrow 8, padding 2, pad_value 0 by default", function()
    local batch = ml.rand(10, 3, 4, 5)
    local g = ml.image.grid(batch)
    assert.are.same({ 3, 2 * 6 + 2, 8 * 7 + 2 }, g:shape())
    h.assert_close(g, expected_grid(as_images(batch), 8, 2, 0), exact)
  end)

  it("repeats one channel to three and takes padding 0", function()
    local batch = ml.rand(3, 1, 2, 2)
    local g = ml.image.grid(batch, { padding = 0 })
    assert.are.same({ 3, 2, 6 }, g:shape())
    h.assert_close(g, expected_grid(as_images(batch:expand(3, 3, 2, 2)), 8, 0, 0), exact)
  end)

  it("returns a single image as it is", function()
    local img = ml.rand(3, 4, 5)
    h.assert_close(ml.image.grid(img:unsqueeze(1)), img, exact)
    h.assert_close(ml.image.grid(img), img, exact)
    local gray = ml.rand(4, 5)
    h.assert_close(ml.image.grid(gray), gray:expand(3, 4, 5), exact)
  end)

  it("takes an array of images and a non-contiguous batch", function()
    local a, b = ml.rand(3, 2, 2), ml.rand(3, 2, 2)
    local g = ml.image.grid({ a, b }, { padding = 1 })
    h.assert_close(g, expected_grid(as_images(ml.tensor({ a:totable(), b:totable() })), 8, 1, 0),
      exact)
    local batch = ml.rand(2, 3, 4, 3):transpose(3, 4)
    h.assert_close(ml.image.grid(batch, { padding = 1 }),
      expected_grid(as_images(batch:contiguous()), 8, 1, 0), exact)
  end)

  it("normalizes into [0, 1] with normalize = true", function()
    local batch = ml.tensor({ { { { -2, 0 } } }, { { { 2, 1 } } } }) -- 2 x 1 x 1 x 2
    local g = ml.image.grid(batch, { padding = 0, normalize = true })
    h.assert_close(g[1], { { 0, 0.5, 1, 0.75 } }, exact)
    local r = ml.image.grid(batch, { padding = 0, normalize = true, value_range = { 0, 1 } })
    h.assert_close(r[1], { { 0, 0, 1, 1 } }, exact)
  end)

  it("refuses bad input", function()
    h.assert_error("moonml.image.grid:", "5-D", ml.image.grid, ml.zeros(1, 1, 1, 1, 1))
    h.assert_error("moonml.image.grid:", "float", ml.image.grid, ml.zeros(2, 3, 2, 2, { dtype = "int64" }))
    h.assert_error("moonml.image.grid:", "nrow", ml.image.grid, ml.zeros(2, 3, 2, 2), { nrow = 0 })
    h.assert_error("moonml.image.grid:", "padding", ml.image.grid, ml.zeros(2, 3, 2, 2),
      { padding = -1 })
    h.assert_error("moonml.image.grid:", "unknown option 'rows'", ml.image.grid,
      ml.zeros(2, 3, 2, 2), { rows = 2 })
    h.assert_error("moonml.image.grid:", "empty", ml.image.grid, ml.zeros(0, 3, 2, 2))
    h.assert_error("moonml.image.grid:", "element 2", ml.image.grid, { ml.zeros(3, 2, 2), 5 })
    h.assert_error("moonml.image.grid:", "expected a tensor", ml.image.grid, nil)
  end)
end)

describe("ml.image.folder_dataset", function()
  local root = "spec/fixtures/png_folder"

  it("finds the classes in name order and the PNG files in each", function()
    local ds = ml.image.folder_dataset(root)
    assert.are.same(fx.folder.classes, ds.classes)
    assert.are.equal(#fx.folder.samples, #ds)
    for i, s in ipairs(fx.folder.samples) do
      assert.are.equal(root .. "/" .. s[1], ds.samples[i][1])
      local img, label = ds:get(i)
      assert.are.same({ 1, 2, 3 }, img:shape())
      h.assert_close(img, ml.full({ 1, 2, 3 }, s[3]), { rtol = 1e-7, atol = 0 })
      assert.are.equal("int64", label:dtype())
      assert.are.equal(0, label:dim())
      assert.are.equal(s[2], label:item())
      assert.are.equal(s[2], ds.class_to_idx[ds.classes[s[2]]])
    end
    h.assert_close(ds.targets, { 1, 2, 2, 3, 3, 3 }, exact)
  end)

  it("applies the transform", function()
    local ds = ml.image.folder_dataset(root, { transform = function(img)
      return img:mul(2):view(6)
    end })
    local img = ds:get(2)
    h.assert_close(img, ml.full({ 6 }, 2 * fx.folder.samples[2][3]), { rtol = 1e-6, atol = 0 })
  end)

  it("batches with ml.data.loader", function()
    local data = require("moonml.data")
    local ds = ml.image.folder_dataset(root)
    local sizes, labels = {}, {}
    for xb, yb in data.loader(ds, { batch_size = 4 }) do
      sizes[#sizes + 1] = xb:size(1)
      assert.are.same({ xb:size(1), 1, 2, 3 }, xb:shape())
      assert.are.equal("int64", yb:dtype())
      for _, v in ipairs(yb:totable()) do
        labels[#labels + 1] = v
      end
    end
    assert.are.same({ 4, 2 }, sizes)
    assert.are.same({ 1, 2, 2, 3, 3, 3 }, labels)
  end)

  it("refuses bad input", function()
    h.assert_error("moonml.image.folder_dataset:", "cannot open the folder",
      ml.image.folder_dataset, root .. "/absent")
    h.assert_error("moonml.image.folder_dataset:", "no class folders",
      ml.image.folder_dataset, root .. "/cat")
    h.assert_error("moonml.image.folder_dataset:", "expected a folder name",
      ml.image.folder_dataset, nil)
    h.assert_error("moonml.image.folder_dataset:", "transform must be a function",
      ml.image.folder_dataset, root, { transform = 1 })
    h.assert_error("moonml.image.folder_dataset:", "unknown option 'shuffle'",
      ml.image.folder_dataset, root, { shuffle = true })
    local ds = ml.image.folder_dataset(root)
    h.assert_error("moonml.image.folder_dataset.get:", "out of range", ds.get, ds, 7)
    h.assert_error("moonml.image.folder_dataset.get:", "out of range", ds.get, ds, 0)
    h.assert_error("moonml.image.folder_dataset.get:", "out of range", ds.get, ds, 1.5)
  end)

  it("refuses a class folder without PNG files", function()
    local d = temp_dir()
    assert(os.execute("mkdir " .. d .. "/empty_class"))
    h.assert_error("moonml.image.folder_dataset:", "holds no PNG file", ml.image.folder_dataset, d)
    cleanup(d)
  end)
end)
