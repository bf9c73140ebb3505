-- The autograd engine: graph shapes (diamonds, long chains), accumulation, retain_graph,
-- explicit gradients, leaves and non-leaves, detach, no_grad, failing passes, the
-- requires_grad option of the creation functions, and gradients compared with PyTorch's
-- (spec/fixtures/gen_autograd_lv.py). Losses are made with the ops of this area (a dot
-- with ones is a sum), so that the specs do not lean on other areas' gradients.
local ml = require("moonml")
local h = require("helpers")

local F64 = { dtype = "float64" }
local EXACT = { rtol = 0, atol = 0 }

local function leaf(...)
  return ml.randn(...):double():requires_grad_()
end

-- the sum of all elements of x, as a 0-d tensor in the graph
local function total(x)
  local flat = x:reshape(-1)
  return flat:dot(ml.ones(flat:numel(), { dtype = x:dtype() }))
end

describe("graph shapes", function()
  ml.manual_seed(31)
  it("a diamond (one tensor used twice) sums both paths", function()
    local a = leaf(3, 3)
    local g = ml.randn(3, 3, F64)
    a:mm(a):backward(g)
    local want = ml.no_grad(function()
      return g:mm(a:t()):addmm(a:t(), g) -- g a^T + a^T g
    end)
    h.assert_close(a.grad, want, { rtol = 1e-12, atol = 1e-12 })
  end)
  it("a diamond through views and a shared intermediate", function()
    local x = leaf(2, 3)
    local y = x:clone() -- used by three consumers below
    local out = y:t():mm(y):addmm(y:t(), y, { beta = 2 }) -- 2 y^T y + y^T y
    local ok, msg = ml.gradcheck(function(v)
      local c = v:clone()
      return c:t():mm(c):addmm(c:t(), c, { beta = 2 })
    end, { x }, { atol = 1e-8, rtol = 1e-7 })
    assert(ok, msg)
    x.grad = nil
    out:backward(ml.ones(3, 3, F64))
    -- d/dy of sum(3 y^T y) = 6 y ones(3, 3), and y = x
    local want = ml.no_grad(function()
      return x:mm(ml.full({ 3, 3 }, 6, F64))
    end)
    h.assert_close(x.grad, want, { rtol = 1e-12, atol = 1e-12 })
  end)
  it("a chain of 10^5 nodes runs backward and is freed without overflowing the stack", function()
    local x = ml.randn(2, 3, { requires_grad = true })
    do
      local y = x
      for i = 1, 100000 do
        if i % 2 == 1 then
          y = y:t()
        else
          y = y:clone()
        end
      end
      y:backward(ml.ones(2, 3))
    end
    collectgarbage()
    collectgarbage()
    h.assert_close(x.grad, ml.ones(2, 3), EXACT)
    do -- a chain freed without a backward (views and nodes only)
      local z = x
      for _ = 1, 100000 do
        z = z:unsqueeze(1):squeeze(1)
      end
      assert.are.equal("SqueezeBackward", z.grad_fn)
    end
    collectgarbage()
    collectgarbage()
  end)
end)

describe("accumulation and retain_graph", function()
  ml.manual_seed(32)
  it("gradients accumulate across backward calls", function()
    local x = leaf(3)
    total(x:clone()):backward()
    total(x:clone()):backward()
    h.assert_close(x.grad, { 2, 2, 2 }, EXACT)
    x.grad = nil
    total(x:clone()):backward()
    h.assert_close(x.grad, { 1, 1, 1 }, EXACT)
  end)
  it("a second backward needs retain_graph on the first", function()
    local a, b = leaf(2, 3), leaf(3, 2)
    local y = total(a:mm(b))
    y:backward()
    h.assert_error("moonml.backward:", "retain_graph", function()
      y:backward()
    end)
    local y2 = total(a:mm(b))
    a.grad = nil
    y2:backward(nil, { retain_graph = true })
    y2:backward()
    local once = ml.no_grad(function()
      return ml.ones(2, 2, F64):mm(b:t())
    end)
    h.assert_close(a.grad, once:mm(ml.eye(3, F64)):addmm(once, ml.eye(3, F64)), {
      rtol = 1e-12, atol = 1e-12,
    })
  end)
  it("backward(grad) for a non-scalar, and the errors around it", function()
    local x = leaf(2, 3)
    local y = x:t():clone()
    y:backward(ml.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, "float64"))
    h.assert_close(x.grad, { { 1, 3, 5 }, { 2, 4, 6 } }, EXACT)
    local y2 = x:clone()
    h.assert_error("moonml.backward:", "does not match", function()
      y2:backward(ml.ones(3, 2, F64))
    end)
    h.assert_error("moonml.backward:", "one-element", function()
      y2:backward()
    end)
    h.assert_error("moonml.backward:", "does not require grad", function()
      ml.ones(2):backward()
    end)
    -- a float32 gradient for a float64 output is converted
    x.grad = nil
    x:clone():backward(ml.ones(2, 3))
    assert.are.equal("float64", x.grad:dtype())
  end)
