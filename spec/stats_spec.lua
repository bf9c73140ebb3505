-- prod, var, std, norm, logsumexp, cumsum and cumprod against PyTorch's answers
-- (spec/fixtures/stats.lua, written by spec/fixtures/gen_stats.py): values, dtypes, strided
-- and empty inputs, NaN and infinities; gradients by gradcheck and, where finite
-- differences cannot decide (zeros, ties), against PyTorch's; the error cases.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("stats")

local function tensor_of(spec)
  return ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
end

local function build(name)
  return tensor_of(assert(fx.inputs[name], "no fixture input " .. name))
end

local function apply_view(x, view)
  for _, step in ipairs(view) do
    local kind = step[1]
    if kind == "transpose" then
      x = x:transpose(step[2], step[3])
    elseif kind == "slice" then
      x = x:slice(step[2], step[3], step[4], step[5])
    elseif kind == "expand" then
      x = x:expand(step[2])
    else
      error("unknown view step " .. tostring(kind))
    end
  end
  return x
end

local function input_of(case)
  local x = apply_view(build(case.input), case.view)
  if #case.view > 0 and x:numel() > 1 then
    assert.is_false(x:is_contiguous(), case.id .. ": the view is contiguous")
  end
  return x
end

-- PyTorch accumulates float32 in float32 where moonml uses double: 1e-5 relative
local function tolerance(spec)
  if spec.dtype == "int64" or spec.dtype == "bool" then
    return { dtype = spec.dtype, rtol = 0, atol = 0 }
  end
  if spec.dtype == "float64" then
    return { dtype = spec.dtype, rtol = 1e-12, atol = 1e-12 }
  end
  return { dtype = spec.dtype, rtol = 1e-5, atol = 1e-6 }
end

local function p_of(case)
  if case.p == nil then
    return nil
  end
  return case.p -- a number (math.huge for inf) or "fro"
end

local function call(case, x)
  local f = ml[case.op]
  if case.op == "cumsum" or case.op == "cumprod" then
    return f(x, case.dim)
  end
  if case.op == "norm" then
    return f(x, p_of(case), case.dim, case.keepdim)
  end
  if case.op == "var" or case.op == "std" then
    local opts
    if case.correction ~= nil then
      opts = { correction = case.correction }
    elseif case.unbiased ~= nil then
      opts = { unbiased = case.unbiased }
    end
    if opts then
      return f(x, case.dim, case.keepdim, opts)
    end
  end
  return f(x, case.dim, case.keepdim)
end

describe("reductions match PyTorch", function()
  for i, listed in ipairs(fx.reductions) do
    it(listed.id, function()
      local case = fx.reductions[i]
      local x = input_of(case)
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", "floating-point", call, case, x)
        return
      end
      h.assert_close(call(case, x), case.out, tolerance(case.out))
    end)
  end
end)

describe("scans match PyTorch", function()
  for i, listed in ipairs(fx.scans) do
    it(listed.id, function()
      local case = fx.scans[i]
      local x = input_of(case)
      local r = call(case, x)
      h.assert_close(r, case.out, tolerance(case.out))
      assert.is_true(r:is_contiguous())
    end)
  end
end)

describe("gradients match PyTorch's where finite differences cannot tell", function()
  for i, listed in ipairs(fx.grads) do
    it(listed.id, function()
      local case = fx.grads[i]
      local x = build(case.input):requires_grad_()
      local y = call(case, x)
      y:backward(tensor_of(case.weight))
      h.assert_close(x.grad, case.grad, { rtol = 1e-12, atol = 1e-12 })
    end)
  end
end)

