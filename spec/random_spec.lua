-- Sampling: randperm, multinomial, bernoulli, uniform_, normal_. Seeded draws reproduce
-- exactly; frequencies and moments are checked against their probabilities.
--
-- Tolerances: a count of hits among n independent draws with probability p is binomial, with
-- standard deviation sqrt(n p (1 - p)); a mean of n draws of standard deviation s has
-- standard deviation s / sqrt(n). Every statistical check allows 5 of those standard
-- deviations (a correct sampler fails one such check with probability below 6e-7), and the
-- seeds are fixed, so the outcome does not change from run to run.
local ml = require("moonml")
local h = require("helpers")

local SIGMAS = 5

-- |observed - expected| within SIGMAS standard deviations
local function assert_within(observed, expected, sd, what)
  assert(math.abs(observed - expected) <= SIGMAS * sd,
    string.format("%s: %.6g, expected %.6g +- %d x %.4g", what, observed, expected, SIGMAS, sd))
end

-- counts[v] of the values of an int64 tensor
local function counts(t)
  local c = {}
  for _, v in ipairs(t:reshape(-1):totable()) do
    c[v] = (c[v] or 0) + 1
  end
  return c
end

local function same_bytes(a, b)
  return a:dtype() == b:dtype() and a:to_bytes() == b:to_bytes()
end

-- seeded draws give the same values, and another seed gives others
local function reproducible(draw)
  ml.manual_seed(1234)
  local a = draw()
  ml.manual_seed(1234)
  local b = draw()
  ml.manual_seed(4321)
  local c = draw()
  assert.is_true(same_bytes(a, b))
  assert.is_false(same_bytes(a, c))
end

describe("seeded sampling reproduces exactly", function()
  local probs = ml.tensor({ { 1, 2, 3, 4, 0 }, { 0.5, 0, 0, 2, 1 } })
  local draws = {
    randperm = function() return ml.randperm(50) end,
    ["multinomial with replacement"] = function()
      return probs:multinomial(20, { replacement = true })
    end,
    ["multinomial without replacement"] = function() return probs:multinomial(3) end,
    bernoulli = function() return ml.full({ 40 }, 0.5):bernoulli() end,
    ["bernoulli with p"] = function() return ml.zeros(40):bernoulli(0.3) end,
    bernoulli_ = function() return ml.zeros(40, { dtype = "int64" }):bernoulli_(0.4) end,
    ["bernoulli_ with a tensor"] = function()
      return ml.zeros(4, 10):bernoulli_(ml.tensor({ { 0.1 }, { 0.5 }, { 0.9 }, { 0.5 } }))
    end,
    uniform_ = function() return ml.zeros(40):uniform_(-2, 3) end,
    ["uniform_ float64"] = function() return ml.zeros(40, { dtype = "float64" }):uniform_() end,
    normal_ = function() return ml.zeros(40):normal_(1, 2) end,
    ["normal_ float64"] = function() return ml.zeros(40, { dtype = "float64" }):normal_() end,
  }
  for name, draw in pairs(draws) do
    it(name, function()
      reproducible(draw)
    end)
  end

  it("interleaved with the other generators of the state", function()
    local function run()
      local a = ml.rand(3)
      local b = ml.randperm(5)
      local c = ml.randn(2)
      return a, b, c
    end
    ml.manual_seed(7)
    local a1, b1, c1 = run()
    ml.manual_seed(7)
    local a2, b2, c2 = run()
    assert.is_true(same_bytes(a1, a2) and same_bytes(b1, b2) and same_bytes(c1, c2))
  end)

  it("draws a strided view in its row-major order", function()
    ml.manual_seed(99)
    local a = ml.zeros(3, 4):t():uniform_()
    ml.manual_seed(99)
    local b = ml.zeros(4, 3):uniform_()
    h.assert_close(a, b, { rtol = 0, atol = 0 })
    ml.manual_seed(5)
    local base = ml.zeros(4, 6)
    local v = base:slice(2, 1, 6, 2):normal_()
    ml.manual_seed(5)
    h.assert_close(v, ml.zeros(4, 3):normal_(), { rtol = 0, atol = 0 })
    h.assert_close(base:slice(2, 2, 6, 2), ml.zeros(4, 3), { rtol = 0, atol = 0 }) -- untouched
  end)
end)

