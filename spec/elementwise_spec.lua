-- Element-wise ops: values, dtypes and errors against PyTorch (spec/fixtures/elementwise.lua,
-- written by spec/fixtures/gen_elementwise.py), plus operators, aliasing and bad input.
local ml = require("moonml")
local h = require("helpers")

local F = h.fixture("elementwise")

-- 1-based view steps as the generator writes them
local function apply_view(t, view)
  for _, step in ipairs(view or {}) do
    local kind = step[1]
    if kind == "t" then
      t = t:t()
    elseif kind == "slice" then
      t = t:slice(step[2], step[3], step[4], step[5])
    elseif kind == "expand" then
      t = t:expand(step[2])
    elseif kind == "select" then
      t = t:select(step[2], step[3])
    else
      error("unknown view step " .. tostring(kind))
    end
  end
  return t
end

-- the tensor a fixture describes, and its base (they differ when a view is applied)
local function build(spec)
  local base = ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
  return apply_view(base, spec.view), base
end

local function tol(dtype)
  if dtype == "float32" then
    return { dtype = dtype }
  elseif dtype == "float64" then
    return { dtype = dtype, rtol = 1e-12, atol = 1e-300 }
  end
  return { dtype = dtype, rtol = 0, atol = 0 } -- int64 and bool: exact
end

local exact = { rtol = 0, atol = 0 }

local operator = {
  add = function(x, y) return x + y end,
  sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end,
  div = function(x, y) return x / y end,
  pow = function(x, y) return x ^ y end,
}

describe("element-wise binary ops against PyTorch", function()
  for _, c in ipairs(F.binary) do
    it(c.id, function()
      local a, abase = build(c.a)
      local other = c.scalar
      if c.b then
        other = build(c.b)
      end
      local opts = c.alpha and { alpha = c.alpha } or nil
      local name = c.op .. (c.inplace and "_" or "")
      local call
      if c.inplace then
        call = function() return a[name](a, other, opts) end
      elseif c.first then
        call = function() return ml[c.op](other, a) end
      else
        call = function() return a[c.op](a, other, opts) end
      end
      if c.err then
        local before = abase:clone()
        h.assert_error("moonml." .. name .. ":", nil, call)
        if operator[c.op] and not c.inplace and not c.alpha then
          local x, y = a, other
          if c.first then x, y = other, a end
          h.assert_error("moonml." .. c.op .. ":", nil, operator[c.op], x, y)
        end
        h.assert_close(abase, before, exact) -- a failed call changes nothing
        return
      end
      local r = call()
      h.assert_close(r, c.out, tol(c.out.dtype))
      if c.inplace then
        assert.is_true(rawequal(r, a))
        if c.base_after then
          h.assert_close(abase, c.base_after, tol(c.base_after.dtype))
        end
      elseif operator[c.op] and not c.alpha then
        local x, y = a, other
        if c.first then x, y = other, a end
        h.assert_close(operator[c.op](x, y), c.out, tol(c.out.dtype))
      end
    end)
  end
end)

describe("element-wise unary ops against PyTorch", function()
  for _, c in ipairs(F.unary) do
    it(c.id, function()
      local a, abase = build(c.a)
      local name = c.op .. (c.inplace and "_" or "")
      local call = function() return a[name](a) end
      if c.err then
        local before = abase:clone()
        h.assert_error("moonml." .. name .. ":", nil, call)
        h.assert_close(abase, before, exact)
        return
      end
      local r = call()
      h.assert_close(r, c.out, tol(c.out.dtype))
      if c.inplace then
        assert.is_true(rawequal(r, a))
        if c.base_after then
          h.assert_close(abase, c.base_after, tol(c.base_after.dtype))
        end
      else
        h.assert_close(ml[c.op](a), c.out, tol(c.out.dtype)) -- module function too
      end
      if c.op == "neg" and not c.inplace then
        h.assert_close(-a, c.out, tol(c.out.dtype))
      end
    end)
  end
end)

describe("in place with the other operand sharing storage", function()
  local selectors = {
    ["x:add_(x)"] = function(x) return x:add_(x) end,
    ["x:add_(x:t())"] = function(x) return x:add_(x:t()) end,
    ["x:sub_(x[1])"] = function(x) return x:sub_(x[1]) end,
    ["x:mul_(x[{},1])"] = function(x) return x:mul_(x:narrow(2, 1, 1)) end,
    ["x[2]:add_(x[1])"] = function(x) return x[2]:add_(x[1]) end,
    ["x:t():div_(x)"] = function(x) return x:t():div_(x) end,
    ["x:pow_(x)"] = function(x) return x:pow_(x) end,
  }
  for _, c in ipairs(F.overlap) do
    it(c.id .. " reads the other as it was", function()
      local x = build(c.base)
      selectors[c.id](x)
      h.assert_close(x, c.out)
    end)
  end
end)

