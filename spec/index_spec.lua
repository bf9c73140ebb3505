-- Indexing: index_select, gather, scatter(_), scatter_add(_), masked_fill(_), masked_select,
-- where, nonzero, x[mask], x[indices] and assignment through them, against PyTorch's
-- answers (spec/fixtures/index.lua, written by spec/fixtures/gen_index.py): values, dtypes,
-- gradients, and the cases PyTorch refuses. Then index arguments, in-place forms, autograd
-- (gradcheck on float64), large inputs on several threads, and bad input.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("index")

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

-- A case argument: a (viewed) fixture input, or a number; nil when absent.
local function arg(ref)
  if ref == nil then
    return nil
  end
  if ref.number ~= nil then
    return ref.number
  end
  local x = apply_view(build(ref.input), ref.view)
  if #ref.view > 0 and x:numel() > 1 and ref.view[1][1] ~= "slice" then
    assert.is_false(x:is_contiguous(), "view of " .. ref.input .. " is contiguous")
  end
  return x
end

local function is_expanded(ref)
  for _, step in ipairs(ref.view) do
    if step[1] == "expand" then
      return true
    end
  end
  return false
end

-- Runs the case's op on the arguments in a (a table keyed as the case's refs).
local function run(case, a)
  local op = case.op
  if op == "index_select" or op == "gather" then
    return a.x[op](a.x, case.dim, a.index)
  elseif op == "scatter" or op == "scatter_add" then
    local src = a.src
    if src == nil then
      src = case.value
    end
    return a.x[op](a.x, case.dim, a.index, src)
  elseif op == "masked_fill" then
    local value = a.value
    if value == nil then
      value = case.value
    end
    return a.x:masked_fill(a.mask, value)
  elseif op == "masked_select" then
    return a.x:masked_select(a.mask)
  elseif op == "where" then
    local x, y = a.x, a.y
    if x == nil then
      x = case.x
    end
    if y == nil then
      y = case.y
    end
    return ml.where(a.cond, x, y)
  elseif op == "nonzero" then
    return a.x:nonzero()
  elseif op == "index" then
    return a.x[a.key]
  elseif op == "index_put" then
    -- an identity through index_select, so that the copy stays in the graph
    local y = a.x:index_select(1, ml.arange(a.x:size(1)))
    local value = a.value
    if value == nil then
      value = case.value
    end
    y[a.key] = value
    return y
  end
  error("unknown op " .. op)
end

local REFS = { "x", "index", "src", "mask", "value", "cond", "y", "key" }

local function args_of(case)
  local a = {}
  for _, k in ipairs(REFS) do
    if type(case[k]) == "table" then
      a[k] = arg(case[k])
    end
  end
  return a
end

local EXACT = { rtol = 0, atol = 0 }

-- A fixture result as a tensor of its dtype: float32 values then compare exactly.
local function expected(spec)
  return ml.tensor(spec.values, spec.dtype):reshape(spec.shape)
end

local function exact(dtype)
  return { rtol = 0, atol = 0, dtype = dtype }
end

local function err_name(op)
  if op == "index" then
    return "moonml.index:"
  elseif op == "index_put" then
    return "moonml.newindex:"
  end
  return "moonml." .. op .. ":"
end

describe("indexing matches PyTorch", function()
  for _, case in ipairs(fx.cases) do
    it(case.op .. ": " .. case.id, function()
      local a = args_of(case)
      if case.err then
        h.assert_error(err_name(case.op), nil, run, case, a)
        return
      end
      -- indexing copies values: they match exactly
      h.assert_close(run(case, a), expected(case.out), exact(case.out.dtype))
    end)
  end
end)

describe("gradients match PyTorch", function()
  for _, case in ipairs(fx.cases) do
    if case.gout then
      it(case.op .. ": " .. case.id, function()
        local a = args_of(case)
        local leaves = {}
        for _, k in ipairs(REFS) do
          if case["g" .. k] then
            a[k] = a[k]:detach():requires_grad_()
            leaves[k] = a[k]
          end
        end
        local out = run(case, a)
        assert.is_truthy(out.grad_fn)
        out:backward(ml.tensor(case.gout.values, case.gout.dtype):reshape(case.gout.shape))
        for k, x in pairs(leaves) do
          -- sums of repeated indices may add in another order than PyTorch
          h.assert_close(x.grad, case["g" .. k], { rtol = 1e-6, atol = 1e-6 })
        end
      end)
    end
  end
end)

