-- Joining and splitting (cat, stack, split, chunk, repeat / tile, flip) against PyTorch's
-- answers (spec/fixtures/join.lua, written by spec/fixtures/gen_join.py), their
-- gradients, and the error cases.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("join")

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

local function input(name, view)
  local x = apply_view(build(name), view)
  if #view > 0 and x:numel() > 1 then
    assert.is_false(x:is_contiguous(), name .. ": the view is contiguous")
  end
  return x
end

-- joins and splits move values: they must come out exactly (float32 fixture values are
-- printed with 9 digits, which identify a float32 but are not it to the last bit)
local function exact(spec)
  return { dtype = spec.dtype, rtol = spec.dtype == "float32" and 1e-7 or 0, atol = 0 }
end

local function f64(t)
  return ml.tensor(t, "float64"):requires_grad_()
end

describe("cat and stack match PyTorch", function()
  for i, listed in ipairs(fx.joins) do
    it(listed.id, function()
      local case = fx.joins[i]
      local list = {}
      for k, item in ipairs(case.items) do
        list[k] = input(item[1], item[2])
      end
      local f = ml[case.op]
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", nil, f, list, case.dim)
        return
      end
      local r = f(list, case.dim)
      h.assert_close(r, case.out, exact(case.out))
      assert.is_true(r:is_contiguous())
    end)
  end
end)