describe("allclose against PyTorch", function()
  for _, c in ipairs(F.allclose) do
    it(c.id, function()
      local a, b = build(c.a), build(c.b)
      local opts = { rtol = c.rtol, atol = c.atol, equal_nan = c.equal_nan }
      if c.err then
        h.assert_error("moonml.allclose:", nil, a.allclose, a, b, opts)
      else
        assert.are.equal(c.out, a:allclose(b, opts))
        assert.are.equal(c.out, ml.allclose(a, b, opts))
      end
    end)
  end

  it("uses rtol 1e-5 and atol 1e-8 by default", function()
    local a = ml.tensor({ 1, 0 }, "float64")
    assert.is_true(a:allclose(ml.tensor({ 1 + 0.9e-5, 0.9e-8 }, "float64")))
    assert.is_false(a:allclose(ml.tensor({ 1 + 1.1e-5, 0 }, "float64")))
    assert.is_false(a:allclose(ml.tensor({ 1, 1.1e-8 }, "float64")))
  end)

  it("rejects bad arguments", function()
    local a = ml.ones(2)
    h.assert_error("moonml.allclose:", "argument 2", a.allclose, a, nil)
    h.assert_error("moonml.allclose:", "argument 2", a.allclose, a, 1)
    h.assert_error("moonml.allclose:", "argument 2", a.allclose, a, { 1, 1 })
    h.assert_error("moonml.allclose:", "options must be a table", a.allclose, a, a, 3)
    h.assert_error("moonml.allclose:", "unknown option 'tol'", a.allclose, a, a, { tol = 1 })
    h.assert_error("moonml.allclose:", "rtol must be a number", a.allclose, a, a, { rtol = "x" })
    h.assert_error("moonml.allclose:", "equal_nan must be a boolean", a.allclose, a, a,
      { equal_nan = 1 })
    h.assert_error("moonml.allclose:", "non-negative", a.allclose, a, a, { atol = -1 })
    h.assert_error("moonml.allclose:", "cannot be broadcast", a.allclose, a, ml.ones(3))
    h.assert_error("moonml.allclose:", "dtypes int64 and float32 differ", a.allclose,
      ml.ones(2, { dtype = "int64" }), a)
  end)
end)

describe("operators", function()
  local x = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })
  local y = ml.tensor({ 10, 20, 30 })

  it("are the methods, with numbers on either side", function()
    h.assert_close(x + y, { { 11, 22, 33 }, { 14, 25, 36 } }, { dtype = "float32" })
    h.assert_close(x - 1, { { 0, 1, 2 }, { 3, 4, 5 } })
    h.assert_close(1 - x, { { 0, -1, -2 }, { -3, -4, -5 } })
    h.assert_close(2 * x, { { 2, 4, 6 }, { 8, 10, 12 } })
    h.assert_close(6 / x, { { 6, 3, 2 }, { 1.5, 1.2, 1 } })
    h.assert_close(2 ^ x, { { 2, 4, 8 }, { 16, 32, 64 } })
    h.assert_close(x ^ 0.5, x:sqrt())
    h.assert_close(-x, { { -1, -2, -3 }, { -4, -5, -6 } })
    h.assert_close(-(-x), x)
  end)

  it("name the method in their errors", function()
    h.assert_error("moonml.add:", "shapes [2, 3] and [4] cannot be broadcast together",
      function() return x + ml.ones(4) end)
    h.assert_error("moonml.sub:", "argument 2, got string", function() return x - "a" end)
    h.assert_error("moonml.mul:", "argument 1, got string", function() return "a" * x end)
    h.assert_error("moonml.div:", "got table", function() return x / {} end)
    h.assert_error("moonml.pow:", "got boolean", function() return x ^ true end)
    h.assert_error("moonml.add:", "got nil", function() return x + nil end)
    h.assert_error("moonml.neg:", "bool", function() return -ml.tensor({ true }) end)
    h.assert_error("moonml.sub:", "bool", function() return 1 - ml.tensor({ true }) end)
  end)

  it("leave comparisons to methods (no __eq, __lt, __le)", function()
    local mt = getmetatable(x)
    assert.is_nil(rawget(mt, "__eq"))
    assert.is_nil(rawget(mt, "__lt"))
    assert.is_nil(rawget(mt, "__le"))
    h.assert_close(x:gt(3), { { false, false, false }, { true, true, true } }, { dtype = "bool" })
    h.assert_close(ml.lt(2, x), { { false, false, true }, { true, true, true } })
  end)

  it("treat a Lua float like Python's float and a Lua integer like Python's int", function()
    local i = ml.tensor({ 1, 2 }, "int64")
    assert.are.equal("int64", (i + 2):dtype())
    assert.are.equal("float32", (i + 2.0):dtype())
    assert.are.equal("int64", (i * 3):dtype())
    assert.are.equal("float32", (i / 1):dtype())
    assert.are.equal("int64", (ml.tensor({ true }) + 1):dtype())
    assert.are.equal("float32", (ml.tensor({ true }) + 1.0):dtype())
    assert.are.equal("float64", (ml.tensor({ 1 }, "float64") + 1.5):dtype())
  end)