describe("index arguments", function()
  local x = ml.arange(12):view(3, 4)

  it("take Lua tables, nested tables, float tensors of whole numbers and int64 tensors", function()
    local want = x:index_select(2, ml.tensor({ 4, 1, 4 }, "int64"))
    h.assert_close(x:index_select(2, { 4, 1, 4 }), want, EXACT)
    h.assert_close(x:index_select(2, ml.tensor({ 4, 1, 4 })), want, EXACT)
    h.assert_close(x:index_select(2, ml.tensor({ 4, 1, 4 }, "float64")), want, EXACT)
    h.assert_close(x:index_select(2, { 4.0, 1, 4 }), want, EXACT)
    h.assert_close(x:gather(2, { { 1, 4 }, { 2, 2 }, { 3, 1 } }), { { 1, 4 }, { 6, 6 }, { 11, 9 } },
      EXACT)
    h.assert_close(x[ml.tensor({ 3, 1 })], { { 9, 10, 11, 12 }, { 1, 2, 3, 4 } }, EXACT)
  end)

  it("an empty table is an empty index", function()
    local r = x:index_select(1, {})
    assert.are.same({ 0, 4 }, r:shape())
  end)

  it("count from 1; 0 and past the end are errors naming index, dimension and size", function()
    local y = ml.zeros(3, 5)
    local idx = ml.tensor({ { 1, 7 } }, "int64")
    h.assert_error("moonml.gather:", nil, function()
      y:gather(2, idx)
    end)
    local err = h.assert_error("moonml.gather:", nil, y.gather, y, 2, idx)
    assert.are.equal("moonml.gather: index 7 out of range for dimension 2 of size 5", err)
    err = h.assert_error("moonml.index_select:", nil, y.index_select, y, 1, { 2, 0 })
    assert.are.equal("moonml.index_select: index 0 out of range for dimension 1 of size 3", err)
    h.assert_error("moonml.scatter:", "index 6 out of range for dimension 2 of size 5", y.scatter,
      y, 2, { { 6 } }, 1)
    h.assert_error("moonml.scatter_add:", "index 4 out of range for dimension 1 of size 3",
      y.scatter_add, y, -2, { { 4 } }, ml.ones(1, 1))
  end)

  it("index_select, gather and scatter refuse negative indices (as PyTorch)", function()
    h.assert_error("moonml.index_select:", "index -1 out of range", x.index_select, x, 1, { -1 })
    h.assert_error("moonml.gather:", "index -1 out of range", x.gather, x, 2, { { -1 } })
    h.assert_error("moonml.scatter:", "index -2 out of range", x.scatter, x, 2, { { -2 } }, 0)
    h.assert_error("moonml.scatter_add_:", "index -1 out of range", x.scatter_add_, x, 2,
      { { -1 } }, ml.ones(1, 1))
  end)

  it("x[indices] counts negative indices from the end (as PyTorch)", function()
    h.assert_close(x[ml.tensor({ -1, -3 }, "int64")], { { 9, 10, 11, 12 }, { 1, 2, 3, 4 } }, EXACT)
    h.assert_error("moonml.index:", "index -4 out of range for dimension 1 of size 3", function()
      return x[ml.tensor({ -4 })]
    end)
    h.assert_error("moonml.index:", "index 0 out of range", function()
      return x[ml.tensor({ 0 })]
    end)
  end)

  it("fractions, NaN and infinities are not indices", function()
    h.assert_error("moonml.index_select:", "index 1.5 is not a whole number", x.index_select, x,
      1, ml.tensor({ 1, 1.5 }))
    h.assert_error("moonml.gather:", "index nan is not a whole number", x.gather, x, 1,
      ml.tensor({ { 0 / 0 } }))
    h.assert_error("moonml.gather:", "index inf is not a whole number", x.gather, x, 1,
      ml.tensor({ { 1 / 0 } }, "float64"))
    h.assert_error("moonml.index_select:", "index 2.5 is not a whole number", x.index_select, x,
      1, { 1, 2.5 })
    h.assert_error("moonml.index:", "index 1.25 is not a whole number", function()
      return x[ml.tensor({ 1.25 })]
    end)
    h.assert_error("moonml.index_select:", "index 1e+20 out of range", x.index_select, x, 1,
      ml.tensor({ 1e20 }, "float64"))
  end)

  it("must be int64 or float tensors or tables of integers", function()
    h.assert_error("moonml.index_select:", "got bool", x.index_select, x, 1,
      ml.tensor({ true }))
    h.assert_error("moonml.index_select:", "got nil", x.index_select, x, 1, nil)
    h.assert_error("moonml.gather:", "got string", x.gather, x, 1, "1")
    h.assert_error("moonml.gather:", "holds integers, got string", x.gather, x, 1, { { "1" } })
    h.assert_error("moonml.gather:", "holds integers, got boolean", x.gather, x, 1, { { true } })
    h.assert_error("moonml.gather:", "ragged index table", x.gather, x, 1, { { 1, 2 }, { 1 } })
    h.assert_error("moonml.gather:", "ragged index table", x.gather, x, 1, { { 1 }, 2 })
  end)

  it("dims count from 1, negative from the end, and are checked", function()
    h.assert_close(x:index_select(-1, { 2 }), x:index_select(2, { 2 }), EXACT)
    h.assert_error("moonml.index_select:", "dim 3 out of range for a 2-D tensor", x.index_select,
      x, 3, { 1 })
    h.assert_error("moonml.gather:", "dim 0 out of range", x.gather, x, 0, { { 1 } })
    h.assert_error("moonml.scatter:", "dim -3 out of range", x.scatter, x, -3, { { 1 } }, 1)
    h.assert_error("moonml.scatter_add:", "dim must be an integer, got nil", x.scatter_add, x,
      nil, { { 1 } }, x)
    h.assert_error("moonml.index_select:", "dim must be an integer", x.index_select, x, 1.5, { 1 })
  end)
end)

