-- Layer modules over the functional kernels (whose values spec/nn_functional_spec.lua
-- checks against PyTorch): parameter layouts and names, initialisation ranges, the
-- forward equal to the functional call, BatchNorm's buffers across train/eval.
local ml = require("moonml")
local h = require("helpers")
local nn = ml.nn

local function keys(m)
  local out = {}
  for k, v in pairs(m:state_dict()) do
    out[#out + 1] = k .. "=" .. table.concat(v:shape(), "x")
  end
  table.sort(out)
  return table.concat(out, " ")
end

describe("nn.Conv2d and nn.ConvTranspose2d", function()
  it("use PyTorch's weight layouts and names", function()
    assert.are.equal("bias=8 weight=8x2x3x3", keys(nn.Conv2d(4, 8, 3, { groups = 2 })))
    assert.are.equal("bias=8 weight=4x4x3x5", keys(nn.ConvTranspose2d(4, 8, { 3, 5 }, { groups = 2 })))
    assert.are.equal("weight=8x4x1x1", keys(nn.Conv2d(4, 8, 1, { bias = false })))
  end)

  it("initialise within PyTorch's bounds", function()
    ml.manual_seed(1)
    local c = nn.Conv2d(16, 32, 3)
    local bound = 1 / math.sqrt(16 * 9)
    assert.is_true(c.weight:abs():max():item() <= bound + 1e-7)
    assert.is_true(c.bias:abs():max():item() <= bound + 1e-7)
  end)

  it("compute what the functional form computes, with their options", function()
    ml.manual_seed(2)
    local c = nn.Conv2d(3, 4, 3, { stride = 2, padding = 1, dilation = 1 })
    local x = ml.randn(2, 3, 9, 9)
    local y = c(x)
    assert.are.same({ 2, 4, 5, 5 }, y:shape())
    h.assert_close(y, ml.conv2d(x, c.weight, c.bias, { stride = 2, padding = 1 }))
    local t = nn.ConvTranspose2d(4, 3, 3, { stride = 2, padding = 1, output_padding = 1 })
    assert.are.same({ 2, 3, 10, 10 }, t(y):shape())
    assert.is_truthy(tostring(c):find("nn.Conv2d(3, 4, kernel_size={3, 3}, stride={2, 2}, padding={1, 1})", 1, true))
  end)

  it("rejects bad arguments", function()
    h.assert_error("moonml.nn.Conv2d:", "divisible by groups", nn.Conv2d, 3, 4, 3, { groups = 2 })
    h.assert_error("moonml.nn.Conv2d:", "in_channels", nn.Conv2d, 0, 4, 3)
    h.assert_error("moonml.nn.Conv2d:", "kernel_size", nn.Conv2d, 1, 4, "3")
    h.assert_error("moonml.nn.Conv2d:", "unknown option", nn.Conv2d, 1, 4, 3, { strides = 2 })
    h.assert_error("moonml.conv2d:", nil, nn.Conv2d(3, 4, 3), ml.zeros(1, 2, 8, 8))
  end)
end)

describe("pooling layers", function()
  it("wrap the functional pools", function()
    local x = ml.arange(32):view(1, 2, 4, 4)
    h.assert_close(nn.MaxPool2d(2)(x), ml.max_pool2d(x, 2))
    h.assert_close(nn.AvgPool2d(2, { stride = 1 })(x), ml.avg_pool2d(x, 2, { stride = 1 }))
    h.assert_close(nn.AdaptiveAvgPool2d(1)(x):view(2), { 8.5, 24.5 })
    assert.are.equal("nn.MaxPool2d(kernel_size=2)", tostring(nn.MaxPool2d(2)))
  end)
end)

describe("nn.BatchNorm2d and nn.LayerNorm", function()
  it("keep PyTorch's buffers and update them only in training", function()
    local bn = nn.BatchNorm2d(3)
    assert.are.equal("bias=3 num_batches_tracked= running_mean=3 running_var=3 weight=3", keys(bn))
    ml.manual_seed(3)
    local x = ml.randn(4, 3, 5, 5) * 2 + 1
    local y = bn(x)
    assert.are.equal(1, bn.num_batches_tracked:item())
    -- running_mean moved 10% towards the batch mean
    h.assert_close(bn.running_mean, x:mean(4):mean(3):mean(1) * 0.1, { rtol = 1e-4, atol = 1e-5 })
    -- normalised output: per channel mean 0
    h.assert_close(y:mean(4):mean(3):mean(1), { 0, 0, 0 }, { atol = 1e-5 })
    bn:eval()
    local before = bn.running_mean:clone()
    bn(x)
    h.assert_close(bn.running_mean, before)
    assert.are.equal(1, bn.num_batches_tracked:item())
    h.assert_error("moonml.nn.BatchNorm2d:", "4-D", bn, ml.zeros(2, 3))
    h.assert_error("moonml.nn.BatchNorm2d:", "channels", bn, ml.zeros(2, 4, 2, 2))
    h.assert_error("moonml.nn.BatchNorm1d:", "num_features", nn.BatchNorm1d, -1)
  end)

  it("BatchNorm1d takes (N, C) and (N, C, L)", function()
    local bn = nn.BatchNorm1d(2)
    assert.are.same({ 5, 2 }, bn(ml.randn(5, 2)):shape())
    assert.are.same({ 5, 2, 3 }, bn(ml.randn(5, 2, 3)):shape())
  end)

  it("LayerNorm normalises the last dims with affine parameters", function()
    local ln = nn.LayerNorm({ 2, 3 })
    assert.are.equal("bias=2x3 weight=2x3", keys(ln))
    local y = ln(ml.tensor({ { { 1, 2, 3 }, { 4, 5, 6 } } }))
    h.assert_close(y:mean(), 0, { atol = 1e-6 })
    h.assert_error("moonml.nn.LayerNorm:", "normalized_shape", nn.LayerNorm, 0)
  end)
end)

describe("activation and loss modules", function()
  it("wrap the functional forms with their options", function()
    local x = ml.tensor({ -2, 0, 3 })
    h.assert_close(nn.LeakyReLU(0.1)(x), { -0.2, 0, 3 })
    h.assert_close(nn.ELU()(x), ml.elu(x, 1))
    h.assert_close(nn.GELU({ approximate = "tanh" })(x), ml.gelu(x, { approximate = "tanh" }))
    local logits = ml.tensor({ { 2, 0, -1 }, { 0, 1, 0 } })
    local target = ml.tensor({ 1, 2 }, "int64")
    h.assert_close(nn.CrossEntropyLoss()(logits, target), ml.cross_entropy(logits, target))
    h.assert_close(nn.CrossEntropyLoss({ label_smoothing = 0.1, reduction = "sum" })(logits, target),
      ml.cross_entropy(logits, target, { label_smoothing = 0.1, reduction = "sum" }))
    h.assert_close(nn.NLLLoss()(logits:log_softmax(2), target), ml.cross_entropy(logits, target),
      { rtol = 1e-6 })
    h.assert_error("moonml.nn.CrossEntropyLoss:", "unknown option", nn.CrossEntropyLoss, { smoothing = 1 })
    h.assert_error("moonml.cross_entropy:", "out of range", nn.CrossEntropyLoss(), logits,
      ml.tensor({ 1, 4 }, "int64"))
    h.assert_error("moonml.nn.LeakyReLU:", "number", nn.LeakyReLU, "x")
  end)
end)