describe("gradcheck", function()
  ml.manual_seed(8)
  local a = ml.randn({ 3, 4 }, { dtype = "float64" }):requires_grad_()
  local z = ml.tensor({ { 1, 0, 2 }, { 0, 0, 3 }, { 1.5, 2, -1 } }, "float64"):requires_grad_()
  local function check(fn, x)
    local ok, msg = ml.gradcheck(fn, { x })
    assert(ok, msg)
  end

  it("prod, with and without zeros", function()
    for _, x in ipairs({ a, z }) do
      check(function(p) return p:prod() end, x)
      check(function(p) return p:prod(1) end, x)
      check(function(p) return p:prod(2, true) end, x)
    end
    assert.are.equal("ProdBackward", a:prod().grad_fn)
  end)

  it("var and std with corrections", function()
    for _, op in ipairs({ "var", "std" }) do
      check(function(p) return p[op](p) end, a)
      check(function(p) return p[op](p, 1) end, a)
      check(function(p) return p[op](p, 2, true, { correction = 0 }) end, a)
      check(function(p) return p[op](p, { correction = 2 }) end, a)
    end
    assert.are.equal("VarBackward", a:var().grad_fn)
    assert.are.equal("StdBackward", a:std(1).grad_fn)
  end)

  it("norm for each p", function()
    for _, p in ipairs({ 2, 1, 3, 0.5, -1, 0, math.huge, -math.huge, "fro" }) do
      check(function(q) return q:norm(p) end, a)
      check(function(q) return q:norm(p, 2) end, a)
      check(function(q) return q:norm(p, 1, true) end, a)
    end
    assert.are.equal("NormBackward", a:norm().grad_fn)
  end)

  it("logsumexp", function()
    check(function(p) return p:logsumexp() end, a)
    check(function(p) return p:logsumexp(1) end, a)
    check(function(p) return p:logsumexp(-1, true) end, a)
    assert.are.equal("LogsumexpBackward", a:logsumexp(1).grad_fn)
  end)

  it("cumsum and cumprod, with and without zeros", function()
    for _, x in ipairs({ a, z }) do
      for _, dim in ipairs({ 1, 2 }) do
        check(function(p) return p:cumsum(dim) end, x)
        check(function(p) return p:cumprod(dim) end, x)
      end
    end
    assert.are.equal("CumsumBackward", a:cumsum(1).grad_fn)
    assert.are.equal("CumprodBackward", a:cumprod(1).grad_fn)
  end)

  it("along a dim of a strided view", function()
    local t = a:t():detach():requires_grad_() -- a leaf that is a transposed view
    assert.is_false(t:is_contiguous())
    check(function(p) return p:var(2) end, t)
    check(function(p) return p:prod(1) end, t)
    check(function(p) return p:norm(3, 2) end, t)
    check(function(p) return p:cumprod(1) end, t)
    check(function(p) return p:cumsum(2) end, t)
    check(function(p) return p:logsumexp(1) end, t)
  end)

  it("float32 inputs with float32 tolerances", function()
    local f = ml.randn(3, 4):requires_grad_()
    for _, fn in ipairs({
      function(p) return p:std(2) end,
      function(p) return p:norm(2, 1) end,
      function(p) return p:logsumexp(2) end,
      function(p) return p:cumsum(2) end,
    }) do
      local ok, msg = ml.gradcheck(fn, { f })
      assert(ok, msg)
    end
  end)

end)

describe("results", function()
  local x = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })

  it("full reductions are 0-d tensors; methods equal module functions", function()
    assert.are.equal(720, x:prod():item())
    assert.are.same({}, x:var():shape())
    h.assert_close(ml.std(x, 1), x:std(1))
    h.assert_close(ml.norm(x, 1, 2, true), { { 6 }, { 15 } })
    h.assert_close(ml.logsumexp(x, 2), x:logsumexp(2))
    h.assert_close(ml.cumsum(x, 2), { { 1, 3, 6 }, { 4, 9, 15 } })
    h.assert_close(ml.cumprod(x, 1), { { 1, 2, 3 }, { 4, 10, 18 } })
  end)

  it("dtypes follow PyTorch", function()
    local i = ml.tensor({ 1, 2, 3 }, "int64")
    local b = ml.tensor({ true, true, false })
    assert.are.equal("int64", i:prod():dtype())
    assert.are.equal("int64", b:prod():dtype())
    assert.are.equal("int64", i:cumsum(1):dtype())
    assert.are.equal("int64", b:cumsum(1):dtype())
    assert.are.equal("int64", b:cumprod(1):dtype())
    assert.are.equal("float32", i:logsumexp(1):dtype())
    assert.are.equal("float64", x:double():var():dtype())
  end)

  it("sums a long float32 scan without drift", function()
    local n = 1000000
    local c = ml.full({ n }, 0.1):cumsum(1)
    local tenth = string.unpack("f", string.pack("f", 0.1))
    local got, want = c:get(n), n * tenth
    assert.is_true(math.abs(got - want) <= 1e-6 * want, ("%.9g vs %.9g"):format(got, want))
  end)

  it("var does not cancel for large offsets", function()
    local v = ml.tensor({ 1e8 + 1, 1e8 + 2, 1e8 + 3 }, "float64"):var():item()
    assert.are.equal(1, v)
  end)

  it("logsumexp does not overflow", function()
    h.assert_close(ml.tensor({ 1000, 1000 }):logsumexp(1), 1000 + math.log(2))
    h.assert_close(ml.tensor({ -1000, -1000 }):logsumexp(1), -1000 + math.log(2))
  end)

  it("does not depend on the thread count", function()
    local threads = ml.get_num_threads()
    ml.manual_seed(12)
    local y = ml.randn(700, 900)
    local function results()
      return { y:var(1), y:std(2), y:norm(3, 1), y:logsumexp(2), y:prod(1), y:cumsum(1),
        y:cumprod(2) }
    end
    ml.set_num_threads(1)
    local one = results()
    ml.set_num_threads(2)
    local two = results()
    ml.set_num_threads(threads)
    for k = 1, #one do
      h.assert_close(two[k], one[k], { rtol = 0, atol = 0 })
    end
  end)

  it("leave their input unchanged", function()
    local y = ml.tensor({ { 3, 1 }, { 2, 9 } })
    y:prod(1)
    y:var()
    y:norm(1)
    y:cumsum(2)
    y:cumprod(1)
    h.assert_close(y, { { 3, 1 }, { 2, 9 } })
  end)