end)

describe("type promotion", function()
  it("counts a 0-d tensor like any other (a documented difference from PyTorch)", function()
    local d = ml.tensor(0.5, "float64")
    local f = ml.tensor({ 1, 2 })
    h.assert_close(d + f, { 1.5, 2.5 }, { dtype = "float64" })
    h.assert_close(f * d, { 0.5, 1 }, { dtype = "float64" })
  end)

  it("keeps NaN and signed zeros as IEEE does", function()
    local z = ml.tensor({ -0.0 })
    assert.are.equal(-math.huge, 1 / z:relu():item())
    assert.are.equal(-math.huge, 1 / (-ml.tensor({ 0.0 })):item())
    local n = ml.tensor({ 0 / 0 })
    local r = n:relu():item()
    assert.is_true(r ~= r)
    assert.is_false(n:eq(n):item())
    assert.is_true(n:ne(n):item())
  end)
end)

describe("in place", function()
  it("returns self and writes through views into the base", function()
    local base = ml.zeros(3, 4)
    local row = base[2]
    assert.is_true(rawequal(row:add_(1), row))
    base:t()[4]:mul_(0):add_(7) -- column 4 through a transposed view
    h.assert_close(base, { { 0, 0, 0, 7 }, { 1, 1, 1, 7 }, { 0, 0, 0, 7 } })
    base:slice(2, 1, 4, 2):sub_(ml.tensor({ 1, 2 }), { alpha = 2 })
    h.assert_close(base, { { -2, 0, -4, 7 }, { -1, 1, -3, 7 }, { -2, 0, -4, 7 } })
    base:relu_()
    h.assert_close(base, { { 0, 0, 0, 7 }, { 0, 1, 0, 7 }, { 0, 0, 0, 7 } })
  end)

  it("leaves self unchanged when the result dtype does not fit", function()
    local i = ml.tensor({ 1, 2, 3 }, "int64")
    h.assert_error("moonml.div_:", "result type float32 cannot be stored in place in an int64 tensor",
      i.div_, i, 2)
    h.assert_error("moonml.add_:", "float32", i.add_, i, 0.5)
    h.assert_error("moonml.add_:", "float32", i.add_, i, ml.tensor({ 1, 1, 1 }))
    h.assert_error("moonml.exp_:", "float32", i.exp_, i)
    h.assert_error("moonml.pow_:", nil, i.pow_, i, -1)
    local b = ml.tensor({ true, false })
    h.assert_error("moonml.add_:", "int64", b.add_, b, 1)
    h.assert_close(i, { 1, 2, 3 }, { dtype = "int64", rtol = 0, atol = 0 })
    h.assert_close(b, { true, false }, { dtype = "bool" })
  end)

  it("refuses to write into an expanded tensor", function()
    local e = ml.ones(1, 3):expand(2, 3)
    h.assert_error("moonml.add_:", "expanded", e.add_, e, 1)
    h.assert_error("moonml.sigmoid_:", "expanded", e.sigmoid_, e)
  end)

  it("refuses an other operand that would grow self", function()
    local s = ml.ones(3)
    h.assert_error("moonml.mul_:", "output with shape [3] doesn't match the broadcast shape [2, 3]",
      s.mul_, s, ml.ones(2, 3))
    h.assert_close(s, { 1, 1, 1 })
  end)
end)

describe("alpha", function()
  local a, b = ml.tensor({ 1, 2 }), ml.tensor({ 10, 20 })

  it("scales the other operand of add and sub", function()
    h.assert_close(a:add(b, { alpha = 0.5 }), { 6, 12 })
    h.assert_close(ml.sub(a, b, { alpha = 2 }), { -19, -38 })
    h.assert_close(a:add(3, { alpha = 2 }), { 7, 8 })
    h.assert_close(a:add(b, {}), { 11, 22 })
  end)

  it("rejects bad options", function()
    h.assert_error("moonml.add:", "options must be a table, got number", a.add, a, b, 2)
    h.assert_error("moonml.sub:", "unknown option 'beta'", a.sub, a, b, { beta = 1 })
    h.assert_error("moonml.add_:", "alpha must be a number, got string", a.add_, a, b,
      { alpha = "x" })
    h.assert_error("moonml.add:", "alpha must be an integer for an int64 result", ml.add,
      ml.tensor({ 1 }, "int64"), 1, { alpha = 0.5 })
    h.assert_error("moonml.add:", "argument 1 must be a tensor", ml.add, 1, a, { alpha = 2 })
  end)
end)