describe("randperm", function()
  it("is a permutation of 1 .. n, int64", function()
    ml.manual_seed(3)
    for _, n in ipairs({ 1, 2, 7, 100, 1000 }) do
      local p = ml.randperm(n)
      assert.are.equal("int64", p:dtype())
      assert.are.same({ n }, p:shape())
      local seen = {}
      for _, v in ipairs(p:totable()) do
        assert.is_true(math.type(v) == "integer" and v >= 1 and v <= n and not seen[v])
        seen[v] = true
      end
    end
    local e = ml.randperm(0)
    assert.are.same({ 0 }, e:shape())
    assert.are.equal("int64", e:dtype())
  end)

  it("puts each element at each place with probability 1/n", function()
    ml.manual_seed(11)
    local n, draws = 5, 4000
    local at = {} -- at[i][v]: times value v was at place i
    for i = 1, n do at[i] = {} end
    for _ = 1, draws do
      local p = ml.randperm(n):totable()
      for i = 1, n do
        at[i][p[i]] = (at[i][p[i]] or 0) + 1
      end
    end
    local sd = math.sqrt(draws * (1 / n) * (1 - 1 / n))
    for i = 1, n do
      for v = 1, n do
        assert_within(at[i][v] or 0, draws / n, sd, "value " .. v .. " at place " .. i)
      end
    end
  end)

  it("takes a dtype", function()
    local p = ml.randperm(6, { dtype = "float32" })
    assert.are.equal("float32", p:dtype())
    local seen = {}
    for _, v in ipairs(p:totable()) do
      assert.is_true(v >= 1 and v <= 6 and v == math.floor(v) and not seen[v])
      seen[v] = true
    end
  end)

  it("rejects bad input", function()
    h.assert_error("moonml.randperm:", "non-negative", ml.randperm, -1)
    h.assert_error("moonml.randperm:", "n must be an integer", ml.randperm, 2.5)
    h.assert_error("moonml.randperm:", "n must be an integer", ml.randperm, "4")
    h.assert_error("moonml.randperm:", "n must be an integer", ml.randperm, nil)
    h.assert_error("moonml.randperm:", "got bool", ml.randperm, 3, { dtype = "bool" })
    h.assert_error("moonml.randperm:", "unknown option", ml.randperm, 3, { replacement = 1 })
    h.assert_error("moonml.randperm:", "unexpected argument 3", ml.randperm, 3, nil, 4)
  end)
end)

