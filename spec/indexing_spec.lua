-- x[i], x[i] = v, get/set, item, totable, #x and the inspection methods.
-- Closed forms: the values are written out by hand.
local ml = require("moonml")
local h = require("helpers")

local EXACT = { rtol = 0, atol = 0 }

describe("x[i]", function()
  it("on a 1-D tensor is a Lua number of the element's kind", function()
    local f = ml.tensor({ 1.5, -2, 3 })
    assert.are.equal(1.5, f[1])
    assert.are.equal("float", math.type(f[2]))
    local l = ml.tensor({ 10, -20, 30 }, "int64")
    assert.are.equal(-20, l[2])
    assert.are.equal("integer", math.type(l[2]))
    local b = ml.tensor({ true, false })
    assert.are.equal(true, b[1])
    assert.are.equal(false, b[2])
    assert.are.equal(0.25, ml.tensor({ 0.25 }, "float64")[1])
  end)
  it("counts negative indices from the end", function()
    local x = ml.tensor({ 1, 2, 3, 4 })
    assert.are.equal(4, x[-1])
    assert.are.equal(1, x[-4])
    assert.are.equal(3, x[3.0]) -- a float with an integer value is an index
  end)
  it("on an n-D tensor is a view of row i", function()
    local x = ml.arange(1, 24):view(2, 3, 4)
    local row = x[2]
    assert.are.same({ 3, 4 }, row:shape())
    assert.are.equal(x:storage_id(), row:storage_id())
    h.assert_close(row, { { 13, 14, 15, 16 }, { 17, 18, 19, 20 }, { 21, 22, 23, 24 } }, EXACT)
    h.assert_close(x[-1][-1], { 21, 22, 23, 24 }, EXACT)
    assert.are.equal(7, x[1][2][3])
    row:set(1, 1, 0)
    assert.are.equal(0, x:get(2, 1, 1))
  end)
  it("of a non-contiguous tensor follows its strides", function()
    local x = ml.arange(1, 6):view(2, 3):t()
    h.assert_close(x[3], { 3, 6 }, EXACT)
    assert.are.equal(5, x[2][2])
  end)
  it("x.name gives the method and unknown names give nil", function()
    local x = ml.zeros(2)
    assert.are.equal(ml.methods.numel, x.numel)
    assert.is_nil(x.no_such_method)
  end)
end)

describe("x[i] = v", function()
  it("sets one element of a 1-D tensor", function()
    local x = ml.zeros(3)
    x[2] = 5
    x[-1] = 1.5
    h.assert_close(x, { 0, 5, 1.5 }, EXACT)
    local b = ml.zeros(2, { dtype = "bool" })
    b[1] = true
    assert.are.same({ true, false }, b:totable())
    local l = ml.zeros(2, { dtype = "int64" })
    l[1] = 2.9
    l[2] = true
    assert.are.same({ 2, 1 }, l:totable())
  end)
  it("a number fills a row", function()
    local x = ml.zeros(2, 3)
    x[2] = 7
    h.assert_close(x, { { 0, 0, 0 }, { 7, 7, 7 } }, EXACT)
    local m = ml.zeros(3, 2):t() -- rows of the transpose are columns of the base
    m[1] = 1
    h.assert_close(m, { { 1, 1, 1 }, { 0, 0, 0 } }, EXACT)
  end)
  it("a tensor is copied into the row, broadcast and converted", function()
    local x = ml.zeros(2, 3)
    x[1] = ml.tensor({ 1, 2, 3 })
    x[2] = ml.tensor(9) -- 0-d, broadcast over the row
    h.assert_close(x, { { 1, 2, 3 }, { 9, 9, 9 } }, EXACT)
    x[-1] = ml.tensor({ { 4, 5, 6 } }) -- a leading 1 is dropped, as in PyTorch
    h.assert_close(x[2], { 4, 5, 6 }, EXACT)
    local l = ml.zeros(2, 2, { dtype = "int64" })
    l[1] = ml.tensor({ 1.9, -1.9 })
    assert.are.same({ { 1, -1 }, { 0, 0 } }, l:totable())
    local v = ml.zeros(3)
    v[2] = ml.tensor(4)
    v[3] = ml.tensor({ 5 })
    h.assert_close(v, { 0, 4, 5 }, EXACT)
  end)
  it("x[i] = x[j] copies a row of the same tensor", function()
    local x = ml.arange(1, 6):view(3, 2)
    x[1] = x[3]
    h.assert_close(x, { { 5, 6 }, { 3, 4 }, { 5, 6 } }, EXACT)
  end)
end)

