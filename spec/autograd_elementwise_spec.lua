-- Autograd of the element-wise ops: gradcheck (float64) of every op and in-place form, with
-- broadcasting, Lua-number operands and non-contiguous leaves; gradients against PyTorch
-- (spec/fixtures/autograd_ew.lua, written by spec/fixtures/gen_autograd_ew.py); in-place
-- rules, saved-tensor checks, accumulation, no_grad, detach and the error cases.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("autograd_ew")

local F64 = { dtype = "float64" }

local function check(fn, inputs, opts)
  local ok, msg = ml.gradcheck(fn, inputs, opts)
  assert(ok, msg)
end

local function randn(...)
  return ml.randn({ ... }, F64)
end

-- values in [0.5, 2): safe for log, sqrt, division and pow bases
local function pos(...)
  return ml.rand({ ... }, F64) * 1.5 + 0.5
end

-- a leaf of shape {r, c} that is the transpose of a contiguous {c, r} tensor
local function transposed(gen, r, c)
  return gen(c, r):t():requires_grad_()
end

-- a leaf of shape {r, c} taking every other column of a {r, 2c} tensor
local function sliced(gen, r, c)
  return gen(r, 2 * c):slice(2, 1, 2 * c, 2):requires_grad_()
end

-- Builds a fixture case's inputs: leaves, transposed where the case says so.
local function fixture_inputs(case)
  local xs = {}
  for k, s in ipairs(case.inputs) do
    local x = ml.tensor(s.values, s.dtype):reshape(s.shape)
    if s.t then
      x = x:t()
      assert.is_false(x:is_contiguous())
    end
    if s.grad then
      x:requires_grad_()
    end
    xs[k] = x
  end
  return xs
end

-- Runs fn on the case's inputs, backward from its scalar output, and compares every
-- leaf's gradient (values and dtype) with PyTorch's.
local function check_fixture(id, fn, opts)
  local case = assert(fx[id], "no fixture case " .. id)
  local xs = fixture_inputs(case)
  fn(table.unpack(xs)):backward()
  for k, want in ipairs(case.grads) do
    if want then
      assert(xs[k].grad, id .. ": input " .. k .. " got no gradient")
      h.assert_close(xs[k].grad, want, opts or (want.dtype == "float64" and
        { rtol = 1e-10, atol = 1e-12 } or { rtol = 1e-5, atol = 1e-6 }), { dtype = want.dtype })
      assert.equal(want.dtype, xs[k].grad:dtype())
    else
      assert.is_nil(xs[k].grad)
    end
  end
end

local binary_ops = {
  add = function(a, b) return a + b end,
  sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end,
  div = function(a, b) return a / b end,
  pow = function(a, b) return a ^ b end,
}

local shape_pairs = {
  { "same shapes", function() return pos(2, 3), pos(2, 3) end },
  { "a row broadcast", function() return pos(2, 3), pos(3) end },
  { "an outer broadcast", function() return pos(2, 1), pos(1, 3) end },
  { "a 0-d operand", function() return pos(2, 3), ml.tensor(1.7, "float64") end },
  { "transposed and sliced leaves", function() return transposed(pos, 2, 3), sliced(pos, 2, 3) end },
}