describe("index_select and gather", function()
  it("index_select keeps the input's other dims and takes a 0-d index", function()
    local x = ml.randn(2, 3, 4)
    local r = x:index_select(2, ml.tensor(3, "int64"))
    assert.are.same({ 2, 1, 4 }, r:shape())
    h.assert_close(r:view(2, 4), x:select(2, 3), EXACT)
  end)

  it("index_select on a 0-d tensor takes exactly one index", function()
    local x = ml.tensor(4.5)
    h.assert_close(x:index_select(1, { 1 }), 4.5, EXACT)
    h.assert_error("moonml.index_select:", "a 0-d tensor takes exactly one index",
      x.index_select, x, 1, { 1, 1 })
  end)

  it("results are new contiguous tensors", function()
    local x = ml.randn(4, 5):t()
    local r = x:index_select(1, { 2, 1 })
    assert.is_true(r:is_contiguous())
    assert.are_not.equal(x:storage_id(), r:storage_id())
    r = x:gather(1, { { 1, 2 } })
    assert.is_true(r:is_contiguous())
  end)

  it("are module functions too", function()
    local x = ml.arange(6):view(2, 3)
    h.assert_close(ml.index_select(x, 2, { 3 }), { { 3 }, { 6 } }, EXACT)
    h.assert_close(ml.gather(x, 2, { { 3 }, { 1 } }), { { 3 }, { 4 } }, EXACT)
  end)

  it("reject bad input", function()
    local x = ml.zeros(2, 3)
    h.assert_error("moonml.index_select:", "expected a tensor as argument 1", ml.index_select, {},
      1, { 1 })
    h.assert_error("moonml.index_select:", "index must be 1-D, got 2-D", x.index_select, x, 1,
      { { 1 } })
    h.assert_error("moonml.gather:", "index must have as many dims as the tensor (2), got 1",
      x.gather, x, 2, { 1 })
    h.assert_error("moonml.gather:", "index of shape [3, 1] is larger than the tensor's shape",
      x.gather, x, 2, { { 1 }, { 1 }, { 1 } })
    h.assert_error("moonml.gather:", "expected a tensor as argument 1", ml.gather, nil, 1, { 1 })
  end)
end)