describe("get and set", function()
  it("read and write one element, negative indices too", function()
    local x = ml.zeros(2, 3, 4)
    assert.are.equal(x, x:set(2, 3, 4, 1.25))
    x:set(-2, 1, -1, 7)
    assert.are.equal(1.25, x:get(2, 3, 4))
    assert.are.equal(1.25, x:get(-1, -1, -1))
    assert.are.equal(7, x:get(1, 1, 4))
    local l = ml.zeros(2, { dtype = "int64" })
    l:set(2, (1 << 62) + 1)
    assert.are.equal((1 << 62) + 1, l:get(2))
    local b = ml.zeros(1, { dtype = "bool" }):set(1, true)
    assert.are.equal(true, b:get(1))
  end)
  it("on a 0-d tensor take no index", function()
    local s = ml.tensor(2)
    s:set(5)
    assert.are.equal(5, s:get())
  end)
  it("through a view write the base", function()
    local base = ml.zeros(3, 3)
    base:t():set(1, 3, 8)
    assert.are.equal(8, base:get(3, 1))
  end)
end)

describe("item and totable", function()
  it("item gives the one element as a Lua value", function()
    assert.are.equal(2.5, ml.tensor(2.5):item())
    assert.are.equal(4, ml.tensor({ { 4 } }):item())
    local i = ml.tensor({ 3 }, "int64"):item()
    assert.are.equal(3, i)
    assert.are.equal("integer", math.type(i))
    assert.are.equal(false, ml.tensor({ false }):item())
  end)
  it("totable gives nested tables (a number for 0-d)", function()
    assert.are.same({ { 1, 2 }, { 3, 4 } }, ml.tensor({ { 1, 2 }, { 3, 4 } }):totable())
    assert.are.same({ { 1, 3 }, { 2, 4 } }, ml.tensor({ { 1, 2 }, { 3, 4 } }):t():totable())
    assert.are.equal(5, ml.tensor(5):totable())
    assert.are.same({}, ml.zeros(0):totable())
    assert.are.same({ {}, {} }, ml.zeros(2, 0):totable())
    assert.are.same({ { true }, { false } }, ml.tensor({ { true }, { false } }):totable())
  end)
end)