describe("multinomial", function()
  local w = { 1, 0, 2, 3, 4 } -- weights; category 2 is never drawn

  it("draws categories with their probabilities, with replacement", function()
    ml.manual_seed(21)
    local n = 100000
    local s = ml.tensor(w):multinomial(n, { replacement = true })
    assert.are.equal("int64", s:dtype())
    assert.are.same({ n }, s:shape())
    local c = counts(s)
    assert.is_nil(c[2])
    for k, wk in ipairs(w) do
      local p = wk / 10
      assert_within(c[k] or 0, n * p, math.sqrt(n * p * (1 - p)), "category " .. k)
    end
  end)

  it("draws each row of a 2-D tensor from its own weights", function()
    ml.manual_seed(22)
    local n = 20000
    local probs = ml.tensor({ { 0.7, 0.3, 0 }, { 0, 0.1, 0.9 } }):double()
    local s = probs:multinomial(n, { replacement = true })
    assert.are.same({ 2, n }, s:shape())
    for r = 1, 2 do
      local c = counts(s[r])
      for k = 1, 3 do
        local p = probs:get(r, k)
        assert_within(c[k] or 0, n * p, math.sqrt(n * p * (1 - p)), "row " .. r .. " cat " .. k)
      end
    end
  end)

  it("without replacement: distinct, first and second draws as drawn one after another",
    function()
      ml.manual_seed(23)
      local rows = 20000
      local p = { 0.1, 0.2, 0.3, 0.4 }
      local probs = ml.tensor({ p }):expand(rows, 4) -- a strided input
      local s = probs:multinomial(2)
      assert.are.same({ rows, 2 }, s:shape())
      local first, second = {}, {}
      for _, row in ipairs(s:totable()) do
        assert.are_not.equal(row[1], row[2])
        first[row[1]] = (first[row[1]] or 0) + 1
        second[row[2]] = (second[row[2]] or 0) + 1
      end
      for k = 1, 4 do
        assert_within(first[k] or 0, rows * p[k], math.sqrt(rows * p[k] * (1 - p[k])),
          "first draw " .. k)
        -- P(second = k) = sum over i ~= k of p_i p_k / (1 - p_i)
        local q = 0
        for i = 1, 4 do
          if i ~= k then q = q + p[i] * p[k] / (1 - p[i]) end
        end
        assert_within(second[k] or 0, rows * q, math.sqrt(rows * q * (1 - q)), "second draw " .. k)
      end
    end)

  it("without replacement takes every non-zero category once when asked for all", function()
    ml.manual_seed(24)
    local s = ml.tensor(w):multinomial(4)
    local c = counts(s)
    assert.is_nil(c[2])
    for _, k in ipairs({ 1, 3, 4, 5 }) do
      assert.are.equal(1, c[k])
    end
  end)

  it("gives an empty result for no rows", function()
    local s = ml.zeros(0, 3):multinomial(2)
    assert.are.same({ 0, 2 }, s:shape())
    assert.are.equal("int64", s:dtype())
  end)

  it("rejects bad probabilities and counts", function()
    local mn = ml.multinomial
    h.assert_error("moonml.multinomial:", "float tensor, got int64", mn,
      ml.tensor({ 1, 2 }, "int64"), 1)
    h.assert_error("moonml.multinomial:", "1-D or 2-D, got 3-D", mn, ml.ones(2, 2, 2), 1)
    h.assert_error("moonml.multinomial:", "1-D or 2-D, got 0-D", mn, ml.tensor(1), 1)
    h.assert_error("moonml.multinomial:", "finite and non-negative", mn, ml.tensor({ 1, -1 }), 1)
    h.assert_error("moonml.multinomial:", "finite and non-negative", mn, ml.tensor({ 1, 0 / 0 }),
      1)
    h.assert_error("moonml.multinomial:", "finite and non-negative", mn, ml.tensor({ 1, 1 / 0 }),
      1)
    h.assert_error("moonml.multinomial:", "row 2", mn, ml.tensor({ { 1, 1 }, { 1, -2 } }), 1)
    h.assert_error("moonml.multinomial:", "row 1 sum to 0", mn, ml.zeros(3), 1)
    h.assert_error("moonml.multinomial:", "num_samples must be positive", mn, ml.ones(3), 0)
    h.assert_error("moonml.multinomial:", "num_samples must be an integer", mn, ml.ones(3), 1.5)
    h.assert_error("moonml.multinomial:", "num_samples must be an integer", mn, ml.ones(3))
    h.assert_error("moonml.multinomial:", "cannot draw 4 samples without replacement from 3",
      mn, ml.ones(3), 4)
    h.assert_error("moonml.multinomial:", "which has 2 non-zero", mn, ml.tensor({ 1, 0, 1 }), 3)
    h.assert_error("moonml.multinomial:", "no categories", mn, ml.zeros(0), 1)
    h.assert_error("moonml.multinomial:", "no categories", mn, ml.zeros(2, 0), 1,
      { replacement = true })
    h.assert_error("moonml.multinomial:", "unknown option 'replace'", mn, ml.ones(3), 1,
      { replace = true })
    h.assert_error("moonml.multinomial:", "replacement must be a boolean", mn, ml.ones(3), 1,
      { replacement = 1 })
    h.assert_error("moonml.multinomial:", "options must be a table", mn, ml.ones(3), 1, true)
    h.assert_error("moonml.multinomial:", "expected a tensor as argument 1", mn, { 1, 2 }, 1)
  end)
end)

