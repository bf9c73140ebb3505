-- matmul, dot, mv, mm, bmm, addmm against torch (spec/fixtures/gen_linalg.py).
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("linalg")

local TOL = {
  float32 = { rtol = 1e-4, atol = 1e-4 },
  float64 = { rtol = 1e-10, atol = 1e-10 },
  int64 = { rtol = 0, atol = 0 },
}

-- Rebuilds an operand: the base tensor, then the view operations in moonml's terms.
local function build(spec)
  local x = ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
  for _, v in ipairs(spec.view or {}) do
    x = x[v[1]](x, table.unpack(v, 2))
  end
  return x
end

local function run(c, args)
  if c.fn == "addmm" then
    return args[1]:addmm(args[2], args[3], c.opts)
  end
  return args[1][c.fn](args[1], args[2])
end

describe("linalg against torch", function()
  for _, c in ipairs(fx.cases) do
    it(c.fn .. ": " .. c.name, function()
      local args = {}
      for i, spec in ipairs(c.args) do
        args[i] = build(spec)
      end
      for _, i in ipairs(c.noncontig or {}) do
        assert.is_false(args[i]:is_contiguous(), "argument " .. i .. " should be a strided view")
      end
      local before = {}
      for i, x in ipairs(args) do
        before[i] = x:clone()
      end
      local tol = TOL[c.dtype]
      h.assert_close(run(c, args), c.expected, { rtol = tol.rtol, atol = tol.atol, dtype = c.dtype })
      -- the module function gives the same, and the inputs are left as they were
      local r2 = c.fn == "addmm" and ml.addmm(args[1], args[2], args[3], c.opts)
        or ml[c.fn](args[1], args[2])
      h.assert_close(r2, c.expected, { rtol = tol.rtol, atol = tol.atol, dtype = c.dtype })
      for i, x in ipairs(args) do
        h.assert_close(x, before[i], { rtol = 0, atol = 0 })
      end
    end)
  end

  it("has cases for every function", function()
    local seen = {}
    for _, c in ipairs(fx.cases) do
      seen[c.fn] = (seen[c.fn] or 0) + 1
    end
    for _, fn in ipairs({ "matmul", "dot", "mv", "mm", "bmm", "addmm" }) do
      assert.is_true((seen[fn] or 0) >= 5, fn)
    end
  end)
end)

describe("linalg results", function()
  it("are new tensors that do not share the operands' storage", function()
    local a, b = ml.randn(3, 4), ml.randn(4, 5)
    local r = a:matmul(b)
    assert.are_not.equal(r:storage_id(), a:storage_id())
    assert.are_not.equal(r:storage_id(), b:storage_id())
    assert.is_true(r:is_contiguous())
    -- the 3-D x 2-D product folds a into one matrix: still a fresh result
    local a3 = ml.randn(2, 3, 4)
    local r3 = a3:matmul(b)
    assert.are_not.equal(r3:storage_id(), a3:storage_id())
  end)

  it("1-D x 1-D gives a 0-d tensor", function()
    local r = ml.matmul(ml.tensor({ 1, 2, 3 }), ml.tensor({ 4, 5, 6 }))
    assert.are.same({}, r:shape())
    assert.are.equal(32, r:item())
  end)

  it("int64 overflow wraps around as in torch", function()
    -- torch.dot(torch.tensor([2**63 - 1, 2]), torch.tensor([2, 1])) is 0
    local x, y = ml.tensor({ math.maxinteger, 2 }, "int64"), ml.tensor({ 2, 1 }, "int64")
    assert.are.equal(0, x:dot(y):item())
    assert.are.equal(0, x:reshape({ 1, 2 }):matmul(y:reshape({ 2, 1 })):item())
    assert.are.equal(0, x:reshape({ 1, 2 }):mv(y):item())
  end)

  it("int64 large enough to split over threads matches the float64 BLAS product", function()
    ml.manual_seed(7)
    local a = ml.randint(-5, 5, { 600, 32 })
    local b = ml.randint(-5, 5, { 32, 32 })
    local reference = a:double():matmul(b:double()) -- exact: |sums| <= 800
    local saved = ml.get_num_threads()
    for _, n in ipairs({ 1, 2 }) do
      ml.set_num_threads(n)
      local r = a:matmul(b)
      assert.are.equal("int64", r:dtype())
      h.assert_close(r:double(), reference, { rtol = 0, atol = 0 })
    end
    ml.set_num_threads(saved)
  end)

  it("many tiny batches split over threads give the same as one thread and as mm", function()
    ml.manual_seed(8)
    local a, b = ml.randn(8192, 4, 4), ml.randn(8192, 4, 4)
    local saved = ml.get_num_threads()
    ml.set_num_threads(1)
    local one = a:bmm(b)
    ml.set_num_threads(2)
    local two = a:bmm(b)
    ml.set_num_threads(saved)
    h.assert_close(two, one, { rtol = 0, atol = 0 })
    for _, i in ipairs({ 1, 4096, 8192 }) do
      h.assert_close(one[i], a[i]:mm(b[i]), { rtol = 0, atol = 0 })
    end
  end)

  it("BLAS-size batched products agree with per-batch mm", function()
    ml.manual_seed(9)
    local a = ml.randn(3, 1, 20, 30)
    local b = ml.randn(4, 30, 25):transpose(2, 3):transpose(2, 3) -- same values, same strides
    local bt = ml.randn(4, 25, 30):transpose(2, 3) -- strided: BLAS's transpose flag
    local r, rt = a:matmul(b), a:matmul(bt)
    assert.are.same({ 3, 4, 20, 25 }, r:shape())
    for _, ij in ipairs({ { 1, 1 }, { 2, 3 }, { 3, 4 } }) do
      local i, j = ij[1], ij[2]
      h.assert_close(r[i][j], a[i][1]:mm(b[j]), { rtol = 1e-6, atol = 1e-6 })
      h.assert_close(rt[i][j], a[i][1]:mm(bt[j]:contiguous()), { rtol = 1e-6, atol = 1e-6 })
    end
  end)
end)

