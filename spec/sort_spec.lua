-- sort, topk and unique against PyTorch's answers (spec/fixtures/sort.lua, written by
-- spec/fixtures/gen_sort.py): stable order of ties, NaN, long rows (radix sort, topk's
-- heap), strided inputs; their gradients, large inputs, and the error cases.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("sort")

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

local function exact(spec)
  return { dtype = spec.dtype, rtol = spec.dtype == "float32" and 1e-7 or 0, atol = 0 }
end

-- every index tuple of a shape, in row-major order
local function positions(shape)
  local out, idx = {}, {}
  local function walk(d)
    if d > #shape then
      out[#out + 1] = { table.unpack(idx) }
      return
    end
    for i = 1, shape[d] do
      idx[d] = i
      walk(d + 1)
    end
  end
  walk(1)
  return out
end

-- values[p] is x at p with p[dim] replaced by indices[p]: the positions point at the values
local function assert_points(x, dim, values, indices)
  if x:dim() == 0 then
    assert.are.equal(1, indices:item())
    return
  end
  dim = dim < 0 and dim + x:dim() + 1 or dim
  for _, p in ipairs(positions(values:shape())) do
    local q = { table.unpack(p) }
    q[dim] = indices:get(table.unpack(p))
    local a, b = x:get(table.unpack(q)), values:get(table.unpack(p))
    assert(a == b or (a ~= a and b ~= b), ("value at {%s} is not the input's at {%s}"):format(
      table.concat(p, ", "), table.concat(q, ", ")))
  end
end

local function sort_call(case, x)
  if case.dim == nil and case.descending == nil then
    return x:sort()
  end
  return x:sort(case.dim, { descending = case.descending })
end

describe("sort matches PyTorch's stable sort", function()
  for n, listed in ipairs(fx.sorts) do
    it(listed.id, function()
      local case = fx.sorts[n]
      local x = input_of(case)
      if case.err then
        h.assert_error("moonml.sort:", "out of range", sort_call, case, x)
        return
      end
      local v, i = sort_call(case, x)
      h.assert_close(v, case.values, exact(case.values))
      h.assert_close(i, case.indices, exact(case.indices))
      assert.is_true(v:is_contiguous() and i:is_contiguous())
    end)
  end
end)

describe("topk matches PyTorch", function()
  for n, listed in ipairs(fx.topks) do
    it(listed.id, function()
      local case = fx.topks[n]
      local x = input_of(case)
      local opts = { largest = case.largest, sorted = not case.unsorted }
      if case.err then
        h.assert_error("moonml.topk:", nil, x.topk, x, case.k, case.dim, opts)
        return
      end
      local v, i = x:topk(case.k, case.dim, opts)
      local dim = case.dim or -1
      if case.unsorted then
        -- the same values and positions, in some order
        local largest = case.largest ~= false
        h.assert_close(v:sort(dim, largest), case.values, exact(case.values))
        h.assert_close(i:sort(dim), tensor_of(case.indices):sort(dim), exact(case.indices))
        assert_points(x, dim, v, i)
        return
      end
      h.assert_close(v, case.values, exact(case.values))
      h.assert_close(i, case.indices, exact(case.indices))
      assert_points(x, dim, v, i)
    end)
  end
end)

describe("unique matches torch.unique", function()
  for i, listed in ipairs(fx.uniques) do
    it(listed.id, function()
      local case = fx.uniques[i]
      local x = input_of(case)
      local v, inv, cnt = x:unique({ return_inverse = true, return_counts = true })
      h.assert_close(v, case.values, exact(case.values))
      h.assert_close(inv, case.inverse, exact(case.inverse))
      h.assert_close(cnt, case.counts, exact(case.counts))
      -- and the options pick what comes back
      local v2, c2 = x:unique({ return_counts = true })
      h.assert_close(v2, case.values, exact(case.values))
      h.assert_close(c2, case.counts, exact(case.counts))
      local v3, i3, more = x:unique({ return_inverse = true, sorted = false })
      h.assert_close(v3, case.values, exact(case.values))
      h.assert_close(i3, case.inverse, exact(case.inverse))
      assert.is_nil(more)
      local v4, none = x:unique()
      h.assert_close(v4, case.values, exact(case.values))
      assert.is_nil(none)
    end)
  end
end)

describe("sorting", function()
  it("sort defaults to the last dim, ascending; accepts a boolean for descending", function()
    local x = ml.tensor({ { 3, 1, 2 }, { 0, 5, 4 } })
    local v, i = x:sort()
    h.assert_close(v, { { 1, 2, 3 }, { 0, 4, 5 } })
    h.assert_close(i, { { 2, 3, 1 }, { 1, 3, 2 } }, { dtype = "int64" })
    v = x:sort(1, true)
    h.assert_close(v, { { 3, 5, 4 }, { 0, 1, 2 } })
    v, i = x:sort({ descending = true })
    h.assert_close(v, { { 3, 2, 1 }, { 5, 4, 0 } })
    h.assert_close(i, { { 1, 3, 2 }, { 2, 3, 1 } })
    local v2, i2 = ml.sort(x, 2, { descending = true, stable = true })
    h.assert_close(v2, v)
    h.assert_close(i2, i)
  end)

  it("topk defaults to the largest along the last dim, best first", function()
    local x = ml.tensor({ { 3, 1, 2 }, { 0, 5, 4 } })
    local v, i = x:topk(2)
    h.assert_close(v, { { 3, 2 }, { 5, 4 } })
    h.assert_close(i, { { 1, 3 }, { 2, 3 } }, { dtype = "int64" })
    v, i = ml.topk(x, 1, 1, false, true) -- PyTorch's positional largest, sorted
    h.assert_close(v, { { 0, 1, 2 } })
    h.assert_close(i, { { 2, 1, 1 } })
    v = x:topk(1, { largest = false })
    h.assert_close(v, { { 1 }, { 0 } })
  end)

  it("sorts 200000 floats like a comparison sort would", function()
    ml.manual_seed(9)
    local n = 200000
    local x = ml.randint(-30000, 30000, { n }):float() / 7 -- many ties
    x:set(123, 0 / 0)
    local v, i = x:sort()
    local vt, it_ = v:totable(), i:totable()
    local xt = x:totable()
    for k = 2, n - 1 do
      local a, b = vt[k - 1], vt[k]
      assert(a < b or (a == b and it_[k - 1] < it_[k]), "out of order at " .. k)
    end
    assert.is_true(vt[n] ~= vt[n]) -- the NaN last
    assert.are.equal(123, it_[n])
    for _, k in ipairs({ 1, 1000, 100000, n }) do
      local a, b = xt[it_[k]], vt[k]
      assert.is_true(a == b or (a ~= a and b ~= b))
    end
    -- topk agrees with the sort
    local tv, ti = x:topk(50, 1, { largest = false })
    h.assert_close(tv, v:narrow(1, 1, 50), { rtol = 0, atol = 0 })
    h.assert_close(ti, i:narrow(1, 1, 50))
    local bv = x:topk(5)
    assert.is_true(bv:get(1) ~= bv:get(1)) -- NaN counts as the largest
    h.assert_close(bv:narrow(1, 2, 4), v:narrow(1, n - 4, 4):flip(1), { rtol = 0, atol = 0 })
  end)

  it("sorts int64 beyond 2^53 exactly", function()
    local big = 9007199254740993 -- 2^53 + 1
    local x = ml.tensor({ big, big - 1, math.maxinteger, math.mininteger, 0, big - 2 }, "int64")
    local v, i = x:sort()
    assert.are.same({ math.mininteger, 0, big - 2, big - 1, big, math.maxinteger }, v:totable())
    assert.are.same({ 4, 5, 6, 2, 1, 3 }, i:totable())
    local u, inv = ml.tensor({ big, big - 1, big }, "int64"):unique({ return_inverse = true })
    assert.are.same({ big - 1, big }, u:totable())
    assert.are.same({ 2, 1, 2 }, inv:totable())
  end)

  it("does not depend on the thread count", function()
    local threads = ml.get_num_threads()
    ml.manual_seed(4)
    local x = ml.randint(0, 50, { 400, 300 }):float()
    ml.set_num_threads(1)
    local v1, i1 = x:sort(2)
    local t1, ti1 = x:topk(7, 1)
    ml.set_num_threads(2)
    local v2, i2 = x:sort(2)
    local t2, ti2 = x:topk(7, 1)
    ml.set_num_threads(threads)
    h.assert_close(v2, v1, { rtol = 0, atol = 0 })
    h.assert_close(i2, i1)
    h.assert_close(t2, t1, { rtol = 0, atol = 0 })
    h.assert_close(ti2, ti1)
  end)

  it("leaves its input unchanged", function()
    local x = ml.tensor({ 3, 1, 2 })
    x:sort()
    x:topk(2)
    x:unique()
    h.assert_close(x, { 3, 1, 2 })
  end)
end)

describe("gradients", function()
  ml.manual_seed(6)
  local a = ml.randn({ 3, 5 }, { dtype = "float64" }):requires_grad_()

  it("sort values pass the gradient back to where they came from", function()
    for _, dim in ipairs({ 1, 2 }) do
      for _, desc in ipairs({ false, true }) do
        assert.is_true(ml.gradcheck(function(p)
          return (p:sort(dim, desc))
        end, { a }))
      end
    end
    assert.are.equal("SortBackward", (a:sort()).grad_fn)
  end)

  it("topk values pass the gradient back to the selected positions", function()
    for _, k in ipairs({ 1, 3 }) do
      assert.is_true(ml.gradcheck(function(p)
        return (p:topk(k, 2))
      end, { a }))
      assert.is_true(ml.gradcheck(function(p)
        return (p:topk(k, 1, { largest = false }))
      end, { a }))
    end
    assert.are.equal("TopkBackward", (a:topk(2)).grad_fn)
  end)

  it("with ties, as PyTorch: each value's gradient goes to its own position", function()
    local x = ml.tensor({ 2, 1, 2, 1, 3 }, "float64"):requires_grad_()
    local v = x:sort()
    v:backward(ml.tensor({ 10, 20, 30, 40, 50 }, "float64"))
    h.assert_close(x.grad, { 30, 10, 40, 20, 50 })
    x.grad = nil
    local t = x:topk(2, 1, { largest = false })
    t:backward(ml.tensor({ 1, 2 }, "float64"))
    h.assert_close(x.grad, { 0, 1, 0, 2, 0 })
  end)

  it("the indices a caller gets are not the ones backward uses", function()
    local x = ml.tensor({ 3, 1, 2 }, "float64"):requires_grad_()
    local v, i = x:sort()
    i:fill_(1)
    v:backward(ml.tensor({ 1, 2, 3 }, "float64"))
    h.assert_close(x.grad, { 3, 1, 2 })
  end)

  it("unique records no gradient", function()
    assert.is_false(a:unique().requires_grad)
  end)
end)

describe("bad input", function()
  local x = ml.zeros(2, 3)

  it("sort, topk and unique check their arguments", function()
    for _, name in ipairs({ "sort", "topk", "unique" }) do
      local prefix = "moonml." .. name .. ":"
      h.assert_error(prefix, "expected a tensor", ml[name], nil, 1)
      h.assert_error(prefix, "expected a tensor", ml[name], { 1, 2 }, 1)
    end
    h.assert_error("moonml.sort:", "out of range", x.sort, x, 3)
    h.assert_error("moonml.sort:", "out of range", x.sort, x, 0)
    h.assert_error("moonml.sort:", "must be an integer", x.sort, x, "1")
    h.assert_error("moonml.sort:", "unknown option 'reverse'", x.sort, x, 1, { reverse = true })
    h.assert_error("moonml.sort:", "descending must be a boolean", x.sort, x, 1,
      { descending = 1 })
    h.assert_error("moonml.sort:", "options must be a table", x.sort, x, 1, "desc")
    h.assert_error("moonml.topk:", "k must be an integer", x.topk, x)
    h.assert_error("moonml.topk:", "k must be an integer", x.topk, x, 1.5)
    h.assert_error("moonml.topk:", "out of range for dimension 2 of size 3", x.topk, x, 4)
    h.assert_error("moonml.topk:", "out of range", x.topk, x, -1)
    h.assert_error("moonml.topk:", "out of range", x.topk, x, 1, 3)
    h.assert_error("moonml.topk:", "largest must be a boolean", x.topk, x, 1, 2, "yes")
    h.assert_error("moonml.topk:", "sorted must be a boolean", x.topk, x, 1, 2, true, 1)
    h.assert_error("moonml.topk:", "unknown option 'dim'", x.topk, x, 1, { dim = 1 })
    h.assert_error("moonml.unique:", "not supported", x.unique, x, { dim = 1 })
    h.assert_error("moonml.unique:", "unknown option 'counts'", x.unique, x, { counts = true })
    h.assert_error("moonml.unique:", "return_counts must be a boolean", x.unique, x,
      { return_counts = "yes" })
    h.assert_error("moonml.unique:", "options must be a table", x.unique, x, true)
  end)

  it("a closed tensor is refused", function()
    local kept
    do
      local y <close> = ml.zeros(3)
      kept = y
    end
    h.assert_error("moonml.sort:", "closed", ml.sort, kept)
    h.assert_error("moonml.topk:", "closed", ml.topk, kept, 1)
    h.assert_error("moonml.unique:", "closed", ml.unique, kept)
  end)
end)

-- The fixture is dropped once this file has run (the tests above look cases up by
-- number, so they do not keep it alive): the memory spec's resident-size bounds depend on
-- the size of the live Lua heap.
teardown(function()
  fx = nil
end)