describe("inspection", function()
  it("#x is the size of the first dimension", function()
    assert.are.equal(2, #ml.zeros(2, 3))
    assert.are.equal(3, #ml.zeros(2, 3):t())
    assert.are.equal(0, #ml.zeros(0))
  end)
  it("size and shape return a new Lua array each call", function()
    local x = ml.zeros(2, 3)
    local a, b = x:size(), x:size()
    assert.are.same({ 2, 3 }, a)
    assert.are_not.equal(a, b)
    a[1] = 99
    assert.are.same({ 2, 3 }, x:size())
    assert.are.same({ 2, 3 }, x:shape())
    assert.are_not.equal(x:shape(), x:shape())
    assert.are.same({}, ml.tensor(1):shape())
  end)
  it("size(d) is one number, negative d counts from the end", function()
    local x = ml.zeros(2, 3, 4)
    assert.are.equal(2, x:size(1))
    assert.are.equal(4, x:size(-1))
    assert.are.equal(3, x:size(-2))
    assert.are.equal("integer", math.type(x:size(1)))
  end)
  it("numel, dim, dtype, stride", function()
    local x = ml.zeros(2, 3, 4, { dtype = "int64" })
    assert.are.equal(24, x:numel())
    assert.are.equal(3, x:dim())
    assert.are.equal("int64", x:dtype())
    assert.are.same({ 12, 4, 1 }, x:stride())
    assert.are.equal(4, x:stride(2))
    assert.are.equal(12, x:stride(-3))
    assert.are.equal(1, ml.tensor(1):numel())
    assert.are.equal(0, ml.tensor(1):dim())
    assert.are.same({}, ml.tensor(1):stride())
    assert.are.equal(0, ml.zeros(3, 0):numel())
  end)
  it("are module functions too", function()
    local x = ml.zeros(2, 3)
    assert.are.equal(6, ml.numel(x))
    assert.are.same({ 2, 3 }, ml.size(x))
    assert.are.equal(3, ml.size(x, 2))
    assert.are.equal(0, ml.get(x, 1, 1))
  end)
end)

describe("indexing rejects bad input", function()
  local v = ml.tensor({ 1, 2, 3 })
  local m = ml.zeros(2, 3)
  local s = ml.tensor(1)
  local cases = {
    { "index", "out of range", function() return v[0] end },
    { "index", "out of range", function() return v[4] end },
    { "index", "out of range", function() return v[-4] end },
    { "index", "out of range", function() return m[3] end },
    { "index", "must be an integer", function() return v[1.5] end },
    { "index", "got boolean", function() return v[true] end },
    { "index", "got table", function() return v[{}] end },
    { "index", "0-d", function() return s[1] end },
    { "newindex", "out of range", function() v[0] = 1 end },
    { "newindex", "out of range", function() m[-3] = 1 end },
    { "newindex", "got string", function() v[1] = "a" end },
    { "newindex", "got nil", function() v[1] = nil end },
    { "newindex", "got table", function() m[1] = { 1, 2, 3 } end },
    { "newindex", "take no fields", function() v.foo = 1 end },
    { "newindex", "0-d", function() s[1] = 2 end },
    { "newindex", "int64", function() ml.zeros(2, 2, { dtype = "int64" })[1] = 0 / 0 end },
    { "newindex", "int64", function() ml.zeros(2, { dtype = "int64" })[1] = 1e19 end },
    { "newindex", "cannot copy", function() m[1] = ml.zeros(2) end },
    { "newindex", "cannot copy", function() m[1] = ml.zeros(2, 3) end },
    { "newindex", "expanded", function() ml.zeros(3, 1):expand(3, 4)[1] = ml.ones(4) end },
    { "get", "indices given", function() return m:get(1) end },
    { "get", "indices given", function() return m:get(1, 2, 3) end },
    { "get", "out of range", function() return m:get(3, 1) end },
    { "get", "out of range", function() return m:get(1, -4) end },
    { "get", "out of range", function() return m:get(0, 1) end },
    { "get", "must be an integer", function() return m:get(1, "2") end },
    { "set", "indices and a value", function() return m:set(1, 5) end },
    { "set", "out of range", function() return m:set(1, 4, 5) end },
    { "set", "expected a number", function() return m:set(1, 1, "x") end },
    { "set", "int64", function() return ml.zeros(1, { dtype = "int64" }):set(1, 0 / 0) end },
    { "set", "expected a tensor", function() return ml.set({}, 1, 1) end },
    { "item", "item needs exactly one", function() return m:item() end },
    { "item", "item needs exactly one", function() return ml.zeros(0):item() end },
    { "size", "out of range", function() return m:size(0) end },
    { "size", "out of range", function() return m:size(3) end },
    { "size", "out of range", function() return m:size(-3) end },
    { "size", "0-d", function() return s:size(1) end },
    { "size", "must be an integer", function() return m:size("1") end },
    { "stride", "out of range", function() return m:stride(3) end },
    { "stride", "0-d", function() return s:stride(1) end },
    { "__len", "0-d", function() return #s end },
    { "numel", "expected a tensor", function() return ml.numel(5) end },
    { "dim", "expected a tensor", function() return ml.dim(nil) end },
    { "dtype", "expected a tensor", function() return ml.dtype("float32") end },
    { "totable", "expected a tensor", function() return ml.totable({ 1 }) end },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": " .. c[2], function()
      h.assert_error("moonml." .. c[1] .. ":", c[2], c[3])
    end)
  end
end)
