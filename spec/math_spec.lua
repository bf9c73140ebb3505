-- Element-wise math (rsqrt sin cos sign floor ceil round clamp maximum minimum lerp): values,
-- dtypes, in-place forms and gradients against PyTorch (spec/fixtures/math.lua, written by
-- spec/fixtures/gen_math.py), gradcheck on float64, and bad input.
local ml = require("moonml")
local h = require("helpers")

local F = h.fixture("math")

-- 1-based view steps as the generator writes them
local function apply_view(t, view)
  for _, step in ipairs(view or {}) do
    local kind = step[1]
    if kind == "t" then
      t = t:t()
    elseif kind == "slice" then
      t = t:slice(step[2], step[3], step[4], step[5])
    elseif kind == "expand" then
      t = t:expand(step[2])
    else
      error("unknown view step " .. tostring(kind))
    end
  end
  return t
end

-- the tensor a fixture describes, and its base (they differ when a view is applied)
local function build(spec)
  local base = ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
  return apply_view(base, spec.view), base
end

-- the arguments after the tensor, nils kept: values, count
local function build_args(args)
  local out = {}
  for k, a in ipairs(args) do
    if a.kind == "number" then
      out[k] = a.v
    elseif a.kind == "tensor" then
      out[k] = build(a.t)
    end
  end
  return out, #args
end

local exact = { rtol = 0, atol = 0 }
-- results that are computed (not selected or rounded) get a tolerance
local computed = { rsqrt = true, sin = true, cos = true, lerp = true }

local function tol(op, dtype)
  if dtype ~= "float32" and dtype ~= "float64" then
    return { dtype = dtype, rtol = 0, atol = 0 }
  elseif not computed[op] then
    -- exact, but float32 fixtures are printed with 9 digits: 1e-8 is far below one ulp
    return { dtype = dtype, rtol = dtype == "float32" and 1e-8 or 0, atol = 0 }
  elseif dtype == "float64" then
    return { dtype = dtype, rtol = 1e-12, atol = 1e-300 }
  end
  return { dtype = dtype, rtol = 1e-6, atol = 1e-7 }
end

describe("element-wise math against PyTorch", function()
  for _, c in ipairs(F.cases) do
    it(c.id, function()
      local a, abase = build(c.a)
      local args, n = build_args(c.args)
      local name = c.op .. (c.inplace and "_" or "")
      local call = function() return a[name](a, table.unpack(args, 1, n)) end
      if c.err then
        local before = abase:clone()
        h.assert_error("moonml." .. name .. ":", nil, call)
        h.assert_close(abase, before, exact) -- a failed call changes nothing
        return
      end
      local r = call()
      h.assert_close(r, c.out, tol(c.op, c.out.dtype))
      if c.inplace then
        assert.is_true(rawequal(r, a))
        if c.base_after then
          h.assert_close(abase, c.base_after, tol(c.op, c.base_after.dtype))
        end
      else
        -- the module function gives the same
        h.assert_close(ml[c.op](a, table.unpack(args, 1, n)), c.out, tol(c.op, c.out.dtype))
      end
    end)
  end
end)

describe("math gradients at kinks, ties and NaN against PyTorch", function()
  for _, c in ipairs(F.grads) do
    it(c.id, function()
      local a = build(c.a):requires_grad_()
      local args, n = build_args(c.args)
      for k = 1, n do
        if ml.is_tensor(args[k]) then
          args[k]:requires_grad_()
        end
      end
      local y = ml[c.op](a, table.unpack(args, 1, n))
      y:backward((build(c.grad_out)))
      local t = tol(c.op, "float64")
      h.assert_close(a.grad, c.a_grad, t)
      for k = 1, n do
        if c.arg_grads[k] then
          h.assert_close(args[k].grad, c.arg_grads[k], t)
        end
      end
    end)
  end
end)

-- float64 inputs away from every kink: clamp bounds, ties, rounding steps. gradcheck's
-- inputs are 1-D: ml.gradcheck indexes elements with x:set(table.unpack(p), v), which passes
-- one index only; broadcasting in 2-D is covered by the PyTorch gradients above.
local function f64(t)
  return ml.tensor(t, "float64"):requires_grad_()
end