describe("scatter and scatter_add", function()
  it("in-place forms change the tensor, return it, and agree with the fixtures", function()
    for _, case in ipairs(fx.cases) do
      if (case.op == "scatter" or case.op == "scatter_add") and not case.err then
        local a = args_of(case)
        local base = build(case.x.input):clone()
        a.x = apply_view(base, case.x.view)
        local op = case.op .. "_"
        local src = a.src
        if src == nil then
          src = case.value
        end
        if is_expanded(case.x) then
          h.assert_error("moonml." .. op .. ":", "expanded view", a.x[op], a.x, case.dim, a.index,
            src)
        else
          local r = a.x[op](a.x, case.dim, a.index, src)
          assert.are.equal(a.x, r)
          h.assert_close(a.x, expected(case.out), exact(case.out.dtype))
        end
      end
    end
  end)

  it("a failed in-place call leaves the tensor as it was", function()
    local x = ml.zeros(2, 3)
    h.assert_error("moonml.scatter_:", "index 4 out of range", x.scatter_, x, 2, { { 1, 4 } }, 5)
    h.assert_close(x, ml.zeros(2, 3), EXACT)
    h.assert_error("moonml.scatter_add_:", "index 3 out of range", x.scatter_add_, x, 1,
      { { 1, 1, 1 }, { 2, 2, 3 } }, ml.ones(2, 3))
    h.assert_close(x, ml.zeros(2, 3), EXACT)
  end)

  it("src may share memory with the tensor", function()
    local x = ml.arange(6):view(2, 3)
    x:scatter_(2, { { 3, 2, 1 }, { 3, 2, 1 } }, x)
    h.assert_close(x, { { 3, 2, 1 }, { 6, 5, 4 } }, EXACT)
  end)

  it("int64 values stay exact beyond 2^53", function()
    local x = ml.zeros(2, { dtype = "int64" })
    x:scatter_(1, { 2 }, 9007199254740993)
    assert.are.equal(9007199254740993, x[2])
  end)

  it("reject bad input", function()
    local x = ml.zeros(2, 3)
    h.assert_error("moonml.scatter:", "src must be a tensor or a number, got string", x.scatter,
      x, 2, { { 1 } }, "1")
    h.assert_error("moonml.scatter:", "src must be a tensor or a number, got nil", x.scatter, x,
      2, { { 1 } })
    h.assert_error("moonml.scatter_add:", "src must be a tensor, got number", x.scatter_add, x, 2,
      { { 1 } }, 1)
    h.assert_error("moonml.scatter:", "src must have the tensor's dtype float32, got int64",
      x.scatter, x, 2, { { 1 } }, ml.ones(1, 1, { dtype = "int64" }))
    h.assert_error("moonml.scatter:", "src must have as many dims as the index", x.scatter, x, 2,
      { { 1 } }, ml.ones(1))
    h.assert_error("moonml.scatter:", "larger than the src's shape", x.scatter, x, 2, { { 1, 2 } },
      ml.ones(1, 1))
    h.assert_error("moonml.scatter_:", "cannot store nan in an int64 tensor", function()
      ml.zeros(2, { dtype = "int64" }):scatter_(1, { 1 }, 0 / 0)
    end)
    h.assert_error("moonml.scatter:", "expected a tensor as argument 1", ml.scatter, 1, 1, { 1 },
      1)
  end)
end)

describe("masks", function()
  local x = ml.arange(6):view(2, 3)
  local m = ml.tensor({ { true, false, true }, { false, false, true } })

  it("masked_fill_ changes the tensor, returns it, and agrees with the fixtures", function()
    for _, case in ipairs(fx.cases) do
      if case.op == "masked_fill" and not case.err then
        local a = args_of(case)
        local base = build(case.x.input):clone()
        a.x = apply_view(base, case.x.view)
        local value = a.value
        if value == nil then
          value = case.value
        end
        local same = table.concat(a.x:shape(), ",") == table.concat(case.out.shape, ",")
        if is_expanded(case.x) then
          h.assert_error("moonml.masked_fill_:", "expanded view", a.x.masked_fill_, a.x, a.mask,
            value)
        elseif not same then
          h.assert_error("moonml.masked_fill_:", "does not broadcast to the tensor's shape",
            a.x.masked_fill_, a.x, a.mask, value)
        else
          assert.are.equal(a.x, a.x:masked_fill_(a.mask, value))
          h.assert_close(a.x, expected(case.out), exact(case.out.dtype))
        end
      end
    end
  end)

  it("masks must be bool tensors", function()
    h.assert_error("moonml.masked_fill:", "mask must be a bool tensor, got int64", x.masked_fill,
      x, m:long(), 1)
    h.assert_error("moonml.masked_fill_:", "mask must be a bool tensor, got float32",
      x.masked_fill_, x:clone(), m:float(), 1)
    h.assert_error("moonml.masked_select:", "mask must be a bool tensor, got table",
      x.masked_select, x, { { true } })
    h.assert_error("moonml.masked_select:", "mask must be a bool tensor, got nil",
      x.masked_select, x)
  end)

  it("masked_fill takes numbers, booleans and 0-d tensors; nothing else", function()
    h.assert_close(x:masked_fill(m, ml.tensor(-1, "int64")), { { -1, 2, -1 }, { 4, 5, -1 } },
      EXACT)
    h.assert_error("moonml.masked_fill:", "value must be a number or a 0-d tensor, got a 1-D",
      x.masked_fill, x, m, ml.ones(1))
    h.assert_error("moonml.masked_fill:", "value must be a number, a boolean or a 0-d tensor, got "
      .. "string", x.masked_fill, x, m, "1")
    h.assert_error("moonml.masked_fill:", "got nil", x.masked_fill, x, m)
    h.assert_error("moonml.masked_fill:", "cannot store inf in an int64 tensor",
      x:long().masked_fill, x:long(), m, 1 / 0)
  end)

  it("int64 values stay exact beyond 2^53", function()
    local y = ml.zeros(3, { dtype = "int64" }):masked_fill(ml.tensor({ false, true, false }),
      9007199254740993)
    assert.are.equal(9007199254740993, y[2])
  end)

  it("masked_select of an empty selection is an empty 1-D tensor of the dtype", function()
    local r = x:long():masked_select(ml.zeros(2, 3, { dtype = "bool" }))
    assert.are.same({ 0 }, r:shape())
    assert.are.equal("int64", r:dtype())
  end)

  it("module functions take the tensor first", function()
    h.assert_close(ml.masked_select(x, m), { 1, 3, 6 }, EXACT)
    h.assert_close(ml.masked_fill(x, m, 9), { { 9, 2, 9 }, { 4, 5, 9 } }, EXACT)
  end)
end)