end)

describe("leaves, detach and no_grad", function()
  ml.manual_seed(33)
  it("only leaves keep .grad", function()
    local x = leaf(2, 2)
    local y = x:clone()
    local z = y:mm(y)
    assert.is_true(x.is_leaf)
    assert.is_false(y.is_leaf)
    total(z):backward()
    assert.is_not_nil(x.grad)
    assert.is_nil(y.grad)
    assert.is_nil(z.grad)
  end)
  it("detach cuts the graph and shares the data", function()
    local x = leaf(3)
    local d = x:clone():detach()
    assert.is_false(d.requires_grad)
    assert.is_nil(d.grad_fn)
    local y = x:dot(d)
    y:backward()
    h.assert_close(x.grad, d, EXACT)
    local v = x:detach()
    assert.are.equal(x:storage_id(), v:storage_id())
    assert.is_true(v.is_leaf)
  end)
  it("no_grad records nothing and restores the mode, also after an error", function()
    local x = leaf(2, 2)
    local y = ml.no_grad(function()
      assert.is_false(ml.is_grad_enabled())
      return x:mm(x):t():clone()
    end)
    assert.is_true(ml.is_grad_enabled())
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
    assert.has_error(function()
      ml.no_grad(function()
        error("inside")
      end)
    end)
    assert.is_true(ml.is_grad_enabled())
  end)
end)

describe("a failing backward", function()
  it("leaves every leaf's .grad as it was", function()
    local c, p, b = leaf(2, 2), leaf(2, 2), leaf(2, 2)
    total(c:addmm(p:clone(), b)):backward() -- every leaf has a .grad now
    local before = { c.grad:clone(), p.grad:clone(), b.grad:clone() }
    local q = p:clone()
    local a = q:mm(q) -- saves q
    -- c and b get their gradients first (straight from the root), the node of a fails
    local out = c:addmm(a, b)
    q[1] = 0
    h.assert_error("moonml.backward:", "MmBackward", function()
      out:backward(ml.ones(2, 2, F64))
    end)
    h.assert_close(c.grad, before[1], EXACT)
    h.assert_close(p.grad, before[2], EXACT)
    h.assert_close(b.grad, before[3], EXACT)
  end)
end)