describe("autograd of binary ops", function()
  for name, op in pairs(binary_ops) do
    for _, sp in ipairs(shape_pairs) do
      it(name .. " with " .. sp[1] .. " (both orders)", function()
        local a, b = sp[2]()
        a:requires_grad_()
        b:requires_grad_()
        check(op, { a, b })
        check(op, { b, a })
      end)
    end

    it(name .. " gives no gradient to an operand that does not require grad", function()
      local a, b = pos(2, 3):requires_grad_(), pos(3)
      local y = op(a, b)
      assert.is_true(y.requires_grad)
      y:sum():backward()
      assert.is_nil(b.grad)
      assert.same({ 2, 3 }, a.grad:shape())
      check(op, { a, b })
    end)
  end

  it("records the op's name in grad_fn", function()
    local a, b = pos(2):requires_grad_(), pos(2)
    assert.equal("AddBackward", (a + b).grad_fn)
    assert.equal("SubBackward", (a - 1).grad_fn)
    assert.equal("MulBackward", (2 * a).grad_fn)
    assert.equal("DivBackward", (1 / a).grad_fn)
    assert.equal("PowBackward", (a ^ b).grad_fn)
    assert.is_false((a + b).is_leaf)
  end)

  it("takes Lua numbers on either side", function()
    local fns = {
      function(x) return x + 2 end, function(x) return 2 + x end,
      function(x) return x - 2.5 end, function(x) return 2.5 - x end,
      function(x) return x * 3 end, function(x) return -1.5 * x end,
      function(x) return x / 4 end, function(x) return 4 / x end,
      function(x) return x ^ 2 end, function(x) return x ^ 3 end, function(x) return x ^ 2.5 end,
      function(x) return x ^ -1 end, function(x) return x ^ -2 end, function(x) return x ^ 0.5 end,
      function(x) return x ^ -0.5 end, function(x) return x ^ 1 end,
      function(x) return 2.5 ^ x end, function(x) return 0.5 ^ x end,
    }
    for _, f in ipairs(fns) do
      check(f, { pos(2, 3):requires_grad_() })
      check(f, { transposed(pos, 2, 3) })
    end
  end)

  it("add and sub with alpha", function()
    local a, b = randn(2, 3):requires_grad_(), randn(3):requires_grad_()
    check(function(x, y) return ml.add(x, y, { alpha = 2.5 }) end, { a, b })
    check(function(x, y) return ml.sub(x, y, { alpha = -0.5 }) end, { a, b })
    check(function(x, y) return x:add(y, { alpha = 3 }) end, { b, a })
    check(function(x) return ml.add(x, 3, { alpha = 2 }) end, { a })
    check(function(x) return ml.sub(x, 1.5, { alpha = 2 }) end, { a })
  end)

  it("pow with a tensor base and exponent of mixed signs", function()
    -- a negative base is fine for integer exponents only; keep both well defined
    local base = pos(2, 3):requires_grad_()
    local e = randn(2, 3):requires_grad_()
    check(function(x, y) return x ^ y end, { base, e })
    local nb = (pos(3) * -1):requires_grad_()
    local ie = ml.tensor({ 2, 3, -1 }, "float64")
    check(function(x) return x ^ ie end, { nb })
  end)

  it("promotes mixed float32 and float64, each gradient in its input's dtype", function()
    local x = ml.randn(3):requires_grad_()
    local y = randn(3):requires_grad_()
    local z = x:exp() * y + x / y
    assert.equal("float64", z:dtype())
    z:sum():backward()
    assert.equal("float32", x.grad:dtype())
    assert.equal("float64", y.grad:dtype())
    local xv, yv = x:detach():double(), y:detach()
    h.assert_close(x.grad, (xv:exp() * yv + 1 / yv):float(), { rtol = 1e-6 })
    h.assert_close(y.grad, xv:exp() - xv / (yv * yv), { rtol = 1e-6 })
    -- in place: a float32 tensor times a float64 one stays float32
    x.grad, y.grad = nil, nil
    local u = x * 1
    u:mul_(y)
    assert.equal("float32", u:dtype())
    u:sum():backward()
    assert.equal("float32", x.grad:dtype())
    assert.equal("float64", y.grad:dtype())
    h.assert_close(x.grad, yv:float(), { rtol = 1e-6 })
    h.assert_close(y.grad, xv, { rtol = 1e-6 })
  end)

  it("int64 operands take part without a gradient", function()
    local n = ml.tensor({ 1, 2, 3 }, "int64")
    local x = ml.tensor({ 0.5, 1.5, 2.5 }):requires_grad_()
    local y = n * x + n
    assert.equal("float32", y:dtype())
    assert.is_true(y.requires_grad)
    y:sum():backward()
    h.assert_close(x.grad, { 1, 2, 3 })
    assert.is_false(n.requires_grad)
    assert.is_nil(n.grad)
    h.assert_error("moonml.requires_grad_:", "floating-point", function() n:requires_grad_() end)
    h.assert_error("moonml.requires_grad_:", "floating-point",
      function() ml.tensor({ true }, "bool"):requires_grad_() end)
  end)

  it("comparisons are outside the graph", function()
    local x = randn(4):requires_grad_()
    for _, c in ipairs({ x:gt(0), x:lt(x * 2), x:eq(1), x:ne(x), x:le(0.5), x:ge(-0.5) }) do
      assert.equal("bool", c:dtype())
      assert.is_false(c.requires_grad)
      assert.is_nil(c.grad_fn)
    end
  end)
end)