describe("where", function()
  local c = ml.tensor({ true, false, true })
  local x, y = ml.tensor({ 1, 2, 3 }), ml.tensor({ -1, -2, -3 })

  it("ml.where(cond, x, y) and x:where(cond, y) agree", function()
    h.assert_close(ml.where(c, x, y), { 1, -2, 3 }, EXACT)
    h.assert_close(x:where(c, y), { 1, -2, 3 }, EXACT)
    h.assert_close(x:where(c, 0), { 1, 0, 3 }, EXACT)
  end)

  it("ml.where(cond) gives the positions, as nonzero{as_tuple = true}", function()
    local r = ml.where(ml.tensor({ { true, false }, { true, true } }))
    assert.are.equal(2, #r)
    h.assert_close(r[1], { 1, 2, 2 }, exact("int64"))
    h.assert_close(r[2], { 1, 1, 2 }, exact("int64"))
  end)

  it("numbers follow PyTorch's wrapped-number rule", function()
    assert.are.equal("float32", ml.where(c, 1.5, 0):dtype())
    assert.are.equal("int64", ml.where(c, 1, 0):dtype())
    assert.are.equal("float32", ml.where(c, x:long(), 0.5):dtype())
    assert.are.equal("int64", ml.where(c, x:long(), 2):dtype())
    assert.are.equal("float32", ml.where(c, x, 2):dtype())
    assert.are.equal("float64", ml.where(c, x:double(), 2.5):dtype())
  end)

  it("rejects bad input", function()
    h.assert_error("moonml.where:", "the condition must be a bool tensor, got int64", ml.where,
      c:long(), x, y)
    h.assert_error("moonml.where:", "the condition must be a bool tensor, got table", ml.where,
      { true }, x, y)
    h.assert_error("moonml.where:", "expected a tensor or a number as argument 3, got no value",
      ml.where, c, x)
    h.assert_error("moonml.where:", "expected a tensor or a number as argument 2, got boolean",
      ml.where, c, true, y)
    h.assert_error("moonml.where:", "cannot be broadcast", ml.where, c, x, ml.ones(2))
    h.assert_error("moonml.where:", "the condition must be a bool tensor, got nil", x.where, x,
      nil, y)
  end)
end)

describe("nonzero", function()
  it("as_tuple gives one 1-D int64 tensor per dim, the columns of nonzero()", function()
    for _, case in ipairs(fx.cases) do
      if case.op == "nonzero" then
        local x = arg(case.x)
        local cols = x:nonzero({ as_tuple = true })
        local all = x:nonzero()
        assert.are.equal(math.max(x:dim(), 1), #cols)
        for d = 1, #cols do
          assert.are.same({ case.out.shape[1] }, cols[d]:shape())
          assert.are.equal("int64", cols[d]:dtype())
          if x:dim() > 0 then
            h.assert_close(cols[d], all:select(2, d), EXACT)
          end
        end
      end
    end
  end)

  it("a 0-d input counts as one element", function()
    local cols = ml.tensor(3):nonzero({ as_tuple = true })
    h.assert_close(cols[1], { 1 }, exact("int64"))
    cols = ml.tensor(0):nonzero({ as_tuple = true })
    assert.are.same({ 0 }, cols[1]:shape())
  end)

  it("rejects bad options", function()
    local x = ml.ones(2)
    h.assert_error("moonml.nonzero:", "unknown option 'astuple'", x.nonzero, x,
      { astuple = true })
    h.assert_error("moonml.nonzero:", "as_tuple must be a boolean", x.nonzero, x,
      { as_tuple = 1 })
    h.assert_error("moonml.nonzero:", "options must be a table", x.nonzero, x, true)
    h.assert_error("moonml.nonzero:", "expected a tensor as argument 1", ml.nonzero, "x")
  end)
end)

describe("x[mask] and x[indices]", function()
  it("assignments agree with the fixtures for float keys too", function()
    for _, case in ipairs(fx.cases) do
      if case.op == "index_put" and not case.err and case.key.input ~= "m34"
          and fx.inputs[case.key.input].dtype == "int64" then
        local a = args_of(case)
        local y = a.x:clone()
        local value = a.value
        if value == nil then
          value = case.value
        end
        y[a.key:float()] = value
        h.assert_close(y, expected(case.out), exact(case.out.dtype))
      end
    end
  end)

  it("x[mask] = v writes through a view into its base", function()
    local base = ml.zeros(3, 4)
    local v = base:t()
    v[ml.tensor({ true, false, false, true })] = 5
    h.assert_close(base, { { 5, 0, 0, 5 }, { 5, 0, 0, 5 }, { 5, 0, 0, 5 } }, EXACT)
  end)

  it("with repeated indices the last write wins", function()
    local x = ml.zeros(3)
    x[ml.tensor({ 2, 2, 1, 2 })] = ml.tensor({ 1, 2, 3, 4 })
    h.assert_close(x, { 3, 4, 0 }, EXACT)
  end)

  it("x[indices] = v converts v to x's dtype (as x[i] = v does)", function()
    local x = ml.zeros(3)
    x[ml.tensor({ 1, 3 }, "int64")] = ml.tensor({ 7, 8 }, "int64")
    h.assert_close(x, { 7, 0, 8 }, exact("float32"))
    local i = ml.zeros(3, { dtype = "int64" })
    i[ml.tensor({ true, false, true })] = 2.75
    h.assert_close(i, { 2, 0, 2 }, exact("int64"))
  end)

  it("a failed assignment leaves the tensor as it was", function()
    local x = ml.arange(6):view(3, 2)
    h.assert_error("moonml.newindex:", "index 4 out of range", function()
      x[ml.tensor({ 1, 2, 4 })] = 0
    end)
    h.assert_error("moonml.newindex:", "cannot be broadcast to the indexed shape [2, 2]",
      function()
        x[ml.tensor({ 1, 2 })] = ml.ones(3)
      end)
    h.assert_close(x, ml.arange(6):view(3, 2), EXACT)
  end)

  it("rejects bad keys and values", function()
    local x = ml.zeros(3, 2)
    h.assert_error("moonml.index:", "cannot index a 0-d tensor with an index tensor", function()
      return ml.tensor(1)[ml.tensor({ 1 })]
    end)
    h.assert_error("moonml.newindex:", "cannot index a 0-d tensor with an index tensor",
      function()
        ml.tensor(1)[ml.tensor({ 1 })] = 2
      end)
    h.assert_error("moonml.newindex:", "value must be a number, a boolean or a 0-d tensor, got "
      .. "table", function()
        x[ml.tensor({ 1 })] = { 1, 2 }
      end)
    h.assert_error("moonml.newindex:", "the mask's shape [2] does not match the tensor's shape "
      .. "[3, 2] in dimension 1", function()
        x[ml.tensor({ true, false })] = 1
      end)
    h.assert_error("moonml.newindex:", "cannot store nan in an int64 tensor", function()
      ml.zeros(2, { dtype = "int64" })[ml.tensor({ true, false })] = 0 / 0
    end)
    h.assert_error("moonml.newindex:", "expanded view", function()
      ml.zeros(1, 3):expand(2, 3)[ml.tensor({ 1 })] = 1
    end)
  end)
end)

describe("autograd", function()
  local function d(...)
    return ml.randn(...):double():requires_grad_()
  end

  -- a copy of t that stays in the graph (index_select with every row)
  local function copy(t)
    return t:index_select(1, ml.arange(t:size(1)))
  end

  local function check(fn, inputs)
    local ok, msg = ml.gradcheck(fn, inputs)
    assert(ok, msg)
  end

  it("records named nodes", function()
    local x = d(3, 4)
    local m = ml.tensor({ true, false, true, true })
    assert.are.equal("IndexSelectBackward", x:index_select(1, { 1 }).grad_fn)
    assert.are.equal("GatherBackward", x:gather(1, { { 1 } }).grad_fn)
    assert.are.equal("ScatterBackward", x:scatter(1, { { 1 } }, 0).grad_fn)
    assert.are.equal("ScatterAddBackward", x:scatter_add(1, { { 1 } }, x).grad_fn)
    assert.are.equal("MaskedFillBackward", x:masked_fill(m, 0).grad_fn)
    assert.are.equal("MaskedSelectBackward", x:masked_select(m).grad_fn)
    assert.are.equal("WhereBackward", ml.where(m, x, 0).grad_fn)
    assert.are.equal("IndexBackward", x[m:expand(3, 4)].grad_fn)
    local y = copy(x)
    y[ml.tensor({ 1 })] = 0
    assert.are.equal("IndexPutBackward", y.grad_fn)
    assert.is_nil(x:nonzero().grad_fn)
    assert.is_nil(ml.no_grad(function()
      return x:gather(1, { { 1 } })
    end).grad_fn)
  end)

  it("index_select and gather accumulate repeated indices", function()
    local x = d(3, 4)
    check(function(t)
      return t:index_select(2, { 1, 3, 1, 1 })
    end, { x })
    check(function(t)
      return t:index_select(1, { 3, 3 })
    end, { x })
    check(function(t)
      return t:gather(1, { { 1, 2, 3, 3 }, { 3, 3, 1, 1 }, { 3, 3, 3, 3 } })
    end, { x })
    -- a transposed leaf: strided input
    check(function(t)
      return t:gather(2, { { 1, 1 }, { 2, 2 }, { 3, 1 }, { 3, 3 } })
    end, { d(3, 4):t():detach():requires_grad_() })
  end)

  it("scatter sends the gradient to src where it landed and to the tensor elsewhere", function()
    local x, src, small = d(3, 4), d(2, 4), d(2, 2)
    check(function(t, s)
      return t:scatter(1, { { 1, 2, 3, 3 }, { 3, 3, 1, 1 } }, s)
    end, { x, src })
    -- repeated indices: only the write that remained gets a gradient
    check(function(t, s)
      return t:scatter(2, { { 2, 2, 2, 4 }, { 1, 1, 1, 1 } }, s)
    end, { x, src })
    -- src larger than the index: its other elements get zero
    check(function(t, s)
      return t:scatter(2, { { 4 } }, s)
    end, { x, small })
    check(function(t)
      return t:scatter(1, { { 2, 1 } }, 5)
    end, { x })
  end)

  it("scatter_add passes the gradient to both", function()
    local x, src = d(3, 4), d(2, 4)
    check(function(t, s)
      return t:scatter_add(1, { { 1, 2, 3, 3 }, { 3, 3, 1, 1 } }, s)
    end, { x, src })
    check(function(t, s)
      return t:scatter_add(2, { { 4, 4, 4 } }, s)
    end, { x, src })
  end)

  it("in-place scatter_, scatter_add_ and masked_fill_ on non-leaves", function()
    local x, src = d(3, 4), d(2, 4)
    check(function(t, s)
      return copy(t):scatter_(1, { { 1, 2, 3, 3 }, { 3, 3, 1, 1 } }, s)
    end, { x, src })
    check(function(t, s)
      return copy(t):scatter_add_(2, { { 4, 4, 1 }, { 2, 2, 2 } }, s)
    end, { x, src })
    local v = ml.tensor(0.5, "float64"):requires_grad_()
    check(function(t, val)
      return copy(t):masked_fill_(ml.tensor({ true, false, false, true }), val)
    end, { x, v })
  end)

  it("masked_fill zeroes the filled places; a 0-d value gets their sum", function()
    local x = d(3, 4)
    local v = ml.tensor(2, "float64"):requires_grad_()
    local m = ml.tensor({ { true }, { false }, { true } })
    check(function(t, val)
      return t:masked_fill(m, val)
    end, { x, v })
    -- the mask broadcasts the tensor: its gradient sums over the new dim
    check(function(t)
      return t:masked_fill(ml.tensor({ { { true } }, { { false } } }), 1)
    end, { x })
  end)

  it("masked_select, broadcasting both ways", function()
    local x = d(3, 1)
    check(function(t)
      return t:masked_select(ml.tensor({ { true, false, true, true }, { false, false, true, true },
        { true, true, true, false } }))
    end, { x })
    check(function(t)
      return t:masked_select(ml.tensor({ true, false, true }))
    end, { d(2, 3) })
  end)

  it("where: x's gradient where cond holds, y's elsewhere, numbers get nothing", function()
    local c = ml.tensor({ { true, false, true, false } })
    check(function(a, b)
      return ml.where(c, a, b)
    end, { d(3, 4), d(3, 1) })
    check(function(a)
      return ml.where(c, a, 1.5)
    end, { d(4) })
    check(function(b)
      return b:where(c:t(), 0)
    end, { d(4, 3) })
  end)

  it("x[mask], x[indices] and assignment through them", function()
    local x = d(3, 4)
    check(function(t)
      return t[ml.tensor({ 3, 1, 3, -1 })]
    end, { x })
    check(function(t)
      return t[ml.tensor({ { 2, 2 }, { 1, 3 } }, "int64")]
    end, { x })
    check(function(t)
      return t[ml.tensor({ true, false, true })]
    end, { x })
    check(function(t)
      return t[ml.tensor({ { true, false, true, true }, { false, false, true, true },
        { true, true, true, false } })]
    end, { x })
    check(function(t, v)
      local y = copy(t)
      y[ml.tensor({ 3, 1, 3 })] = v -- row 3 written twice: the last write gets the gradient
      return y
    end, { x, d(4) })
    check(function(t, v)
      local y = copy(t)
      y[ml.tensor({ true, false, true })] = v
      return y
    end, { x, d(2, 1) })
  end)

  it("in-place changes of a leaf that requires grad are refused, except under no_grad", function()
    local x = d(3, 4)
    local m = ml.tensor({ true, false, true, true })
    h.assert_error("moonml.masked_fill_:", "a leaf tensor that requires grad", x.masked_fill_, x,
      m, 0)
    h.assert_error("moonml.scatter_:", "a leaf tensor that requires grad", x.scatter_, x, 1,
      { { 1 } }, 0)
    h.assert_error("moonml.scatter_add_:", "a leaf tensor that requires grad", x.scatter_add_, x,
      1, { { 1 } }, x:detach())
    h.assert_error("moonml.newindex:", "a leaf tensor that requires grad", function()
      x[m:expand(3, 4)] = 0
    end)
    ml.no_grad(function()
      x:masked_fill_(m, 0)
      x[ml.tensor({ 1 })] = 1
    end)
    h.assert_close(x:select(1, 1), { 1, 1, 1, 1 }, EXACT)
    assert.is_true(x.is_leaf)
  end)

  it("a saved mask changed in place makes backward fail", function()
    local x = d(2)
    local m = ml.tensor({ true, false })
    local y = x:masked_fill(m, 0)
    m:masked_fill_(ml.tensor({ true, true }), false)
    h.assert_error("moonml.backward:", "modified by an in-place operation", y.backward, y,
      ml.ones(2, { dtype = "float64" }))
  end)

  it("a value that requires grad makes a plain tensor part of the graph", function()
    local x = ml.zeros(3, { dtype = "float64" })
    local v = d(1)
    x[ml.tensor({ 2 })] = v
    assert.is_true(x.requires_grad)
    x:backward(ml.tensor({ 1, 2, 3 }, "float64"))
    h.assert_close(v.grad, { 2 }, EXACT)
  end)
end)

describe("large inputs", function()
  local threads = ml.get_num_threads()
  after_each(function()
    ml.set_num_threads(threads)
  end)

  it("index_select and gather agree across threads and with closed forms", function()
    local rows, cols = 1200, 500 -- 600k elements: split over threads
    local x = ml.arange(rows * cols):view(rows, cols)
    local idx = ml.randint(1, rows, { rows })
    for _, n in ipairs({ 1, 2 }) do
      ml.set_num_threads(n)
      local r = x:index_select(1, idx)
      -- row i of the result holds (idx[i] - 1) * cols + 1 .. idx[i] * cols
      local want = (idx:float():view(rows, 1) - 1) * cols + ml.arange(cols):view(1, cols)
      assert.are.equal(0, (r - want):abs():max():item())
      local g = ml.randint(1, cols, { rows, cols })
      local got = x:gather(2, g)
      want = (ml.arange(rows):view(rows, 1) - 1) * cols + g:float()
      assert.are.equal(0, (got - want):abs():max():item())
      local sel = x:t():index_select(2, idx) -- strided input, index along the inner dim
      assert.are.equal(0, (sel:t() - x:index_select(1, idx)):abs():max():item())
    end
  end)

  it("converted indices are freed at once, not at the next collection", function()
    local x = ml.zeros(1000, 100)
    local idx = ml.ones(1000, 100) -- float32: converted to a 0-based int64 copy
    collectgarbage()
    local before = ml.memory_stats().live_bytes
    local r = x:gather(2, idx)
    local grown = ml.memory_stats().live_bytes - before
    assert.is_true(grown >= r:numel() * 4)
    assert.is_true(grown < r:numel() * 4 + 1000 * 100 * 8 / 2, "the int64 copy is still alive")
  end)

  it("masked ops and where on large inputs", function()
    local x = ml.randn(700, 1000)
    local m = x:gt(0)
    for _, n in ipairs({ 1, 2 }) do
      ml.set_num_threads(n)
      local filled = x:masked_fill(m, 0)
      assert.are.equal(0, filled:max():item())
      local w = ml.where(m, x, 0)
      assert.are.equal(0, (w - (x - filled)):abs():max():item())
      local s = x:masked_select(m)
      assert.are.equal(m:sum():item(), s:numel())
      assert.is_true(s:min():item() > 0)
    end
  end)
end)
