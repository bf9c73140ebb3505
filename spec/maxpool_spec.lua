-- max_pool2d with 2x2 windows at stride 2 (the CNNs' case, which runs through its own
-- kernel: 16 windows at a time with AVX-512F, a branch-free loop elsewhere) against
-- PyTorch 1.13 (spec/fixtures/maxpool.lua, written by spec/fixtures/gen_maxpool.py):
-- outputs, indices and gradients, including NaNs in every window position, ties, -inf,
-- rows longer than 16 windows, odd sizes; strided input; threads.
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("maxpool")
local EXACT = { rtol = 0, atol = 0 }

local function build(s)
  return ml.tensor(s.values, s.dtype):reshape(s.shape)
end

-- The same values in a non-contiguous view (every second element of a wider last dim).
local function strided(x)
  local shape = x:shape()
  local wide = { table.unpack(shape) }
  wide[#wide] = wide[#wide] * 2
  local v = ml.zeros(wide, { dtype = x:dtype() }):slice(#wide, 1, wide[#wide] - 1, 2)
  v:copy_(x)
  assert(not v:is_contiguous())
  return v
end

describe("max_pool2d 2x2 stride 2 against PyTorch", function()
  for _, c in ipairs(fx) do
    for _, layout in ipairs({ "contiguous", "strided" }) do
      it(c.name .. " (" .. layout .. ")", function()
        local x = build(c.x)
        if layout == "strided" then
          x = strided(x)
        end
        x:requires_grad_()
        local y, idx = ml.max_pool2d(x, 2, { return_indices = true })
        h.assert_close(y, build(c.y), EXACT)
        h.assert_close(idx, build(c.indices), EXACT)
        local loss = (y * build(c.g)):sum()
        loss:backward()
        h.assert_close(x.grad, build(c.dx), EXACT)
      end)
    end
  end

  it("gives the same on two threads as on one", function()
    ml.manual_seed(4)
    local x = ml.randn(8, 16, 20, 20)
    local saved = ml.get_num_threads()
    local results = {}
    for _, n in ipairs({ 1, 2 }) do
      ml.set_num_threads(n)
      results[n] = { ml.max_pool2d(x, 2, { return_indices = true }) }
    end
    ml.set_num_threads(saved)
    h.assert_close(results[2][1], results[1][1], EXACT)
    h.assert_close(results[2][2], results[1][2], EXACT)
  end)

  it("equals the general kernel (a 2x2 window written as kernel {2, 2}, stride {2, 2} with "
    .. "dilation 1 runs the same; ceil_mode with an odd size runs the general one)", function()
    ml.manual_seed(6)
    local x = ml.randn(2, 3, 7, 9)
    -- ceil_mode adds a last, partial window: the general loop; its full windows must match
    local y, idx = ml.max_pool2d(x, 2, { return_indices = true, ceil_mode = true })
    local y2, idx2 = ml.max_pool2d(x, { 2, 2 }, { stride = { 2, 2 }, return_indices = true })
    assert.are.same({ 2, 3, 4, 5 }, y:shape())
    h.assert_close(y:narrow(3, 1, 3):narrow(4, 1, 4), y2, EXACT)
    h.assert_close(idx:narrow(3, 1, 3):narrow(4, 1, 4), idx2, EXACT)
  end)
end)
