-- float32 tanh, sigmoid and tanh-form gelu (src/ops/vmath.h's vectorised forms, shared with
-- the recurrent layers): PyTorch's answers at the edges (spec/fixtures/vmath.lua, written by
-- spec/fixtures/gen_vmath.py), exactly where PyTorch's are exact (special values,
-- saturation, overflow); and a dense sweep of tanh and sigmoid against float64 within 2e-7
-- relative.
local ml = require("moonml")
local h = require("helpers")
local nn = ml.nn

local fx = h.fixture("vmath")
local RTOL = 2e-7

-- fixture values as the float32 numbers they stand for
local function f32(values)
  return ml.tensor(values, "float32")
end

local function same_bits(a, b)
  if a ~= a then
    return b ~= b
  end
  return a == b and (a ~= 0 or 1 / a == 1 / b) -- 0 and -0 differ
end

-- The ways to reach each function on a float32 tensor x: module function, method, layer,
-- in place, and through a strided view (the kernels' other loop).
local function ways(name, layer)
  return {
    { "ml." .. name, function(x) return ml[name](x) end },
    { "x:" .. name .. "()", function(x) return x[name](x) end },
    { "nn." .. layer, function(x) return nn[layer]()(x) end },
    { "x:" .. name .. "_()", function(x)
      local y = x:clone()
      y[name .. "_"](y)
      return y
    end },
    { "strided " .. name, function(x)
      local wide = ml.zeros(x:numel(), 3)
      wide:select(2, 2):copy_(x)
      return ml[name](wide:select(2, 2))
    end },
  }
end

for _, c in ipairs({ { "tanh", "Tanh", fx.tanh, fx.exact_tanh },
  { "sigmoid", "Sigmoid", fx.sigmoid, fx.exact_sigmoid } }) do
  local name, layer, want, exact = c[1], c[2], c[3], c[4]
  describe("float32 " .. name .. " at the edges", function()
    local x = f32(fx.x)
    local expected = f32(want)
    for _, w in ipairs(ways(name, layer)) do
      local way, fn = w[1], w[2]
      it(way .. " agrees with PyTorch, exactly at special values", function()
        local y = fn(x)
        assert.are.equal("float32", y:dtype())
        -- one subnormal step of slack: sigmoid's subnormal results near exp's overflow
        h.assert_close(y, expected, { rtol = RTOL, atol = 1.5e-45 })
        local got, ref = y:totable(), expected:totable()
        for _, i in ipairs(exact) do
          assert(same_bits(got[i], ref[i]), string.format("%s(%.9g) = %.9g, PyTorch %.9g", name,
            fx.x[i], got[i], ref[i]))
        end
      end)
    end
  end)
end

describe("float32 gelu, tanh form, at the edges", function()
  -- inf, NaN and signed zeros exactly as PyTorch's (-0 for large negative x, NaN at -inf
  -- and in the gradient of infinite x^3), the rest within float32 rounding
  local function check(got, want)
    h.assert_close(got, want, { rtol = 1e-6, atol = 1.5e-45 })
    local g, w = got:totable(), want:totable()
    for i = 1, #w do
      if w[i] ~= w[i] or w[i] == 0 or w[i] == math.huge or w[i] == -math.huge then
        assert(same_bits(g[i], w[i]), string.format("at %.9g: %.9g, PyTorch %.9g", fx.x[i],
          g[i], w[i]))
      end
    end
  end

  it("forward and gradient", function()
    local x = f32(fx.x):requires_grad_()
    local y = ml.gelu(x, "tanh")
    y:sum():backward()
    check(y:detach(), f32(fx.gelu_tanh))
    check(x.grad, f32(fx.gelu_tanh_grad))
  end)
end)

describe("float32 tanh and sigmoid over a dense sweep", function()
  -- 100001 points over [-20, 20] and 100000 random floats of every exponent down into the
  -- subnormals (a seeded generator: the same points on every run)
  local function sweep(lo)
    local v = {}
    local grid = ml.linspace(-20, 20, 100001):totable()
    for i = 1, #grid do
      v[#v + 1] = grid[i]
    end
    local state = 12345
    local function rand() -- a small LCG so that the points do not depend on Lua's random
      state = (state * 6364136223846793005 + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
      return (state >> 11) / 2 ^ 52
    end
    while #v < 200001 do
      local e = math.floor(rand() * 147) - 140 -- 2^-140 .. 2^6
      local m = (1 + rand()) * 2 ^ e
      if rand() < 0.5 then
        m = -m
      end
      if m >= lo then
        v[#v + 1] = m
      end
    end
    return ml.tensor(v, "float32")
  end

  -- max |y - ref| / |ref| with ref in float64 (libm's tanh and 1 / (1 + exp(-x))); a zero
  -- reference needs an exact zero
  local function max_rel(y, x, ref_fn)
    local ref = ref_fn(x:double())
    local err = (y:double() - ref):abs() / (ref:abs() + 1e-300)
    return err:max():item()
  end

  it("tanh is within 2e-7 relative of float64 tanh", function()
    local x = sweep(-math.huge)
    local m = max_rel(ml.tanh(x), x, ml.tanh)
    assert(m <= RTOL, string.format("max relative error %.3g", m))
    -- the strided loop computes the same numbers
    local wide = ml.zeros(x:numel(), 2)
    wide:select(2, 1):copy_(x)
    assert.are.equal(0, (ml.tanh(wide:select(2, 1)) - ml.tanh(x)):abs():max():item())
  end)

  it("sigmoid is within 2e-7 relative of float64 sigmoid where the result is normal", function()
    -- below about -87.3 the result is subnormal; the edge cases check that range
    local x = sweep(-87.3)
    local m = max_rel(ml.sigmoid(x), x, ml.sigmoid)
    assert(m <= RTOL, string.format("max relative error %.3g", m))
  end)
end)
