-- Reductions (sum, mean, max, min, argmax, argmin) and softmax / log_softmax against
-- PyTorch's answers (spec/fixtures/reduce.lua, written by spec/fixtures/gen_reduce.py),
-- plus closed-form accuracy checks on long sums and the error cases.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("reduce")

local function build(name)
  local spec = assert(fx.inputs[name], "no fixture input " .. name)
  return ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
end

-- Replays a fixture view (1-based steps) on x.
local function apply_view(x, view)
  for _, step in ipairs(view) do
    local kind = step[1]
    if kind == "transpose" then
      x = x:transpose(step[2], step[3])
    elseif kind == "permute" then
      x = x:permute(table.unpack(step, 2))
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
    -- the case is there to exercise strided inputs
    assert.is_false(x:is_contiguous(), case.id .. ": view is contiguous")
  end
  return x
end

local function tolerance(dtype, rtol, atol)
  if dtype == "int64" or dtype == "bool" then
    return { dtype = dtype, rtol = 0, atol = 0 }
  end
  return { dtype = dtype, rtol = rtol or 1e-5, atol = atol or 1e-6 }
end

local function call(case, x)
  local f = ml[case.op]
  if case.dim == nil then
    return f(x)
  end
  if case.keepdim == nil then
    return f(x, case.dim)
  end
  return f(x, case.dim, case.keepdim)
end

describe("reductions match PyTorch", function()
  for _, case in ipairs(fx.reductions) do
    it(case.id, function()
      local x = input_of(case)
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", nil, call, case, x)
        return
      end
      local r, idx = call(case, x)
      h.assert_close(r, case.out, tolerance(case.out.dtype))
      if case.indices then
        h.assert_close(idx, case.indices, tolerance("int64"))
      else
        assert.is_nil(idx)
      end
    end)
  end
end)

describe("softmax and log_softmax match PyTorch", function()
  for _, case in ipairs(fx.softmax) do
    it(case.id, function()
      local x = input_of(case)
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", "floating-point", call, case, x)
        return
      end
      local r = call(case, x)
      -- within 2e-6 relative of PyTorch; log_softmax values near 0 need an absolute bound
      local atol = case.op == "log_softmax" and 1e-6 or 1e-7
      h.assert_close(r, case.out, tolerance(case.out.dtype, 2e-6, atol))
      assert.is_true(r:is_contiguous())
    end)
  end
end)

describe("reduction results", function()
  local x = ml.tensor({ { 1, 5, 3 }, { 4, 2, 6 } })

  it("full reductions are 0-d tensors, values through :item()", function()
    for _, op in ipairs({ "sum", "mean", "max", "min", "argmax", "argmin" }) do
      local r = x[op](x)
      assert.are.same({}, r:shape())
      assert.are.equal(0, r:dim())
    end
    assert.are.equal(21, x:sum():item())
    assert.are.equal(3.5, x:mean():item())
    assert.are.equal(6, x:max():item())
    assert.are.equal(1, x:min():item())
    assert.are.equal(6, x:argmax():item()) -- 1-based flat position
    assert.are.equal(1, x:argmin():item())
    assert.are.equal("int64", x:argmax():dtype())
  end)

  it("max and min along a dim give values and 1-based int64 positions", function()
    local v, i = x:max(2)
    h.assert_close(v, { 5, 6 })
    h.assert_close(i, { 2, 3 }, { dtype = "int64" })
    v, i = x:min(1, true)
    h.assert_close(v, { { 1, 2, 3 } })
    h.assert_close(i, { { 1, 2, 1 } }, { dtype = "int64" })
    h.assert_close(x:argmax(-1), { 2, 3 }, { dtype = "int64" })
  end)

  it("module functions equal the methods", function()
    h.assert_close(ml.sum(x, 1), x:sum(1))
    h.assert_close(ml.mean(x, 2, true), x:mean(2, true))
    local v1, i1 = ml.max(x, 1)
    local v2, i2 = x:max(1)
    h.assert_close(v1, v2)
    h.assert_close(i1, i2)
    h.assert_close(ml.argmin(x), x:argmin())
    h.assert_close(ml.softmax(x, 1), x:softmax(1))
    h.assert_close(ml.log_softmax(x), x:log_softmax(2))
  end)

  it("softmax rows sum to 1 and log_softmax is its log", function()
    ml.manual_seed(7)
    local y = ml.randn(6, 37)
    local s = y:softmax(2):sum(2)
    h.assert_close(s, ml.ones(6), { rtol = 1e-6 })
    local ls = y:log_softmax(1)
    local sm = y:softmax(1)
    for _, ij in ipairs({ { 1, 1 }, { 3, 20 }, { 6, 37 } }) do
      local a, b = ls:get(ij[1], ij[2]), math.log(sm:get(ij[1], ij[2]))
      assert.is_true(math.abs(a - b) <= 1e-5 * math.abs(b) + 1e-6)
    end
  end)

  it("leave their input unchanged", function()
    local y = ml.tensor({ { 3, 1 }, { 2, 9 } })
    y:sum(1)
    y:max(2)
    y:softmax(1)
    h.assert_close(y, { { 3, 1 }, { 2, 9 } })
  end)
end)

