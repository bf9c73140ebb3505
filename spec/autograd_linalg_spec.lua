-- Gradients of the matrix products: matmul (every torch.matmul case, batch broadcasting
-- included), dot, mv, mm, bmm, addmm. gradcheck on float64 compares them with central
-- differences; spec/autograd_engine_spec.lua compares a few with PyTorch's.
local ml = require("moonml")
local h = require("helpers")

local F64 = { dtype = "float64" }

local function leaf(...)
  return ml.randn(...):double():requires_grad_()
end

-- a float64 leaf that is a strided view: transposed (last two dims swapped)
local function leaf_t(...)
  local shape = { ... }
  local n = #shape
  shape[n - 1], shape[n] = shape[n], shape[n - 1]
  local x = ml.randn(shape, F64):transpose(-1, -2)
  assert(not x:is_contiguous() or x:numel() <= 1)
  return x:requires_grad_()
end

-- tighter than gradcheck's float64 defaults: products are exact up to rounding, and the
-- central difference of a bilinear function has no truncation error
local function check(fn, inputs)
  local ok, msg = ml.gradcheck(fn, inputs, { atol = 1e-8, rtol = 1e-7 })
  assert(ok, msg)
end

local matmul = function(a, b)
  return a:matmul(b)
end

describe("matmul gradients", function()
  ml.manual_seed(11)
  local cases = {
    { "1-D . 1-D", { 4 }, { 4 } },
    { "2-D @ 1-D", { 3, 4 }, { 4 } },
    { "1-D @ 2-D", { 4 }, { 4, 2 } },
    { "2-D @ 2-D", { 3, 4 }, { 4, 2 } },
    { "3-D @ 2-D (batch folded)", { 2, 3, 4 }, { 4, 2 } },
    { "3-D @ 1-D", { 2, 3, 4 }, { 4 } },
    { "1-D @ 3-D", { 4 }, { 2, 4, 3 } },
    { "2-D @ 3-D (a broadcast over the batch)", { 3, 4 }, { 2, 4, 2 } },
    { "3-D @ 3-D", { 2, 3, 4 }, { 2, 4, 2 } },
    { "batch dims broadcast both ways", { 2, 1, 3, 4 }, { 5, 4, 2 } },
    { "size-1 batch dim against a larger one", { 1, 3, 4 }, { 3, 4, 2 } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      check(matmul, { leaf(c[2]), leaf(c[3]) })
    end)
  end
  it("non-contiguous operands (transposed, sliced with a step, expanded)", function()
    check(matmul, { leaf_t(3, 4), leaf_t(4, 2) })
    check(matmul, { leaf_t(2, 3, 4), leaf_t(4, 2) })
    local a = ml.randn(3, 8, F64):slice(2, 1, 8, 2):requires_grad_()
    assert.is_false(a:is_contiguous())
    check(matmul, { a, leaf(4) })
    -- an expanded operand is a view of the leaf: the engine sums its gradient back
    local b = leaf(4, 1)
    check(function(x, y)
      return x:matmul(y:expand(4, 3))
    end, { leaf(2, 4), b })
    check(function(x, y)
      return x:expand(3, 2, 4):matmul(y)
    end, { leaf(2, 4), leaf(3, 4, 2) })
  end)
  it("records MatmulBackward and sends no gradient to an operand that needs none", function()
    local a, b = leaf(3, 4), ml.randn(4, 2, F64)
    local y = a:matmul(b)
    assert.are.equal("MatmulBackward", y.grad_fn)
    y:backward(ml.ones(3, 2, F64))
    assert.is_nil(b.grad)
    h.assert_close(a.grad, ml.ones(3, 2, F64):matmul(b:t()), { rtol = 1e-12, atol = 1e-12 })
  end)
  it("saves only the operands a gradient needs", function()
    -- b needs no gradient, so a is not saved: changing a afterwards is harmless
    local a, b = leaf(3, 4), ml.randn(4, 2, F64)
    local y = a:matmul(b)
    ml.no_grad(function()
      a:fill_(0)
    end)
    y:backward(ml.ones(3, 2, F64))
    h.assert_close(a.grad, ml.ones(3, 2, F64):matmul(b:t()), { rtol = 1e-12, atol = 1e-12 })
    -- but b is saved for a's gradient: changing it is an error at backward
    local a2, b2 = leaf(3, 4), ml.randn(4, 2, F64)
    local y2 = a2:matmul(b2)
    b2:fill_(1)
    h.assert_error("moonml.backward:", "modified by an in-place operation", function()
      y2:backward(ml.ones(3, 2, F64))
    end)
  end)
  it("empty products give gradients of the operands' shapes", function()
    local a, b = leaf(2, 0), leaf(0, 3)
    local y = a:matmul(b)
    y:backward(ml.ones(2, 3, F64))
    assert.are.same({ 2, 0 }, a.grad:shape())
    assert.are.same({ 0, 3 }, b.grad:shape())
    local c, d = leaf(0, 3), leaf(3, 2)
    c:matmul(d):backward(ml.zeros(0, 2, F64))
    assert.are.same({ 0, 3 }, c.grad:shape())
    h.assert_close(d.grad, ml.zeros(3, 2, F64))
  end)
  it("float32 gradients agree with float64 ones", function()
    local a, b = leaf(5, 6), leaf(6, 3)
    local g = ml.randn(5, 3, F64)
    a:matmul(b):backward(g)
    local a32, b32 = a:detach():float():requires_grad_(), b:detach():float():requires_grad_()
    a32:matmul(b32):backward(g:float())
    assert.are.equal("float32", a32.grad:dtype())
    h.assert_close(a32.grad, a.grad, { rtol = 1e-5, atol = 1e-5 })
    h.assert_close(b32.grad, b.grad, { rtol = 1e-5, atol = 1e-5 })
    -- large enough for BLAS on both sides of the gradient
    local p, q = ml.randn(40, 30, { requires_grad = true }), ml.randn(30, 20, { requires_grad = true })
    local gq = ml.randn(40, 20)
    p:matmul(q):backward(gq)
    h.assert_close(p.grad, gq:matmul(q:t()), { rtol = 1e-5, atol = 1e-5 })
    h.assert_close(q.grad, p:t():matmul(gq), { rtol = 1e-5, atol = 1e-5 })
  end)
end)

describe("dot, mv, mm, bmm gradients", function()
  ml.manual_seed(12)
  it("dot", function()
    check(function(a, b)
      return a:dot(b)
    end, { leaf(5), leaf(5) })
    local a = ml.randn(10, F64):slice(1, 1, 10, 2):requires_grad_()
    check(function(x, y)
      return ml.dot(x, y)
    end, { a, leaf(5) })
    assert.are.equal("DotBackward", a:dot(a).grad_fn)
  end)
  it("mv", function()
    check(function(a, x)
      return a:mv(x)
    end, { leaf(3, 4), leaf(4) })
    check(function(a, x)
      return a:mv(x)
    end, { leaf_t(3, 4), leaf(4) })
    assert.are.equal("MvBackward", leaf(2, 2):mv(leaf(2)).grad_fn)
  end)
  it("mm", function()
    check(function(a, b)
      return a:mm(b)
    end, { leaf(3, 4), leaf(4, 2) })
    check(function(a, b)
      return a:mm(b)
    end, { leaf_t(3, 4), leaf_t(4, 2) })
    assert.are.equal("MmBackward", leaf(2, 2):mm(leaf(2, 2)).grad_fn)
  end)
  it("bmm", function()
    check(function(a, b)
      return a:bmm(b)
    end, { leaf(2, 3, 4), leaf(2, 4, 2) })
    check(function(a, b)
      return a:bmm(b)
    end, { leaf_t(2, 3, 4), leaf(2, 4, 2) })
    assert.are.equal("BmmBackward", leaf(1, 2, 2):bmm(leaf(1, 2, 2)).grad_fn)
  end)
  it("a product of a tensor with itself sums both paths", function()
    local a = leaf(3, 3)
    local g = ml.randn(3, 3, F64)
    a:mm(a):backward(g)
    local want = g:mm(a:t()):detach() -- g a^T + a^T g
    local other = a:t():mm(g):detach()
    local sum = ml.zeros(3, 3, F64)
    for i = 1, 3 do
      for j = 1, 3 do
        sum:set(i, j, want:get(i, j) + other:get(i, j))
      end
    end
    h.assert_close(a.grad, sum, { rtol = 1e-12, atol = 1e-12 })
  end)
end)

describe("addmm gradients", function()
  ml.manual_seed(13)
  local function addmm_with(opts)
    return function(c, a, b)
      return c:addmm(a, b, opts)
    end
  end
  it("beta and alpha", function()
    check(addmm_with({ beta = 0.5, alpha = -2 }), { leaf(3, 2), leaf(3, 4), leaf(4, 2) })
    check(addmm_with(nil), { leaf(3, 2), leaf_t(3, 4), leaf_t(4, 2) })
  end)
  it("c broadcast from [p], [1, p], [n, 1] and 0-d", function()
    for _, shape in ipairs({ { 2 }, { 1, 2 }, { 3, 1 }, {} }) do
      check(addmm_with({ beta = 3 }), { leaf(shape), leaf(3, 4), leaf(4, 2) })
    end
  end)
  it("beta = 0 sends c a zero gradient", function()
    local c, a, b = leaf(3, 2), leaf(3, 4), leaf(4, 2)
    local y = c:addmm(a, b, { beta = 0 })
    assert.are.equal("AddmmBackward", y.grad_fn)
    y:backward(ml.ones(3, 2, F64))
    h.assert_close(c.grad, ml.zeros(3, 2, F64))
    check(addmm_with({ beta = 0, alpha = 0.5 }), { leaf(3, 2), leaf(3, 4), leaf(4, 2) })
  end)
end)

describe("products record nothing", function()
  it("for int64 operands and under no_grad", function()
    local a = ml.tensor({ { 1, 2 }, { 3, 4 } }, "int64")
    assert.is_nil(a:matmul(a).grad_fn)
    local x = leaf(2, 2)
    local y = ml.no_grad(function()
      return x:mm(x)
    end)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
  end)
  it("errors in the forward still name the op", function()
    h.assert_error("moonml.matmul:", "cannot multiply", function()
      leaf(2, 3):matmul(leaf(4, 5))
    end)
    h.assert_error("moonml.addmm:", "cannot broadcast", function()
      leaf(3, 3):addmm(leaf(2, 4), leaf(4, 2))
    end)
  end)
  it("a gradient of the wrong shape is refused", function()
    local y = leaf(2, 3):matmul(leaf(3, 4))
    h.assert_error("moonml.backward:", "does not match", function()
      y:backward(ml.ones(4, 2, F64))
    end)
  end)
end)