describe("bad input", function()
  local x = ml.ones(2, 3)
  local binary = { "add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge" }
  local inplace = { "add_", "sub_", "mul_", "div_", "pow_" }
  local unary = { "neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu" }

  for _, name in ipairs(binary) do
    it(name .. " rejects nil, strings, tables, booleans and clashing shapes", function()
      local f = x[name]
      h.assert_error("moonml." .. name .. ":", "got nil", f, x, nil)
      h.assert_error("moonml." .. name .. ":", "got string", f, x, "1")
      h.assert_error("moonml." .. name .. ":", "got table", f, x, { 1, 2, 3 })
      h.assert_error("moonml." .. name .. ":", "got boolean", f, x, true)
      h.assert_error("moonml." .. name .. ":", "got two numbers", ml[name], 1, 2)
      h.assert_error("moonml." .. name .. ":", "argument 1, got string", ml[name], "x", x)
      h.assert_error("moonml." .. name .. ":",
        "shapes [2, 3] and [2] cannot be broadcast together", f, x, ml.ones(2))
    end)
  end

  for _, name in ipairs(inplace) do
    it(name .. " rejects nil, non-tensor self, strings and clashing shapes", function()
      local y = ml.ones(2, 3)
      local f = y[name]
      h.assert_error("moonml." .. name .. ":", "got nil", f, y, nil)
      h.assert_error("moonml." .. name .. ":", "got string", f, y, "1")
      h.assert_error("moonml." .. name .. ":", "got table", f, y, {})
      h.assert_error("moonml." .. name .. ":", "argument 1", f, 1, y)
      h.assert_error("moonml." .. name .. ":", "cannot be broadcast", f, y, ml.ones(4))
      h.assert_close(y, ml.ones(2, 3))
    end)
  end

  for _, name in ipairs(unary) do
    it(name .. " rejects non-tensors", function()
      h.assert_error("moonml." .. name .. ":", "got nil", ml[name], nil)
      h.assert_error("moonml." .. name .. ":", "got number", ml[name], 2)
      h.assert_error("moonml." .. name .. ":", "got table", ml[name], { 1 })
      h.assert_error("moonml." .. name .. "_:", "got string", ml[name .. "_"], "x")
    end)
  end

  it("names the op when a broadcast result is too large", function()
    local a, b = ml.zeros(1, 30000000, 1), ml.zeros(30000000, 1, 1)
    h.assert_error("moonml.add:", "too large", function() return a + b end)
    h.assert_error("moonml.lt:", "too large", a.lt, a, b)
  end)

  it("reports a closed tensor", function()
    local c = ml.ones(2)
    do
      local _ <close> = c -- closes c at the end of this block
    end
    h.assert_error("moonml.add:", "closed", function() return ml.ones(2) + c end)
    h.assert_error("moonml.exp:", "closed", ml.exp, c)
  end)
end)

describe("large tensors (threaded and iterator paths)", function()
  it("adds 600000 contiguous elements", function()
    local n = 600000
    local a = ml.arange(1, n)
    local c = a + a
    assert.are.equal(2, c:get(1))
    assert.are.equal(2 * 65537, c:get(65537))
    assert.are.equal(2 * n, c:get(n))
    assert.is_true(c:allclose(a * 2))
    local d = a * 2
    d[n] = d[n] + 100 -- beyond rtol * 1.2e6 = 12, in the last chunk only
    assert.is_false(c:allclose(d))
    local s = a:sigmoid()
    assert.are.equal(1, s:get(n))
    a:sub_(a:slice(1, 1, n)) -- same view: each element read before it is written
    assert.is_true(a:allclose(ml.zeros(n)))
  end)

  it("adds a transposed 800 x 800 matrix", function()
    local m = ml.arange(1, 640000):reshape(800, 800)
    local s = m + m:t()
    for _, ij in ipairs({ { 1, 1 }, { 1, 800 }, { 800, 1 }, { 123, 456 }, { 800, 800 } }) do
      local i, j = ij[1], ij[2]
      assert.are.equal(m:get(i, j) + m:get(j, i), s:get(i, j))
    end
    assert.is_true(s:allclose(s:t()))
    m:add_(m:t()) -- overlapping in place: must read the transposed values before writing
    assert.is_true(m:allclose(s))
  end)
end)