describe("long reductions", function()
  local float_tenth = string.unpack("f", string.pack("f", 0.1)) -- 0.1 as float32 holds it

  it("a float32 sum of 10^7 elements does not drift", function()
    local n = 10000000
    local x = ml.full({ n }, 0.1)
    -- one float accumulator would give 1087937 here; the closed form is n * 0.1f
    local want = n * float_tenth
    local got = x:sum():item()
    assert.is_true(math.abs(got - want) <= 1e-6 * want, ("sum %.9g, want %.9g"):format(got, want))
    local mean = x:mean():item()
    assert.is_true(math.abs(mean - float_tenth) <= 1e-6 * float_tenth)
  end)

  it("sums 1..10^6 in float32 and int64", function()
    local want = 1000000 * 1000001 // 2
    local f = ml.arange(1, 1000000):sum():item()
    assert.is_true(math.abs(f - want) <= 1e-7 * want, ("sum %.17g, want %d"):format(f, want))
    assert.are.equal(want, ml.arange(1, 1000000, { dtype = "int64" }):sum():item())
    assert.are.equal(1000000, ml.ones(1000000, { dtype = "bool" }):sum():item())
  end)

  it("sums along each dim of a large tensor without drift", function()
    local x = ml.full({ 500, 4000 }, 0.1)
    local rows = x:sum(2)
    local cols = x:sum(1)
    for _, i in ipairs({ 1, 250, 500 }) do
      local got = rows:get(i)
      assert.is_true(math.abs(got - 4000 * float_tenth) <= 1e-6 * 400)
    end
    for _, j in ipairs({ 1, 1025, 4000 }) do
      local got = cols:get(j)
      assert.is_true(math.abs(got - 500 * float_tenth) <= 1e-6 * 50)
    end
    -- the same along a transposed view
    h.assert_close(x:t():sum(1), rows, { rtol = 1e-6 })
    h.assert_close(x:t():sum(2), cols, { rtol = 1e-6 })
  end)

  it("matches a double-precision sum of the same float32 values", function()
    local n, vals, exact = 200003, {}, 0
    for i = 1, n do
      local v = string.unpack("f", string.pack("f", math.sin(i) * 1000 + 1))
      vals[i] = v
      exact = exact + v
    end
    local got = ml.tensor(vals):sum():item()
    local msg = ("%.9g vs %.9g"):format(got, exact)
    assert.is_true(math.abs(got - exact) <= 1e-6 * math.abs(exact), msg)
  end)

  it("finds the first maximum and the first NaN across the chunks of a long tensor", function()
    local x = ml.zeros(3000000)
    x:set(2500001, 7)
    x:set(1000000, 7)
    assert.are.equal(1000000, x:argmax():item())
    assert.are.equal(7, x:max():item())
    x:set(2999999, -1)
    assert.are.equal(2999999, x:argmin():item())
    x:set(2800001, 0 / 0)
    x:set(2900000, 0 / 0)
    assert.are.equal(2800001, x:argmax():item())
    assert.are.equal(2800001, x:argmin():item())
    local m = x:max():item()
    assert.is_true(m ~= m)
    -- the same along a dim: one row, then many
    local v, i = x:view(1, 3000000):max(2)
    assert.is_true(v:get(1) ~= v:get(1))
    assert.are.equal(2800001, i:get(1))
    local w = x:view(3000, 1000)
    local _, j = w:max(2)
    assert.are.equal(1000, j:get(1000)) -- row 1000 holds position 1000000 at its end
    assert.are.equal(1, j:get(2801)) -- row 2801 starts with the first NaN
    assert.are.equal(1000, j:get(2900)) -- and row 2900 ends with the second
  end)

  it("does not depend on the thread count", function()
    local threads = ml.get_num_threads()
    ml.manual_seed(3)
    local x = ml.randn(3000000)
    local y = ml.randn(1500, 1200)
    local function results()
      local _, mi = y:max(1)
      return {
        x:sum():item(), x:mean():item(), x:max():item(), x:argmin():item(),
        y:sum(1), y:sum(2), mi, y:t():sum(2), y:softmax(1), y:log_softmax(2),
      }
    end
    ml.set_num_threads(1)
    local one = results()
    ml.set_num_threads(2)
    local two = results()
    ml.set_num_threads(threads)
    for k = 1, 4 do
      assert.are.equal(one[k], two[k])
    end
    for k = 5, #one do
      h.assert_close(two[k], one[k], { rtol = 0, atol = 0 })
    end
  end)

  it("reduces a large transposed view like its contiguous copy", function()
    ml.manual_seed(11)
    local x = ml.randn(700, 900):t()
    local c = x:contiguous()
    for _, d in ipairs({ 1, 2 }) do
      -- sums of ~900 terms of size 1: the order of additions shows at 1e-5
      h.assert_close(x:sum(d), c:sum(d), { rtol = 1e-5, atol = 1e-4 })
      h.assert_close(x:mean(d), c:mean(d), { rtol = 1e-5, atol = 1e-6 })
      local v1, i1 = x:max(d)
      local v2, i2 = c:max(d)
      h.assert_close(v1, v2, { rtol = 0, atol = 0 })
      h.assert_close(i1, i2)
      h.assert_close(x:argmin(d), c:argmin(d))
      h.assert_close(x:softmax(d), c:softmax(d), { rtol = 1e-6, atol = 1e-9 })
      h.assert_close(x:log_softmax(d), c:log_softmax(d), { rtol = 1e-6, atol = 1e-6 })
    end
  end)
end)