describe("math gradcheck (float64)", function()
  local x = f64({ 0.3, 1.7, -0.9, 2.2, -1.4, 0.6 })
  local pos = f64({ 0.3, 1.7, 0.9, 2.2, 1.4, 0.6 })

  local function check(fn, inputs)
    local ok, msg = ml.gradcheck(fn, inputs)
    assert(ok, msg)
  end

  for _, op in ipairs({ "sin", "cos", "sign", "floor", "ceil", "round" }) do
    it(op, function()
      check(function(a) return a[op](a) end, { x })
    end)
  end

  it("rsqrt", function()
    check(function(a) return a:rsqrt() end, { pos })
  end)

  it("gives the names of the nodes", function()
    local names = {
      rsqrt = "RsqrtBackward", sin = "SinBackward", cos = "CosBackward",
      sign = "SignBackward", floor = "FloorBackward", ceil = "CeilBackward",
      round = "RoundBackward",
    }
    for op, node in pairs(names) do
      assert.are.equal(node, pos[op](pos).grad_fn)
    end
    local b = f64({ 1, 2, 3 })
    assert.are.equal("ClampBackward", b:clamp(0, 1).grad_fn)
    assert.are.equal("MaximumBackward", b:maximum(b).grad_fn)
    assert.are.equal("MinimumBackward", b:minimum(b).grad_fn)
    assert.are.equal("LerpBackward", b:lerp(b, 0.5).grad_fn)
    assert.is_nil(ml.tensor({ 1, 2 }):sin().grad_fn) -- nothing requires grad
    assert.is_nil(ml.no_grad(function() return b:sin() end).grad_fn)
  end)

  it("clamp by numbers", function()
    check(function(a) return a:clamp(-1, 1) end, { x })
    check(function(a) return a:clamp(0.5) end, { x })
    check(function(a) return a:clamp(nil, 0.5) end, { x })
  end)

  it("clamp by tensors, bounds broadcast", function()
    local lo = f64({ -0.5, 1.2, -2, 0.1, -1.2, 0.5 })
    local hi = f64({ 1.1 })
    check(function(a, l, u) return a:clamp(l, u) end, { x, lo, hi })
    check(function(a, l) return a:clamp(l) end, { x, lo })
    check(function(a, u) return a:clamp(nil, u) end, { x, hi })
    check(function(a, l) return a:clamp(l, 1.5) end, { x, lo })
    check(function(a, u) return a:clamp(-0.5, u) end, { x, hi })
    -- min above max: the answer is max, whose gradient it gets
    check(function(a, l, u) return a:clamp(l, u) end, { x, f64({ 3 }), f64({ 1, 1, 1, 1, 1, 1 }) })
  end)

  it("maximum and minimum, broadcast", function()
    local b = f64({ 0.1, 1.2, -2.5, 2.5, -1, 0 })
    check(function(p, q) return ml.maximum(p, q) end, { x, b })
    check(function(p, q) return ml.minimum(p, q) end, { x, b })
    check(function(p, q) return ml.maximum(p, q) end, { x, f64({ 0.5 }) })
    check(function(p, q) return ml.minimum(p, q) end, { f64({ 0.5 }), x })
  end)

  it("lerp by a number and by a tensor, broadcast", function()
    local e = f64({ 1.5, -0.5, 2, 0, 1, -3 })
    local w = f64({ 0.25, 0.8, -0.3, 1.2, 0.5, 0.45 })
    check(function(s, t) return s:lerp(t, 0.3) end, { x, e })
    check(function(s, t) return s:lerp(t, 1.7) end, { x, e })
    check(function(s, t, u) return s:lerp(t, u) end, { x, e, w })
    check(function(s, t, u) return s:lerp(t, u) end, { f64({ 0.5 }), e, f64({ 0.3 }) })
  end)

  it("in-place forms on a non-leaf record their node over the old values", function()
    local e = f64({ 1.5, -0.5, 2, 0, 1, -3 })
    local cases = {
      { "rsqrt_", function(a) local y = a:cos():clamp(0.1); return y:rsqrt_() end, { x } },
      { "sin_", function(a) local y = a:cos(); return y:sin_() end, { x } },
      { "cos_", function(a) local y = a:sin(); return y:cos_() end, { x } },
      { "round_", function(a) local y = a:sin(); return y:round_() end, { x } },
      { "clamp_", function(a) local y = a:sin(); return y:clamp_(-0.5, 0.5) end, { x } },
      { "clamp_ by a tensor", function(a, l) local y = a:sin(); return y:clamp_(l) end,
        { x, f64({ 0.1, -0.2, 0.7, 0.9, -0.9, 0.2 }) } },
      { "maximum_", function(a, b) local y = a:sin(); return y:maximum_(b) end, { x, e } },
      { "minimum_", function(a, b) local y = a:sin(); return y:minimum_(b) end, { x, e } },
      { "lerp_", function(a, b) local y = a:sin(); return y:lerp_(b, 0.3) end, { x, e } },
      { "lerp_ into a leaf without grad", function(b)
        return ml.zeros(6, { dtype = "float64" }):lerp_(b, 0.3)
      end, { e } },
    }
    for _, c in ipairs(cases) do
      local ok, msg = ml.gradcheck(c[2], c[3])
      assert(ok, c[1] .. ": " .. tostring(msg))
    end
    local y = x:sin()
    assert.is_true(rawequal(y:clamp_(0, 1), y))
    assert.are.equal("ClampBackward", y.grad_fn)
    assert.is_false(y.is_leaf)
  end)
end)