describe("split and chunk match PyTorch", function()
  for i, listed in ipairs(fx.splits) do
    it(listed.id, function()
      local case = fx.splits[i]
      local x = input(case.input, case.view)
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", nil, x[case.op], x, case.arg, case.dim)
        return
      end
      local pieces = x[case.op](x, case.arg, case.dim)
      assert.are.equal(#case.outs, #pieces)
      for k, want in ipairs(case.outs) do
        h.assert_close(pieces[k], want, exact(want))
        assert.are.equal(x:storage_id(), pieces[k]:storage_id()) -- views, not copies
      end
    end)
  end
end)

describe("repeat, tile and flip match PyTorch", function()
  for i, listed in ipairs(fx.repeats) do
    it(listed.id, function()
      local case = fx.repeats[i]
      local x = input(case.input, case.view)
      local args = case.op == "flip" and case.dims or case.reps
      local f = ml[case.op]
      if case.err then
        h.assert_error("moonml." .. case.op .. ":", nil, f, x, table.unpack(args))
        h.assert_error("moonml." .. case.op .. ":", nil, f, x, args)
        return
      end
      -- separate integers or one table
      local r = f(x, table.unpack(args))
      h.assert_close(r, case.out, exact(case.out))
      h.assert_close(f(x, args), case.out, exact(case.out))
      assert.is_true(r:is_contiguous())
      assert.are_not.equal(x:storage_id(), r:storage_id())
    end)
  end
end)

describe("joins and splits", function()
  local a = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })

  it("cat and stack are module functions taking a Lua array; dim defaults to 1", function()
    h.assert_close(ml.cat({ a, a }), { { 1, 2, 3 }, { 4, 5, 6 }, { 1, 2, 3 }, { 4, 5, 6 } })
    h.assert_close(ml.stack({ a[1], a[2] }), a)
    h.assert_close(ml.stack({ a[1], a[2] }, 2), { { 1, 4 }, { 2, 5 }, { 3, 6 } })
    assert.is_nil(a.cat)
    assert.is_nil(a.stack)
  end)

  it("split and chunk are methods and module functions returning Lua arrays of views", function()
    local x = ml.arange(1, 10)
    local p = x:split(4)
    assert.are.equal(3, #p)
    h.assert_close(p[3], { 9, 10 })
    local q = ml.chunk(x, 3)
    assert.are.equal(3, #q)
    h.assert_close(q[1], { 1, 2, 3, 4 })
    h.assert_close(ml.split(x, { 2, 8 })[2], x:slice(1, 3, 10))
    -- writing through a piece changes the tensor
    p[2]:fill_(0)
    h.assert_close(x, { 1, 2, 3, 4, 0, 0, 0, 0, 9, 10 })
    q[3][1] = -1
    assert.are.equal(-1, x:get(9))
  end)

  it("repeat is reachable by name; tile is torch.tile", function()
    local r = a["repeat"](a, 1, 2)
    h.assert_close(r, { { 1, 2, 3, 1, 2, 3 }, { 4, 5, 6, 4, 5, 6 } })
    h.assert_close(ml["repeat"](a, { 2, 1 }), ml.cat({ a, a }))
    h.assert_close(a:tile(2), r) -- fewer reps than dims: padded in front
    h.assert_close(ml.tile(a, 2, 1), ml.cat({ a, a }))
  end)

  it("flip takes dims as integers or a table", function()
    h.assert_close(a:flip(2), { { 3, 2, 1 }, { 6, 5, 4 } })
    h.assert_close(a:flip({ 1, 2 }), { { 6, 5, 4 }, { 3, 2, 1 } })
    h.assert_close(ml.flip(a, -1, 1), a:flip(1, 2))
  end)

  it("leave their inputs unchanged", function()
    local y = ml.tensor({ { 3, 1 }, { 2, 9 } })
    ml.cat({ y, y }, 2)
    ml.stack({ y, y })
    y:flip(1)
    y:tile(2, 2)
    h.assert_close(y, { { 3, 1 }, { 2, 9 } })
  end)

  it("join thousands of tensors", function()
    local list = {}
    for i = 1, 3000 do
      list[i] = ml.full({ 1, 2 }, i)
    end
    local c = ml.cat(list)
    assert.are.same({ 3000, 2 }, c:shape())
    assert.are.equal(1234, c:get(1234, 2))
    local s = ml.stack(list, 3)
    assert.are.same({ 1, 2, 3000 }, s:shape())
    assert.are.equal(2999, s:get(1, 1, 2999))
    local x = ml.arange(1, 100000)
    local pieces = x:split(1)
    assert.are.equal(100000, #pieces)
    assert.are.equal(77777, pieces[77777]:item())
  end)
end)

describe("gradients", function()
  ml.manual_seed(5)
  local function randn(...)
    return ml.randn({ ... }, { dtype = "float64" }):requires_grad_()
  end

  it("cat passes each input its slice of the gradient", function()
    local a, b = randn(2, 3), randn(1, 3)
    assert.is_true(ml.gradcheck(function(p, q)
      return ml.cat({ p, q, p })
    end, { a, b }))
    local c = randn(2, 2)
    assert.is_true(ml.gradcheck(function(p, q)
      return ml.cat({ p, q }, 2)
    end, { a, c }))
  end)

  it("cat of more inputs than a graph node takes (a tree of nodes)", function()
    local list = {}
    for i = 1, 11 do
      list[i] = randn(1, (i % 3) + 1)
    end
    assert.is_true(ml.gradcheck(function(...)
      return ml.cat({ ... }, 2)
    end, list))
    -- only some of them need a gradient
    local mixed = {}
    for i = 1, 9 do
      mixed[i] = i % 2 == 0 and randn(2) or ml.randn(2, { dtype = "float64" })
    end
    assert.is_true(ml.gradcheck(function(...)
      return ml.cat({ ... })
    end, mixed))
    assert.are.equal("CatBackward", ml.cat(mixed).grad_fn)
  end)

  it("cat with a skipped 1-D empty input and with mixed dtypes", function()
    local a, e = randn(2, 2), ml.zeros(0, { dtype = "float64" }):requires_grad_()
    local y = ml.cat({ e, a, e, a }, 2)
    y:backward(ml.ones(2, 4, { dtype = "float64" }))
    assert.are.same({ 0 }, e.grad:shape())
    h.assert_close(a.grad, ml.full({ 2, 2 }, 2))
    local f = ml.randn(2, 2):requires_grad_() -- float32 in a float64 result
    local z = ml.cat({ f, a })
    assert.are.equal("float64", z:dtype())
    z:backward(ml.ones(4, 2, { dtype = "float64" }))
    assert.are.equal("float32", f.grad:dtype())
    h.assert_close(f.grad, ml.ones(2, 2))
  end)

  it("stack passes each input its slice of the gradient", function()
    local a, b = randn(2, 3), randn(2, 3)
    for _, dim in ipairs({ 1, 2, 3 }) do
      assert.is_true(ml.gradcheck(function(p, q)
        return ml.stack({ p, q, p }, dim)
      end, { a, b }))
    end
    local list = {}
    for i = 1, 7 do
      list[i] = randn(2)
    end
    assert.is_true(ml.gradcheck(function(...)
      return ml.stack({ ... }, 2)
    end, list))
    assert.are.equal("StackBackward", ml.stack(list).grad_fn)
  end)

  it("split and chunk pieces pass their gradient back to their place", function()
    local a = randn(3, 5)
    for k = 1, 3 do
      assert.is_true(ml.gradcheck(function(p)
        return p:split(2, 2)[k]
      end, { a }))
    end
    assert.is_true(ml.gradcheck(function(p)
      return p:split({ 1, 2 }, 1)[2]
    end, { a }))
    assert.is_true(ml.gradcheck(function(p)
      return p:chunk(2, 1)[2]
    end, { a }))
    -- the pieces' gradients add up in the input
    local x = randn(4)
    local p = x:chunk(2)
    local y = ml.cat({ p[2], p[1], p[2] })
    y:backward(ml.tensor({ 1, 2, 3, 4, 5, 6 }, "float64"))
    h.assert_close(x.grad, { 3, 4, 1 + 5, 2 + 6 })
    assert.are.equal("SplitBackward", p[1].grad_fn)
  end)

  it("repeat and tile sum the gradient over the copies", function()
    local a = randn(2, 3)
    assert.is_true(ml.gradcheck(function(p)
      return p:tile(2, 1, 2)
    end, { a }))
    assert.is_true(ml.gradcheck(function(p)
      return p["repeat"](p, 3, 1)
    end, { a }))
    assert.is_true(ml.gradcheck(function(p)
      return p:tile(2)
    end, { randn(3) }))
    local x = randn(2)
    x:tile(3):backward(ml.tensor({ 1, 2, 3, 4, 5, 6 }, "float64"))
    h.assert_close(x.grad, { 1 + 3 + 5, 2 + 4 + 6 })
    assert.are.equal("RepeatBackward", x:tile(2).grad_fn)
  end)

  it("flip flips the gradient", function()
    local a = randn(2, 3)
    assert.is_true(ml.gradcheck(function(p)
      return p:flip(2)
    end, { a }))
    assert.is_true(ml.gradcheck(function(p)
      return p:flip(1, 2)
    end, { a }))
    assert.are.equal("FlipBackward", a:flip(1).grad_fn)
  end)

  it("record nothing without grad or under no_grad", function()
    local a = ml.randn(2, 2)
    assert.is_nil(ml.cat({ a, a }).grad_fn)
    local b = f64({ 1, 2 })
    ml.no_grad(function()
      assert.is_false(ml.stack({ b, b }).requires_grad)
      assert.is_false(b:split(1)[1].requires_grad)
      assert.is_false(b:flip(1).requires_grad)
    end)
  end)
end)

describe("bad input", function()
  local x = ml.zeros(2, 3)

  it("cat and stack want a non-empty Lua array of tensors", function()
    for _, name in ipairs({ "cat", "stack" }) do
      local prefix = "moonml." .. name .. ":"
      h.assert_error(prefix, "Lua array of tensors", ml[name], x)
      h.assert_error(prefix, "Lua array of tensors", ml[name], nil)
      h.assert_error(prefix, "Lua array of tensors", ml[name], "ab")
      h.assert_error(prefix, "non-empty", ml[name], {})
      h.assert_error(prefix, "element 2", ml[name], { x, 3 })
      h.assert_error(prefix, "element 1", ml[name], { "x" })
      h.assert_error(prefix, "must be an integer", ml[name], { x, x }, 1.5)
      h.assert_error(prefix, "must be an integer", ml[name], { x, x }, "1")
      h.assert_error(prefix, "out of range", ml[name], { x, x }, 0)
    end
    h.assert_error("moonml.cat:", "out of range", ml.cat, { x, x }, 3)
    h.assert_error("moonml.cat:", "out of range", ml.cat, { x, x }, -3)
    h.assert_error("moonml.stack:", "out of range", ml.stack, { x, x }, 4)
    h.assert_error("moonml.cat:", "sizes must match except in dimension 1", ml.cat,
      { x, ml.zeros(2, 4) })
    h.assert_error("moonml.cat:", "same number of dimensions", ml.cat, { x, ml.zeros(3) })
    h.assert_error("moonml.cat:", "0-d", ml.cat, { ml.tensor(1), ml.tensor(2) })
    h.assert_error("moonml.stack:", "equal shape", ml.stack, { x, ml.zeros(3, 2) })
  end)

  it("split and chunk check their sizes and dims", function()
    h.assert_error("moonml.split:", "expected a tensor", ml.split, nil, 2)
    h.assert_error("moonml.split:", "split size or a table", x.split, x)
    h.assert_error("moonml.split:", "split size or a table", x.split, x, "2")
    h.assert_error("moonml.split:", "must be an integer", x.split, x, 1.5)
    h.assert_error("moonml.split:", "must be an integer", x.split, x, { 1, "a" })
    h.assert_error("moonml.split:", "must be positive", x.split, x, 0)
    h.assert_error("moonml.split:", "add up to 4", x.split, x, { 1, 3 }, 2)
    h.assert_error("moonml.split:", "out of range", x.split, x, 1, 3)
    h.assert_error("moonml.split:", "0-d", ml.split, ml.tensor(1), 1)
    h.assert_error("moonml.chunk:", "must be positive", x.chunk, x, 0)
    h.assert_error("moonml.chunk:", "must be an integer", x.chunk, x)
    h.assert_error("moonml.chunk:", "out of range", x.chunk, x, 2, -3)
    h.assert_error("moonml.chunk:", "0-d", ml.chunk, ml.tensor(1), 1)
  end)

  it("repeat, tile and flip check their arguments", function()
    h.assert_error("moonml.repeat:", "2 repetitions given for a 3-D tensor", ml["repeat"],
      ml.zeros(1, 2, 3), 2, 2)
    h.assert_error("moonml.repeat:", "must not be negative", ml["repeat"], x, 1, -1)
    h.assert_error("moonml.tile:", "must be an integer", ml.tile, x, "2")
    h.assert_error("moonml.tile:", "must be an integer", ml.tile, x, 1.5)
    h.assert_error("moonml.tile:", "expected a tensor", ml.tile, {}, 2)
    h.assert_error("moonml.tile:", "at most 8", ml.tile, x, { 1, 1, 1, 1, 1, 1, 1, 1, 1 })
    h.assert_error("moonml.flip:", "one or more dims", x.flip, x)
    h.assert_error("moonml.flip:", "out of range", x.flip, x, 0)
    h.assert_error("moonml.flip:", "out of range", x.flip, x, { 3 })
    h.assert_error("moonml.flip:", "appears more than once", x.flip, x, 1, -2)
    h.assert_error("moonml.flip:", "must be an integer", x.flip, x, "1")
  end)

  it("a closed tensor is refused", function()
    local kept
    do
      local y <close> = ml.zeros(3)
      kept = y
    end
    h.assert_error("moonml.cat:", "closed", ml.cat, { x, kept })
    h.assert_error("moonml.split:", "closed", ml.split, kept, 1)
    h.assert_error("moonml.flip:", "closed", ml.flip, kept, 1)
  end)
end)

-- The fixture is dropped once this file has run (the tests above look cases up by
-- number, so they do not keep it alive): the memory spec's resident-size bounds depend on
-- the size of the live Lua heap.
teardown(function()
  fx = nil
end)