local unary_names = { "neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu" }
-- values away from the kinks of abs and relu, and positive where log and sqrt need it
local function unary_input(name)
  if name == "log" or name == "sqrt" then
    return ml.tensor({ { 0.3, 1.2, 2.5 }, { 0.7, 1.9, 0.45 } }, "float64")
  end
  return ml.tensor({ { -1.3, 0.4, 2.1 }, { 0.7, -0.25, -2.2 } }, "float64")
end

describe("autograd of unary ops", function()
  for _, name in ipairs(unary_names) do
    it(name .. " (contiguous and transposed)", function()
      local f = function(x) return x[name](x) end
      check(f, { unary_input(name):requires_grad_() })
      check(f, { unary_input(name):t():requires_grad_() })
      check(f, { ml.tensor(1.3, "float64"):requires_grad_() })
      assert.equal(name:sub(1, 1):upper() .. name:sub(2) .. "Backward",
        f(unary_input(name):requires_grad_()).grad_fn)
    end)
  end

  it("unary minus", function()
    check(function(x) return -x end, { randn(3):requires_grad_() })
  end)

  it("abs and relu give 0 at 0, as PyTorch", function()
    local x = ml.tensor({ 0, -0.0, 1, -1 }, "float64"):requires_grad_()
    x:abs():sum():backward()
    h.assert_close(x.grad, { 0, 0, 1, -1 })
    x.grad = nil
    x:relu():sum():backward()
    h.assert_close(x.grad, { 0, 0, 1, 0 })
  end)
end)

