-- ml.linear (the fused x W^T + b behind nn.Linear and F.linear): outputs and gradients
-- against PyTorch 1.13 (spec/fixtures/linear.lua, written by spec/fixtures/gen_linear.py)
-- for each of its three ways of running the products (direct loops, the packed float32
-- GEMM, OpenBLAS), on contiguous and strided inputs; gradcheck in float64; threads; bad
-- input.
-- Tolerances: float32 rtol 1e-4 / atol 1e-5 (sums of up to 120 products in another order
-- than PyTorch's), float64 rtol 1e-10 / atol 1e-12.
local ml = require("moonml")
local h = require("helpers")
local F = ml.nn.functional

local fx = h.fixture("linear")

local function build(s)
  return ml.tensor(s.values, s.dtype):reshape(s.shape)
end

local function tol(dtype)
  if dtype == "float64" then
    return { rtol = 1e-10, atol = 1e-12 }
  end
  if dtype == "int64" then
    return { rtol = 0, atol = 0 }
  end
  return { rtol = 1e-4, atol = 1e-5 }
end

-- The same values in a non-contiguous view: x's transpose stored, then transposed back
-- (2-D), or every second element of a wider last dim.
local function strided(x)
  if x:dim() == 2 then
    local v = x:t():contiguous():t()
    assert(not v:is_contiguous() or x:size(1) <= 1 or x:size(2) <= 1)
    return v
  end
  local shape = x:shape()
  local wide = { table.unpack(shape) }
  wide[#wide] = wide[#wide] * 2
  local big = ml.zeros(wide, { dtype = x:dtype() })
  local v = big:slice(#wide, 1, wide[#wide] - 1, 2)
  ml.no_grad(function()
    v:copy_(x)
  end)
  return v
end

local function leaf(t, float)
  t = t:detach()
  if float then
    t:requires_grad_()
  end
  return t
end

describe("ml.linear against PyTorch", function()
  for _, c in ipairs(fx) do
    for _, layout in ipairs({ "contiguous", "strided" }) do
      it(c.name .. " (" .. layout .. ")", function()
        local dt = c.x.dtype
        local float = dt ~= "int64"
        local x, w = build(c.x), build(c.w)
        local b = c.b ~= "nil" and build(c.b) or nil
        if layout == "strided" then
          x, w = strided(x), strided(w)
          b = b and strided(b)
        end
        x, w = leaf(x, float), leaf(w, float)
        b = b and leaf(b, float)
        local y = ml.linear(x, w, b)
        h.assert_close(y, build(c.y), tol(dt))
        assert.are.equal(dt, y:dtype())
        if not float then
          return
        end
        assert.are.equal("LinearBackward", y.grad_fn)
        local loss = (y * build(c.g)):sum()
        loss:backward()
        h.assert_close(x.grad, build(c.dx), tol(dt))
        h.assert_close(w.grad, build(c.dw), tol(dt))
        if b then
          h.assert_close(b.grad, build(c.db), tol(dt))
        end
        assert.is_true(w.grad:is_contiguous())
      end)
    end
  end

  it("gives the same through nn.Linear and F.linear", function()
    local c = fx[1]
    local l = ml.nn.Linear(5, 4, { dtype = "float64" })
    ml.no_grad(function()
      l.weight:copy_(build(c.w))
      l.bias:copy_(build(c.b))
    end)
    h.assert_close(l(build(c.x)), build(c.y), tol("float64"))
    h.assert_close(F.linear(build(c.x), build(c.w), build(c.b)), build(c.y), tol("float64"))
  end)
end)

describe("ml.linear on few rows (the direct loops)", function()
  it("matches the float64 product for widths around the 16-lane blocks, any bias stride", function()
    ml.manual_seed(9)
    for _, s in ipairs({ { 1, 1, 1 }, { 1, 37, 20 }, { 3, 16, 16 }, { 2, 33, 47 }, { 1, 5, 3 } }) do
      local rows, k, n = s[1], s[2], s[3]
      local x, w = ml.randn(rows, k), ml.randn(n, k)
      local b = ml.randn(n, 3):select(2, 2) -- a bias with stride 3
      local want = x:double():matmul(w:double():t()) + b:double()
      h.assert_close(ml.linear(x, w, b):double(), want, { rtol = 1e-5, atol = 1e-5 })
      h.assert_close(ml.linear(x, w, b:contiguous()):double(), want, { rtol = 1e-5, atol = 1e-5 })
      h.assert_close(ml.linear(x, w):double(), x:double():matmul(w:double():t()),
        { rtol = 1e-5, atol = 1e-5 })
    end
  end)
end)

describe("ml.linear gradients", function()
  it("pass gradcheck on the direct loops (float64)", function()
    ml.manual_seed(1)
    local x = ml.randn(3, 6, { dtype = "float64" }):requires_grad_()
    local w = ml.randn(5, 6, { dtype = "float64" }):requires_grad_()
    local b = ml.randn(5, { dtype = "float64" }):requires_grad_()
    assert(ml.gradcheck(ml.linear, { x, w, b }))
    local x3 = ml.randn(2, 2, 6, { dtype = "float64" }):requires_grad_()
    assert(ml.gradcheck(function(a, m)
      return ml.linear(a, m)
    end, { x3, w }))
  end)

  it("pass gradcheck through OpenBLAS (float64, input and bias)", function()
    ml.manual_seed(2)
    local x = ml.randn(6, 80, { dtype = "float64" }):requires_grad_()
    local w = ml.randn(70, 80, { dtype = "float64" }) -- 6 * 80 * 70 products: BLAS
    local b = ml.randn(70, { dtype = "float64" }):requires_grad_()
    assert(ml.gradcheck(ml.linear, { x, w, b }))
  end)

  it("computes only the gradients that are needed", function()
    local x = ml.randn(4, 3)
    local w = ml.randn(2, 3):requires_grad_()
    local y = ml.linear(x, w)
    y:sum():backward()
    assert.is_nil(x.grad)
    h.assert_close(w.grad, ml.ones(4):view(1, 4):matmul(x):expand(2, 3))
    local xg = ml.randn(4, 3):requires_grad_()
    ml.linear(xg, ml.randn(2, 3), ml.zeros(2)):sum():backward()
    assert.are.same({ 4, 3 }, xg.grad:shape())
  end)

  it("accumulates over two uses of one weight and checks saved tensors", function()
    local w = ml.randn(3, 2):requires_grad_()
    local x1, x2 = ml.randn(5, 2), ml.randn(7, 2)
    local loss = ml.linear(x1, w):sum() + ml.linear(x2, w):sum()
    loss:backward()
    local want = ml.ones(3, 5):matmul(x1) + ml.ones(3, 7):matmul(x2)
    h.assert_close(w.grad, want, { rtol = 1e-5, atol = 1e-6 })
    local x = ml.randn(5, 2):requires_grad_()
    local y = ml.linear(x, w)
    ml.no_grad(function()
      w:mul_(2)
    end)
    h.assert_error("moonml.backward:", "modified by an in-place", function()
      y:sum():backward()
    end)
  end)

  it("records nothing under no_grad", function()
    local w = ml.randn(3, 2):requires_grad_()
    local y = ml.no_grad(function()
      return ml.linear(ml.randn(4, 2), w)
    end)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
  end)
end)

describe("ml.linear on threads", function()
  it("splits a large float32 product and matches matmul", function()
    ml.manual_seed(3)
    local x, w, b = ml.randn(120, 300), ml.randn(200, 300), ml.randn(200)
    local want = x:double():matmul(w:double():t()) + b:double()
    local saved = ml.get_num_threads()
    for _, n in ipairs({ 1, 2 }) do
      ml.set_num_threads(n)
      local xl, wl = x:clone():requires_grad_(), w:clone():requires_grad_()
      local y = ml.linear(xl, wl, b)
      h.assert_close(y:double(), want, { rtol = 1e-4, atol = 1e-3 })
      local g = ml.ones(120, 200)
      y:backward(g)
      h.assert_close(wl.grad:double(), g:double():t():matmul(x:double()), { rtol = 1e-4, atol = 1e-3 })
      h.assert_close(xl.grad:double(), g:double():matmul(w:double()), { rtol = 1e-4, atol = 1e-3 })
    end
    ml.set_num_threads(saved)
  end)
end)

describe("ml.linear bad input", function()
  it("names what is wrong", function()
    local x, w = ml.randn(2, 3), ml.randn(4, 3)
    h.assert_error("moonml.linear:", "3 features", ml.linear, ml.randn(2, 3), ml.randn(4, 5))
    h.assert_error("moonml.linear:", "2-D weight", ml.linear, x, ml.randn(3))
    h.assert_error("moonml.linear:", "bias of shape [4]", ml.linear, x, w, ml.randn(3))
    h.assert_error("moonml.linear:", "dtype", ml.linear, x, w:double())
    h.assert_error("moonml.linear:", "float32, float64 or int64", ml.linear,
      ml.ones(2, 3, { dtype = "bool" }), ml.ones(4, 3, { dtype = "bool" }))
    h.assert_error("moonml.linear:", "0 features", ml.linear, ml.tensor(1), w)
    h.assert_error("moonml.linear:", "expected a tensor", ml.linear, "x", w)
    h.assert_error("moonml.linear:", "expected a tensor", ml.linear, x, nil)
  end)

  it("names nn.Linear when the layer calls it", function()
    local l = ml.nn.Linear(3, 2)
    h.assert_error("moonml.nn.Linear:", "4 features in its last dimension, the weight expects 3",
      l, ml.randn(2, 4))
    h.assert_error("moonml.nn.Linear:", "expected a tensor", l, { 1, 2, 3 })
  end)

  it("keeps PyTorch's other shapes in F.linear (1-D weight, broadcast bias)", function()
    local x, w = ml.randn(5, 3), ml.randn(3)
    h.assert_close(F.linear(x, w), x:matmul(w))
    local w2, b2 = ml.randn(4, 3), ml.randn(5, 4)
    h.assert_close(F.linear(x, w2, b2), x:matmul(w2:t()) + b2, { rtol = 1e-6, atol = 1e-6 })
  end)
end)