describe("bernoulli", function()
  it("draws 1 with each element's probability, in p's dtype", function()
    ml.manual_seed(31)
    local n = 5000
    local p = { 0, 0.1, 0.5, 0.93, 1 }
    for _, dt in ipairs({ "float32", "float64" }) do
      local probs = ml.tensor({ p }, dt):expand(n, 5)
      local s = probs:bernoulli()
      assert.are.equal(dt, s:dtype())
      assert.are.same({ n, 5 }, s:shape())
      local hits = s:sum(1):totable()
      for k = 1, 5 do
        assert_within(hits[k], n * p[k], math.sqrt(n * p[k] * (1 - p[k])), dt .. " p " .. p[k])
      end
      for _, v in ipairs(s:reshape(-1):totable()) do
        assert.is_true(v == 0 or v == 1)
      end
    end
  end)

  it("draws with a number probability in the tensor's shape and dtype", function()
    ml.manual_seed(32)
    local n = 20000
    local s = ml.zeros(n, { dtype = "int64" }):bernoulli(0.25)
    assert.are.equal("int64", s:dtype())
    local k = s:sum():item()
    assert_within(k, n * 0.25, math.sqrt(n * 0.25 * 0.75), "hits")
  end)

  it("fills in place with a number or a tensor of probabilities, any dtype", function()
    ml.manual_seed(33)
    local n = 20000
    for _, dt in ipairs({ "float32", "float64", "int64", "bool" }) do
      local x = ml.zeros(n, { dtype = dt })
      assert.is_true(rawequal(x:bernoulli_(0.3), x))
      local k = x:to("float64"):sum():item()
      assert_within(k, n * 0.3, math.sqrt(n * 0.3 * 0.7), dt)
    end
    local half = ml.zeros(n):bernoulli_():sum():item() -- p = 0.5 by default
    assert_within(half, n * 0.5, math.sqrt(n * 0.25), "default p")
    local x = ml.zeros(n, 2):bernoulli_(ml.tensor({ 0.2, 0.9 }))
    local hits = x:sum(1):totable()
    assert_within(hits[1], n * 0.2, math.sqrt(n * 0.2 * 0.8), "column 1")
    assert_within(hits[2], n * 0.9, math.sqrt(n * 0.9 * 0.1), "column 2")
    local t = ml.zeros(2, n):t():bernoulli_(0.6) -- transposed target
    assert_within(t:sum():item(), 2 * n * 0.6, math.sqrt(2 * n * 0.24), "transposed")
  end)

  it("rejects bad probabilities", function()
    h.assert_error("moonml.bernoulli:", "in [0, 1], got 1.5", ml.bernoulli, ml.tensor({ 0.5, 1.5 }))
    h.assert_error("moonml.bernoulli:", "in [0, 1], got -0.5", ml.bernoulli, ml.tensor({ -0.5 }))
    h.assert_error("moonml.bernoulli:", "in [0, 1], got", ml.bernoulli, ml.tensor({ 0 / 0 }))
    h.assert_error("moonml.bernoulli:", "float tensor, got int64", ml.bernoulli,
      ml.tensor({ 0, 1 }, "int64"))
    h.assert_error("moonml.bernoulli:", "float tensor, got bool", ml.bernoulli,
      ml.tensor({ true }))
    h.assert_error("moonml.bernoulli:", "expected a tensor as argument 1", ml.bernoulli, 0.5)
    h.assert_error("moonml.bernoulli:", "p must be a number", ml.bernoulli, ml.ones(2), "x")
    h.assert_error("moonml.bernoulli_:", "p must be in [0, 1], got 2", ml.bernoulli_, ml.ones(2), 2)
    h.assert_error("moonml.bernoulli_:", "p must be a number", ml.bernoulli_, ml.ones(2), "0.5")
    h.assert_error("moonml.bernoulli_:", "in [0, 1], got 3", ml.bernoulli_, ml.ones(2),
      ml.tensor({ 0.5, 3 }))
    h.assert_error("moonml.bernoulli_:", "float tensor, got int64", ml.bernoulli_, ml.ones(2),
      ml.tensor({ 0, 1 }, "int64"))
    h.assert_error("moonml.bernoulli_:", "cannot be broadcast", ml.bernoulli_, ml.ones(3),
      ml.tensor({ 0.5, 0.5 }))
    h.assert_error("moonml.bernoulli_:", "do not fit the shape [3]", ml.bernoulli_, ml.ones(3),
      ml.full({ 2, 3 }, 0.5))
    h.assert_error("moonml.bernoulli_:", "expanded", ml.bernoulli_, ml.ones(1):expand(3), 0.5)
    local x = ml.ones(3)
    pcall(x.bernoulli_, x, 7)
    h.assert_close(x, { 1, 1, 1 }) -- a failed call changes nothing
  end)
end)

