-- Gradients through views (view, reshape, flatten, squeeze, unsqueeze, permute, transpose,
-- t, expand, narrow, slice, select, x[i], view_as), copies (contiguous, clone, dtype
-- conversions) and in-place writes (copy_, fill_, zero_, set, x[i] = v), including writes
-- into views of tensors in the graph, which rewrite the base's history (PyTorch's
-- CopySlices).
local ml = require("moonml")
local h = require("helpers")

local F64 = { dtype = "float64" }
local EXACT = { rtol = 0, atol = 0 }

local function leaf(...)
  return ml.randn(...):double():requires_grad_()
end

-- views and copies are linear: a central difference is exact up to rounding
local function check(fn, inputs)
  local ok, msg = ml.gradcheck(fn, inputs, { atol = 1e-8, rtol = 1e-7 })
  assert(ok, msg)
end

-- a float64 leaf that is itself a strided view (transposed)
local function leaf_t(rows, cols)
  local x = ml.randn(cols, rows, F64):t():requires_grad_()
  assert.is_false(x:is_contiguous())
  return x
end

-- a float64 leaf of the given shape whose last dim has stride 2 (a sliced view)
local function strided_leaf(shape)
  if #shape == 0 then
    return leaf(shape)
  end
  local wide = { table.unpack(shape) }
  wide[#wide] = 2 * wide[#wide]
  local x = ml.randn(wide, F64):slice(-1, 1, math.max(wide[#wide], 1), 2)
  assert.are.same(shape, x:shape())
  return x:requires_grad_()
end

-- 1, 2, ..., n in the given shape (float64)
local function arange64(shape)
  local n = 1
  for _, s in ipairs(shape) do
    n = n * s
  end
  return ml.arange(1, n, F64):reshape(shape)
end

describe("view gradients", function()
  ml.manual_seed(21)
  local cases = {
    { "view", { 3, 4 }, function(x) return x:view(2, 6) end, "ViewBackward" },
    { "view with -1", { 3, 4 }, function(x) return x:view(-1, 3) end, "ViewBackward" },
    { "view_as", { 3, 4 }, function(x) return x:view_as(ml.zeros(4, 3)) end, "ViewBackward" },
    { "reshape (a view)", { 3, 4 }, function(x) return x:reshape(12) end, "ReshapeBackward" },
    { "flatten", { 2, 3, 2 }, function(x) return x:flatten() end, "FlattenBackward" },
    { "flatten(2, 3)", { 2, 3, 2 }, function(x) return x:flatten(2, 3) end, "FlattenBackward" },
    { "flatten of 0-d", {}, function(x) return x:flatten() end, "FlattenBackward" },
    { "squeeze", { 3, 1, 2, 1 }, function(x) return x:squeeze() end, "SqueezeBackward" },
    { "squeeze(dim)", { 3, 1, 2 }, function(x) return x:squeeze(2) end, "SqueezeBackward" },
    { "unsqueeze", { 3, 2 }, function(x) return x:unsqueeze(-1) end, "UnsqueezeBackward" },
    { "permute", { 2, 3, 4 }, function(x) return x:permute(3, 1, 2) end, "PermuteBackward" },
    { "transpose", { 2, 3, 4 }, function(x) return x:transpose(1, 3) end, "TransposeBackward" },
    { "t of 2-D", { 2, 3 }, function(x) return x:t() end, "TransposeBackward" },
    { "t of 1-D", { 3 }, function(x) return x:t() end, "AliasBackward" },
    { "expand", { 3, 1 }, function(x) return x:expand(2, 3, 4) end, "ExpandBackward" },
    { "expand with -1", { 1, 4 }, function(x) return x:expand(3, -1) end, "ExpandBackward" },
    { "expand_as", { 4 }, function(x) return x:expand_as(ml.zeros(2, 4)) end, "ExpandBackward" },
    { "narrow", { 5, 3 }, function(x) return x:narrow(1, 2, 3) end, "SliceBackward" },
    { "narrow to nothing", { 5, 3 }, function(x) return x:narrow(2, 4, 0) end, "SliceBackward" },
    { "slice with a step", { 7, 3 }, function(x) return x:slice(1, 2, 7, 2) end, "SliceBackward" },
    { "slice from the end", { 3, 6 }, function(x) return x:slice(2, -4, -1, 3) end, "SliceBackward" },
    { "select", { 3, 4, 2 }, function(x) return x:select(2, -1) end, "SelectBackward" },
    { "x[i] on n-D", { 3, 4 }, function(x) return x[2] end, "SelectBackward" },
    { "x[-1] on n-D", { 3, 4, 2 }, function(x) return x[-1] end, "SelectBackward" },
    { "contiguous (a copy)", { 3, 4 }, function(x) return x:t():contiguous() end, "CloneBackward" },
    { "clone", { 3, 4 }, function(x) return x:clone() end, "CloneBackward" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local x = leaf(c[2])
      check(c[3], { x })
      check(c[3], { strided_leaf(c[2]) })
      local y = c[3](x)
      assert.are.equal(c[4], y.grad_fn)
      assert.is_false(y.is_leaf)
      y:backward(arange64(y:shape()))
      assert.are.same(x:shape(), x.grad:shape())
      assert.are.equal("float64", x.grad:dtype())
    end)
  end
  it("reshape that has to copy", function()
    local x = leaf_t(3, 4)
    local y = x:reshape(12)
    assert.are_not.equal(x:storage_id(), y:storage_id())
    assert.are.equal("ReshapeBackward", y.grad_fn)
    check(function(v)
      return v:reshape(2, 6)
    end, { x })
    check(function(v)
      return v:flatten()
    end, { leaf_t(2, 3) })
  end)
  it("views of strided and expanded inputs", function()
    check(function(v)
      return v:slice(1, 1, 4, 2):select(2, 2)
    end, { leaf_t(4, 3) })
    check(function(v)
      return v:expand(3, 2, 4):transpose(1, 2):narrow(3, 2, 2)
    end, { leaf(2, 1) })
    check(function(v)
      return v[2]:unsqueeze(2):expand(2, 4)
    end, { leaf_t(3, 2) })
  end)
  it("expand sums the gradient over the repeated dims", function()
    local x = leaf(3, 1)
    x:expand(2, 3, 4):backward(ml.ones(2, 3, 4, F64))
    h.assert_close(x.grad, { { 8 }, { 8 }, { 8 } }, EXACT)
  end)
  it("slice with a step puts the gradient where the elements came from", function()
    local x = leaf(7)
    x:slice(1, 2, 7, 2):backward(ml.tensor({ 10, 20, 30 }, "float64"))
    h.assert_close(x.grad, { 0, 10, 0, 20, 0, 30, 0 }, EXACT)
    local y = leaf(2, 3)
    y[2]:backward(ml.tensor({ 1, 2, 3 }, "float64"))
    h.assert_close(y.grad, { { 0, 0, 0 }, { 1, 2, 3 } }, EXACT)
  end)
  it("a chain of views accumulates into one leaf gradient", function()
    local x = leaf(2, 3)
    local y = x:t():reshape(6):view(3, 2):select(2, 1) -- x[1][1], x[1][2], x[1][3]
    y:backward(ml.tensor({ 1, 2, 3 }, "float64"))
    h.assert_close(x.grad, { { 1, 2, 3 }, { 0, 0, 0 } }, EXACT)
  end)
  it("views remember what they view, even with grad mode off", function()
    local x = ml.zeros(3, 4)
    local v = ml.no_grad(function()
      return x:t():narrow(1, 2, 2)
    end)
    assert.is_false(v.requires_grad)
    assert.are.equal(x:storage_id(), v:storage_id())
  end)
end)

describe("dtype conversions", function()
  it("float and double send the gradient back in the input's dtype", function()
    local x = ml.randn(2, 3, { requires_grad = true })
    local y = x:double()
    assert.are.equal("ToCopyBackward", y.grad_fn)
    y:backward(ml.full({ 2, 3 }, 0.5, F64))
    assert.are.equal("float32", x.grad:dtype())
    h.assert_close(x.grad, ml.full({ 2, 3 }, 0.5), EXACT)
    local d = leaf(3)
    local f = d:float()
    assert.are.equal("float32", f:dtype())
    f:backward(ml.ones(3))
    assert.are.equal("float64", d.grad:dtype())
    h.assert_close(d.grad, ml.ones(3, F64), EXACT)
    check(function(v)
      return v:to("float64"):t()
    end, { strided_leaf({ 2, 3 }) })
  end)
  it("float32 round trips pass gradcheck with float32 steps", function()
    local ok, msg = ml.gradcheck(function(v)
      return v:float():double()
    end, { leaf(2, 2) }, { eps = 1e-2, atol = 1e-4, rtol = 1e-4 })
    assert(ok, msg)
  end)
  it("a conversion to the same dtype is the tensor itself", function()
    local x = ml.randn(2, { requires_grad = true })
    assert.are.equal(x, x:float())
    assert.is_true(x:to("float32").is_leaf)
  end)
  it("to int64 or bool is not differentiable", function()
    local x = ml.randn(3, { requires_grad = true })
    assert.is_false(x:long().requires_grad)
    assert.is_nil(x:long().grad_fn)
    assert.is_false(x:to("bool").requires_grad)
  end)
end)

describe("copy_", function()
  ml.manual_seed(22)
  it("into a whole non-leaf gives the source the gradient and the old value zero", function()
    local x, z = leaf(3), leaf(3)
    local y = x:clone()
    y:copy_(z)
    assert.are.equal("CopyBackward", y.grad_fn)
    y:backward(ml.tensor({ 1, 2, 3 }, "float64"))
    h.assert_close(z.grad, { 1, 2, 3 }, EXACT)
    h.assert_close(x.grad, { 0, 0, 0 }, EXACT) -- as PyTorch: a zero gradient, not none
  end)
  it("into a tensor that needs no grad makes it require grad", function()
    local z = leaf(2, 3)
    local y = ml.zeros(2, 3, F64)
    y:copy_(z)
    assert.is_true(y.requires_grad)
    assert.is_false(y.is_leaf)
    check(function(v)
      return ml.zeros(2, 3, F64):copy_(v)
    end, { z })
  end)
  it("broadcasts the source and sums its gradient back", function()
    local z = leaf(3)
    local y = ml.zeros(2, 3, F64):copy_(z)
    y:backward(ml.ones(2, 3, F64))
    h.assert_close(z.grad, { 2, 2, 2 }, EXACT)
    check(function(v)
      return ml.zeros(4, 3, F64):copy_(v)
    end, { leaf(1, 3) })
  end)
  it("converts the gradient to the source's dtype", function()
    local z = ml.randn(3, { requires_grad = true })
    local y = ml.zeros(3, F64)
    y:copy_(z)
    y:backward(ml.ones(3, F64))
    assert.are.equal("float32", z.grad:dtype())
    h.assert_close(z.grad, ml.ones(3), EXACT)
  end)
  it("into a view of a non-leaf rewrites the base's history (CopySlices)", function()
    check(function(x, z)
      local y = x:clone()
      y:narrow(2, 2, 2):copy_(z)
      return y
    end, { leaf(3, 4), leaf(3, 2) })
    check(function(x, z)
      local y = x:t():clone()
      y:slice(1, 1, 4, 3):copy_(z:t()) -- a strided view written from a transposed source
      return y:t()
    end, { leaf(3, 4), leaf(3, 2) })
    local x, z = leaf(3, 4), leaf(4)
    local y = x:clone()
    y[2]:copy_(z)
    assert.are.equal("CopySlices", y.grad_fn)
    y:backward(arange64({ 3, 4 }))
    h.assert_close(x.grad, { { 1, 2, 3, 4 }, { 0, 0, 0, 0 }, { 9, 10, 11, 12 } }, EXACT)
    h.assert_close(z.grad, { 5, 6, 7, 8 }, EXACT)
  end)
  it("builds a tensor that requires grad from rows written into zeros", function()
    local a, b = leaf(3), leaf(3)
    local out = ml.zeros(2, 3, F64)
    out[1] = a
    out[2]:copy_(b)
    assert.is_true(out.requires_grad)
    out:backward(ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "float64"))
    h.assert_close(a.grad, { 1, 2, 3 }, EXACT)
    h.assert_close(b.grad, { 4, 5, 6 }, EXACT)
  end)
  it("refuses an expanded destination, with or without gradients", function()
    local y = leaf(1, 3):clone():expand(2, 3)
    h.assert_error("moonml.copy_:", "expanded", function()
      y:copy_(ml.zeros(2, 3, F64))
    end)
  end)
end)

describe("fill_, zero_, set and x[i] = v", function()
  ml.manual_seed(23)
  it("on a non-leaf: the filled elements get no gradient", function()
    for _, write in ipairs({
      function(y) y:fill_(2) end,
      function(y) y:zero_() end,
    }) do
      local x = leaf(2, 3)
      local y = x:clone()
      write(y)
      assert.are.equal("FillBackward", y.grad_fn)
      y:backward(ml.ones(2, 3, F64))
      h.assert_close(x.grad, ml.zeros(2, 3, F64), EXACT)
    end
  end)
  it("on views of a non-leaf (CopySlices)", function()
    local writes = {
      { "fill_ of a row", function(y) y[2]:fill_(7) end, { { 1, 1, 1 }, { 0, 0, 0 } } },
      { "zero_ of a column", function(y) y:select(2, 3):zero_() end, { { 1, 1, 0 }, { 1, 1, 0 } } },
      { "set", function(y) y:set(1, 2, 5) end, { { 1, 0, 1 }, { 1, 1, 1 } } },
      { "x[i] = number", function(y) y[1] = 4 end, { { 0, 0, 0 }, { 1, 1, 1 } } },
      { "1-D x[i] = number", function(y) y[2][-1] = 4 end, { { 1, 1, 1 }, { 1, 1, 0 } } },
    }
    for _, w in ipairs(writes) do
      local x = leaf(2, 3)
      local y = x:clone()
      w[2](y)
      assert.are.equal("CopySlices", y.grad_fn, w[1])
      y:backward(ml.ones(2, 3, F64))
      h.assert_close(x.grad, w[3], EXACT)
      check(function(v)
        local c = v:clone()
        w[2](c)
        return c
      end, { leaf(2, 3) })
    end
  end)
  it("the written values are there", function()
    local y = leaf(2, 3):clone()
    y[2]:fill_(7)
    y:set(1, 1, -1)
    y[1][3] = 9
    h.assert_close(y[2], { 7, 7, 7 }, EXACT)
    assert.are.equal(-1, y:get(1, 1))
    assert.are.equal(9, y:get(1, 3))
  end)
  it("a view made before the write reads its history from the base", function()
    local x = leaf(3, 4)
    local y = x:clone()
    local r = y[1] -- made before
    local keep = y[3]
    y:fill_(0)
    assert.are.equal("AsStridedBackward", r.grad_fn)
    r:backward(ml.ones(4, F64))
    h.assert_close(x.grad, ml.zeros(3, 4, F64), EXACT)
    -- a view of a row untouched by a write into another row keeps its gradient
    local x2 = leaf(3, 4)
    local y2 = x2:clone()
    local r2 = y2[3]
    y2[1]:fill_(1)
    r2:backward(ml.ones(4, F64))
    h.assert_close(x2.grad, { { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 } }, EXACT)
    assert.are.equal(keep:storage_id(), y:storage_id())
  end)
  it("a view made with grad mode off, written with it on, still rewrites the base", function()
    local x = leaf(4)
    local y = x:clone()
    local v = ml.no_grad(function()
      return y:narrow(1, 2, 2)
    end)
    v:fill_(1)
    y:backward(ml.ones(4, F64))
    h.assert_close(x.grad, { 1, 0, 0, 1 }, EXACT)
  end)
  it("an expanded view of a tensor in the graph cannot be written in place", function()
    local y = leaf(1, 3):clone():expand(2, 3)
    h.assert_error("moonml.fill_:", "share memory", function()
      y:fill_(0)
    end)
  end)
end)

describe("in place on leaves that require grad", function()
  local msg = "a leaf tensor that requires grad cannot be changed in place (use ml.no_grad or detach)"
  local view_msg = "a view of a leaf tensor that requires grad cannot be changed in place"
  local writes = {
    { "fill_", function(x) x:fill_(1) end },
    { "zero_", function(x) x:zero_() end },
    { "copy_", function(x) x:copy_(ml.ones(2, 3)) end },
    { "set", function(x) x:set(1, 1, 5) end },
    { "newindex", function(x) x[1] = 5 end },
  }
  for _, w in ipairs(writes) do
    it(w[1] .. " raises and leaves the tensor as it was", function()
      local x = ml.randn(2, 3, { requires_grad = true })
      local before = x:clone():detach()
      h.assert_error("moonml." .. w[1] .. ":", msg, w[2], x)
      h.assert_close(x, before, EXACT)
    end)
  end
  it("a view of the leaf cannot be written either", function()
    local x = ml.randn(2, 3, { requires_grad = true })
    h.assert_error("moonml.fill_:", view_msg, function()
      x[1]:fill_(0)
    end)
    h.assert_error("moonml.copy_:", view_msg, function()
      x:t()[2]:copy_(ml.ones(2))
    end)
    h.assert_error("moonml.newindex:", view_msg, function()
      x[2][1] = 3
    end)
  end)
  it("under no_grad, or on a detached tensor, the write goes through", function()
    local x = ml.randn(2, 3, { requires_grad = true })
    ml.no_grad(function()
      x:fill_(1)
      x[2] = 2
      x:set(1, 3, 3)
      x[1]:zero_()
    end)
    h.assert_close(x, { { 0, 0, 0 }, { 2, 2, 2 } }, EXACT)
    x:detach():fill_(4)
    h.assert_close(x, ml.full({ 2, 3 }, 4), EXACT)
    assert.is_true(x.is_leaf)
  end)
  it("int64 and bool tensors are written freely", function()
    local i = ml.zeros(3, { dtype = "int64" })
    i[2] = 5
    i:copy_(ml.randn(3, { requires_grad = true }):detach())
    assert.is_false(i.requires_grad)
  end)
end)

describe("every in-place path bumps the version", function()
  local writes = {
    { "fill_", function(y) y:fill_(1) end },
    { "zero_", function(y) y:zero_() end },
    { "copy_", function(y) y:copy_(ml.ones(2, 2, F64)) end },
    { "set", function(y) y:set(2, 2, 1) end },
    { "x[i] = v", function(y) y[1] = 0 end },
    { "x[i] = tensor", function(y) y[2] = ml.ones(2, F64) end },
    { "a view's fill_", function(y) y:t()[1]:fill_(3) end },
    { "set under no_grad", function(y) ml.no_grad(function() y:set(1, 1, 0) end) end },
  }
  for _, w in ipairs(writes) do
    it(w[1] .. ": a tensor saved before is detected at backward", function()
      local x, m = leaf(2, 2), leaf(2, 2)
      local y = x:clone()
      local out = y:mm(m) -- saves y
      w[2](y)
      h.assert_error("moonml.backward:", "modified by an in-place operation", function()
        out:backward(ml.ones(2, 2, F64))
      end)
    end)
  end
end)