describe("requires_grad in the creation options", function()
  ml.manual_seed(34)
  local makers = {
    { "empty", function(o) return ml.empty(2, 3, o) end },
    { "zeros", function(o) return ml.zeros(2, 3, o) end },
    { "zeros (table shape)", function(o) return ml.zeros({ 2, 3 }, o) end },
    { "ones", function(o) return ml.ones(2, 3, o) end },
    { "full", function(o) return ml.full({ 2, 3 }, 1.5, o) end },
    { "arange", function(o) return ml.arange(1, 4, o) end },
    { "linspace", function(o) return ml.linspace(0, 1, 5, o) end },
    { "eye", function(o) return ml.eye(3, o) end },
    { "rand", function(o) return ml.rand(2, 3, o) end },
    { "randn", function(o) return ml.randn(3, 4, o) end },
    { "randint", function(o) return ml.randint(1, 5, { 3 }, o) end, "float32" },
    { "tensor", function(o) return ml.tensor({ 1, 2, 3 }, o) end },
    { "tensor (number)", function(o) return ml.tensor(2.5, o) end },
    { "tensor (tensor)", function(o) return ml.tensor(ml.ones(2), o) end },
    { "zeros_like", function(o) return ml.zeros_like(ml.ones(2), o) end },
    { "ones_like", function(o) return ml.ones_like(ml.ones(2), o) end },
    { "empty_like", function(o) return ml.empty_like(ml.ones(2), o) end },
    { "full_like", function(o) return ml.full_like(ml.ones(2), 3, o) end },
    { "rand_like", function(o) return ml.rand_like(ml.ones(2), o) end },
    { "randn_like", function(o) return ml.randn_like(ml.ones(2), o) end },
    { "randint_like", function(o) return ml.randint_like(ml.ones(2), 1, 5, o) end },
  }
  for _, m in ipairs(makers) do
    it(m[1], function()
      local name = m[1]:match("^%S+")
      local opts = { requires_grad = true }
      if m[3] then
        opts.dtype = m[3]
      end
      local x = m[2](opts)
      assert.is_true(x.requires_grad)
      assert.is_true(x.is_leaf)
      assert.is_false(m[2]({ requires_grad = false, dtype = m[3] }).requires_grad)
      local d = m[2]({ requires_grad = true, dtype = "float64" })
      assert.are.equal("float64", d:dtype())
      assert.is_true(d.requires_grad)
      -- it is a leaf the engine fills
      x:clone():backward(ml.ones_like(x))
      h.assert_close(x.grad, ml.ones_like(x), EXACT)
      -- (rand and randn refuse int64 by themselves: "dtype must be a floating type")
      h.assert_error("moonml." .. name .. ":", "floating", m[2],
        { dtype = "int64", requires_grad = true })
      h.assert_error("moonml." .. name .. ":", "requires_grad must be a boolean", m[2],
        { requires_grad = 1 })
      h.assert_error("moonml." .. name .. ":", "unknown option 'requires_gradient'", m[2],
        { requires_gradient = true })
    end)
  end
  it("int64 with requires_grad = true names the problem", function()
    h.assert_error("moonml.zeros:", "only floating-point tensors can require gradients, got int64",
      function()
        ml.zeros(2, { dtype = "int64", requires_grad = true })
      end)
    h.assert_error("moonml.tensor:", "got bool", function()
      ml.tensor({ true }, { requires_grad = true })
    end)
  end)
  it("int64 creation without requires_grad is unchanged", function()
    assert.are.equal("int64", ml.zeros(2, { dtype = "int64", requires_grad = false }):dtype())
    assert.are.equal("int64", ml.tensor({ 1 }, "int64"):dtype())
  end)
  it("ml.tensor of a tensor is a copy outside the graph", function()
    local x = leaf(2)
    local y = ml.tensor(x)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
    assert.are_not.equal(x:storage_id(), y:storage_id())
  end)
end)

describe("gradients against PyTorch", function()
  local fx = h.fixture("autograd_lv")

  local function build(spec)
    return ml.tensor(spec.values, spec.dtype):view(spec.shape):detach()
  end

  local forward = {
    matmul_broadcast = function(a, b)
      return a:matmul(b)
    end,
    vec_times_batch = function(v, b)
      return v:matmul(b)
    end,
    batch_times_vec = function(a, v)
      return a:matmul(v)
    end,
    addmm_scaled = function(c, a, b)
      return c:addmm(a, b:t(), { beta = 0.5, alpha = -2 })
    end,
    bmm_strided = function(a, b)
      return a:transpose(2, 3):bmm(b:slice(2, 1, 8, 2))
    end,
    view_chain = function(x, w)
      return x:permute(3, 1, 2):reshape(5, 12):slice(2, 2, 11, 3):mv(w)
    end,
    select_rows = function(x, w, u)
      return x[2]:mm(w):addmm(x:select(3, -1):t(), u)
    end,
    expand_mm = function(x, w)
      return x:expand(3, 4):mm(w)
    end,
    copy_into_view = function(x, z, w)
      local y = x:clone()
      y:narrow(2, 2, 2):copy_(z)
      return y:mm(w)
    end,
    fill_view_then_stale = function(x, w)
      local y = x:clone()
      local r = y[1]
      y[2]:fill_(3)
      y[3][2] = 5
      return r:unsqueeze(1):mm(w):addmm(y, w)
    end,
    build_from_rows = function(a, b, w)
      local out = ml.zeros(2, 3, F64)
      out[1] = a
      out[2]:copy_(b:clone())
      return out:mm(w)
    end,
    double_then_float = function(x, w)
      return x:double():mm(w):float()
    end,
  }

  local names = {}
  for name in pairs(fx) do
    names[#names + 1] = name
  end
  table.sort(names)
  for _, name in ipairs(names) do
    it(name, function()
      local c = fx[name]
      assert(forward[name], "no forward for " .. name)
      local inputs = {}
      for i, inp in ipairs(c.inputs) do
        inputs[i] = build(inp.tensor):requires_grad_()
      end
      local out = forward[name](table.unpack(inputs))
      out:backward(build(c.grad))
      for i, inp in ipairs(c.inputs) do
        local want = c.grads[inp.name]
        local tol = want.dtype == "float32" and { rtol = 1e-5, atol = 1e-6 }
          or { rtol = 1e-12, atol = 1e-12 }
        tol.dtype = want.dtype
        h.assert_close(inputs[i].grad, want, tol)
      end
    end)
  end
end)
