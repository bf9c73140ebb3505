-- tostring(x): PyTorch's value formatting (checked by hand against torch 1.13's str()),
-- followed by moonml's shape and, for other dtypes than float32, the dtype.
local ml = require("moonml")

local function check(x, want)
  assert.are.equal(want, tostring(x))
end

describe("tostring", function()
  it("2-D float32 of whole numbers", function()
    check(ml.tensor({ { 1, 2 }, { 3, 4 } }), "tensor([[1., 2.],\n        [3., 4.]], shape={2, 2})")
  end)
  it("fractions get 4 decimals and a common width", function()
    check(ml.tensor({ 1.5, -2.25 }), "tensor([ 1.5000, -2.2500], shape={2})")
    check(ml.tensor({ -0.5, 100.25 }), "tensor([ -0.5000, 100.2500], shape={2})")
  end)
  it("switches to scientific notation where PyTorch does", function()
    check(ml.tensor({ 1, 10000 }), "tensor([1.0000e+00, 1.0000e+04], shape={2})")
    check(ml.tensor({ 1.5, 2000.5 }), "tensor([1.5000e+00, 2.0005e+03], shape={2})")
    check(ml.tensor({ 1e-5, 1 }), "tensor([1.0000e-05, 1.0000e+00], shape={2})")
    check(ml.tensor({ 1e9, 1 }), "tensor([1.0000e+09, 1.0000e+00], shape={2})")
    check(ml.tensor({ 0, 1000 }), "tensor([   0., 1000.], shape={2})") -- zeros do not count
  end)
  it("nan and inf, which do not set the width", function()
    check(ml.tensor({ 0 / 0, 1 / 0, 1.5 }), "tensor([   nan,    inf, 1.5000], shape={3})")
    check(ml.tensor({ 0 / 0, 2 }), "tensor([nan, 2.], shape={2})")
    check(ml.tensor({ 0 / 0, -1 / 0 }), "tensor([nan, -inf], shape={2})")
  end)
  it("3-D with a blank line between blocks", function()
    check(ml.tensor({ { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }),
      "tensor([[[1., 2.],\n         [3., 4.]],\n\n        [[5., 6.],\n         [7., 8.]]], shape={2, 2, 2})")
  end)
  it("int64 shows its dtype and right-aligns", function()
    check(ml.tensor({ { 1, -20 }, { 300, 4 } }, "int64"),
      "tensor([[  1, -20],\n        [300,   4]], shape={2, 2}, dtype=int64)")
    check(ml.tensor({ (1 << 62) + 1 }, "int64"), "tensor([4611686018427387905], shape={1}, dtype=int64)")
  end)
  it("bool", function()
    check(ml.tensor({ true, false }), "tensor([ true, false], shape={2}, dtype=bool)")
  end)
  it("float64", function()
    check(ml.tensor({ 0.1, 0.2 }, "float64"), "tensor([0.1000, 0.2000], shape={2}, dtype=float64)")
  end)
  it("0-d", function()
    check(ml.tensor(3.5), "tensor(3.5000, shape={})")
    check(ml.tensor(7, "int64"), "tensor(7, shape={}, dtype=int64)")
    check(ml.tensor(true), "tensor(true, shape={}, dtype=bool)")
  end)
  it("empty tensors print [] and their shape", function()
    check(ml.zeros(0), "tensor([], shape={0})")
    check(ml.zeros(2, 0, { dtype = "int64" }), "tensor([], shape={2, 0}, dtype=int64)")
    check(ml.zeros(0, 2 ^ 40), "tensor([], shape={0, 1099511627776})")
  end)
  it("non-contiguous views print their own values", function()
    check(ml.tensor({ { 1, 2 }, { 3, 4 } }):t(), "tensor([[1., 3.],\n        [2., 4.]], shape={2, 2})")
  end)
  it("summarises over 1000 elements with ...", function()
    check(ml.arange(0, 1999),
      "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00, ..., 1.9970e+03, 1.9980e+03, 1.9990e+03], shape={2000})")
    local full = tostring(ml.arange(1, 1000)) -- exactly 1000 elements: all shown
    assert.is_nil(full:find("...", 1, true))
    assert.are.equal("tensor([   1.,    2.,", full:sub(1, 21))
    assert.are.equal(" 999., 1000.], shape={1000})", full:sub(-28))
    assert.are.equal(1000, select(2, full:gsub("%d%.", "")))
    local s = tostring(ml.arange(1, 2000, { dtype = "int64" }):view(40, 50))
    local lines = {}
    for line in (s .. "\n"):gmatch("(.-)\n") do
      lines[#lines + 1] = line
    end
    assert.are.equal(7, #lines) -- 3 rows, "...,", 3 rows
    assert.are.equal("tensor([[   1,    2,    3, ...,   48,   49,   50],", lines[1])
    assert.are.equal("        ...,", lines[4])
    assert.are.equal("        [1951, 1952, 1953, ..., 1998, 1999, 2000]], shape={40, 50}, dtype=int64)",
      lines[7])
  end)
  it("of a closed tensor says so instead of failing", function()
    local saved
    do
      local x <close> = ml.zeros(2)
      saved = x
    end
    check(saved, "tensor(closed)")
  end)
end)
