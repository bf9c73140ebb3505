-- Shape operations (views and the copies reshape falls back to) against PyTorch:
-- values, shapes, strides (element counts in both), contiguity and storage sharing.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("tensor")
local EXACT = { rtol = 0, atol = 0 }

local function make_base(name)
  local b = fx.bases[name]
  local n = 1
  for _, s in ipairs(b.shape) do
    n = n * s
  end
  return ml.arange(1, n, { dtype = b.dtype }):view(b.shape)
end

local function apply(x, steps)
  for _, step in ipairs(steps) do
    x = x[step[1]](x, table.unpack(step, 2))
  end
  return x
end

local function describe_steps(c)
  local parts = {}
  for _, step in ipairs(c.steps) do
    local args = {}
    for i = 2, #step do
      args[#args + 1] = tostring(step[i])
    end
    parts[#parts + 1] = step[1] .. "(" .. table.concat(args, ", ") .. ")"
  end
  return c.base .. ":" .. table.concat(parts, ":")
end

local function same_list(a, b)
  return table.concat(a, ",") == table.concat(b, ",")
end

describe("shape ops against PyTorch", function()
  for _, c in ipairs(fx.shape) do
    local title = describe_steps(c)
    if c.error then
      it(title .. " is refused like PyTorch's", function()
        local base = make_base(c.base)
        h.assert_error("moonml." .. c.error .. ":", nil, apply, base, c.steps)
      end)
    else
      it(title, function()
        local base = make_base(c.base)
        local x = apply(base, c.steps)
        h.assert_close(x, c, { rtol = 0, atol = 0, dtype = c.dtype })
        assert(same_list(x:stride(), c.stride), "strides {" .. table.concat(x:stride(), ", ")
          .. "} ~= PyTorch's {" .. table.concat(c.stride, ", ") .. "}")
        assert.are.equal(c.contiguous, x:is_contiguous())
        assert.are.equal(c.shares, x:storage_id() == base:storage_id())
      end)
    end
  end
end)

describe("views write through to their base", function()
  it("view, then set", function()
    local base = ml.zeros(2, 3)
    local v = base:view(6)
    assert.are.equal(base:storage_id(), v:storage_id())
    v:set(5, 9)
    assert.are.equal(9, base:get(2, 2))
  end)
  it("transpose, then x[i] = v", function()
    local base = ml.zeros(2, 3)
    local t = base:t()
    t[3] = 4 -- column 3 of base
    h.assert_close(base, { { 0, 0, 4 }, { 0, 0, 4 } }, EXACT)
  end)
  it("narrow and slice with a step", function()
    local base = ml.zeros(6)
    base:narrow(1, 2, 2):fill_(1)
    base:slice(1, 1, 6, 3):fill_(7)
    h.assert_close(base, { 7, 1, 1, 7, 0, 0 }, EXACT)
  end)
  it("select of a row and of a column", function()
    local base = ml.zeros(3, 3)
    base:select(1, 2):fill_(1)
    base:select(2, -1):fill_(2)
    h.assert_close(base, { { 0, 0, 2 }, { 1, 1, 2 }, { 0, 0, 2 } }, EXACT)
  end)
  it("an expanded view shows a write to its one element everywhere", function()
    local base = ml.zeros(1, 3)
    local e = base:expand(4, 3)
    base:set(1, 2, 5)
    h.assert_close(e:select(2, 2), { 5, 5, 5, 5 }, EXACT)
    assert.are.equal(base:storage_id(), e:storage_id())
  end)
  it("permute, unsqueeze, squeeze and flatten share storage", function()
    local base = ml.zeros(2, 3, 4)
    local p = base:permute(3, 1, 2):unsqueeze(1):squeeze(1):flatten(2, 3)
    assert.are.same({ 4, 6 }, p:shape())
    p:set(4, 6, 3) -- last of p is base[2][3][4]
    assert.are.equal(3, base:get(2, 3, 4))
    assert.are.equal(base:storage_id(), p:storage_id())
  end)
  it("reshape of a non-contiguous tensor copies, so writes do not reach the base", function()
    local base = ml.arange(1, 6):view(2, 3)
    local r = base:t():reshape(6)
    assert.are_not.equal(base:storage_id(), r:storage_id())
    r:fill_(0)
    h.assert_close(base, { { 1, 2, 3 }, { 4, 5, 6 } }, EXACT)
  end)
  it("reshape of a contiguous tensor is a view", function()
    local base = ml.arange(1, 6)
    local r = base:reshape(3, -1)
    r:set(3, 2, 0)
    assert.are.equal(0, base[6])
  end)
end)

describe("contiguity flags", function()
  it("follow PyTorch's rule (size-1 dims do not count)", function()
    local x = ml.zeros(3, 4)
    assert.is_true(x:is_contiguous())
    assert.is_false(x:t():is_contiguous())
    assert.is_true(x:t():contiguous():is_contiguous())
    assert.is_false(x:narrow(2, 1, 2):is_contiguous())
    assert.is_true(x:narrow(1, 2, 2):is_contiguous())
    assert.is_true(x:select(1, 2):is_contiguous())
    assert.is_false(x:select(2, 2):is_contiguous())
    assert.is_false(x:narrow(2, 2, 1):t():is_contiguous()) -- shape {1, 3}, strides {1, 4}
    assert.is_true(ml.zeros(1, 4):t():is_contiguous()) -- shape {4, 1}, strides {1, 4}
    assert.is_false(ml.zeros(3, 1):expand(3, 4):is_contiguous())
    assert.is_true(ml.zeros(0, 4):t():is_contiguous())
    assert.is_true(ml.tensor(1):is_contiguous())
  end)
end)

describe("shape ops in detail", function()
  it("view and reshape take sizes or one table, and -1", function()
    local x = ml.arange(1, 12)
    assert.are.same({ 3, 4 }, x:view(3, 4):shape())
    assert.are.same({ 3, 4 }, x:view({ 3, 4 }):shape())
    assert.are.same({ 2, 6 }, x:reshape({ 2, -1 }):shape())
    assert.are.same({ 12 }, x:view(3, 4):view(-1):shape())
    assert.are.same({}, ml.tensor({ 5 }):view({}):shape())
  end)
  it("view_as and expand_as take the other tensor's shape", function()
    local x = ml.arange(1, 6)
    assert.are.same({ 2, 3 }, x:view_as(ml.zeros(2, 3)):shape())
    local e = ml.tensor({ 1, 2, 3 }):expand_as(ml.zeros(2, 3))
    h.assert_close(e, { { 1, 2, 3 }, { 1, 2, 3 } }, EXACT)
    assert.are.same({ 0, 1 }, e:stride())
  end)
  it("flatten of a 0-d tensor has one element, of a 1-D tensor is itself", function()
    assert.are.same({ 1 }, ml.tensor(3):flatten():shape())
    assert.are.same({ 4 }, ml.zeros(4):flatten():shape())
  end)
  it("squeeze and unsqueeze on 0-d tensors", function()
    local s = ml.tensor(2)
    assert.are.same({}, s:squeeze():shape())
    assert.are.same({ 1 }, s:unsqueeze(1):shape())
    assert.are.same({ 1 }, s:unsqueeze(-1):shape())
  end)
  it("squeeze(d) leaves a dim that is not 1", function()
    assert.are.same({ 2, 3 }, ml.zeros(2, 3):squeeze(1):shape())
  end)
  it("permute takes dims or one table, negative dims too", function()
    local x = ml.zeros(2, 3, 4)
    assert.are.same({ 4, 2, 3 }, x:permute(3, 1, 2):shape())
    assert.are.same({ 4, 2, 3 }, x:permute({ -1, 1, 2 }):shape())
  end)
  it("t of 0-d and 1-D tensors is the tensor itself (a view)", function()
    assert.are.same({ 3 }, ml.zeros(3):t():shape())
    assert.are.same({}, ml.tensor(1):t():shape())
  end)
  it("slice: defaults, one element, empty ranges", function()
    local x = ml.arange(1, 5)
    h.assert_close(x:slice(1), { 1, 2, 3, 4, 5 }, EXACT)
    h.assert_close(x:slice(1, 3), { 3, 4, 5 }, EXACT)
    h.assert_close(x:slice(1, 2, 4), { 2, 3, 4 }, EXACT) -- both ends included
    h.assert_close(x:slice(1, -2, -1), { 4, 5 }, EXACT)
    h.assert_close(x:slice(1, 2, 5, 2), { 2, 4 }, EXACT)
    h.assert_close(x:slice(1, 4, 4), { 4 }, EXACT)
    assert.are.same({ 0 }, x:slice(1, 4, 3):shape())
    assert.are.same({ 0 }, x:slice(1, 6, 5):shape())
  end)
  it("narrow may start one past the end with length 0", function()
    assert.are.same({ 0, 2 }, ml.zeros(3, 2):narrow(1, 4, 0):shape())
  end)
  it("keeps int64 and bool dtypes and values", function()
    local l = ml.tensor({ { 1, 2 }, { 3, 4 } }, "int64"):t():reshape(4)
    h.assert_close(l, { 1, 3, 2, 4 }, { rtol = 0, atol = 0, dtype = "int64" })
    local b = ml.tensor({ { true, false }, { false, false } }):t():flatten()
    h.assert_close(b, { true, false, false, false }, { dtype = "bool" })
  end)
  it("are module functions too", function()
    local x = ml.arange(1, 6)
    assert.are.same({ 2, 3 }, ml.view(x, 2, 3):shape())
    assert.are.same({ 3, 2 }, ml.t(ml.reshape(x, 2, 3)):shape())
    assert.are.same({ 1, 6 }, ml.unsqueeze(x, 1):shape())
    h.assert_close(ml.narrow(x, 1, 2, 2), { 2, 3 }, EXACT)
  end)
end)

describe("shape ops reject bad input", function()
  local x = ml.arange(1, 6):view(2, 3)
  local cases = {
    { "view", "cannot view", function() return x:view(4) end },
    { "view", "only one dimension can be -1", function() return x:view(-1, -1) end },
    { "view", "negative size", function() return x:view(-2, -3) end },
    { "view", "must be an integer", function() return x:view(2.5, 2) end },
    { "view", "must be an integer", function() return x:view("6") end },
    { "view", "at most 8", function() return x:view(1, 1, 1, 1, 1, 1, 1, 1, 6) end },
    { "view", "invalid for a tensor of 0", function() return ml.zeros(0):view(-1, 0) end },
    { "view", "too many elements", function() return ml.zeros(0):view(2 ^ 40, 2 ^ 40, 0) end },
    { "view", "strides", function() return x:t():view(6) end },
    { "view", "expected a tensor", function() return ml.view("x", 6) end },
    { "view", "expected a tensor", function() return ml.view(nil, 6) end },
    { "view_as", "expected a tensor", function() return x:view_as({ 3, 2 }) end },
    { "reshape", "cannot view", function() return x:reshape(5) end },
    { "reshape", "only one dimension", function() return x:reshape(-1, 3, -1) end },
    { "flatten", "comes after", function() return ml.zeros(2, 3, 4):flatten(3, 1) end },
    { "flatten", "out of range", function() return x:flatten(3) end },
    { "squeeze", "out of range", function() return x:squeeze(3) end },
    { "unsqueeze", "out of range", function() return x:unsqueeze(0) end },
    { "unsqueeze", "out of range", function() return x:unsqueeze(4) end },
    { "unsqueeze", "at most 8", function() return ml.zeros(1, 1, 1, 1, 1, 1, 1, 1):unsqueeze(1) end },
    { "permute", "permutation", function() return ml.zeros(2, 3, 4):permute(1, 1, 2) end },
    { "permute", "3 dims given for a 2-D", function() return x:permute(1, 2, 3) end },
    { "permute", "out of range", function() return x:permute(1, 3) end },
    { "permute", "must be an integer", function() return x:permute({ 1, "2" }) end },
    { "transpose", "out of range", function() return x:transpose(1, 3) end },
    { "transpose", "must be an integer", function() return x:transpose(1) end },
    { "t", "at most 2", function() return ml.zeros(2, 3, 4):t() end },
    { "expand", "cannot expand", function() return x:expand(2, 4) end },
    { "expand", "cannot expand", function() return x:expand(3) end },
    { "expand", "leading", function() return x:expand(-1, 2, 3) end },
    { "expand", "cannot expand", function() return ml.zeros(1):expand(-2) end },
    { "expand", "too many elements", function() return ml.zeros(1):expand(2 ^ 40, 2 ^ 40) end },
    { "expand", "at most 8", function() return x:expand(1, 1, 1, 1, 1, 1, 1, 2, 3) end },
    { "expand_as", "expected a tensor", function() return x:expand_as(7) end },
    { "narrow", "out of range", function() return x:narrow(2, 0, 1) end },
    { "narrow", "out of range", function() return x:narrow(2, 5, 0) end },
    { "narrow", "out of range", function() return x:narrow(2, -4, 1) end },
    { "narrow", "out of range", function() return x:narrow(2, 2, 3) end },
    { "narrow", "out of range", function() return x:narrow(2, 1, -1) end },
    { "narrow", "out of range", function() return x:narrow(2, 2, math.maxinteger) end },
    { "narrow", "out of range", function() return x:narrow(3, 1, 1) end },
    { "narrow", "0-d", function() return ml.tensor(1):narrow(1, 1, 1) end },
    { "slice", "out of range", function() return x:slice(2, 0, 2) end },
    { "slice", "out of range", function() return x:slice(2, 5) end },
    { "slice", "out of range", function() return x:slice(2, 1, 4) end },
    { "slice", "out of range", function() return x:slice(2, 1, -4) end },
    { "slice", "step must be positive", function() return x:slice(2, 1, 3, 0) end },
    { "slice", "step must be positive", function() return x:slice(2, 3, 1, -1) end },
    { "slice", "0-d", function() return ml.tensor(1):slice(1) end },
    { "select", "out of range", function() return x:select(1, 0) end },
    { "select", "out of range", function() return x:select(1, 3) end },
    { "select", "out of range", function() return x:select(2, -4) end },
    { "select", "out of range", function() return x:select(3, 1) end },
    { "select", "0-d", function() return ml.tensor(1):select(1, 1) end },
    { "select", "must be an integer", function() return x:select(1, nil) end },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. ": " .. c[2], function()
      h.assert_error("moonml." .. c[1] .. ":", c[2], c[3])
    end)
  end
end)
