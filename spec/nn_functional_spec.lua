-- The nn kernels (ml.conv2d, ml.conv_transpose2d, pooling, batch/layer norm, activations,
-- losses): outputs and gradients against PyTorch 1.13 (spec/fixtures/nn_functional.lua,
-- written by spec/fixtures/gen_nn_functional.py), on contiguous and strided inputs;
-- gradcheck in float64; threads; bad input.
-- Tolerances: float32 rtol 1e-4 / atol 1e-5 (sums of up to ~100 products in another
-- order than PyTorch's), float64 rtol 1e-9 / atol 1e-11.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("nn_functional")

local function is_tspec(v)
  return type(v) == "table" and v.values ~= nil and v.dtype ~= nil
end

local function build(s)
  return ml.tensor(s.values, s.dtype):reshape(s.shape)
end

-- The same values in a non-contiguous view: every second element of a wider last dim.
local function strided_copy(x)
  local shape = x:shape()
  if #shape == 0 or x:numel() == 0 then
    return x:clone()
  end
  local wide = { table.unpack(shape) }
  wide[#wide] = wide[#wide] * 2
  local big = ml.zeros(wide, { dtype = x:dtype() })
  local v = big:slice(#wide, 1, wide[#wide] - 1, 2)
  v:copy_(x)
  assert(not v:is_contiguous() or x:numel() == 1)
  return v
end

-- Fixture argument -> Lua value (tensor specs built, "nil" -> nil, option tables walked).
local function materialize(a, strided)
  if a == "nil" then
    return nil
  end
  if is_tspec(a) then
    local t = build(a)
    return strided and strided_copy(t) or t
  end
  if type(a) == "table" then
    local out = {}
    for k, v in pairs(a) do
      out[k] = materialize(v, strided)
    end
    return out
  end
  return a
end

local function tol(dtype)
  if dtype == "float64" then
    return { rtol = 1e-9, atol = 1e-11 }
  end
  if dtype == "int64" then
    return { rtol = 0, atol = 0 }
  end
  return { rtol = 1e-4, atol = 1e-5 }
end

local function check(got, want, what, id)
  local ok, err = pcall(h.assert_close, got, want, tol(want.dtype))
  assert(ok, id .. ": " .. what .. ": " .. tostring(err))
end

local function run_case(c, strided)
  local n = #c.args
  local args = {}
  for k = 1, n do
    args[k] = materialize(c.args[k], strided)
  end
  for _, k in ipairs(c.grad) do
    args[k]:requires_grad_()
  end
  local out, idx = ml[c.op](table.unpack(args, 1, n))
  check(out, c.out, "output", c.id)
  assert.are.equal(c.out.dtype, out:dtype())
  if c.indices then
    check(idx, c.indices, "indices", c.id)
  end
  for k, want in pairs(c.after or {}) do
    check(args[k], want, "argument " .. k .. " after the call", c.id)
  end
  if c.gout then
    out:backward(build(c.gout))
    for k, want in pairs(c.grads) do
      assert(args[k].grad, c.id .. ": no gradient for argument " .. k)
      check(args[k].grad, want, "gradient of argument " .. k, c.id)
    end
  end
end

describe("nn functional ops match PyTorch", function()
  for _, c in ipairs(fx) do
    it(c.op .. " " .. c.id, function()
      run_case(c, false)
    end)
    it(c.op .. " " .. c.id .. " (strided inputs)", function()
      run_case(c, true)
    end)
  end

  it("covers every op", function()
    local seen = {}
    for _, c in ipairs(fx) do
      seen[c.op] = true
    end
    for _, op in ipairs({ "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
      "adaptive_avg_pool2d", "batch_norm", "layer_norm", "leaky_relu", "elu", "gelu", "softplus",
      "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
      "binary_cross_entropy_with_logits", "kl_div", "hinge_embedding_loss",
      "multi_margin_loss" }) do
      assert(seen[op], "no fixture case for " .. op)
    end
  end)
end)

-- float64 inputs with requires_grad, from a seeded generator
local function rand64(...)
  return ml.randn({ ... }, { dtype = "float64" }):requires_grad_()
end

local function gradcheck(fn, inputs, opts)
  local ok, msg = ml.gradcheck(fn, inputs, opts)
  assert(ok, msg)
end

describe("nn functional gradcheck (float64)", function()
  before_each(function()
    ml.manual_seed(7)
  end)

  it("conv2d with stride, padding, dilation and groups", function()
    gradcheck(function(x, w, b)
      return ml.conv2d(x, w, b, { stride = { 2, 1 }, padding = 1, dilation = { 1, 2 }, groups = 2 })
    end, { rand64(1, 4, 5, 5), rand64(2, 2, 2, 3), rand64(2) })
  end)

  it("conv_transpose2d with stride, output_padding and groups", function()
    gradcheck(function(x, w, b)
      return ml.conv_transpose2d(x, w, b, { stride = 2, padding = 1, output_padding = 1,
        groups = 2 })
    end, { rand64(1, 2, 2, 3), rand64(2, 1, 3, 3), rand64(2) })
  end)

  it("max_pool2d, avg_pool2d and adaptive_avg_pool2d", function()
    local x = rand64(1, 2, 5, 5)
    gradcheck(function(a)
      return ml.max_pool2d(a, 3, { stride = 2, padding = 1, ceil_mode = true })
    end, { x })
    gradcheck(function(a)
      return ml.avg_pool2d(a, 3, { stride = 2, padding = 1, ceil_mode = true,
        count_include_pad = false })
    end, { x })
    gradcheck(function(a)
      return ml.adaptive_avg_pool2d(a, { 3, 2 })
    end, { x })
  end)

  it("batch_norm in training and evaluation", function()
    local rm, rv = ml.zeros(3, { dtype = "float64" }), ml.ones(3, { dtype = "float64" })
    gradcheck(function(x, w, b)
      return ml.batch_norm(x, nil, nil, w, b, { training = true })
    end, { rand64(3, 3, 2), rand64(3), rand64(3) })
    gradcheck(function(x, w, b)
      return ml.batch_norm(x, rm, rv, w, b)
    end, { rand64(2, 3, 2, 2), rand64(3), rand64(3) })
  end)

  it("layer_norm", function()
    gradcheck(function(x, w, b)
      return ml.layer_norm(x, { 2, 3 }, w, b)
    end, { rand64(2, 2, 3), rand64(2, 3), rand64(2, 3) })
  end)

  it("activations", function()
    local x = rand64(3, 4)
    gradcheck(function(a) return ml.leaky_relu(a, 0.1) end, { x })
    gradcheck(function(a) return ml.elu(a, 0.7) end, { x })
    gradcheck(function(a) return ml.gelu(a) end, { x })
    gradcheck(function(a) return ml.gelu(a, "tanh") end, { x })
    gradcheck(function(a) return ml.softplus(a, 2, 1) end, { x })
  end)

  it("cross_entropy and nll_loss with every option", function()
    local t = ml.tensor({ 1, 3, 2, 3 }, "int64")
    local w = ml.tensor({ 0.5, 1.5, 1 }, "float64")
    for _, red in ipairs({ "mean", "sum", "none" }) do
      gradcheck(function(x)
        return ml.cross_entropy(x, t, { weight = w, ignore_index = 2, label_smoothing = 0.2,
          reduction = red })
      end, { rand64(4, 3) })
      gradcheck(function(x)
        return ml.nll_loss(x, t, { weight = w, ignore_index = 3, reduction = red })
      end, { rand64(4, 3) })
    end
    gradcheck(function(x, p)
      return ml.cross_entropy(x, p, { weight = w, label_smoothing = 0.1 })
    end, { rand64(2, 3, 2), rand64(2, 3, 2) })
  end)

  it("element-wise losses, by input and by target", function()
    local function pos(...)
      return ml.rand({ ... }, { dtype = "float64" }) * 0.8 + 0.1
    end
    local x, t = rand64(2, 3), rand64(2, 3)
    gradcheck(function(a, b) return ml.mse_loss(a, b) end, { x, t })
    gradcheck(function(a, b) return ml.l1_loss(a, b, { reduction = "sum" }) end, { x, t })
    gradcheck(function(a, b)
      return ml.binary_cross_entropy(a, b, { weight = ml.tensor({ 1, 2, 3 }, "float64") })
    end, { pos(2, 3):requires_grad_(), pos(2, 3):requires_grad_() })
    gradcheck(function(a, b)
      return ml.binary_cross_entropy_with_logits(a, b, {
        pos_weight = ml.tensor({ 1, 2, 3 }, "float64"), reduction = "none" })
    end, { x, pos(2, 3):requires_grad_() })
    gradcheck(function(a, b) return ml.kl_div(a, b, { reduction = "batchmean" }) end,
      { x, pos(2, 3):requires_grad_() })
    gradcheck(function(a, b) return ml.kl_div(a, b, { log_target = true }) end, { x, t })
    gradcheck(function(a)
      return ml.hinge_embedding_loss(a, ml.tensor({ { 1, -1, 1 }, { -1, -1, 1 } }, "float64"),
        { margin = 0.5 })
    end, { x })
    gradcheck(function(a)
      return ml.multi_margin_loss(a, ml.tensor({ 2, 3 }, "int64"), { p = 2, margin = 2 })
    end, { x })
  end)

  it("float32 conv2d within float32 tolerances (eps 1e-3, atol and rtol 1e-2)", function()
    local x = ml.randn(1, 2, 4, 4):requires_grad_()
    local w = ml.randn(2, 2, 3, 3):requires_grad_()
    gradcheck(function(a, b) return ml.conv2d(a, b, nil, { padding = 1 }) end, { x, w })
  end)
end)

describe("nn functional ops: behaviour", function()
  it("record their grad_fn", function()
    local x = ml.randn(1, 2, 4, 4):requires_grad_()
    local w = ml.randn(2, 2, 3, 3)
    assert.are.equal("Conv2dBackward", ml.conv2d(x, w).grad_fn)
    assert.are.equal("ConvTranspose2dBackward", ml.conv_transpose2d(x, w).grad_fn)
    assert.are.equal("MaxPool2dBackward", ml.max_pool2d(x, 2).grad_fn)
    assert.are.equal("AvgPool2dBackward", ml.avg_pool2d(x, 2).grad_fn)
    assert.are.equal("AdaptiveAvgPool2dBackward", ml.adaptive_avg_pool2d(x, 1).grad_fn)
    assert.are.equal("BatchNormBackward", ml.batch_norm(x, nil, nil, { training = true }).grad_fn)
    assert.are.equal("LayerNormBackward", ml.layer_norm(x, 4).grad_fn)
    assert.are.equal("GeluBackward", x:gelu().grad_fn)
    local logits = ml.randn(3, 4):requires_grad_()
    local t = ml.tensor({ 1, 2, 4 }, "int64")
    assert.are.equal("CrossEntropyBackward", ml.cross_entropy(logits, t).grad_fn)
    assert.are.equal("NllLossBackward", ml.nll_loss(logits, t).grad_fn)
    assert.is_nil(ml.conv2d(x:detach(), w).grad_fn)
    assert.is_nil(ml.no_grad(function() return ml.conv2d(x, w) end).grad_fn)
  end)

  it("give the same conv results and gradients on 1 and 2 threads", function()
    local before = ml.get_num_threads()
    ml.manual_seed(3)
    local cases = {
      { op = "conv2d", x = ml.randn(6, 16, 14, 14), w = ml.randn(24, 16, 3, 3), b = ml.randn(24),
        opts = { padding = 1 } },
      { op = "conv_transpose2d", x = ml.randn(6, 24, 14, 14), w = ml.randn(24, 16, 3, 3),
        b = ml.randn(16), opts = { padding = 1, stride = 2 } },
    }
    for _, c in ipairs(cases) do
      local results = {}
      for threads = 1, 2 do
        ml.set_num_threads(threads)
        local x, w, b = c.x:clone():requires_grad_(), c.w:clone():requires_grad_(),
            c.b:clone():requires_grad_()
        local y = ml[c.op](x, w, b, c.opts)
        y:backward(ml.ones_like(y))
        results[threads] = { y, x.grad, w.grad, b.grad }
      end
      for k = 1, 4 do
        h.assert_close(results[2][k], results[1][k], { rtol = 1e-5, atol = 1e-4 })
      end
    end
    ml.set_num_threads(before)
  end)

  -- Wider shapes than the fixtures' take the packed AVX-512 GEMM (float32, where the CPU
  -- has it): float32 results against the float64 path (OpenBLAS dgemm) on the same values.
  it("give float32 results and gradients that agree with float64 on wide shapes", function()
    ml.manual_seed(11)
    local cases = {
      { op = "conv2d", x = { 3, 8, 9, 11 }, w = { 20, 8, 3, 3 }, opts = { padding = 1 } },
      { op = "conv2d", x = { 2, 6, 10, 7 }, w = { 30, 3, 3, 2 },
        opts = { padding = { 2, 1 }, dilation = { 2, 1 }, groups = 2 } },
      { op = "conv2d", x = { 2, 5, 9, 9 }, w = { 17, 5, 3, 3 }, opts = { stride = 2, padding = 1 } },
      { op = "conv2d", x = { 2, 40, 5, 7 }, w = { 33, 40, 1, 1 }, opts = {} },
      { op = "conv2d", x = { 2, 3, 37, 35 }, w = { 15, 3, 5, 5 }, opts = { padding = 2 } },
      { op = "conv2d", x = { 3, 1, 12, 10 }, w = { 40, 1, 3, 3 }, opts = { padding = 1 } },
      { op = "conv_transpose2d", x = { 2, 36, 5, 5 }, w = { 36, 2, 3, 3 }, opts = {} },
      { op = "conv_transpose2d", x = { 3, 20, 6, 5 }, w = { 20, 9, 3, 3 }, opts = { padding = 1 } },
      { op = "conv_transpose2d", x = { 2, 16, 4, 6 }, w = { 16, 5, 4, 3 },
        opts = { stride = 2, padding = 1, output_padding = 1, groups = 2 } },
    }
    for _, c in ipairs(cases) do
      local x, w = ml.randn(c.x), ml.randn(c.w)
      local nb = c.op == "conv2d" and c.w[1] or c.w[2] * (c.opts.groups or 1)
      local b = ml.randn(nb)
      local got, want = {}, {}
      for _, dt in ipairs({ "float32", "float64" }) do
        -- fresh leaves (to() of the same dtype may hand back the tensor itself)
        local xs, ws, bs = x:to(dt):clone():requires_grad_(), w:to(dt):clone():requires_grad_(),
            b:to(dt):clone():requires_grad_()
        local y = ml[c.op](xs, ws, bs, c.opts)
        ml.manual_seed(5)
        local g = ml.randn(y:shape()):to(dt)
        y:backward(g)
        local r = dt == "float32" and got or want
        r[1], r[2], r[3], r[4] = y, xs.grad, ws.grad, bs.grad
      end
      for k = 1, 4 do
        h.assert_close(got[k]:to("float64"), want[k], { rtol = 1e-4, atol = 1e-4 })
      end
    end
  end)

  it("keep max_pool2d indices for backward apart from the ones returned", function()
    local x = ml.tensor({ { { { 1, 5 }, { 3, 2 } } } }):requires_grad_()
    local y, idx = ml.max_pool2d(x, 2, { return_indices = true })
    assert.are.equal(2, idx:item())
    idx:fill_(1) -- the returned copy; backward must still use position 2
    y:backward(ml.ones_like(y))
    h.assert_close(x.grad, { { { { 0, 1 }, { 0, 0 } } } })
  end)

  it("update running statistics in place only when training", function()
    local x = ml.tensor({ { 1, 2 }, { 3, 6 } })
    local rm, rv = ml.zeros(2), ml.ones(2)
    ml.batch_norm(x, rm, rv)
    h.assert_close(rm, { 0, 0 })
    h.assert_close(rv, { 1, 1 })
    ml.batch_norm(x, rm, rv, { training = true, momentum = 0.5 })
    h.assert_close(rm, { 1, 2 }) -- 0.5 * 0 + 0.5 * mean
    h.assert_close(rv, { 1.5, 4.5 }) -- 0.5 * 1 + 0.5 * unbiased var (2 and 8)
  end)

  it("take class labels as float whole numbers or a Lua table", function()
    local x = ml.tensor({ { 1, 2, 3 }, { 0, 0, 1 } })
    local want = ml.cross_entropy(x, ml.tensor({ 3, 1 }, "int64")):item()
    assert.are.near(want, ml.cross_entropy(x, ml.tensor({ 3, 1 })):item(), 1e-7)
    assert.are.near(want, ml.cross_entropy(x, { 3, 1 }):item(), 1e-7)
    assert.are.near(want, ml.nll_loss(x:log_softmax(2), { 3, 1 }):item(), 1e-6)
  end)

  it("work on empty batches", function()
    local x = ml.zeros(0, 2, 4, 4):requires_grad_()
    local y = ml.max_pool2d(ml.conv2d(x, ml.randn(3, 2, 3, 3), nil, { padding = 1 }), 2)
    assert.are.same({ 0, 3, 2, 2 }, y:shape())
    y:backward(ml.ones_like(y))
    assert.are.same({ 0, 2, 4, 4 }, x.grad:shape())
    assert.is_true(ml.cross_entropy(ml.zeros(0, 3), ml.zeros(0, { dtype = "int64" })):item()
      ~= ml.cross_entropy(ml.zeros(0, 3), ml.zeros(0, { dtype = "int64" })):item()) -- NaN
    assert.are.equal(0, ml.mse_loss(ml.zeros(0), ml.zeros(0), { reduction = "sum" }):item())
  end)

  it("accept the option shorthands", function()
    local x = ml.tensor({ -2, 0.5 })
    h.assert_close(ml.leaky_relu(x, { negative_slope = 0.1 }), { -0.2, 0.5 })
    h.assert_close(x:leaky_relu(), { -0.02, 0.5 })
    h.assert_close(ml.gelu(x, { approximate = "none" }), ml.gelu(x))
    h.assert_close(ml.softplus(x, { beta = 2 }), ml.softplus(x, 2))
    local img = ml.randn(1, 1, 4, 4)
    h.assert_close(ml.conv2d(img, ml.ones(1, 1, 1, 1), { stride = 2 }), img:slice(3, 1, 4, 2)
      :slice(4, 1, 4, 2))
  end)
end)

describe("nn functional ops: bad input", function()
  local x4 = ml.randn(2, 3, 6, 6)
  local w = ml.randn(4, 3, 3, 3)

  it("conv2d", function()
    local E = "moonml.conv2d:"
    h.assert_error(E, "3-D (unbatched) or 4-D", ml.conv2d, ml.randn(3, 6), w)
    h.assert_error(E, "4-D weight", ml.conv2d, x4, ml.randn(4, 3, 3))
    h.assert_error(E, "expect an input with 2 channels", ml.conv2d, x4, ml.randn(4, 2, 3, 3))
    h.assert_error(E, "divisible by groups", ml.conv2d, ml.randn(2, 4, 6, 6), ml.randn(3, 2, 3, 3),
      nil, { groups = 2 })
    h.assert_error(E, "larger than the padded input", ml.conv2d, x4, ml.randn(4, 3, 7, 7))
    h.assert_error(E, "larger than the padded input", ml.conv2d, x4, ml.randn(4, 3, 3, 3), nil,
      { dilation = 4 })
    h.assert_error(E, "bias of shape [4]", ml.conv2d, x4, w, ml.randn(3))
    h.assert_error(E, "stride must be positive", ml.conv2d, x4, w, nil, { stride = 0 })
    h.assert_error(E, "padding must be non-negative", ml.conv2d, x4, w, nil, { padding = -1 })
    h.assert_error(E, "groups must be positive", ml.conv2d, x4, w, nil, { groups = 0 })
    h.assert_error(E, "float32 or float64", ml.conv2d, x4:long(), w:long())
    h.assert_error(E, "weight to have the input's dtype", ml.conv2d, x4, w:double())
    h.assert_error(E, "unknown option 'strides'", ml.conv2d, x4, w, nil, { strides = 2 })
    h.assert_error(E, "table of 2 numbers", ml.conv2d, x4, w, nil, { stride = { 1, 2, 3 } })
    h.assert_error(E, "'same' is not supported for strided", ml.conv2d, x4, w, nil,
      { padding = "same", stride = 2 })
    h.assert_error(E, "padding must be a number", ml.conv2d, x4, w, nil, { padding = "full" })
    h.assert_error(E, "expected a tensor as argument 2", ml.conv2d, x4)
    h.assert_error(E, "expected a tensor as argument 1", ml.conv2d, nil, w)
  end)

  it("conv_transpose2d", function()
    local E = "moonml.conv_transpose2d:"
    local wt = ml.randn(3, 2, 3, 3)
    h.assert_error(E, "expects an input with 3 channels", ml.conv_transpose2d, ml.randn(1, 2, 4, 4),
      wt)
    h.assert_error(E, "output_padding", ml.conv_transpose2d, x4, wt, nil, { output_padding = 1 })
    h.assert_error(E, "bias of shape [2]", ml.conv_transpose2d, x4, wt, ml.randn(3))
    h.assert_error(E, "divisible by groups", ml.conv_transpose2d, x4, wt, nil, { groups = 2 })
    h.assert_error(E, "too small", ml.conv_transpose2d, ml.randn(1, 3, 1, 1), wt, nil,
      { padding = 2 })
  end)

  it("pooling", function()
    h.assert_error("moonml.max_pool2d:", "3-D (unbatched) or 4-D", ml.max_pool2d, ml.randn(4, 4), 2)
    h.assert_error("moonml.max_pool2d:", "half the kernel size", ml.max_pool2d, x4, 2,
      { padding = 2 })
    h.assert_error("moonml.max_pool2d:", "too small", ml.max_pool2d, ml.randn(1, 1, 2, 2), 3)
    h.assert_error("moonml.max_pool2d:", "kernel size must be positive", ml.max_pool2d, x4, 0)
    h.assert_error("moonml.max_pool2d:", "expected a kernel size", ml.max_pool2d, x4)
    h.assert_error("moonml.max_pool2d:", "float32 or float64", ml.max_pool2d, x4:long(), 2)
    h.assert_error("moonml.max_pool2d:", "option return_indices must be a boolean", ml.max_pool2d,
      x4, 2, { return_indices = 1 })
    h.assert_error("moonml.avg_pool2d:", "divisor_override must be positive", ml.avg_pool2d, x4, 2,
      { divisor_override = 0 })
    h.assert_error("moonml.avg_pool2d:", "non-empty", ml.avg_pool2d, ml.randn(2, 0, 4, 4), 2)
    h.assert_error("moonml.adaptive_avg_pool2d:", "expected an output size",
      ml.adaptive_avg_pool2d, x4)
    h.assert_error("moonml.adaptive_avg_pool2d:", "non-negative", ml.adaptive_avg_pool2d, x4, -1)
  end)

  it("batch_norm and layer_norm", function()
    local E = "moonml.batch_norm:"
    h.assert_error(E, "more than 1 value per channel", ml.batch_norm, ml.randn(1, 3), nil, nil,
      { training = true })
    h.assert_error(E, "needed when not training", ml.batch_norm, x4, nil, nil)
    h.assert_error(E, "running_mean of shape [3]", ml.batch_norm, x4, ml.zeros(4), ml.ones(3))
    h.assert_error(E, "weight of shape [3]", ml.batch_norm, x4, ml.zeros(3), ml.ones(3), ml.ones(2))
    h.assert_error(E, "at least 2 dims", ml.batch_norm, ml.randn(3), ml.zeros(3), ml.ones(3))
    h.assert_error(E, "option training must be a boolean", ml.batch_norm, x4, nil, nil,
      { training = 1 })
    local L = "moonml.layer_norm:"
    h.assert_error(L, "does not match the last dims", ml.layer_norm, x4, 5)
    h.assert_error(L, "does not match the last dims", ml.layer_norm, x4, { 1, 2, 3, 6, 6 })
    h.assert_error(L, "expected weight of shape [6]", ml.layer_norm, x4, 6, ml.ones(5))
    h.assert_error(L, "normalized_shape must be", ml.layer_norm, x4, "6")
  end)

  it("activations", function()
    h.assert_error("moonml.gelu:", "float32 or float64", ml.gelu, ml.tensor({ 1 }, "int64"))
    h.assert_error("moonml.gelu:", "'none' or 'tanh'", ml.gelu, x4, "fast")
    h.assert_error("moonml.leaky_relu:", "float32 or float64", ml.leaky_relu, ml.tensor({ true }))
    h.assert_error("moonml.elu:", "unknown option 'slope'", ml.elu, x4, { slope = 1 })
    h.assert_error("moonml.softplus:", "beta must be non-zero", ml.softplus, x4, 0)
    h.assert_error("moonml.softplus:", "expected a tensor", ml.softplus, 3)
  end)

  it("class losses", function()
    local E = "moonml.cross_entropy:"
    local logits = ml.randn(4, 10)
    h.assert_error(E, "target 11 out of range for 10 classes", ml.cross_entropy, logits,
      ml.tensor({ 1, 11, 2, 3 }, "int64"))
    h.assert_error(E, "target 0 out of range for 10 classes", ml.cross_entropy, logits,
      { 1, 0, 2, 3 })
    h.assert_error(E, "batch size 4 does not match target batch size 3", ml.cross_entropy, logits,
      ml.tensor({ 1, 2, 3 }, "int64"))
    h.assert_error(E, "int64 class labels, got bool", ml.cross_entropy, logits,
      ml.tensor({ true, false, true, true }))
    h.assert_error(E, "whole class labels", ml.cross_entropy, logits, ml.tensor({ 1, 2.5, 3, 4 }))
    h.assert_error(E, "weight of shape [10]", ml.cross_entropy, logits, { 1, 2, 3, 4 },
      { weight = ml.ones(9) })
    h.assert_error(E, "label_smoothing must be between 0 and 1", ml.cross_entropy, logits,
      { 1, 2, 3, 4 }, { label_smoothing = 1.5 })
    h.assert_error(E, "reduction must be", ml.cross_entropy, logits, { 1, 2, 3, 4 },
      { reduction = "avg" })
    h.assert_error(E, "expected a target as argument 2", ml.cross_entropy, logits)
    h.assert_error(E, "expected target of shape [2, 3]", ml.cross_entropy, ml.randn(2, 4, 3),
      ml.tensor({ { 1, 2 }, { 3, 4 } }, "int64"))
    h.assert_error("moonml.nll_loss:", "target 5 out of range for 4 classes", ml.nll_loss,
      ml.randn(2, 4), { 5, 1 })
    h.assert_error("moonml.multi_margin_loss:", "p must be 1 or 2", ml.multi_margin_loss,
      ml.randn(2, 4), { 1, 1 }, { p = 3 })
    h.assert_error("moonml.multi_margin_loss:", "1 or 2 dims", ml.multi_margin_loss,
      ml.randn(2, 4, 2), ml.ones(2, 2, { dtype = "int64" }))
    h.assert_error("moonml.multi_margin_loss:", "target 3 out of range", ml.multi_margin_loss,
      ml.randn(2, 2), { 1, 3 })
  end)

  it("element-wise losses", function()
    local x = ml.randn(2, 3)
    h.assert_error("moonml.mse_loss:", "does not match input of shape [2, 3]", ml.mse_loss, x,
      ml.randn(3))
    h.assert_error("moonml.l1_loss:", "target to have the input's dtype", ml.l1_loss, x,
      ml.zeros(2, 3, { dtype = "int64" }))
    h.assert_error("moonml.binary_cross_entropy:", "between 0 and 1", ml.binary_cross_entropy,
      x:abs() + 1, ml.zeros(2, 3))
    h.assert_error("moonml.binary_cross_entropy_with_logits:", "cannot be broadcast",
      ml.binary_cross_entropy_with_logits, x, ml.zeros(2, 3), { pos_weight = ml.ones(2) })
    h.assert_error("moonml.kl_div:", "reduction must be", ml.kl_div, x, x, { reduction = "avg" })
    h.assert_error("moonml.mse_loss:", "got batchmean", ml.mse_loss, x, x,
      { reduction = "batchmean" })
    h.assert_error("moonml.hinge_embedding_loss:", "option margin must be a number",
      ml.hinge_embedding_loss, x, x, { margin = "1" })
    h.assert_error("moonml.mse_loss:", "expected a tensor as argument 2", ml.mse_loss, x, nil)
    h.assert_error("moonml.mse_loss:", "options must be a table", ml.mse_loss, x, x, "sum")
  end)
end)