describe("math in place and autograd", function()
  local inplace = {
    rsqrt_ = function(t) return t:rsqrt_() end,
    sin_ = function(t) return t:sin_() end,
    cos_ = function(t) return t:cos_() end,
    sign_ = function(t) return t:sign_() end,
    floor_ = function(t) return t:floor_() end,
    ceil_ = function(t) return t:ceil_() end,
    round_ = function(t) return t:round_() end,
    clamp_ = function(t) return t:clamp_(0, 1) end,
    maximum_ = function(t) return t:maximum_(ml.zeros(3)) end,
    minimum_ = function(t) return t:minimum_(ml.zeros(3)) end,
    lerp_ = function(t) return t:lerp_(ml.zeros(3), 0.5) end,
  }
  for name, fn in pairs(inplace) do
    it(name .. " refuses a leaf that requires grad, works under no_grad", function()
      local w = ml.tensor({ 0.5, 1.5, 2.5 }):requires_grad_()
      h.assert_error("moonml." .. name .. ":", "leaf", fn, w)
      h.assert_close(w, { 0.5, 1.5, 2.5 }) -- unchanged
      ml.no_grad(function() fn(w) end)
      assert.is_true(w.is_leaf and w.requires_grad)
    end)

    it(name .. " bumps the version: a saved tensor changed in place fails backward", function()
      local w = ml.tensor({ 0.5, 1.5, 2.5 }):requires_grad_()
      local y = w:sin() -- saves w
      ml.no_grad(function() fn(w) end)
      h.assert_error("moonml.backward:", "modified by an in-place operation", function()
        y:backward(ml.ones(3))
      end)
    end)
  end

  it("reads the other operand as it was when it shares storage", function()
    local x = ml.tensor({ { 1, 5 }, { 3, 2 } })
    x:maximum_(x:t()) -- x:t() read before x is written
    h.assert_close(x, { { 1, 5 }, { 5, 2 } }, exact)
    local y = ml.tensor({ { 1, 5 }, { 3, 2 } })
    y:clamp_(nil, y:t())
    h.assert_close(y, { { 1, 3 }, { 3, 2 } }, exact)
    local z = ml.tensor({ 1, 2, 3 })
    z:lerp_(z, 0.5) -- the very same view: each element read before it is written
    h.assert_close(z, { 1, 2, 3 }, exact)
  end)

  it("floor_, ceil_ and round_ keep int64 values and return the tensor", function()
    local i = ml.tensor({ -3, 0, 7 }, "int64")
    for _, op in ipairs({ "floor_", "ceil_", "round_", "sign_" }) do
      local before = i:clone()
      assert.is_true(rawequal(i[op](i), i))
      if op ~= "sign_" then
        h.assert_close(i, before, { dtype = "int64", rtol = 0, atol = 0 })
      end
    end
    h.assert_close(i, { -1, 0, 1 }, { dtype = "int64", rtol = 0, atol = 0 })
  end)
end)