describe("autograd of in-place ops", function()
  local binary_inplace = {
    add_ = function(y, b) return y:add_(b) end,
    add_alpha = function(y, b) return y:add_(b, { alpha = -2.5 }) end,
    sub_ = function(y, b) return y:sub_(b) end,
    sub_alpha = function(y, b) return y:sub_(b, { alpha = 1.5 }) end,
    mul_ = function(y, b) return y:mul_(b) end,
    div_ = function(y, b) return y:div_(b) end,
    pow_ = function(y, b) return y:pow_(b) end,
  }
  for name, op in pairs(binary_inplace) do
    it(name .. " on a non-leaf, other full size, broadcast or transposed", function()
      local f = function(a, b)
        local y = a * 1
        op(y, b)
        return y
      end
      check(f, { pos(2, 3):requires_grad_(), pos(2, 3):requires_grad_() })
      check(f, { pos(2, 3):requires_grad_(), pos(3):requires_grad_() })
      check(f, { pos(2, 3):requires_grad_(), transposed(pos, 2, 3) })
      check(f, { sliced(pos, 2, 3), pos(2, 1):requires_grad_() })
    end)

    it(name .. " with a Lua number", function()
      check(function(a)
        local y = a + 0
        op(y, 1.75)
        return y
      end, { pos(2, 3):requires_grad_() })
    end)

    it(name .. " into a tensor that does not require grad", function()
      local f = function(b)
        local y = ml.full({ 2, 3 }, 1.25, F64)
        op(y, b)
        return y
      end
      check(f, { pos(2, 3):requires_grad_() })
      check(f, { pos(3):requires_grad_() })
    end)
  end

  for _, name in ipairs(unary_names) do
    it(name .. "_ on a non-leaf", function()
      check(function(a)
        local y = a * 1
        y[name .. "_"](y)
        return y
      end, { unary_input(name):requires_grad_() })
    end)
  end

  it("rebases the history: y = x * 2; y:add_(1)", function()
    local x = randn(3):requires_grad_()
    local y = x * 2
    assert.equal("MulBackward", y.grad_fn)
    assert.equal(y, y:add_(1))
    assert.equal("AddBackward", y.grad_fn)
    assert.is_false(y.is_leaf)
    y:sum():backward()
    h.assert_close(x.grad, { 2, 2, 2 })
  end)

  it("makes a tensor without grad part of the graph when the other operand requires it", function()
    local w = randn(3):requires_grad_()
    local a = ml.zeros(3, F64)
    a:add_(w)
    assert.is_true(a.requires_grad)
    assert.is_false(a.is_leaf)
    assert.equal("AddBackward", a.grad_fn)
  end)

  it("self times itself gets the gradient of a square", function()
    local x = randn(4):requires_grad_()
    local y = x * 1
    y:mul_(y)
    y:sum():backward()
    h.assert_close(x.grad, x:detach() * 2, { rtol = 1e-12 })
  end)

  it("refuses a leaf that requires grad, in grad mode, and leaves it unchanged", function()
    local x = ml.tensor({ 1, 2, 3 }, "float64"):requires_grad_()
    local forms = {
      add_ = function() x:add_(1) end, sub_ = function() x:sub_(x) end,
      mul_ = function() x:mul_(2) end, div_ = function() x:div_(2) end,
      pow_ = function() x:pow_(2) end, neg_ = function() x:neg_() end,
      abs_ = function() x:abs_() end, exp_ = function() x:exp_() end,
      log_ = function() x:log_() end, sqrt_ = function() x:sqrt_() end,
      tanh_ = function() x:tanh_() end, sigmoid_ = function() x:sigmoid_() end,
      relu_ = function() x:relu_() end,
    }
    for name, f in pairs(forms) do
      h.assert_error("moonml." .. name .. ":",
        "a leaf tensor that requires grad cannot be changed in place (use ml.no_grad or detach)", f)
    end
    h.assert_close(x, { 1, 2, 3 })
    -- outside grad mode it may change (an optimizer step)
    ml.no_grad(function() x:mul_(2) end)
    h.assert_close(x, { 2, 4, 6 })
    assert.is_true(x.is_leaf)
    assert.is_true(x.requires_grad)
  end)

  it("a failed in-place op leaves the tensor and its history as they were", function()
    local x = randn(2, 3):requires_grad_()
    local y = x * 2
    local before = y:detach():clone()
    h.assert_error("moonml.add_:", nil, function() y:add_(randn(4)) end)
    assert.equal("MulBackward", y.grad_fn)
    h.assert_close(y:detach(), before)
    y:sum():backward()
    h.assert_close(x.grad, ml.full({ 2, 3 }, 2, F64))
  end)

  it("under no_grad changes values without recording", function()
    local x = randn(3):requires_grad_()
    local y = x * 2
    ml.no_grad(function() y:add_(1) end)
    assert.equal("MulBackward", y.grad_fn)
  end)
end)

