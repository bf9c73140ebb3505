-- Tensor creation, copies and conversions, random draws, settings, memory and closed
-- tensors; values from PyTorch (spec/fixtures/gen_tensor.py) or closed forms.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("tensor")
local EXACT = { rtol = 0, atol = 0 }

local function exact(dtype)
  return { rtol = 0, atol = 0, dtype = dtype }
end

local function flat(x)
  local out = {}
  local function walk(t)
    if type(t) ~= "table" then
      out[#out + 1] = t
      return
    end
    for _, v in ipairs(t) do
      walk(v)
    end
  end
  walk(x:totable())
  return out
end

describe("ml.tensor", function()
  it("makes float32 from nested tables, even of Lua integers", function()
    local x = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
    assert.are.equal("float32", x:dtype())
    assert.are.same({ 2, 3 }, x:shape())
    h.assert_close(x, { { 1, 2, 3 }, { 4, 5, 6 } }, EXACT)
    assert.are.equal("float", math.type(x[1][1]))
  end)
  it("rounds to float32", function()
    assert.are.equal(16777216, ml.tensor({ 16777217 })[1])
    assert.are.equal(0.10000000149011612, ml.tensor({ 0.1 })[1])
  end)
  it("makes bool from booleans", function()
    local x = ml.tensor({ { true, false }, { false, true } })
    assert.are.equal("bool", x:dtype())
    assert.are.same({ { true, false }, { false, true } }, x:totable())
  end)
  it("takes a dtype as a string or in an options table", function()
    local a = ml.tensor({ 1, 2, 3 }, "int64")
    local b = ml.tensor({ 1, 2, 3 }, { dtype = "int64" })
    for _, x in ipairs({ a, b }) do
      assert.are.equal("int64", x:dtype())
      assert.are.equal("integer", math.type(x[2]))
      assert.are.same({ 1, 2, 3 }, x:totable())
    end
    assert.are.equal("float64", ml.tensor({ 0.1 }, "float64"):dtype())
    assert.are.equal(0.1, ml.tensor({ 0.1 }, "float64")[1])
    assert.are.same({ true, false }, ml.tensor({ 2, 0 }, "bool"):totable())
  end)
  it("accepts the aliases float, double and long", function()
    assert.are.equal("float32", ml.tensor({ 1 }, "float"):dtype())
    assert.are.equal("float64", ml.tensor({ 1 }, "double"):dtype())
    assert.are.equal("int64", ml.tensor({ 1 }, "long"):dtype())
  end)
  it("keeps int64 values that float64 cannot hold", function()
    local big = (1 << 62) + 1
    local x = ml.tensor({ big, -big, math.maxinteger, math.mininteger }, "int64")
    assert.are.same({ big, -big, math.maxinteger, math.mininteger }, x:totable())
  end)
  it("truncates floats stored into int64 toward zero", function()
    assert.are.same({ 2, -2, 0 }, ml.tensor({ 2.7, -2.7, -0.5 }, "int64"):totable())
  end)
  it("makes a 0-d tensor from a number or a boolean", function()
    local x = ml.tensor(3.5)
    assert.are.equal(0, x:dim())
    assert.are.same({}, x:shape())
    assert.are.equal(3.5, x:item())
    assert.are.equal("float32", ml.tensor(7):dtype())
    local i = ml.tensor(7, "int64")
    assert.are.equal(7, i:item())
    assert.are.equal("integer", math.type(i:item()))
    assert.are.equal(true, ml.tensor(true):item())
  end)
  it("copies a tensor (and may convert it)", function()
    local x = ml.arange(1, 6):view(2, 3)
    local y = ml.tensor(x:t())
    assert.are_not.equal(x:storage_id(), y:storage_id())
    assert.is_true(y:is_contiguous())
    h.assert_close(y, { { 1, 4 }, { 2, 5 }, { 3, 6 } }, EXACT)
    y:fill_(0)
    assert.are.equal(1, x:get(1, 1))
    local z = ml.tensor(ml.tensor({ 1.5, -2.5 }), "int64")
    assert.are.same({ 1, -2 }, z:totable())
    local same_dtype = ml.tensor(x, "float32")
    assert.are_not.equal(x:storage_id(), same_dtype:storage_id())
  end)
  it("makes empty tensors from empty tables", function()
    assert.are.same({ 0 }, ml.tensor({}):shape())
    assert.are.equal("float32", ml.tensor({}):dtype())
    assert.are.same({ 2, 0 }, ml.tensor({ {}, {} }):shape())
  end)
  it("reads 3-D tables in row-major order", function()
    local x = ml.tensor({ { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } })
    assert.are.same({ 2, 2, 2 }, x:shape())
    assert.are.equal(6, x:get(2, 1, 2))
  end)
end)

describe("creation functions", function()
  it("zeros, ones and empty take sizes or one table, options last", function()
    assert.are.same(ml.zeros(2, 3):shape(), ml.zeros({ 2, 3 }):shape())
    h.assert_close(ml.zeros(2, 3), { { 0, 0, 0 }, { 0, 0, 0 } }, exact("float32"))
    h.assert_close(ml.ones({ 2, 2 }), { { 1, 1 }, { 1, 1 } }, exact("float32"))
    local z = ml.zeros(2, 3, { dtype = "int64" })
    assert.are.equal("int64", z:dtype())
    assert.are.same({ { 0, 0, 0 }, { 0, 0, 0 } }, z:totable())
    assert.are.equal("bool", ml.ones({ 2 }, { dtype = "bool" }):dtype())
    assert.are.same({ true, true }, ml.ones(2, "bool"):totable())
    local e = ml.empty(4, 5, { dtype = "float64" })
    assert.are.same({ 4, 5 }, e:shape())
    assert.are.equal("float64", e:dtype())
    assert.are.same({}, ml.zeros():shape())
    assert.are.same({ 0, 3 }, ml.zeros(0, 3):shape())
  end)
  it("full takes a shape table and a value", function()
    h.assert_close(ml.full({ 2, 3 }, 7), { { 7, 7, 7 }, { 7, 7, 7 } }, exact("float32"))
    h.assert_close(ml.full({ 2 }, -1.5, { dtype = "float64" }), { -1.5, -1.5 }, exact("float64"))
    assert.are.same({ true, true }, ml.full({ 2 }, true):totable())
    assert.are.equal("bool", ml.full({ 2 }, false):dtype())
    local big = (1 << 62) + 1
    assert.are.same({ big, big }, ml.full({ 2 }, big, { dtype = "int64" }):totable())
    assert.are.same({ 2, 2 }, ml.full({ 2 }, 2.9, "int64"):totable())
  end)
  it("the *_like forms take the shape and, by default, the dtype", function()
    local x = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "int64"):t()
    local cases = {
      ml.zeros_like(x), ml.ones_like(x), ml.empty_like(x), ml.full_like(x, 4),
      ml.randint_like(x, 3), ml.randint_like(x, -2, 2),
    }
    for _, y in ipairs(cases) do
      assert.are.same({ 3, 2 }, y:shape())
      assert.are.equal("int64", y:dtype())
    end
    assert.are.same({ { 0, 0 }, { 0, 0 }, { 0, 0 } }, cases[1]:totable())
    assert.are.same({ { 1, 1 }, { 1, 1 }, { 1, 1 } }, cases[2]:totable())
    assert.are.same({ { 4, 4 }, { 4, 4 }, { 4, 4 } }, cases[4]:totable())
    for _, v in ipairs(flat(cases[5])) do
      assert.is_true(v >= 1 and v <= 3)
    end
    assert.are.equal("float32", ml.zeros_like(x, { dtype = "float32" }):dtype())
    assert.are.equal("float64", ml.ones_like(x, "float64"):dtype())
    local f = ml.zeros(3, 2)
    assert.are.equal("float32", ml.rand_like(f):dtype())
    assert.are.same({ 3, 2 }, ml.randn_like(f):shape())
    assert.are.equal("float64", ml.randn_like(f, { dtype = "float64" }):dtype())
  end)
  it("eye", function()
    h.assert_close(ml.eye(3), { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } }, exact("float32"))
    h.assert_close(ml.eye(2, 3), { { 1, 0, 0 }, { 0, 1, 0 } }, EXACT)
    assert.are.same({ { 1, 0 }, { 0, 1 }, { 0, 0 } }, ml.eye(3, 2, { dtype = "int64" }):totable())
    assert.are.same({ 0, 4 }, ml.eye(0, 4):shape())
  end)
