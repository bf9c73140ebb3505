-- ml.save / ml.load: safetensors files. Reference values: spec/fixtures/gen_safetensors.py
-- (torch 1.13 writing the layout of the reference implementation by hand).
local ml = require("moonml")
local h = require("helpers")
local lfs = require("lfs")

local fx = h.fixture("safetensors")

local function read_bytes(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_bytes(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A fresh empty folder for one test (removed with its files afterwards).
local function temp_dir()
  local name = os.tmpname()
  os.remove(name)
  assert(lfs.mkdir(name))
  return name
end

local function remove_dir(dir)
  for entry in lfs.dir(dir) do
    if entry ~= "." and entry ~= ".." then
      local p = dir .. "/" .. entry
      if lfs.attributes(p, "mode") == "directory" then
        remove_dir(p)
      else
        os.remove(p)
      end
    end
  end
  lfs.rmdir(dir)
end

local function list_dir(dir)
  local out = {}
  for entry in lfs.dir(dir) do
    if entry ~= "." and entry ~= ".." then
      out[#out + 1] = entry
    end
  end
  table.sort(out)
  return out
end

-- Exact equality, NaN equal to NaN, -0 told apart from 0.
local function assert_same(x, values, shape, dtype)
  assert.equal(dtype, x:dtype())
  assert.same(shape, x:shape())
  local got = x:numel() == 0 and {} or x:reshape(-1):totable()
  if x:dim() == 0 then
    got = { x:item() }
  end
  assert.equal(#values, #got)
  for k = 1, #values do
    local a, b = got[k], values[k]
    if type(b) == "number" and b ~= b then
      assert(a ~= a, string.format("element %d: %s, expected NaN", k, tostring(a)))
    elseif type(b) == "number" and b == 0 and math.type(b) == "float" then
      assert(a == 0 and 1 / a == 1 / b, string.format("element %d: %s, expected %s", k,
        tostring(a), tostring(b)))
    else
      assert(a == b, string.format("element %d: %s, expected %s", k, tostring(a), tostring(b)))
    end
  end
end

-- The input tensors of the layout fixture, as the spec builds them.
local function layout_tensors()
  local t, dtypes = {}, {}
  for _, e in ipairs(fx.layout_inputs) do
    local x = ml.tensor(e.values, e.dtype)
    if #e.shape == 0 then
      x = x:reshape({})
    else
      x = x:reshape(e.shape)
    end
    if e.transpose then
      x = x:t()
    end
    t[e.name] = x
    dtypes[e.name] = e.file_dtype
  end
  return t, dtypes
end

-- Same dtype, shape and bytes (NaN payloads and -0 included).
local function same_tensor(a, b)
  return a:dtype() == b:dtype() and table.concat(a:shape(), ",") == table.concat(b:shape(), ",")
    and a:to_bytes() == b:to_bytes()
end

-- A safetensors file from a header text and data bytes.
local function st_bytes(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end

describe("ml.load of a file written by the PyTorch fixture script", function()
  it("gives every tensor with the values torch converts it to", function()
    local t, meta = ml.load(fx.torch_file)
    local n = 0
    for _ in pairs(t) do
      n = n + 1
    end
    assert.equal(#fx.torch_expected, n)
    for _, e in ipairs(fx.torch_expected) do
      assert.is_not_nil(t[e.name], e.name)
      assert_same(t[e.name], e.values, e.shape, e.dtype)
    end
    assert.same(fx.torch_metadata, meta)
  end)

  it("saved again with the file's dtypes gives the same file, byte for byte", function()
    local dir = temp_dir()
    local t, meta = ml.load(fx.torch_file)
    local dtypes = {}
    for _, e in ipairs(fx.torch_expected) do
      dtypes[e.name] = e.file_dtype
    end
    ml.save(t, dir .. "/again.safetensors", { dtypes = dtypes, metadata = meta })
    assert.equal(read_bytes(fx.torch_file), read_bytes(dir .. "/again.safetensors"))
    remove_dir(dir)
  end)

  it("is refused as a table of tensors when a byte is changed in BOOL data", function()
    local dir = temp_dir()
    local s = read_bytes(fx.torch_file)
    local header_len = string.unpack("<I8", s)
    local header = s:sub(9, 8 + header_len)
    local b, e = header:match('"bool":{[^}]*"data_offsets":%[(%d+),(%d+)%]')
    assert.is_not_nil(b)
    local at = 8 + header_len + tonumber(b) + 1
    write_bytes(dir .. "/x.safetensors", s:sub(1, at - 1) .. "\2" .. s:sub(at + 1))
    h.assert_error("moonml.load: " .. dir .. "/x.safetensors:", "BOOL 'bool' holds the byte 2",
      ml.load, dir .. "/x.safetensors")
    assert.is_true(tonumber(e) > tonumber(b))
    remove_dir(dir)
  end)
end)

describe("ml.save writes the reference layout", function()
  local dir
  before_each(function() dir = temp_dir() end)
  after_each(function() remove_dir(dir) end)

  it("byte for byte the file the fixture script writes for the same tensors", function()
    local t, dtypes = layout_tensors()
    ml.save(t, dir .. "/m.safetensors", { dtypes = dtypes, metadata = fx.layout_metadata })
    assert.equal(read_bytes(fx.layout_file), read_bytes(dir .. "/m.safetensors"))
  end)

  it("the reference implementation's own examples", function()
    ml.save({}, dir .. "/empty.st")
    assert.equal(string.char(8, 0, 0, 0, 0, 0, 0, 0) .. "{}      ", read_bytes(dir .. "/empty.st"))
    ml.save({}, dir .. "/meta.st", { metadata = { framework = "pt" } })
    assert.equal(string.char(40, 0, 0, 0, 0, 0, 0, 0) .. '{"__metadata__":{"framework":"pt"}}     ',
      read_bytes(dir .. "/meta.st"))
    ml.save({ ["attn.0"] = ml.arange(0, 5):reshape(1, 2, 3) }, dir .. "/attn.st")
    local header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'
    assert.equal(64, #header)
    assert.equal(st_bytes(header, string.pack("<ffffff", 0, 1, 2, 3, 4, 5)),
      read_bytes(dir .. "/attn.st"))
    ml.save({ attn0 = ml.arange(0, 5):reshape(1, 1, 2, 3) }, dir .. "/pad.st")
    header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}'
    assert.equal(st_bytes(header .. "       ", string.pack("<ffffff", 0, 1, 2, 3, 4, 5)),
      read_bytes(dir .. "/pad.st"))
  end)

  it("orders tensors by dtype, widest first, then by name; metadata keys sorted", function()
    ml.save({ b = ml.ones(1), a = ml.ones(1), c = ml.tensor({ 1 }, "int64"),
      d = ml.tensor({ true }), e = ml.ones(1, { dtype = "float64" }) },
      dir .. "/o.st", { metadata = { z = "1", a = "2", m = "3" } })
    local s = read_bytes(dir .. "/o.st")
    local header = s:sub(9, 8 + string.unpack("<I8", s))
    local order = {}
    for name in header:gmatch('"([%w_]+)":{') do
      order[#order + 1] = name
    end
    assert.same({ "__metadata__", "c", "e", "a", "b", "d" }, order)
    assert.truthy(header:find('{"a":"2","m":"3","z":"1"}', 1, true))
    assert.equal(0, #header % 8)
  end)
end)

describe("round trips", function()
  local dir
  before_each(function() dir = temp_dir() end)
  after_each(function() remove_dir(dir) end)

  local function round_trip(t, opts)
    local path = dir .. "/rt.safetensors"
    ml.save(t, path, opts)
    return ml.load(path)
  end

  it("float32, float64, int64 and bool exactly, including NaN, infinities and -0", function()
    ml.manual_seed(5)
    local f = ml.randn(17, 5)
    f[1][1], f[2][2], f[3][3], f[4][4] = 0 / 0, 1 / 0, -1 / 0, -0.0
    local d = ml.randn(6, { dtype = "float64" })
    d[1] = 1e-310
    local i = ml.tensor({ math.mininteger, math.maxinteger, 0, -1, 2 ^ 53 + 1 }, "int64")
    local b = ml.tensor({ { true, false }, { false, true } })
    local back = round_trip({ f = f, d = d, i = i, b = b })
    assert_same(back.f, f:reshape(-1):totable(), { 17, 5 }, "float32")
    assert_same(back.d, d:totable(), { 6 }, "float64")
    assert_same(back.i, i:totable(), { 5 }, "int64")
    assert_same(back.b, { true, false, false, true }, { 2, 2 }, "bool")
  end)

  it("views in their logical order: transposed, sliced with a step, expanded, narrowed", function()
    local base = ml.arange(1, 24):reshape(4, 6)
    local views = {
      t = base:t(),
      s = base:slice(2, 1, 6, 2),
      e = ml.tensor({ 1, 2, 3 }):expand(4, 3),
      n = base:narrow(1, 2, 2),
      p = base:reshape(2, 3, 4):permute(3, 1, 2),
    }
    local back = round_trip(views, { dtypes = { e = "F16", p = "BF16" } })
    for name, v in pairs(views) do
      h.assert_close(back[name], v:contiguous(), { rtol = 0, atol = 0 })
    end
  end)

  it("empty and 0-d tensors", function()
    local back = round_trip({ e = ml.zeros(0), e2 = ml.zeros(3, 0, 2, { dtype = "int64" }),
      s = ml.tensor(7.5):reshape({}), si = ml.tensor({ 9 }, "int64"):reshape({}) })
    assert.same({ 0 }, back.e:shape())
    assert.same({ 3, 0, 2 }, back.e2:shape())
    assert.equal("int64", back.e2:dtype())
    assert.equal(0, back.s:dim())
    assert.equal(7.5, back.s:item())
    assert.equal(9, back.si:item())
    assert.equal("int64", back.si:dtype())
  end)

  it("a large tensor through a converting dtype (many chunks)", function()
    ml.manual_seed(9)
    local x = ml.randn(300, 1000)
    local back = round_trip({ x = x, y = x }, { dtypes = { y = "BF16" } })
    assert.is_true(same_tensor(back.x, x))
    -- BF16 keeps 8 bits of mantissa: relative error below 2^-8
    assert.is_true(((back.y - x):abs() - x:abs() * (2 ^ -8)):max():item() <= 0)
  end)

  it("names with quotes, backslashes, control characters and UTF-8; metadata likewise", function()
    local name = 'we"ird\\na\tme\n\1 é ✓'
    local back, meta = round_trip({ [name] = ml.ones(2), [""] = ml.zeros(1) },
      { metadata = { ["k\"ey"] = "va\\l\nue ✓", empty = "" } })
    assert.is_true(same_tensor(back[name], ml.ones(2)))
    assert.is_true(same_tensor(back[""], ml.zeros(1)))
    assert.same({ ["k\"ey"] = "va\\l\nue ✓", empty = "" }, meta)
  end)

  it("a state dict of an nn module, and the module itself", function()
    ml.manual_seed(3)
    local nn = ml.nn
    local m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    local back = round_trip(m:state_dict())
    assert.is_true(same_tensor(back["1.weight"], m[1].weight))
    assert.is_true(same_tensor(back["3.bias"], m[3].bias))
    back = round_trip(m)
    assert.is_true(same_tensor(back["3.weight"], m[3].weight))
    assert.is_false(back["3.weight"].requires_grad)
  end)
end)

describe("conversions", function()
  local dir
  before_each(function() dir = temp_dir() end)
  after_each(function() remove_dir(dir) end)

  local function expected(name)
    for _, e in ipairs(fx.torch_expected) do
      if e.name == name then
        return e
      end
    end
  end

  it("F16 and BF16 round to nearest even as torch (subnormals, ties, overflow, NaN)", function()
    local path = dir .. "/c.st"
    ml.save({ h = ml.tensor(fx.f16_inputs), b = ml.tensor(fx.bf16_inputs) }, path,
      { dtypes = { h = "F16", b = "BF16" } })
    local back = ml.load(path)
    local eh, eb = expected("f16"), expected("bf16")
    assert_same(back.h, eh.values, eh.shape, "float32")
    assert_same(back.b, eb.values, eb.shape, "float32")
  end)

  it("NaN keeps its sign and payload top through F16 and BF16 (and back, bit for bit)", function()
    local path = dir .. "/nan.st"
    -- float32 NaNs: the default positive one, a negative one, one with only low payload bits,
    -- the half NaN 0x7C01 widened (0x7F802000) and the bfloat16 NaN 0xFFFF widened
    local bits = { 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7F802000, 0xFFFF0000 }
    local raw = {}
    for k, b in ipairs(bits) do
      raw[k] = string.pack("<I4", b)
    end
    local x = ml.from_bytes(table.concat(raw), "float32")
    ml.save({ h = x, b = x }, path, { dtypes = { h = "F16", b = "BF16" } })
    local s = read_bytes(path)
    local data = s:sub(9 + string.unpack("<I8", s))
    -- BF16 ranks above F16: b comes first
    local bf = { string.unpack("<I2I2I2I2I2", data:sub(1, 10)) }
    local half = { string.unpack("<I2I2I2I2I2", data:sub(11, 20)) }
    bf[6], half[6] = nil, nil
    assert.same({ 0x7FC0, 0xFFC0, 0x7FC0, 0x7FC0, 0xFFFF }, bf)
    assert.same({ 0x7E00, 0xFE00, 0x7E00, 0x7C01, 0xFFF8 }, half)
    -- read back and written again: the same bytes
    local back = ml.load(path)
    ml.save(back, path, { dtypes = { h = "F16", b = "BF16" } })
    assert.equal(s, read_bytes(path))
  end)

  it("float64 written as F32 and F16 goes through float32 first, as torch", function()
    local path = dir .. "/c.st"
    local x = ml.tensor({ 0.1, 1 + 2 ^ -11 + 2 ^ -40, 1e300 }, "float64")
    ml.save({ a = x, b = x }, path, { dtypes = { a = "F32", b = "F16" } })
    local back = ml.load(path)
    assert_same(back.a, { 0.10000000149011612, 1.00048828125, 1 / 0 }, { 3 }, "float32")
    assert_same(back.b, { 0.0999755859375, 1, 1 / 0 }, { 3 }, "float32")
    ml.save({ c = ml.tensor({ 0.1 }) }, path, { dtypes = { c = "F64" } })
    assert_same(ml.load(path).c, { 0.10000000149011612 }, { 1 }, "float64")
  end)

  it("int64 written as I32, I16, I8, U8, U16, U32, U64 loads back as int64", function()
    local path = dir .. "/c.st"
    local v = {
      I32 = { -2147483648, 2147483647, 0 }, I16 = { -32768, 32767, -1 }, I8 = { -128, 127, 5 },
      U8 = { 0, 255, 17 }, U16 = { 0, 65535, 1 }, U32 = { 0, 4294967295, 2 },
      U64 = { 0, math.maxinteger, 3 },
    }
    local t, dtypes = {}, {}
    for dt, values in pairs(v) do
      t[dt] = ml.tensor(values, "int64")
      dtypes[dt] = dt
    end
    ml.save(t, path, { dtypes = dtypes })
    local back = ml.load(path)
    for dt, values in pairs(v) do
      assert_same(back[dt], values, { 3 }, "int64")
    end
    local s = read_bytes(path)
    assert.truthy(s:find('"I8":{"dtype":"I8","shape":[3],"data_offsets"', 1, true))
  end)

  it("refuses integers that do not fit, naming the tensor, the value and its place", function()
    local path = dir .. "/c.st"
    local cases = { { "I16", { 1, 40000 }, "40000 at element 2" }, { "U8", { -1 }, "-1 at element 1" },
      { "I8", { 128 }, "128" }, { "I32", { 2 ^ 31 }, "2147483648" }, { "U32", { -5 }, "-5" },
      { "U64", { -1 }, "-1" } }
    for _, c in ipairs(cases) do
      h.assert_error("moonml.save:", "'x' holds " .. c[3], function()
        ml.save({ x = ml.tensor(c[2], "int64") }, path, { dtypes = { x = c[1] } })
      end)
    end
  end)

  it("refuses conversions across kinds and unknown dtype names", function()
    local path = dir .. "/c.st"
    h.assert_error("moonml.save:", "a float32 tensor cannot be written as I32", function()
      ml.save({ x = ml.ones(2) }, path, { dtypes = { x = "I32" } })
    end)
    h.assert_error("moonml.save:", "a int64 tensor cannot be written as F16", function()
      ml.save({ x = ml.ones(2, { dtype = "int64" }) }, path, { dtypes = { x = "F16" } })
    end)
    h.assert_error("moonml.save:", "a bool tensor cannot be written as U8", function()
      ml.save({ x = ml.tensor({ true }) }, path, { dtypes = { x = "U8" } })
    end)
    h.assert_error("moonml.save:", "unknown dtype 'float16'", function()
      ml.save({ x = ml.ones(2) }, path, { dtypes = { x = "float16" } })
    end)
    h.assert_error("moonml.save:", "unknown dtype 'F8_E4M3'", function()
      ml.save({ x = ml.ones(2) }, path, { dtypes = { x = "F8_E4M3" } })
    end)
    assert.is_nil(io.open(path, "rb"))
  end)
end)

describe("ml.load refuses a broken or hostile file", function()
  local dir, path
  before_each(function()
    dir = temp_dir()
    path = dir .. "/bad.safetensors"
  end)
  after_each(function() remove_dir(dir) end)

  local function refused(bytes, fragment)
    write_bytes(path, bytes)
    return h.assert_error("moonml.load: " .. path .. ":", fragment, ml.load, path)
  end

  local F32x6 = string.rep("\0", 24)
  local function entry(name, dtype, shape, b, e)
    return string.format('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}', name, dtype,
      shape, b, e)
  end

  it("that is truncated or too short for the header length", function()
    refused("", "too short for a safetensors header (0 bytes)")
    refused("\5\0\0", "too short")
    refused(string.pack("<I8", 64) .. "{}", "the header length 64 runs past the end of the file")
    refused(string.pack("<I8", 2 ^ 40) .. "{}", "beyond the limit of 100000000 bytes")
    refused(string.pack("<I8", -1) .. "{}", "beyond the limit")
    -- cut in the data
    local good = st_bytes("{" .. entry("a", "F32", "2,3", 0, 24) .. "}", F32x6)
    refused(good:sub(1, -5), "'a' ends at byte 24, past the end of the data (20 bytes)")
  end)

  it("whose offsets run past the data, overlap, leave a gap or leave bytes over", function()
    refused(st_bytes("{" .. entry("a", "F32", "250", 0, 1000) .. "}", F32x6),
      "'a' ends at byte 1000, past the end of the data (24 bytes)")
    refused(st_bytes("{" .. entry("a", "F32", "2", 0, 8) .. "," .. entry("b", "F32", "2", 4, 12)
      .. "}", string.rep("\0", 12)), "'b' (bytes 4..12) overlaps 'a'")
    refused(st_bytes("{" .. entry("a", "F32", "2", 0, 8) .. "," .. entry("b", "F32", "2", 12, 20)
      .. "}", string.rep("\0", 20)), "a gap of 4 bytes lies before 'b' (byte 12)")
    refused(st_bytes("{" .. entry("a", "F32", "2", 4, 12) .. "}", string.rep("\0", 12)),
      "a gap of 4 bytes lies before 'a'")
    refused(st_bytes("{" .. entry("a", "F32", "2", 0, 8) .. "}", string.rep("\0", 16)),
      "the tensors cover 8 bytes of data but the file holds 16")
    refused(st_bytes("{" .. entry("a", "F32", "0", 8, 4) .. "}", string.rep("\0", 8)),
      "'a' ends (byte 4) before it begins (byte 8)")
    refused(st_bytes("{" .. entry("a", "F32", "1", 0, 2 ^ 60) .. "}", F32x6),
      "not two byte offsets")
  end)

  it("whose header is not JSON, not an object, or not UTF-8", function()
    refused(st_bytes("{not json}      "), "the header is not valid JSON (error at byte ")
    refused(st_bytes('{"a":{"dtype":"F32",'), "not valid JSON")
    refused(st_bytes("[1,2,3] "), "the header is not a JSON object")
    refused(st_bytes('{"\255":1}'), "the header is not valid UTF-8 text (byte 3)")
    refused(st_bytes('{"a\0":1}'), "not valid UTF-8")
    refused(st_bytes("{} x"), "not valid JSON")
  end)

  it("with a wrong dtype name, shape or fields", function()
    refused(st_bytes("{" .. entry("a", "F17", "6", 0, 24) .. "}", F32x6), "'a' has an unknown dtype 'F17'")
    refused(st_bytes("{" .. entry("a", "f32", "6", 0, 24) .. "}", F32x6), "unknown dtype 'f32'")
    refused(st_bytes("{" .. entry("a", "F8_E4M3", "24", 0, 24) .. "}", F32x6),
      "'a' has dtype F8_E4M3, which moonml cannot load")
    refused(st_bytes("{" .. entry("a", "F32", "2,3", 0, 20) .. "}", string.rep("\0", 20)),
      "'a' of shape [2, 3] and dtype F32 needs 24 bytes, its data_offsets give 20")
    refused(st_bytes("{" .. entry("a", "F16", "2,3", 0, 24) .. "}", F32x6), "needs 12 bytes")
    refused(st_bytes("{" .. entry("a", "F32", "1099511627776,1099511627776", 0, 24) .. "}", F32x6),
      "the shape of 'a' is too large")
    refused(st_bytes("{" .. entry("a", "U8", "4503599627370496,4503599627370496", 0, 0) .. "}"),
      "too large")
    refused(st_bytes("{" .. entry("a", "F32", "-6", 0, 24) .. "}", F32x6),
      "size 1 of 'a' is not a non-negative integer")
    refused(st_bytes("{" .. entry("a", "F32", "2,1.5", 0, 24) .. "}", F32x6), "size 2 of 'a'")
    refused(st_bytes("{" .. entry("a", "F32", '"6"', 0, 24) .. "}", F32x6), "size 1 of 'a'")
    refused(st_bytes("{" .. entry("a", "F32", "1,1,1,1,1,1,1,1,6", 0, 24) .. "}", F32x6),
      "'a' has 9 dimensions, moonml supports at most 8")
    refused(st_bytes('{"a":{"dtype":"F32","shape":6,"data_offsets":[0,24]}}', F32x6),
      "the shape of 'a' is not an array")
    refused(st_bytes('{"a":{"dtype":"F32","shape":[6]}}', F32x6), "'a' lacks its data_offsets")
    refused(st_bytes('{"a":{"shape":[6],"data_offsets":[0,24]}}', F32x6), "'a' lacks its dtype")
    refused(st_bytes('{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24],"x":1}}', F32x6),
      "'a' has an unknown field 'x'")
    refused(st_bytes('{"a":{"dtype":"F32","dtype":"F32","shape":[6],"data_offsets":[0,24]}}', F32x6),
      "'a' has the field 'dtype' twice")
    refused(st_bytes('{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,12,24]}}', F32x6),
      "the data_offsets of 'a' are not two byte offsets")
    refused(st_bytes('{"a":{"dtype":6,"shape":[6],"data_offsets":[0,24]}}', F32x6),
      "the dtype of 'a' is not a string")
    refused(st_bytes('{"a":[1,2]}', F32x6), "'a' is not an object in the header")
  end)

  it("with duplicate names or bad metadata", function()
    refused(st_bytes("{" .. entry("a", "F32", "3", 0, 12) .. "," .. entry("a", "F32", "3", 12, 24)
      .. "}", F32x6), "tensor 'a' appears twice in the header")
    refused(st_bytes('{"__metadata__":{"k":1}}'), "metadata value 'k' is not a string")
    refused(st_bytes('{"__metadata__":{"k":"a","k":"b"}}'), "metadata key 'k' appears twice")
    refused(st_bytes('{"__metadata__":["k"]}'), "__metadata__ is not an object")
    refused(st_bytes('{"__metadata__":{},"__metadata__":{}}'), "__metadata__ appears twice")
  end)

  it("that does not exist or is a folder", function()
    h.assert_error("moonml.load: " .. dir .. "/none.st:", "cannot open the file", ml.load,
      dir .. "/none.st")
    h.assert_error("moonml.load: " .. dir .. ":", "not a regular file", ml.load, dir)
  end)

  it("but takes a valid hand-made file with zero-size tensors anywhere", function()
    write_bytes(path, st_bytes("{" .. entry("z", "F32", "0", 0, 0) .. "," .. entry("a", "I16", "2", 0, 4)
      .. "," .. entry("y", "F64", "3,0", 4, 4) .. "," .. entry("b", "U8", "", 4, 5) .. "}  ",
      string.pack("<i2i2B", -3, 300, 200)))
    local t, meta = ml.load(path)
    assert.same({}, meta)
    assert_same(t.a, { -3, 300 }, { 2 }, "int64")
    assert_same(t.b, { 200 }, {}, "int64")
    assert.same({ 3, 0 }, t.y:shape())
    assert.equal("float64", t.y:dtype())
    assert.same({ 0 }, t.z:shape())
  end)
end)

describe("atomic saves", function()
  local dir, path
  before_each(function()
    dir = temp_dir()
    path = dir .. "/model.safetensors"
  end)
  after_each(function() remove_dir(dir) end)

  it("an error before writing leaves the previous file and no temporary", function()
    ml.save({ w = ml.ones(4) }, path)
    local before = read_bytes(path)
    h.assert_error("moonml.save:", "'bad' is a number, expected a tensor", function()
      ml.save({ w = ml.zeros(4), bad = 5 }, path)
    end)
    assert.equal(before, read_bytes(path))
    assert.same({ "model.safetensors" }, list_dir(dir))
  end)

  it("an error in the middle of the data leaves the previous file and no temporary", function()
    ml.save({ w = ml.ones(4) }, path)
    local before = read_bytes(path)
    -- 'big' (F32) is written first, then 'small' (I16) fails on its second element
    h.assert_error("moonml.save:", "'small' holds 70000 at element 2, which does not fit I16",
      function()
        ml.save({ big = ml.randn(100000), small = ml.tensor({ 1, 70000 }, "int64") }, path,
          { dtypes = { small = "I16" } })
      end)
    assert.equal(before, read_bytes(path))
    assert.same({ "model.safetensors" }, list_dir(dir))
    local t = ml.load(path)
    assert.is_true(same_tensor(t.w, ml.ones(4)))
  end)

  it("a failed rename (the path is a folder) removes the temporary", function()
    assert(lfs.mkdir(dir .. "/sub"))
    h.assert_error("moonml.save: " .. dir .. "/sub:", "cannot replace the file", function()
      ml.save({ w = ml.ones(2) }, dir .. "/sub")
    end)
    assert.same({ "model.safetensors", "sub" }, (function()
      write_bytes(path, "x")
      return list_dir(dir)
    end)())
  end)

  it("a folder that does not exist is an error naming the path", function()
    h.assert_error("moonml.save: " .. dir .. "/no/such.st:", "cannot create the file", function()
      ml.save({ w = ml.ones(2) }, dir .. "/no/such.st")
    end)
  end)

  it("replaces an existing file with the new tensors", function()
    ml.save({ w = ml.ones(4) }, path)
    ml.save({ v = ml.zeros(2, { dtype = "int64" }) }, path)
    local t = ml.load(path)
    assert.is_nil(t.w)
    assert_same(t.v, { 0, 0 }, { 2 }, "int64")
    assert.same({ "model.safetensors" }, list_dir(dir))
  end)
end)

describe("bad arguments", function()
  local dir, path
  before_each(function()
    dir = temp_dir()
    path = dir .. "/x.st"
  end)
  after_each(function() remove_dir(dir) end)

  it("ml.save", function()
    local x = ml.ones(2)
    h.assert_error("moonml.save:", "expected a table of tensors as argument 1, got nil", ml.save, nil, path)
    h.assert_error("moonml.save:", "as argument 1, got tensor", ml.save, x, path)
    h.assert_error("moonml.save:", "tensor names must be strings, got the number key 1", ml.save, { x }, path)
    h.assert_error("moonml.save:", "'a' is a string, expected a tensor", ml.save, { a = "x" }, path)
    h.assert_error("moonml.save:", "expected a file path as argument 2, got nil", ml.save, { a = x })
    h.assert_error("moonml.save:", "options must be a table, got string", ml.save, { a = x }, path, "F16")
    h.assert_error("moonml.save:", "unknown option 'dtype'", ml.save, { a = x }, path, { dtype = "F16" })
    h.assert_error("moonml.save:", "metadata value for 'epoch' must be a string, got number", ml.save,
      { a = x }, path, { metadata = { epoch = 3 } })
    h.assert_error("moonml.save:", "metadata keys must be strings", ml.save, { a = x }, path,
      { metadata = { "x" } })
    h.assert_error("moonml.save:", "metadata must be a table of strings", ml.save, { a = x }, path,
      { metadata = "x" })
    h.assert_error("moonml.save:", "the dtype for 'a' must be a string, got number", ml.save, { a = x },
      path, { dtypes = { a = 16 } })
    h.assert_error("moonml.save:", "dtypes names 'b', which is not in the table", ml.save, { a = x },
      path, { dtypes = { b = "F16" } })
    h.assert_error("moonml.save:", "'__metadata__' is reserved", ml.save, { __metadata__ = x }, path)
    h.assert_error("moonml.save:", "tensor name '\255' is not valid UTF-8", ml.save, { ["\255"] = x }, path)
    h.assert_error("moonml.save:", "the value 'a' contains a zero byte", ml.save, { a = x }, path,
      { metadata = { k = "a\0b" } })
    h.assert_error("moonml.save:", "the tensor name 'a' contains a zero byte", ml.save, { ["a\0"] = x },
      path)
    local closed = ml.ones(1)
    getmetatable(closed).__close(closed)
    h.assert_error("moonml.save:", "'c' is a closed tensor, expected a tensor", ml.save, { c = closed }, path)
    assert.same({}, list_dir(dir))
  end)

  it("ml.load", function()
    h.assert_error("moonml.load:", "expected a file path as argument 1, got no value", ml.load)
    h.assert_error("moonml.load:", "expected a file path as argument 1, got nil", ml.load, nil)
    h.assert_error("moonml.load:", "expected a file path as argument 1, got table", ml.load, {})
    h.assert_error("moonml.load:", "expected one argument, the file path, got 2", ml.load, path, {})
  end)
end)