describe("saved tensors and in-place changes", function()
  it("exp saves its output: changing it in place breaks backward", function()
    local x = randn(3):requires_grad_()
    local y = x:exp()
    y:add_(1)
    h.assert_error("moonml.backward:", "modified by an in-place operation",
      function() y:sum():backward() end)
    assert.is_nil(x.grad)
  end)

  it("mul saves its operands: changing one under no_grad or through detach breaks backward", function()
    local x, b = randn(3):requires_grad_(), randn(3):requires_grad_()
    local y = x * b
    ml.no_grad(function() b:add_(1) end)
    h.assert_error("moonml.backward:", "modified by an in-place operation",
      function() y:sum():backward() end)
    local z = x:sigmoid()
    z:detach():mul_(2)
    h.assert_error("moonml.backward:", "SigmoidBackward", function() z:sum():backward() end)
    assert.is_nil(x.grad)
    assert.is_nil(b.grad)
  end)

  it("each in-place form that saves a value is checked", function()
    local x = pos(3):requires_grad_()
    for _, name in ipairs({ "exp_", "sqrt_", "tanh_", "sigmoid_", "relu_" }) do
      local y = x * 1
      y[name](y)
      y:mul_(2) -- changes what the in-place node saved
      h.assert_error("moonml.backward:", "modified by an in-place operation",
        function() y:sum():backward() end)
    end
    -- abs_ and log_ save a copy of the old values: later changes do not matter
    for _, name in ipairs({ "abs_", "log_" }) do
      local y = x * 1
      y[name](y)
      y:mul_(2)
      y:sum():backward()
    end
  end)

  it("an add of an untouched tensor needs nothing saved", function()
    local x = randn(3):requires_grad_()
    local y = x + 1
    y:mul_(3)
    y:sum():backward()
    h.assert_close(x.grad, { 3, 3, 3 })
  end)
end)

describe("backward", function()
  it("twice through a node that saved tensors needs retain_graph", function()
    local x = randn(3):requires_grad_()
    local y = x:exp():sum()
    y:backward()
    h.assert_error("moonml.backward:", "already freed", function() y:backward() end)
    local z = (x * x):sum()
    z:backward({ retain_graph = true })
    z:backward()
  end)

  it("accumulates gradients over calls", function()
    local x = randn(2, 3):requires_grad_()
    local y = (x * x):sum()
    y:backward({ retain_graph = true })
    local once = x.grad:clone()
    y:backward()
    h.assert_close(x.grad, once * 2, { rtol = 1e-12 })
    ;(x * 3):sum():backward()
    h.assert_close(x.grad, once * 2 + 3, { rtol = 1e-12 })
  end)

  it("raises for a tensor that does not require grad", function()
    h.assert_error("moonml.backward:", "does not require grad",
      function() randn(3):sum():backward() end)
    h.assert_error("moonml.backward:", "does not require grad",
      function() (randn(3) + 1):exp():sum():backward() end)
    h.assert_error("moonml.backward:", "does not require grad",
      function() ml.tensor({ 1, 2 }, "int64"):sum():backward() end)
  end)

  it("with a gradient for a non-scalar output", function()
    local x = randn(2, 3):requires_grad_()
    local g = randn(2, 3)
    x:tanh():backward(g)
    local t = x:detach():tanh()
    h.assert_close(x.grad, g * (1 - t * t), { rtol = 1e-12 })
  end)
end)

describe("grad mode and detach", function()
  it("no_grad stops recording", function()
    local x = randn(3):requires_grad_()
    local y = ml.no_grad(function()
      assert.is_false(ml.is_grad_enabled())
      return (x * 2 + 1):exp():sum()
    end)
    assert.is_true(ml.is_grad_enabled())
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
    assert.is_true((x * 2).requires_grad)
  end)

  it("detach gives a view outside the graph", function()
    local x = randn(3):requires_grad_()
    local d = (x * 2):detach()
    assert.is_false(d.requires_grad)
    assert.is_true(d.is_leaf)
    assert.is_false((d * x:detach()).requires_grad)
    local v = x:detach()
    v:add_(1) -- shares x's data; allowed, as v does not require grad
    h.assert_close(x:detach(), v)
  end)
end)