describe("linalg bad input", function()
  local E = h.assert_error
  local f32, i64 = ml.ones(2, 3), ml.ones(3, 2, { dtype = "int64" })

  it("matmul", function()
    E("moonml.matmul:", "cannot multiply [2, 3] by [4, 5]", ml.matmul, ml.ones(2, 3), ml.ones(4, 5))
    E("moonml.matmul:", "cannot multiply [3] by [4]", ml.matmul, ml.ones(3), ml.ones(4))
    E("moonml.matmul:", "cannot multiply [2, 3] by [4]", ml.matmul, ml.ones(2, 3), ml.ones(4))
    E("moonml.matmul:", "cannot multiply [4] by [3, 2]", ml.matmul, ml.ones(4), ml.ones(3, 2))
    E("moonml.matmul:", "cannot multiply [2, 3, 4] by [3, 4, 5] (batch dimensions do not broadcast)",
      ml.matmul, ml.ones(2, 3, 4), ml.ones(3, 4, 5))
    E("moonml.matmul:", "cannot multiply [2, 3, 4] by [5, 2]", ml.matmul, ml.ones(2, 3, 4), ml.ones(5, 2))
    E("moonml.matmul:", "at least 1-D, got 0-D and 1-D", ml.matmul, ml.tensor(1):reshape({}), ml.ones(4))
    E("moonml.matmul:", "expected both operands to have the same dtype, got float32 and int64",
      ml.matmul, f32, i64)
    E("moonml.matmul:", "bool", ml.matmul, ml.ones(2, 2, { dtype = "bool" }), ml.ones(2, 2, { dtype = "bool" }))
    E("moonml.matmul:", "expected a tensor as argument 2, got nil", ml.matmul, f32, nil)
    E("moonml.matmul:", "expected a tensor as argument 2, got no value", ml.matmul, f32)
    E("moonml.matmul:", "expected a tensor as argument 1, got nil", ml.matmul, nil, f32)
    E("moonml.matmul:", "expected a tensor as argument 2, got number", ml.matmul, f32, 2)
    E("moonml.matmul:", "expected a tensor as argument 2, got table", ml.matmul, f32, { { 1 }, { 2 }, { 3 } })
    E("moonml.matmul:", "expected a tensor as argument 1, got string", ml.matmul, "x", f32)
    E("moonml.matmul:", "cannot multiply", f32.matmul, f32, f32)
  end)

  it("dot", function()
    E("moonml.dot:", "expected 1-D tensors, got 2-D and 1-D", ml.dot, ml.ones(2, 2), ml.ones(2))
    E("moonml.dot:", "cannot multiply [3] by [4]", ml.dot, ml.ones(3), ml.ones(4))
    E("moonml.dot:", "same dtype, got float64 and float32", ml.dot, ml.ones(3, { dtype = "float64" }), ml.ones(3))
    E("moonml.dot:", "bool", ml.dot, ml.ones(3, { dtype = "bool" }), ml.ones(3, { dtype = "bool" }))
    E("moonml.dot:", "argument 2, got nil", ml.dot, ml.ones(3), nil)
    E("moonml.dot:", "argument 2, got boolean", ml.dot, ml.ones(3), true)
  end)

  it("mv", function()
    E("moonml.mv:", "expected a 2-D matrix and a 1-D vector, got 1-D and 1-D", ml.mv, ml.ones(3), ml.ones(3))
    E("moonml.mv:", "got 2-D and 2-D", ml.mv, ml.ones(2, 3), ml.ones(3, 1))
    E("moonml.mv:", "cannot multiply [2, 3] by [4]", ml.mv, ml.ones(2, 3), ml.ones(4))
    E("moonml.mv:", "same dtype, got int64 and float32", ml.mv, ml.ones(2, 3, { dtype = "int64" }), ml.ones(3))
    E("moonml.mv:", "argument 2, got nil", ml.mv, ml.ones(2, 3), nil)
  end)

  it("mm", function()
    E("moonml.mm:", "expected 2-D tensors, got 3-D and 2-D", ml.mm, ml.ones(2, 2, 2), ml.ones(2, 2))
    E("moonml.mm:", "expected 2-D tensors, got 2-D and 1-D", ml.mm, ml.ones(2, 2), ml.ones(2))
    E("moonml.mm:", "cannot multiply [2, 3] by [4, 5]", ml.mm, ml.ones(2, 3), ml.ones(4, 5))
    E("moonml.mm:", "same dtype, got float32 and int64", ml.mm, f32, i64)
    E("moonml.mm:", "bool", ml.mm, ml.ones(2, 2, { dtype = "bool" }), ml.ones(2, 2, { dtype = "bool" }))
    E("moonml.mm:", "argument 1, got number", ml.mm, 1, f32)
  end)

  it("bmm", function()
    E("moonml.bmm:", "expected 3-D tensors, got 2-D and 3-D", ml.bmm, ml.ones(2, 3), ml.ones(2, 3, 4))
    E("moonml.bmm:", "batch sizes differ (2 and 3)", ml.bmm, ml.ones(2, 3, 4), ml.ones(3, 4, 5))
    E("moonml.bmm:", "cannot multiply [2, 3, 4] by [2, 5, 6]", ml.bmm, ml.ones(2, 3, 4), ml.ones(2, 5, 6))
    E("moonml.bmm:", "same dtype", ml.bmm, ml.ones(2, 3, 4), ml.ones(2, 4, 5, { dtype = "int64" }))
    E("moonml.bmm:", "argument 2, got nil", ml.bmm, ml.ones(2, 3, 4), nil)
  end)

  it("addmm", function()
    local c, a, b = ml.ones(2, 4), ml.ones(2, 3), ml.ones(3, 4)
    E("moonml.addmm:", "cannot broadcast c of shape [3] to the product's shape [2, 4]",
      ml.addmm, ml.ones(3), a, b)
    E("moonml.addmm:", "cannot broadcast c of shape [2, 2, 4]", ml.addmm, ml.ones(2, 2, 4), a, b)
    E("moonml.addmm:", "cannot multiply [2, 3] by [4, 4]", ml.addmm, c, a, ml.ones(4, 4))
    E("moonml.addmm:", "expected 2-D matrices, got 1-D and 2-D", ml.addmm, c, ml.ones(3), b)
    E("moonml.addmm:", "expected c to have the dtype of a and b (float32), got int64",
      ml.addmm, ml.ones(2, 4, { dtype = "int64" }), a, b)
    E("moonml.addmm:", "same dtype, got float32 and float64", ml.addmm, c, a, ml.ones(3, 4, { dtype = "float64" }))
    E("moonml.addmm:", "bool", ml.addmm, ml.ones(2, 4, { dtype = "bool" }), ml.ones(2, 3, { dtype = "bool" }),
      ml.ones(3, 4, { dtype = "bool" }))
    local ci, ai, bi = ml.ones(2, 4, { dtype = "int64" }), ml.ones(2, 3, { dtype = "int64" }),
      ml.ones(3, 4, { dtype = "int64" })
    E("moonml.addmm:", "beta and alpha must be integers for int64 tensors", ml.addmm, ci, ai, bi, { beta = 0.5 })
    E("moonml.addmm:", "beta and alpha must be integers for int64 tensors", ml.addmm, ci, ai, bi, { alpha = 0 / 0 })
    E("moonml.addmm:", "options must be a table, got number", ml.addmm, c, a, b, 2)
    E("moonml.addmm:", "unknown option 'gamma'", ml.addmm, c, a, b, { gamma = 1 })
    E("moonml.addmm:", "beta must be a number, got string", ml.addmm, c, a, b, { beta = "1" })
    E("moonml.addmm:", "alpha must be a number, got boolean", ml.addmm, c, a, b, { alpha = true })
    E("moonml.addmm:", "argument 3, got nil", ml.addmm, c, a, nil)
    E("moonml.addmm:", "argument 3, got no value", ml.addmm, c, a)
    E("moonml.addmm:", "argument 1, got nil", ml.addmm, nil, a, b)
  end)
end)