end)

describe("bad input", function()
  local x = ml.zeros(2, 3)
  local names = { "prod", "var", "std", "logsumexp" }

  for _, name in ipairs(names) do
    local prefix = "moonml." .. name .. ":"
    it(name .. " checks its tensor, dim and keepdim", function()
      h.assert_error(prefix, "expected a tensor", ml[name], "a")
      h.assert_error(prefix, "expected a tensor", ml[name], nil)
      h.assert_error(prefix, "out of range", ml[name], x, 3)
      h.assert_error(prefix, "out of range", ml[name], x, 0)
      h.assert_error(prefix, "out of range", ml[name], x, -3)
      h.assert_error(prefix, "must be an integer", ml[name], x, 1.5)
      h.assert_error(prefix, "must be an integer", ml[name], x, "1")
      h.assert_error(prefix, "keepdim must be a boolean", ml[name], x, 1, 1)
      h.assert_error(prefix, "keepdim given without a dim", ml[name], x, nil, true)
    end)
  end

  it("norm checks p, dim and keepdim", function()
    h.assert_error("moonml.norm:", "expected a tensor", ml.norm, 3)
    h.assert_error("moonml.norm:", "'nuc'", x.norm, x, "nuc")
    h.assert_error("moonml.norm:", "must be a number", x.norm, x, {})
    h.assert_error("moonml.norm:", "nan", x.norm, x, 0 / 0)
    h.assert_error("moonml.norm:", "out of range", x.norm, x, 2, 3)
    h.assert_error("moonml.norm:", "keepdim must be a boolean", x.norm, x, 2, 1, "no")
    h.assert_error("moonml.norm:", "floating-point", x.norm, ml.tensor({ 1 }, "int64"))
  end)

  it("var and std check their options", function()
    h.assert_error("moonml.var:", "unknown option 'ddof'", x.var, x, { ddof = 1 })
    h.assert_error("moonml.std:", "not both", x.std, x, 1, { correction = 1, unbiased = true })
    h.assert_error("moonml.var:", "must not be negative", x.var, x, { correction = -1 })
    h.assert_error("moonml.var:", "correction must be a number", x.var, x, { correction = "1" })
    h.assert_error("moonml.std:", "unbiased must be a boolean", x.std, x, 1, { unbiased = 1 })
    h.assert_error("moonml.var:", "floating-point", x.var, ml.tensor({ true }))
  end)

  it("cumsum and cumprod need a dim", function()
    for _, name in ipairs({ "cumsum", "cumprod" }) do
      local prefix = "moonml." .. name .. ":"
      h.assert_error(prefix, "dim must be an integer", ml[name], x)
      h.assert_error(prefix, "out of range", ml[name], x, 3)
      h.assert_error(prefix, "expected a tensor", ml[name], {}, 1)
    end
  end)
end)

-- The fixture is dropped once this file has run (the tests above look cases up by
-- number, so they do not keep it alive): the memory spec's resident-size bounds depend on
-- the size of the live Lua heap.
teardown(function()
  fx = nil
end)
