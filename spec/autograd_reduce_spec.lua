-- Autograd of the reductions (sum, mean, max, min over all elements and along a dim) and of
-- softmax / log_softmax: gradcheck (float64) with keepdim on and off, negative dims and
-- non-contiguous leaves; gradients against PyTorch (spec/fixtures/autograd_ew.lua, written
-- by spec/fixtures/gen_autograd_ew.py), ties, saved-tensor checks and what is not
-- differentiable (argmax, argmin, the positions of max / min).
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

-- distinct values (no ties), so that max / min are differentiable at the point
local function distinct(...)
  local shape, n = { ... }, 1
  for _, s in ipairs(shape) do
    n = n * s
  end
  local v = {}
  for i = 1, n do
    v[i] = i * 0.37 - n * 0.15
  end
  for i = n, 2, -1 do -- a fixed shuffle
    local j = (i * 7919 + 13) % i + 1
    v[i], v[j] = v[j], v[i]
  end
  return ml.tensor(v, "float64"):reshape(shape)
end

-- leaves of shape {2, 3, 4}: contiguous, permuted (non-contiguous) and sliced
local function leaves_234(gen)
  return {
    contiguous = gen(2, 3, 4):requires_grad_(),
    permuted = gen(4, 3, 2):permute(3, 2, 1):requires_grad_(),
    sliced = gen(2, 3, 8):slice(3, 2, 8, 2):requires_grad_(),
  }
end

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

local function check_fixture(id, fn)
  local case = assert(fx[id], "no fixture case " .. id)
  local xs = fixture_inputs(case)
  fn(table.unpack(xs)):backward()
  for k, want in ipairs(case.grads) do
    if want then
      assert(xs[k].grad, id .. ": input " .. k .. " got no gradient")
      local tol = want.dtype == "float64" and { rtol = 1e-10, atol = 1e-12 }
        or { rtol = 1e-5, atol = 1e-6 }
      tol.dtype = want.dtype
      h.assert_close(xs[k].grad, want, tol)
    else
      assert.is_nil(xs[k].grad)
    end
  end
end

describe("autograd of sum and mean", function()
  for _, op in ipairs({ "sum", "mean" }) do
    for kind, x in pairs(leaves_234(randn)) do
      it(op .. " over all elements, " .. kind, function()
        check(function(t) return t[op](t) end, { x })
      end)
      it(op .. " along each dim, keepdim on and off, negative dims, " .. kind, function()
        for _, dim in ipairs({ 1, 2, 3, -1, -2, -3 }) do
          check(function(t) return t[op](t, dim) end, { x })
          check(function(t) return t[op](t, dim, true) end, { x })
        end
      end)
    end

    it(op .. " of a 0-d tensor and of a broadcast product", function()
      check(function(t) return t[op](t) end, { ml.tensor(1.5, "float64"):requires_grad_() })
      check(function(t) return t[op](t, 1) end, { ml.tensor(1.5, "float64"):requires_grad_() })
      check(function(a, b) return (a * b)[op](a * b, 2) end,
        { randn(3, 1):requires_grad_(), randn(4):requires_grad_() })
    end)
  end

  it("sum of an empty tensor gives an empty gradient", function()
    local x = ml.zeros(0, 3, F64):requires_grad_()
    x:sum():backward()
    assert.same({ 0, 3 }, x.grad:shape())
    local y = ml.zeros(2, 0, F64):requires_grad_()
    y:sum(2):sum():backward()
    assert.same({ 2, 0 }, y.grad:shape())
  end)

  it("names its nodes and keeps int results out of the graph", function()
    local x = randn(2, 3):requires_grad_()
    assert.equal("SumBackward", x:sum().grad_fn)
    assert.equal("MeanBackward", x:mean(1).grad_fn)
    assert.equal("float64", x:sum(2, true):dtype())
    local n = ml.tensor({ 1, 2, 3 }, "int64")
    assert.is_false(n:sum().requires_grad)
  end)

  it("sum needs nothing saved: a second backward works without retain_graph", function()
    local x = randn(3):requires_grad_()
    local y = (x + 1):sum()
    y:backward()
    y:backward()
    h.assert_close(x.grad, { 2, 2, 2 })
  end)
end)