describe("gradients against PyTorch", function()
  local F = {
    ["pow tensor tensor corners"] = function(x, y) return (x ^ y):sum() end,
    ["pow zero base"] = function(y) return (0 ^ y):sum() end,
    ["pow scalar base"] = function(y) return (2 ^ y):sum() end,
    ["pow negative scalar base"] = function(y) return ((-2) ^ y):sum() end,
    ["pow exponent 0"] = function(x) return (x ^ 0):sum() end,
    ["pow exponent 0.5"] = function(x) return (x ^ 0.5):sum() end,
    ["pow scalar exponents"] = function(x) return (x ^ 2.5 + x ^ -2 + x ^ 3 - x ^ -0.5):sum() end,
    ["pow float32"] = function(x, y) return ((x ^ y) * 0.5 + x ^ 2):sum() end,
    ["abs relu at zero"] = function(x) return (x:abs() * 3 + x:relu()):sum() end,
    ["broadcast arithmetic"] = function(a, b, c)
      return ((a * b) / c + a ^ c - b + ml.add(a, b, { alpha = 2.5 })
        - ml.sub(a, c, { alpha = -1.5 })):sum()
    end,
    ["scalar operands"] = function(x) return ((2 - x) * 3 + 1 / x + x / 4 - 5 + 2.5 * x):sum() end,
    ["mixed float32 float64"] = function(x, y) return (x * y + x / y + x:exp() * y):sum() end,
    ["transposed input"] = function(x, b) return (x:sigmoid() * b + x * x:tanh()):sum() end,
    ["in-place chain"] = function(x, b)
      local y = x * 2
      y:add_(1)
      y:mul_(b)
      y:sub_(x, { alpha = 0.5 })
      y:div_(b + 3)
      y:pow_(2)
      y:abs_()
      y:tanh_()
      return y:sum()
    end,
    ["in-place into a tensor without grad"] = function(w)
      local a = ml.zeros(2, 3, F64)
      a:add_(w)
      a:mul_(w)
      a:sub_(1.5)
      return (a * ml.arange(0, 5, F64):reshape(2, 3)):sum()
    end,
    ["unary in-place"] = function(x)
      local y = x * 1
      y:exp_()
      local z = x * 1
      z:log_()
      local u = x + 0
      u:sqrt_()
      local v = x - 0
      v:sigmoid_()
      return (y * 1.5 + z * 2 + u * 0.5 + v):sum()
    end,
  }
  for _, name in ipairs(unary_names) do
    F["unary " .. name] = function(x, w) return (x[name](x) * w):sum() end
  end

  for id, fn in pairs(F) do
    it(id, function()
      check_fixture(id, fn)
    end)
  end
end)

describe("element-wise in-place ops on views", function()

  it("rewrite the base's history (binary op on a view of a non-leaf)", function()
    local x = ml.ones(4, { requires_grad = true, dtype = "float64" })
    local y = x * 2
    y:narrow(1, 1, 2):mul_(3)
    y:sum():backward()
    h.assert_close(x.grad, { 6, 6, 2, 2 })
  end)

  it("rewrite the base's history (unary op on a view, other elements untouched)", function()
    local x = ml.tensor({ 0, 1, 2 }, { requires_grad = true, dtype = "float64" })
    local y = x * 1
    y:slice(1, 2, 3):exp_()
    y:sum():backward()
    h.assert_close(x.grad, { 1, math.exp(1), math.exp(2) }, { rtol = 1e-12 })
  end)

  it("bring a tensor outside the graph into it when the other operand requires grad", function()
    local a = ml.ones(3, { requires_grad = true, dtype = "float64" })
    local out = ml.zeros(2, 3, { dtype = "float64" })
    out[2]:add_(a * 4)
    assert.is_true(out.requires_grad)
    out:sum():backward()
    h.assert_close(a.grad, { 4, 4, 4 })
  end)

  it("refuse to change a view of a leaf that requires grad, leaving it unchanged", function()
    local x = ml.ones(4, { requires_grad = true })
    h.assert_error("moonml.mul_:", "view of a leaf", function()
      x:narrow(1, 1, 2):mul_(3)
    end)
    h.assert_error("moonml.newindex:", "leaf tensor that requires grad", function()
      x[1] = 0 -- assignment is refused too
    end)
    h.assert_close(x, { 1, 1, 1, 1 })
    ml.no_grad(function()
      x:narrow(1, 1, 2):mul_(3)
    end)
    h.assert_close(x, { 3, 3, 1, 1 })
  end)
end)