end)

describe("arange", function()
  it("includes the end, like Lua's numeric for", function()
    h.assert_close(ml.arange(1, 5), { 1, 2, 3, 4, 5 }, exact("float32"))
    h.assert_close(ml.arange(5), { 1, 2, 3, 4, 5 }, EXACT)
    assert.are.equal(11, ml.arange(0, 1, 0.1):numel())
    h.assert_close(ml.arange(5, 1, -1), { 5, 4, 3, 2, 1 }, EXACT)
    h.assert_close(ml.arange(1, 2, 0.5), { 1, 1.5, 2 }, EXACT)
    assert.are.same({ 0 }, ml.arange(0):shape())
    assert.are.same({ 0 }, ml.arange(1, 5, -1):shape())
    h.assert_close(ml.arange(3, 3), { 3 }, EXACT)
  end)
  it("counts as many values as the for loop does", function()
    for _, c in ipairs({ { 0, 1, 0.1 }, { 1, -1, -0.25 }, { 0, 10, 3 }, { -7, 7, 2 } }) do
      local n = 0
      for _ = c[1], c[2], c[3] do
        n = n + 1
      end
      assert.are.equal(n, ml.arange(c[1], c[2], c[3]):numel())
    end
  end)
  it("includes an end that only rounding misses", function()
    -- Lua's float loop adds the step up: 0.1 + 0.1 + 0.1 > 0.3, so `for` stops at 0.2;
    -- arange counts (end - start) / step with a 1e-9 slack and keeps 0.3
    h.assert_close(ml.arange(0, 0.3, 0.1), { 0, 0.1, 0.2, 0.3 }, { rtol = 1e-7, atol = 0 })
    assert.are.equal(3, ml.arange(0, 0.29, 0.1):numel())
  end)
  it("takes a dtype", function()
    local x = ml.arange(1, 5, { dtype = "int64" })
    assert.are.same({ 1, 2, 3, 4, 5 }, x:totable())
    assert.are.equal("integer", math.type(x[1]))
    assert.are.equal("float64", ml.arange(3, "float64"):dtype())
  end)
  for _, c in ipairs(fx.arange) do
    it(string.format("equals PyTorch's values: %s..%s step %s (%s)", c.start, c.stop, c.step,
      c.dtype), function()
      local x = ml.arange(c.start, c.stop, c.step, { dtype = c.dtype })
      h.assert_close(x, { shape = { #c.values }, values = c.values }, exact(c.dtype))
    end)
  end
end)

describe("linspace", function()
  for _, c in ipairs(fx.linspace) do
    it(string.format("equals PyTorch's values exactly: %s, %s, %d steps (%s)", c.start, c.stop,
      c.steps, c.dtype), function()
      local x = ml.linspace(c.start, c.stop, c.steps, { dtype = c.dtype })
      h.assert_close(x, { shape = { #c.values }, values = c.values }, exact(c.dtype))
    end)
  end
  it("is float32 by default and hits both ends", function()
    local x = ml.linspace(-1, 1, 5)
    assert.are.equal("float32", x:dtype())
    h.assert_close(x, { -1, -0.5, 0, 0.5, 1 }, EXACT)
  end)
end)

describe("random draws", function()
  it("rand is in [0, 1), float32 by default, float64 on request", function()
    ml.manual_seed(3)
    local x = ml.rand(100, 100)
    assert.are.same({ 100, 100 }, x:shape())
    assert.are.equal("float32", x:dtype())
    local lo, hi, sum = math.huge, -math.huge, 0
    for _, v in ipairs(flat(x)) do
      lo, hi, sum = math.min(lo, v), math.max(hi, v), sum + v
    end
    assert.is_true(lo >= 0 and hi < 1)
    assert.is_true(lo < 0.001 and hi > 0.999) -- spans the interval
    assert.is_true(math.abs(sum / 1e4 - 0.5) < 0.015) -- 5 standard errors
    assert.are.equal("float64", ml.rand({ 3 }, { dtype = "float64" }):dtype())
  end)
  it("randn has mean 0 and std 1 over 10^5 draws", function()
    ml.manual_seed(4)
    local v = flat(ml.randn(100000))
    local n, sum, sq, within1 = #v, 0, 0, 0
    for _, x in ipairs(v) do
      sum = sum + x
      if math.abs(x) < 1 then
        within1 = within1 + 1
      end
    end
    local mean = sum / n
    for _, x in ipairs(v) do
      sq = sq + (x - mean) ^ 2
    end
    local std = math.sqrt(sq / (n - 1))
    -- standard errors: mean 0.0032, std 0.0022, P(|x| < 1) 0.0015; about 5 of each
    assert.is_true(math.abs(mean) < 0.016, "mean " .. mean)
    assert.is_true(math.abs(std - 1) < 0.011, "std " .. std)
    assert.is_true(math.abs(within1 / n - 0.6827) < 0.0075, "P(|x|<1) " .. within1 / n)
  end)
  it("randint includes both ends and is uniform", function()
    ml.manual_seed(5)
    local x = ml.randint(1, 6, { 60000 })
    assert.are.equal("int64", x:dtype())
    local counts = {}
    for _, v in ipairs(flat(x)) do
      assert.are.equal("integer", math.type(v))
      counts[v] = (counts[v] or 0) + 1
    end
    for k = 1, 6 do
      -- expected 10000 each, standard deviation 91: within 500 is 5.5 of them
      assert.is_true(math.abs((counts[k] or 0) - 10000) < 500, k .. ": " .. tostring(counts[k]))
    end
    local n = 0
    for _ in pairs(counts) do
      n = n + 1
    end
    assert.are.equal(6, n)
  end)
  it("randint(high, shape) draws from 1..high; dtype and degenerate ranges", function()
    ml.manual_seed(6)
    local seen = {}
    for _, v in ipairs(flat(ml.randint(3, { 2, 500 }))) do
      seen[v] = true
    end
    assert.are.same({ [1] = true, [2] = true, [3] = true }, seen)
    assert.are.same({ 5, 5, 5 }, ml.randint(5, 5, { 3 }):totable())
    local f = ml.randint(-3, -1, { 200 }, { dtype = "float32" })
    assert.are.equal("float32", f:dtype())
    for _, v in ipairs(flat(f)) do
      assert.is_true(v == -3 or v == -2 or v == -1)
    end
  end)
  it("manual_seed makes every draw reproducible", function()
    local function draw()
      return { ml.rand(5):totable(), ml.randn(2, 3):totable(), ml.randint(1, 100, { 7 }):totable() }
    end
    ml.manual_seed(1)
    local a = draw()
    ml.manual_seed(1)
    local b = draw()
    assert.are.same(a, b)
    ml.manual_seed(2)
    assert.are_not.same(a, draw())
  end)
end)

describe("copies and conversions", function()
  for _, c in ipairs(fx.conversions) do
    it(string.format("%s -> %s as PyTorch converts", c.from, c.to), function()
      local x = ml.tensor(c.input, c.from)
      h.assert_close(x:to(c.to), c.values, exact(c.to))
    end)
  end
  it("float, double, long and bool are to(dtype)", function()
    local x = ml.tensor({ -1.5, 0, 0.25 })
    assert.are.same({ -1, 0, 0 }, x:long():totable())
    assert.are.same({ true, false, true }, x:bool():totable())
    assert.are.same({ -1.5, 0, 0.25 }, x:double():totable())
    assert.are.equal("float32", x:long():float():dtype())
  end)
  it("converts non-contiguous and empty tensors", function()
    local x = ml.tensor({ { -1.5, 0 }, { 2.5, 0.5 }, { 3, -0.25 } }):t() -- strides {1, 2}
    assert.are.same({ { -1, 2, 3 }, { 0, 0, 0 } }, x:long():totable())
    assert.are.same({ { true, true, true }, { false, true, true } }, x:bool():totable())
    assert.are.same({ { -1.5, 2.5, 3 }, { 0, 0.5, -0.25 } }, x:double():totable())
    local sliced = ml.arange(1, 10, { dtype = "int64" }):slice(1, 2, 10, 3) -- 2, 5, 8
    h.assert_close(sliced:float(), { 2, 5, 8 }, exact("float32"))
    local e = ml.zeros(0, 3):long()
    assert.are.same({ 0, 3 }, e:shape())
    assert.are.equal("int64", e:dtype())
    assert.are.same({ 2, 0 }, ml.zeros(2, 0):clone():shape())
    assert.are.same({ 0 }, ml.zeros(0):copy_(ml.tensor(1)):shape())
    assert.are.same({ 0, 2 }, ml.zeros(0, 2):fill_(3):shape())
  end)
  it("a conversion to the same dtype returns the tensor itself, as in PyTorch", function()
    local x = ml.zeros(2)
    assert.are.equal(x, x:float())
    assert.are.equal(x, x:to("float32"))
  end)
  it("large int64 values survive int64 copies exactly", function()
    local big = (1 << 62) + 1
    local x = ml.tensor({ big, -big }, "int64")
    assert.are.same({ big, -big }, x:clone():totable())
    assert.are.same({ big, -big }, x:to("int64"):totable())
    assert.are.same({ big, -big }, ml.zeros(2, { dtype = "int64" }):copy_(x):totable())
    assert.are.same({ big, big }, ml.zeros(2, { dtype = "int64" }):copy_(x:narrow(1, 1, 1)):totable())
    assert.are.same({ big, -big }, x:view(2, 1):t():contiguous():view(2):totable())
    local y = ml.zeros(3, { dtype = "int64" })
    y:fill_(big)
    y[2] = -big
    y:set(3, big + 1)
    assert.are.same({ big, -big, big + 1 }, y:totable())
  end)
  for _, c in ipairs(fx.copies) do
    it(string.format("copy_ broadcasts and converts (%s into %s)", c.src_dtype, c.dst_dtype),
      function()
        local dst = ml.zeros(c.dst_shape, { dtype = c.dst_dtype })
        local src = ml.tensor(c.src, c.src_dtype)
        assert.are.equal(dst, dst:copy_(src))
        h.assert_close(dst, { shape = c.dst_shape, values = c.values }, exact(c.dst_dtype))
      end)
  end
  it("copy_ into and from non-contiguous views", function()
    local base = ml.zeros(2, 3)
    base:t():copy_(ml.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }))
    h.assert_close(base, { { 1, 3, 5 }, { 2, 4, 6 } }, EXACT)
    local dst = ml.zeros(2)
    dst:copy_(base:select(2, 2))
    h.assert_close(dst, { 3, 4 }, EXACT)
    local wide = ml.zeros(2, 3)
    wide:copy_(ml.tensor({ 7, 8 }):view(2, 1)) -- expanded along dim 2
    h.assert_close(wide, { { 7, 7, 7 }, { 8, 8, 8 } }, EXACT)
  end)
  it("copy_ between overlapping views of one storage reads before it writes", function()
    local a = ml.arange(1, 4):view(2, 2)
    a:copy_(a:t()) -- PyTorch refuses this; moonml copies through a temporary
    h.assert_close(a, { { 1, 3 }, { 2, 4 } }, EXACT)
    local v = ml.arange(1, 5)
    v:narrow(1, 2, 4):copy_(v:narrow(1, 1, 4))
    h.assert_close(v, { 1, 1, 2, 3, 4 }, EXACT)
  end)
  it("clone is a contiguous copy with its own storage", function()
    local x = ml.tensor({ { 1, 2 }, { 3, 4 } }, "int64"):t()
    local c = x:clone()
    assert.is_true(c:is_contiguous())
    assert.are.equal("int64", c:dtype())
    assert.are.same({ { 1, 3 }, { 2, 4 } }, c:totable())
    assert.are_not.equal(x:storage_id(), c:storage_id())
    c:zero_()
    assert.are.equal(3, x:get(1, 2))
    local b = ml.tensor({ true, false }):clone()
    assert.are.same({ true, false }, b:totable())
  end)
  it("contiguous returns the tensor itself when it already is", function()
    local x = ml.zeros(2, 3)
    assert.are.equal(x, x:contiguous())
    local t = x:t():contiguous()
    assert.are_not.equal(x:storage_id(), t:storage_id())
    assert.are.same({ 3, 2 }, t:shape())
  end)
  it("fill_ and zero_ work in place, through views, and return the tensor", function()
    local x = ml.zeros(3, 4)
    assert.are.equal(x, x:fill_(2))
    x:t():narrow(1, 2, 1):fill_(5) -- column 2
    h.assert_close(x:select(2, 2), { 5, 5, 5 }, EXACT)
    h.assert_close(x:select(2, 1), { 2, 2, 2 }, EXACT)
    assert.are.equal(x, x:zero_())
    h.assert_close(x, ml.zeros(3, 4), EXACT)
    assert.are.same({ true, true }, ml.zeros(2, { dtype = "bool" }):fill_(true):totable())
    assert.are.same({ 0.5, 0.5 }, ml.zeros(2):fill_(0.5):totable())
    assert.are.same({ 2, 2 }, ml.zeros(2, "int64"):fill_(2.9):totable())
  end)
end)

describe("settings and memory", function()
  it("set_num_threads / get_num_threads", function()
    local before = ml.get_num_threads()
    assert.is_true(before >= 1)
    ml.set_num_threads(2)
    assert.are.equal(2, ml.get_num_threads())
    ml.set_num_threads(1)
    assert.are.equal(1, ml.get_num_threads())
    ml.set_num_threads(before)
  end)
  it("large copies give the same result on one thread and on two", function()
    local before = ml.get_num_threads()
    local x = ml.arange(1, 600000):view(600, 1000):t()
    ml.set_num_threads(1)
    local a = x:contiguous()
    ml.set_num_threads(2)
    local b = x:contiguous()
    ml.set_num_threads(before)
    assert.are.same(a:get(1000, 600), b:get(1000, 600))
    assert.are.equal(600000, b:get(1000, 600))
    assert.are.equal(1001, b:get(1, 2))
    assert.are.equal(500, b:get(500, 1))
  end)
  it("memory_stats().live_bytes goes back down when tensors are collected", function()
    collectgarbage()
    local before = ml.memory_stats().live_bytes
    local held = { x = ml.zeros(1000, 1000) }
    held.v = held.x:view(-1) -- a view adds no storage
    assert.are.equal(before + 4000000, ml.memory_stats().live_bytes)
    held.x = nil
    collectgarbage()
    assert.are.equal(before + 4000000, ml.memory_stats().live_bytes) -- the view keeps it
    assert.are.equal(1000000, held.v:numel())
    held.v = nil
    collectgarbage()
    assert.are.equal(before, ml.memory_stats().live_bytes)
  end)
  -- the bounded loop of temporaries lives in memory_spec.lua (a fresh process)
end)

describe("closed tensors", function()
  local function closed()
    local saved
    do
      local x <close> = ml.zeros(2, 3)
      saved = x
    end
    return saved
  end
  it("free their storage when the scope ends", function()
    collectgarbage()
    local before = ml.memory_stats().live_bytes
    do
      local x <close> = ml.zeros(1000, 1000)
      assert.are.equal(before + 4 * x:numel(), ml.memory_stats().live_bytes)
    end
    assert.are.equal(before, ml.memory_stats().live_bytes)
  end)
  it("raise 'closed tensor' when used afterwards", function()
    local y = closed()
    h.assert_error("moonml.numel:", "closed tensor", function() return y:numel() end)
    h.assert_error("moonml.index:", "closed tensor", function() return y[1] end)
    h.assert_error("moonml.newindex:", "closed tensor", function() y[1] = 0 end)
    h.assert_error("moonml.view:", "closed tensor", function() return y:view(6) end)
    h.assert_error("moonml.clone:", "closed tensor", function() return ml.clone(y) end)
    h.assert_error("moonml.tensor:", "closed tensor", function() return ml.tensor(y) end)
    h.assert_error("moonml.copy_:", "closed tensor", function() return ml.zeros(2, 3):copy_(y) end)
    h.assert_error("moonml.newindex:", "closed tensor", function()
      ml.zeros(2, 3)[1] = y
    end)
    h.assert_error("moonml.__len:", "closed tensor", function() return #y end)
    h.assert_error("moonml.zeros_like:", "closed tensor", function() return ml.zeros_like(y) end)
    assert.are.equal("tensor(closed)", tostring(y))
  end)
  it("leave views of them usable", function()
    local v
    do
      local x <close> = ml.arange(1, 6)
      v = x:view(2, 3)
    end
    h.assert_close(v, { { 1, 2, 3 }, { 4, 5, 6 } }, EXACT)
  end)
end)

describe("creation rejects bad input", function()
  local cases = {
    { "zeros", "expected sizes", function() return ml.zeros("a") end },
    { "zeros", "expected sizes", function() return ml.zeros(nil) end },
    { "zeros", "got a table with key 'dtype'", function() return ml.zeros({ dtype = "int64" }) end },
    { "zeros", "negative size", function() return ml.zeros(2, -1) end },
    { "zeros", "negative size", function() return ml.zeros({ -3 }) end },
    { "zeros", "must be an integer", function() return ml.zeros(2.5) end },
    { "zeros", "must be an integer", function() return ml.zeros({ 2, "a" }) end },
    { "zeros", "at most 8", function() return ml.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1) end },
    { "zeros", "at most 8", function() return ml.zeros({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end },
    { "zeros", "too large", function() return ml.zeros(1e9, 1e9) end },
    { "zeros", "too large", function() return ml.zeros(1 << 62, 4) end },
    { "zeros", "unknown dtype 'int8'", function() return ml.zeros(2, { dtype = "int8" }) end },
    { "zeros", "unknown option 'dtyp'", function() return ml.zeros(2, { dtyp = "int64" }) end },
    { "zeros", "dtype must be a string", function() return ml.zeros(2, { dtype = 5 }) end },
    { "zeros", "options must be a table", function() return ml.zeros({ 2 }, 3) end },
    { "ones", "negative size", function() return ml.ones(-2) end },
    { "empty", "too large", function() return ml.empty(1e9, 1e9) end },
    { "full", "table of sizes", function() return ml.full(2, 3) end },
    { "full", "must be a number", function() return ml.full({ 2 }, "a") end },
    { "full", "must be a number", function() return ml.full({ 2 }) end },
    { "full", "int64", function() return ml.full({ 2 }, 0 / 0, { dtype = "int64" }) end },
    { "full", "int64", function() return ml.full({ 2 }, 1e300, { dtype = "int64" }) end },
    { "full_like", "expected a tensor", function() return ml.full_like({ 1 }, 2) end },
    { "zeros_like", "expected a tensor", function() return ml.zeros_like(nil) end },
    { "ones_like", "unknown option", function() return ml.ones_like(ml.zeros(1), { size = 2 }) end },
    { "tensor", "expected a table, number or tensor, got nil", function() return ml.tensor(nil) end },
    { "tensor", "got string", function() return ml.tensor("abc") end },
    { "tensor", "expected numbers or booleans, got string", function() return ml.tensor({ 1, "a" }) end },
    { "tensor", "got nil", function() return ml.tensor({ 1, nil, 3 }) end },
    { "tensor", "ragged", function() return ml.tensor({ { 1, 2 }, { 3 } }) end },
    { "tensor", "ragged", function() return ml.tensor({ { 1 }, { 2, 3 } }) end },
    { "tensor", "ragged", function() return ml.tensor({ {}, { 1 } }) end },
    { "tensor", "ragged", function() return ml.tensor({ { 1, 2 }, 3 }) end },
    { "tensor", "got table", function() return ml.tensor({ 1, { 2 } }) end },
    { "tensor", "more than 8", function() return ml.tensor({ { { { { { { { { 1 } } } } } } } } }) end },
    { "tensor", "unknown dtype", function() return ml.tensor({ 1 }, "int8") end },
    { "tensor", "unknown option", function() return ml.tensor({ 1 }, { foo = 1 }) end },
    { "tensor", "int64", function() return ml.tensor({ 1.5, 0 / 0 }, "int64") end },
    { "tensor", "int64", function() return ml.tensor({ 1e300 }, "int64") end },
    { "arange", "step must not be zero", function() return ml.arange(1, 5, 0) end },
    { "arange", "finite", function() return ml.arange(0, 1 / 0) end },
    { "arange", "finite", function() return ml.arange(0, 1, 0 / 0) end },
    { "arange", "must be a number", function() return ml.arange("a") end },
    { "arange", "must be a number", function() return ml.arange() end },
    { "arange", "too large", function() return ml.arange(0, 1e300, 1e-300) end },
    { "arange", "bool", function() return ml.arange(1, { dtype = "bool" }) end },
    { "arange", "int64", function() return ml.arange(0, 2 ^ 64, 2 ^ 62, "int64") end },
    { "linspace", "non-negative", function() return ml.linspace(0, 1, -1) end },
    { "linspace", "must be an integer", function() return ml.linspace(0, 1, 2.5) end },
    { "linspace", "must be a number", function() return ml.linspace(0) end },
    { "linspace", "bool", function() return ml.linspace(0, 1, 2, "bool") end },
    { "eye", "non-negative", function() return ml.eye(-1) end },
    { "eye", "must be an integer", function() return ml.eye("3") end },
    { "rand", "floating", function() return ml.rand(2, { dtype = "int64" }) end },
    { "rand", "negative size", function() return ml.rand(-2) end },
    { "randn", "floating", function() return ml.randn(2, "bool") end },
    { "randn", "too large", function() return ml.randn(1e9, 1e9) end },
    { "randint", "below low", function() return ml.randint(5, 1, { 2 }) end },
    { "randint", "table of sizes", function() return ml.randint(1, 6, 10) end },
    { "randint", "must be an integer", function() return ml.randint(1.5, 6, { 2 }) end },
    { "randint", "bool", function() return ml.randint(0, 2, { 2 }, "bool") end },
    { "rand_like", "floating", function() return ml.rand_like(ml.zeros(2, { dtype = "int64" })) end },
    { "manual_seed", "must be an integer", function() return ml.manual_seed("a") end },
    { "manual_seed", "must be an integer", function() return ml.manual_seed(1.5) end },
    { "set_num_threads", "between 1 and 64", function() return ml.set_num_threads(0) end },
    { "set_num_threads", "between 1 and 64", function() return ml.set_num_threads(65) end },
    { "set_num_threads", "must be an integer", function() return ml.set_num_threads("2") end },
    { "copy_", "cannot copy", function() return ml.zeros(2, 3):copy_(ml.zeros(3, 2)) end },
    { "copy_", "cannot copy", function() return ml.zeros(3):copy_(ml.zeros(1, 3)) end },
    { "copy_", "expected a tensor", function() return ml.zeros(3):copy_({ 1, 2, 3 }) end },
    { "copy_", "expanded", function() return ml.zeros(1, 3):expand(2, 3):copy_(ml.ones(2, 3)) end },
    { "fill_", "must be a number", function() return ml.zeros(3):fill_("x") end },
    { "fill_", "must be a number", function() return ml.zeros(3):fill_() end },
    { "fill_", "int64", function() return ml.zeros(3, "int64"):fill_(0 / 0) end },
    { "fill_", "got table", function() return ml.zeros(3):fill_({}) end },
    { "fill_", "expected a tensor", function() return ml.fill_(nil, 1) end },
    { "full", "got table", function() return ml.full({ 2 }, {}) end },
    { "arange", "got table", function() return ml.arange({ 1, 5 }) end },
    { "tensor", "got function", function() return ml.tensor({ print }) end },
    { "to", "unknown dtype", function() return ml.zeros(3):to("int32") end },
    { "to", "expected a dtype", function() return ml.zeros(3):to() end },
    { "long", "expected a tensor", function() return ml.long(3) end },
    { "clone", "expected a tensor", function() return ml.clone("x") end },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": " .. c[2], function()
      h.assert_error("moonml." .. c[1] .. ":", c[2], c[3])
    end)
  end
end)