describe("autograd of max and min", function()
  for _, op in ipairs({ "max", "min" }) do
    for kind, x in pairs(leaves_234(distinct)) do
      it(op .. " over all elements, " .. kind, function()
        check(function(t) return t[op](t) end, { x })
      end)
      it(op .. " along each dim, keepdim on and off, negative dims, " .. kind, function()
        for _, dim in ipairs({ 1, 2, 3, -1, -3 }) do
          check(function(t) return (t[op](t, dim)) end, { x })
          check(function(t) return (t[op](t, dim, true)) end, { x })
        end
      end)
    end

    it(op .. " of a 0-d tensor", function()
      check(function(t) return t[op](t) end, { ml.tensor(1.5, "float64"):requires_grad_() })
      check(function(t) return (t[op](t, 1)) end, { ml.tensor(1.5, "float64"):requires_grad_() })
    end)
  end

  it("shares the gradient of a full max / min evenly among ties (PyTorch 1.13)", function()
    local x = ml.tensor({ { 1, 5, 5 }, { 5, 0, 0 } }, "float64"):requires_grad_()
    x:max():backward()
    h.assert_close(x.grad, { { 0, 1 / 3, 1 / 3 }, { 1 / 3, 0, 0 } })
    x.grad = nil
    x:min():backward()
    h.assert_close(x.grad, { { 0, 0, 0 }, { 0, 0.5, 0.5 } })
  end)

  it("along a dim sends the gradient to the position returned", function()
    local x = ml.tensor({ { 1, 5, 5 }, { 5, 0, 0 } }, "float64"):requires_grad_()
    local v, i = x:max(2)
    h.assert_close(i, { 2, 1 })
    assert.equal("int64", i:dtype())
    assert.is_false(i.requires_grad)
    assert.equal("MaxBackward", v.grad_fn)
    v:backward(ml.tensor({ 10, 20 }, "float64"))
    h.assert_close(x.grad, { { 0, 10, 0 }, { 20, 0, 0 } })
    -- the positions handed out are a copy: changing them does not disturb backward
    local w, j = x:min(1, true)
    j:add_(5)
    x.grad = nil
    w:sum():backward()
    h.assert_close(x.grad, { { 1, 0, 0 }, { 0, 1, 1 } })
  end)

  it("argmax and argmin are not differentiable", function()
    local x = distinct(3, 4):requires_grad_()
    for _, r in ipairs({ x:argmax(), x:argmin(), x:argmax(2), x:argmin(1, true) }) do
      assert.equal("int64", r:dtype())
      assert.is_false(r.requires_grad)
    end
    h.assert_error("moonml.backward:", "does not require grad",
      function() x:argmax():backward() end)
  end)

  it("saves what backward reads: in-place changes and a second backward are errors", function()
    local x = distinct(2, 3):requires_grad_()
    local m = x * 1
    local y = m:max()
    m:add_(1)
    h.assert_error("moonml.backward:", "modified by an in-place operation",
      function() y:backward() end)
    local z = (x:max(2)):sum()
    z:backward()
    h.assert_error("moonml.backward:", "already freed", function() z:backward() end)
  end)
end)

describe("autograd of softmax and log_softmax", function()
  for _, op in ipairs({ "softmax", "log_softmax" }) do
    for kind, x in pairs(leaves_234(randn)) do
      it(op .. " along each dim, negative dims, " .. kind, function()
        -- a weighted sum: the plain sum of a softmax has zero gradient
        local w = randn(2, 3, 4)
        for _, dim in ipairs({ 1, 2, 3, -1, -2 }) do
          check(function(t) return t[op](t, dim) end, { x })
          check(function(t) return (t[op](t, dim) * w):sum() end, { x })
        end
        check(function(t) return t[op](t) end, { x })
      end)
    end

    it(op .. " of a 0-d and of an empty tensor", function()
      check(function(t) return t[op](t) end, { ml.tensor(0.3, "float64"):requires_grad_() })
      local e = ml.zeros(0, 3, F64):requires_grad_()
      e[op](e, 2):sum():backward()
      assert.same({ 0, 3 }, e.grad:shape())
    end)

    it(op .. " in float32 (eps 1e-3, atol and rtol 1e-2)", function()
      local x = ml.randn(3, 4):requires_grad_()
      local w = ml.randn(3, 4)
      check(function(t) return (t[op](t, 2) * w):sum() end, { x })
    end)
  end

  it("names its nodes and saves its output", function()
    local x = randn(2, 3):requires_grad_()
    assert.equal("SoftmaxBackward", x:softmax(2).grad_fn)
    assert.equal("LogSoftmaxBackward", x:log_softmax(1).grad_fn)
    local y = x:log_softmax(2)
    y:mul_(2)
    h.assert_error("moonml.backward:", "modified by an in-place operation",
      function() y:sum():backward() end)
  end)
end)

describe("reduction gradients against PyTorch", function()
  local F = {
    ["sum mean dims"] = function(x, w1, w2, w3)
      return (x:sum(1) * w1):sum() + (x:sum(-1, true) * w2):sum() + x:mean()
        + (x:mean(3) * w3):sum() + x:sum() * 0.25
    end,
    ["max min all ties"] = function(x) return x:max() * 2 + x:min() end,
    ["max all nan"] = function(x) return x:max() end,
    ["max min dim"] = function(x, w)
      local v1 = x:max(2)
      local v2 = x:min(1, true)
      local v3 = x:max(-1, true)
      return (v1 * w):sum() + (v2 * 2):sum() + v3:sum()
    end,
    ["softmax log_softmax"] = function(x, ws, wl)
      return (x:softmax(2) * ws):sum() + (x:log_softmax(1) * wl):sum()
        + (x:softmax(-2) * wl):sum() + (x:log_softmax(-1) * ws):sum()
    end,
    ["softmax float32 transposed"] = function(x, ws, wl)
      return (x:softmax(2) * ws):sum() + (x:log_softmax(1) * wl):sum()
    end,
  }
  for id, fn in pairs(F) do
    it(id, function()
      check_fixture(id, fn)
    end)
  end
end)