describe("bad input", function()
  local x = ml.zeros(2, 3, 4)
  local names = { "sum", "mean", "max", "min", "argmax", "argmin", "softmax", "log_softmax" }

  for _, name in ipairs(names) do
    local prefix = "moonml." .. name .. ":"
    it(name .. " rejects a non-tensor, a missing tensor and bad dims", function()
      h.assert_error(prefix, "expected a tensor", ml[name], "a")
      h.assert_error(prefix, "expected a tensor", ml[name], nil)
      h.assert_error(prefix, "expected a tensor", ml[name], { 1, 2 })
      h.assert_error(prefix, "out of range", ml[name], x, 4)
      h.assert_error(prefix, "out of range", ml[name], x, -4)
      h.assert_error(prefix, "out of range", ml[name], x, 0)
      h.assert_error(prefix, "must be an integer", ml[name], x, 1.5)
      h.assert_error(prefix, "must be an integer", ml[name], x, {})
      h.assert_error(prefix, "must be an integer", ml[name], x, ml.zeros(2))
      h.assert_error(prefix, "out of range", ml[name], ml.tensor(1), 2)
    end)
  end

  for _, name in ipairs({ "sum", "mean", "max", "min", "argmax", "argmin" }) do
    local prefix = "moonml." .. name .. ":"
    it(name .. " checks keepdim", function()
      h.assert_error(prefix, "keepdim must be a boolean", ml[name], x, 1, 1)
      h.assert_error(prefix, "keepdim must be a boolean", ml[name], x, 2, "yes")
      h.assert_error(prefix, "keepdim given without a dim", ml[name], x, nil, true)
    end)
  end

  it("mean of an integer or bool tensor is an error, as in PyTorch", function()
    h.assert_error("moonml.mean:", "floating-point", ml.mean, ml.tensor({ 1, 2 }, "int64"))
    h.assert_error("moonml.mean:", "floating-point", ml.mean, ml.tensor({ true }), 1)
  end)

  it("argmax and argmin of a bool tensor are errors, as in PyTorch", function()
    h.assert_error("moonml.argmax:", "bool", ml.argmax, ml.tensor({ true, false }))
    h.assert_error("moonml.argmin:", "bool", ml.argmin, ml.tensor({ true, false }), 1)
  end)

  it("max, min, argmax, argmin of an empty tensor or along an empty dim are errors", function()
    for _, name in ipairs({ "max", "min", "argmax", "argmin" }) do
      h.assert_error("moonml." .. name .. ":", "empty", ml[name], ml.zeros(0))
      h.assert_error("moonml." .. name .. ":", "size 0", ml[name], ml.zeros(0, 3), 1)
      h.assert_error("moonml." .. name .. ":", "size 0", ml[name], ml.zeros(2, 0, 3), -2)
    end
  end)

  it("softmax of an integer tensor is an error, as in PyTorch", function()
    h.assert_error("moonml.softmax:", "floating-point", ml.softmax, ml.tensor({ 1, 2 }, "int64"))
    h.assert_error("moonml.log_softmax:", "floating-point", ml.log_softmax, ml.tensor({ true }))
  end)

  it("a closed tensor is refused", function()
    local kept
    do
      local y <close> = ml.zeros(3)
      kept = y
    end
    h.assert_error("moonml.sum:", "closed", ml.sum, kept)
    h.assert_error("moonml.softmax:", "closed", ml.softmax, kept)
  end)
end)