describe("uniform_", function()
  it("fills [from, to) with the mean and variance of the uniform law", function()
    ml.manual_seed(41)
    local n = 50000
    for _, dt in ipairs({ "float32", "float64" }) do
      for _, r in ipairs({ { 0, 1 }, { -3, 5 }, { 1e-3, 2e-3 } }) do
        local a, b = r[1], r[2]
        local x = ml.zeros(n, { dtype = dt })
        assert.is_true(rawequal(x:uniform_(a, b), x))
        assert.is_true(x:min():item() >= a and x:max():item() < b)
        local sd = (b - a) / math.sqrt(12)
        assert_within(x:mean():item(), (a + b) / 2, sd / math.sqrt(n), dt .. " mean")
        -- the variance of n draws: its sd is about sd^2 * sqrt(4/5 / n) for this law
        local var = ((x - x:mean()) ^ 2):mean():item()
        assert_within(var, sd * sd, sd * sd * math.sqrt(0.8 / n), dt .. " variance")
        -- close to both ends
        assert.is_true(x:min():item() < a + (b - a) * 1e-3 and x:max():item() > b - (b - a) * 1e-3)
      end
    end
    h.assert_close(ml.zeros(4):uniform_(2, 2), { 2, 2, 2, 2 }) -- an empty range is its start
    local d = ml.zeros(n):uniform_() -- defaults 0 and 1
    assert.is_true(d:min():item() >= 0 and d:max():item() < 1)
  end)

  it("rejects bad input", function()
    h.assert_error("moonml.uniform_:", "from <= to", ml.uniform_, ml.zeros(2), 2, 1)
    h.assert_error("moonml.uniform_:", "finite", ml.uniform_, ml.zeros(2), 0, 1 / 0)
    h.assert_error("moonml.uniform_:", "finite", ml.uniform_, ml.zeros(2), 0 / 0, 1)
    h.assert_error("moonml.uniform_:", "too wide", ml.uniform_, ml.zeros(2), -1e300, 1e300)
    h.assert_error("moonml.uniform_:", "too wide", ml.uniform_, ml.zeros(2), 0, 1e39)
    h.assert_error("moonml.uniform_:", "only float tensors", ml.uniform_,
      ml.zeros(2, { dtype = "int64" }))
    h.assert_error("moonml.uniform_:", "from must be a number", ml.uniform_, ml.zeros(2), "0")
    h.assert_error("moonml.uniform_:", "unexpected argument 4", ml.uniform_, ml.zeros(2), 0, 1, 2)
    h.assert_error("moonml.uniform_:", "expected a tensor as argument 1", ml.uniform_, {})
  end)
end)

describe("normal_", function()
  it("fills with the mean and standard deviation asked for", function()
    ml.manual_seed(51)
    local n = 50000
    for _, dt in ipairs({ "float32", "float64" }) do
      for _, r in ipairs({ { 0, 1 }, { 10, 0.5 }, { -3, 4 } }) do
        local mean, std = r[1], r[2]
        local x = ml.zeros(n, { dtype = dt })
        assert.is_true(rawequal(x:normal_(mean, std), x))
        assert_within(x:mean():item(), mean, std / math.sqrt(n), dt .. " mean")
        -- sample variance: sd about std^2 sqrt(2 / (n - 1))
        local var = ((x - x:mean()) ^ 2):mean():item()
        assert_within(var, std * std, std * std * math.sqrt(2 / (n - 1)), dt .. " variance")
      end
    end
    h.assert_close(ml.zeros(3):normal_(5, 0), { 5, 5, 5 })
  end)

  it("rejects bad input", function()
    h.assert_error("moonml.normal_:", "std must be >= 0, got -1", ml.normal_, ml.zeros(2), 0, -1)
    h.assert_error("moonml.normal_:", "std must be >= 0", ml.normal_, ml.zeros(2), 0, 0 / 0)
    h.assert_error("moonml.normal_:", "only float tensors", ml.normal_,
      ml.zeros(2, { dtype = "bool" }))
    h.assert_error("moonml.normal_:", "std must be a number", ml.normal_, ml.zeros(2), 0, {})
    h.assert_error("moonml.normal_:", "expected a tensor as argument 1", ml.normal_, 1)
  end)
end)

describe("in-place sampling and autograd", function()
  local fills = {
    uniform_ = function(t) return t:uniform_() end,
    normal_ = function(t) return t:normal_() end,
    bernoulli_ = function(t) return t:bernoulli_(0.5) end,
  }
  for name, fill in pairs(fills) do
    it(name .. " refuses a leaf that requires grad unless grad mode is off", function()
      local w = ml.ones(3):requires_grad_()
      h.assert_error("moonml." .. name .. ":", "leaf", fill, w)
      h.assert_close(w, { 1, 1, 1 })
      ml.no_grad(function() fill(w) end)
      assert.is_true(w.is_leaf)
    end)

    it(name .. " bumps the version of the tensor", function()
      local w = ml.ones(3):requires_grad_()
      local y = w:sin() -- saves w
      ml.no_grad(function() fill(w) end)
      h.assert_error("moonml.backward:", "modified by an in-place operation", function()
        y:backward(ml.ones(3))
      end)
    end)

    it(name .. " on a non-leaf passes a zero gradient", function()
      local w = ml.tensor({ 0.5, 1, 2 }, "float64"):requires_grad_()
      local y = w:sin()
      fill(y)
      assert.is_false(y.is_leaf)
      y:cos():backward(ml.ones(3, { dtype = "float64" }))
      h.assert_close(w.grad, { 0, 0, 0 }, { rtol = 0, atol = 0 })
    end)
  end
end)