describe("math bad input", function()
  local x = ml.tensor({ 1, 2, 3 })

  it("needs a tensor first", function()
    for _, op in ipairs({ "rsqrt", "sin", "cos", "sign", "floor", "ceil", "round", "clamp",
      "maximum", "minimum", "lerp" }) do
      h.assert_error("moonml." .. op .. ":", "expected a tensor as argument 1", ml[op], nil)
      h.assert_error("moonml." .. op .. ":", "expected a tensor as argument 1", ml[op], 2)
      h.assert_error("moonml." .. op .. ":", "got string", ml[op], "x")
      h.assert_error("moonml." .. op .. "_:", "expected a tensor as argument 1", ml[op .. "_"],
        { 1, 2 })
    end
  end)

  it("takes no decimals or other extra argument for the unary ops", function()
    h.assert_error("moonml.round:", "expected no argument after the tensor, got number",
      x.round, x, 2)
    h.assert_error("moonml.sin_:", "expected no argument", x.sin_, x, x)
    h.assert_error("moonml.floor:", "got nil", x.floor, x, nil)
  end)

  it("checks clamp's bounds", function()
    h.assert_error("moonml.clamp:", "at least one of min and max", x.clamp, x)
    h.assert_error("moonml.clamp:", "at least one of min and max", x.clamp, x, nil, nil)
    h.assert_error("moonml.clamp:", "min must be a number, a tensor or nil, got string",
      x.clamp, x, "0")
    h.assert_error("moonml.clamp:", "max must be a number, a tensor or nil, got boolean",
      x.clamp, x, 0, true)
    h.assert_error("moonml.clamp:", "unknown option 'lo'", x.clamp, x, { lo = 0 })
    h.assert_error("moonml.clamp:", "(min, max) or as one table", x.clamp, x, { min = 0 }, 1)
    h.assert_error("moonml.clamp:", "argument 4", x.clamp, x, 0, 1, 2)
    h.assert_error("moonml.clamp:", "cannot be broadcast", x.clamp, x, ml.zeros(2))
    h.assert_error("moonml.clamp_:", "doesn't match the broadcast shape", x.clamp_, x,
      ml.zeros(2, 3))
    h.assert_error("moonml.clamp_:", "cannot be stored in place in an int64 tensor",
      ml.tensor({ 1 }, "int64").clamp_, ml.tensor({ 1 }, "int64"), 0.5)
    local closed
    do
      local c <close> = ml.ones(3)
      closed = c
    end
    h.assert_error("moonml.clamp:", "closed tensor", x.clamp, x, closed)
  end)

  it("accepts clamp's bounds as a table", function()
    h.assert_close(x:clamp({ min = 1.5, max = 2.5 }), { 1.5, 2, 2.5 })
    h.assert_close(x:clamp({ max = 2 }), { 1, 2, 2 })
    h.assert_close(ml.clamp(x, { min = ml.tensor({ 3, 0, 0 }) }), { 3, 2, 3 })
    h.assert_close(x:clone():clamp_({ min = 2 }), { 2, 2, 3 })
  end)

  it("checks maximum and minimum", function()
    h.assert_error("moonml.maximum:", "expected a tensor as argument 2, got number",
      x.maximum, x, 1)
    h.assert_error("moonml.minimum:", "expected a tensor as argument 2, got no value",
      x.minimum, x)
    h.assert_error("moonml.maximum:", "shapes [3] and [2] cannot be broadcast together",
      x.maximum, x, ml.ones(2))
    h.assert_error("moonml.minimum_:", "cannot be stored in place in a bool tensor",
      ml.tensor({ true }).minimum_, ml.tensor({ true }), ml.tensor({ 1 }, "int64"))
    h.assert_error("moonml.maximum_:", "expanded", ml.zeros(1):expand(3).maximum_,
      ml.zeros(1):expand(3), x)
  end)

  it("checks lerp", function()
    h.assert_error("moonml.lerp:", "weight must be a number or a tensor, got nil", x.lerp, x, x,
      nil)
    h.assert_error("moonml.lerp:", "weight must be a number or a tensor, got string", x.lerp, x,
      x, "0.5")
    h.assert_error("moonml.lerp:", "expected a tensor as argument 2, got number", x.lerp, x, 1,
      0.5)
    h.assert_error("moonml.lerp:", "start must be a float tensor, got int64",
      ml.tensor({ 1 }, "int64").lerp, ml.tensor({ 1 }, "int64"), ml.tensor({ 1 }, "int64"), 0.5)
    h.assert_error("moonml.lerp:", "end must have start's dtype float32, got float64", x.lerp,
      x, x:double(), 0.5)
    h.assert_error("moonml.lerp_:", "doesn't match the broadcast shape", x.lerp_, x,
      ml.zeros(2, 3), 0.5)
  end)

  it("refuses floor, ceil and round of bool", function()
    local b = ml.tensor({ true, false })
    for _, op in ipairs({ "floor", "ceil", "round" }) do
      h.assert_error("moonml." .. op .. ":", "not supported for bool tensors", b[op], b)
      h.assert_error("moonml." .. op .. "_:", "not supported for bool tensors", b[op .. "_"], b)
    end
  end)
end)

describe("math in-place ops on views", function()
  it("rewrite the base's history", function()
    local x = ml.tensor({ -2, 0.5, 3, 1 }, { requires_grad = true, dtype = "float64" })
    local y = x * 1
    y:narrow(1, 1, 3):clamp_(-1, 1)
    y:sum():backward()
    h.assert_close(x.grad, { 0, 1, 0, 1 })
  end)
  it("refuse a view of a leaf that requires grad, naming the op", function()
    local z = ml.ones(3, { requires_grad = true })
    h.assert_error("moonml.sin_:", "view of a leaf", function()
      z:narrow(1, 1, 2):sin_()
    end)
    h.assert_close(z, { 1, 1, 1 })
  end)
end)
