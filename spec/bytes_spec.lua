-- Bulk data: ml.from_bytes(str, dtype[, shape]) and x:to_bytes(), raw little-endian bytes in
-- row-major order. Lua's string.pack("<...") is the independent reference for the layout.
local ml = require("moonml")
local h = require("helpers")

local exact = { rtol = 0, atol = 0 }
local fmt = { float32 = "<f", float64 = "<d", int64 = "<i8", bool = "<B" }

-- the bytes string.pack gives for a flat list of values of dtype dt
local function packed(dt, values)
  local parts = {}
  for i, v in ipairs(values) do
    if dt == "bool" then
      v = v and 1 or 0
    end
    parts[i] = string.pack(fmt[dt], v)
  end
  return table.concat(parts)
end

local function flat(x)
  local out = {}
  local function walk(t)
    if type(t) ~= "table" then
      out[#out + 1] = t
    else
      for _, v in ipairs(t) do walk(v) end
    end
  end
  walk(x:totable())
  return out
end

local samples = {
  float32 = { { 1.5, -2, 0 / 0 }, { 1 / 0, -1 / 0, -0.0 } },
  float64 = { { 0.1, -1e300, 0 / 0 }, { 1 / 0, 5e-324, -0.0 } },
  int64 = { { math.mininteger, -1, 0 }, { 1, 2 ^ 53 + 1 | 0, math.maxinteger } },
  bool = { { true, false, true }, { false, false, true } },
}

describe("to_bytes and from_bytes", function()
  for dt, values in pairs(samples) do
    it("round-trip " .. dt .. " bit for bit", function()
      local x = ml.tensor(values, dt)
      local s = x:to_bytes()
      assert.are.equal(6 * ({ float32 = 4, float64 = 8, int64 = 8, bool = 1 })[dt], #s)
      assert.are.equal(packed(dt, flat(x)), s) -- little-endian, row-major
      local y = ml.from_bytes(s, dt, { 2, 3 })
      assert.are.equal(dt, y:dtype())
      assert.are.same({ 2, 3 }, y:shape())
      assert.are.equal(s, y:to_bytes())
      h.assert_close(y, x, exact)
      assert.is_true(y:is_contiguous())
    end)

    it("writes a non-contiguous " .. dt .. " view in its row-major order", function()
      local x = ml.tensor(values, dt)
      local views = {
        x:t(),
        x:slice(2, 1, 3, 2),
        x:select(2, 2),
        x:narrow(1, 2, 1):expand(3, 3),
        x:t():slice(1, 1, 3, 2),
      }
      for k, v in ipairs(views) do
        local s = v:to_bytes()
        assert.are.equal(packed(dt, flat(v)), s, "view " .. k)
        assert.are.equal(v:contiguous():to_bytes(), s, "view " .. k)
        h.assert_close(ml.from_bytes(s, dt, v:shape()), v, exact)
      end
    end)
  end

  it("reads bytes written by string.pack", function()
    local s = string.pack("<ffff", 1, 2.5, -3, 4)
    h.assert_close(ml.from_bytes(s, "float32", { 2, 2 }), { { 1, 2.5 }, { -3, 4 } }, exact)
    h.assert_close(ml.from_bytes(string.pack("<i8i8", -7, 1 << 40), "int64"),
      { -7, 1 << 40 }, { dtype = "int64", rtol = 0, atol = 0 })
    h.assert_close(ml.from_bytes(string.pack("<d", 0.1), "float64", {}), 0.1, exact)
    h.assert_close(ml.from_bytes("\1\0\1", "bool"), { true, false, true }, { dtype = "bool" })
  end)

  it("takes the shape as a table, as sizes, or infers a 1-D one", function()
    local s = string.pack("<ffffff", 1, 2, 3, 4, 5, 6)
    assert.are.same({ 3, 2 }, ml.from_bytes(s, "float32", { 3, 2 }):shape())
    assert.are.same({ 2, 3 }, ml.from_bytes(s, "float32", 2, 3):shape())
    assert.are.same({ 1, 2, 3 }, ml.from_bytes(s, "float32", 1, 2, 3):shape())
    assert.are.same({ 6 }, ml.from_bytes(s, "float32"):shape())
    assert.are.same({ 3 }, ml.from_bytes(s, "float64"):shape())
  end)

  it("handles 0-d and empty tensors", function()
    local z = ml.tensor(2.5)
    assert.are.equal(string.pack("<f", 2.5), z:to_bytes())
    h.assert_close(ml.from_bytes(z:to_bytes(), "float32", {}), 2.5, exact)
    assert.are.equal("", ml.zeros(0, 3):to_bytes())
    assert.are.equal("", ml.zeros(3, 0):t():to_bytes())
    assert.are.same({ 0, 3 }, ml.from_bytes("", "int64", { 0, 3 }):shape())
    assert.are.same({ 0 }, ml.from_bytes("", "bool"):shape())
  end)

  it("copies: the tensor and the string are independent", function()
    local s = string.pack("<ff", 1, 2)
    local x = ml.from_bytes(s, "float32")
    x[1] = 9
    assert.are.equal(string.pack("<ff", 1, 2), s)
    assert.are.equal(string.pack("<ff", 9, 2), x:to_bytes())
  end)

  it("moves large data quickly", function()
    local n = 1000000
    local x = ml.rand(n)
    local s = x:to_bytes()
    assert.are.equal(4 * n, #s)
    h.assert_close(ml.from_bytes(s, "float32", { 1000, 1000 }):reshape(-1), x, exact)
  end)
end)

describe("from_bytes and to_bytes bad input", function()
  it("names both byte counts when they differ", function()
    local s = string.pack("<fff", 1, 2, 3)
    h.assert_error("moonml.from_bytes:", "12 bytes given, but shape [2, 2] of float32 needs 16",
      ml.from_bytes, s, "float32", { 2, 2 })
    h.assert_error("moonml.from_bytes:", "12 bytes given, but shape [1] of int64 needs 8",
      ml.from_bytes, s, "int64", { 1 })
    h.assert_error("moonml.from_bytes:", "1 bytes given, but shape [] of float64 needs 8",
      ml.from_bytes, "x", "float64", {})
    h.assert_error("moonml.from_bytes:", "12 bytes are not a whole number of float64 elements",
      ml.from_bytes, s, "float64")
  end)

  it("refuses bool bytes other than 0 and 1", function()
    h.assert_error("moonml.from_bytes:", "bool bytes must be 0 or 1, byte at offset 2 is 2",
      ml.from_bytes, "\1\0\2", "bool")
    h.assert_error("moonml.from_bytes:", "is 255", ml.from_bytes, "\255", "bool", { 1 })
  end)

  it("checks the arguments", function()
    h.assert_error("moonml.from_bytes:", "expected a string of bytes as argument 1, got number",
      ml.from_bytes, 1234, "float32")
    h.assert_error("moonml.from_bytes:", "got tensor", ml.from_bytes, ml.ones(2), "float32")
    h.assert_error("moonml.from_bytes:", "expected a dtype as argument 2, got no value",
      ml.from_bytes, "abcd")
    h.assert_error("moonml.from_bytes:", "unknown dtype 'float16'", ml.from_bytes, "abcd",
      "float16")
    h.assert_error("moonml.from_bytes:", "dtype must be a string", ml.from_bytes, "abcd", 4)
    h.assert_error("moonml.from_bytes:", "negative size", ml.from_bytes, "", "float32", { -1 })
    h.assert_error("moonml.from_bytes:", "size must be an integer", ml.from_bytes, "abcd",
      "float32", { 1.5 })
    h.assert_error("moonml.from_bytes:", "unexpected argument 4", ml.from_bytes, "abcd",
      "float32", { 1 }, "x")
    h.assert_error("moonml.to_bytes:", "expected a tensor as argument 1", ml.to_bytes, "abc")
    h.assert_error("moonml.to_bytes:", "expected no argument after the tensor", ml.to_bytes,
      ml.ones(2), "<")
    local closed
    do
      local c <close> = ml.ones(2)
      closed = c
    end
    h.assert_error("moonml.to_bytes:", "closed tensor", ml.to_bytes, closed)
  end)
end)
