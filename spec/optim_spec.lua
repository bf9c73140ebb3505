-- Optimizers and schedules against PyTorch 1.13 trajectories (spec/fixtures/gen_optim.py).
local ml = require("moonml")
local h = require("helpers")

local fx = h.fixture("optim")

-- The fixture's gradient, computed without the graph: d/dp sum(w (p - t)^2).
local function set_grad(p, target, weight)
  p.grad = ml.no_grad(function()
    return (p - target) * weight * 2
  end)
end

describe("optim trajectories equal PyTorch's over 10 steps", function()
  local target = ml.tensor(fx.target):view(2, 3)
  local weight = ml.tensor(fx.weight):view(2, 3)
  for i, case in ipairs(fx.cases) do
    local label = string.format("%d: %s", i, case.name)
    for k, v in pairs(case.opts) do
      label = label .. string.format(" %s=%s", k, type(v) == "table" and "{..}" or tostring(v))
    end
    it(label, function()
      local p = ml.tensor(fx.p0):view(2, 3):contiguous():requires_grad_()
      local opt = ml.optim[case.name]({ p }, case.opts)
      for step = 1, 10 do
        opt:zero_grad()
        set_grad(p, target, weight)
        opt:step()
        h.assert_close(p, { shape = { 2, 3 }, values = case.steps[step] }, { rtol = 1e-5, atol = 1e-6 })
      end
    end)
  end

  it("float64 parameters follow the same trajectory", function()
    local case = fx.cases[6] -- Adam lr 0.1
    local p = ml.tensor(fx.p0, "float64"):view(2, 3):contiguous():requires_grad_()
    local opt = ml.optim.Adam({ p }, case.opts)
    for step = 1, 10 do
      set_grad(p, target:double(), weight:double())
      opt:step()
      h.assert_close(p, { shape = { 2, 3 }, values = case.steps[step] }, { rtol = 1e-5, atol = 1e-6 })
    end
  end)
end)

describe("optim state_dict", function()
  it("resumes a run exactly", function()
    local target = ml.tensor(fx.target):view(2, 3)
    local weight = ml.tensor(fx.weight):view(2, 3)
    local case = fx.cases[7] -- Adam with betas and weight decay
    local p = ml.tensor(fx.p0):view(2, 3):contiguous():requires_grad_()
    local opt = ml.optim.Adam({ p }, case.opts)
    for _ = 1, 4 do
      set_grad(p, target, weight)
      opt:step()
    end
    local saved_p, saved = p:detach():clone(), opt:state_dict()
    local q = saved_p:clone():requires_grad_()
    local opt2 = ml.optim.Adam({ q }, { lr = 1 }) -- hyper-parameters come from the state
    opt2:load_state_dict(saved)
    assert.are.equal(case.opts.lr, opt2.param_groups[1].lr)
    for step = 5, 10 do
      set_grad(q, target, weight)
      opt2:step()
      h.assert_close(q, { shape = { 2, 3 }, values = case.steps[step] }, { rtol = 1e-5, atol = 1e-6 })
    end
  end)

  it("copies state tensors, so the saved table does not change with later steps", function()
    local p = ml.ones(3):requires_grad_()
    local opt = ml.optim.SGD({ p }, { lr = 0.1, momentum = 0.9 })
    p.grad = ml.ones(3)
    opt:step()
    local sd = opt:state_dict()
    opt:step()
    h.assert_close(sd.state[1].momentum_buffer, { 1, 1, 1 })
  end)

  it("rejects a state dict of another layout", function()
    local opt = ml.optim.SGD({ ml.ones(2):requires_grad_() }, { lr = 0.1 })
    local other = ml.optim.SGD({ ml.ones(2):requires_grad_(), ml.ones(2):requires_grad_() }, { lr = 0.1 })
    h.assert_error("moonml.optim.SGD:", "different number", opt.load_state_dict, opt, other:state_dict())
    h.assert_error("moonml.optim.SGD:", "state_dict", opt.load_state_dict, opt, 5)
  end)
end)

describe("optim parameter groups and options", function()
  it("applies per-group learning rates", function()
    local a, b = ml.ones(2):requires_grad_(), ml.ones(2):requires_grad_()
    local opt = ml.optim.SGD({ { params = { a } }, { params = { b }, lr = 1 } }, { lr = 0.1 })
    a.grad, b.grad = ml.ones(2), ml.ones(2)
    opt:step()
    h.assert_close(a, { 0.9, 0.9 })
    h.assert_close(b, { 0, 0 })
  end)

  it("skips parameters without a gradient and zero_grad clears them", function()
    local a, b = ml.ones(2):requires_grad_(), ml.ones(2):requires_grad_()
    local opt = ml.optim.Adam({ a, b })
    a.grad = ml.ones(2)
    opt:step()
    h.assert_close(b, { 1, 1 })
    assert.is_true(a:get(1) < 1)
    opt:zero_grad()
    assert.is_nil(a.grad)
  end)

  it("step(closure) returns the closure's loss", function()
    local a = ml.ones(2):requires_grad_()
    local opt = ml.optim.SGD({ a }, { lr = 0.1 })
    local loss = opt:step(function()
      a.grad = ml.ones(2)
      return 42
    end)
    assert.are.equal(42, loss)
  end)

  it("rejects bad options and parameters", function()
    local p = ml.ones(2):requires_grad_()
    h.assert_error("moonml.optim.SGD:", "lr", ml.optim.SGD, { p })
    h.assert_error("moonml.optim.SGD:", "Nesterov", ml.optim.SGD, { p }, { lr = 0.1, nesterov = true })
    h.assert_error("moonml.optim.Adam:", "unknown option 'lrr'", ml.optim.Adam, { p }, { lrr = 1 })
    h.assert_error("moonml.optim.Adam:", "betas", ml.optim.Adam, { p }, { betas = { 1.5, 0.9 } })
    h.assert_error("moonml.optim.Adam:", "lr", ml.optim.Adam, { p }, { lr = -1 })
    h.assert_error("moonml.optim.Adam:", "not a tensor", ml.optim.Adam, { p, "x" })
    h.assert_error("moonml.optim.Adam:", "empty", ml.optim.Adam, {})
    h.assert_error("moonml.optim.Adam:", "Lua array", ml.optim.Adam, 5)
    h.assert_error("moonml.optim.RMSprop:", "non-negative", ml.optim.RMSprop, { p }, { alpha = -1 })
    h.assert_error("moonml.optim.Adagrad:", "non-negative", ml.optim.Adagrad, { p }, { eps = -1 })
  end)

  it("reports a gradient of the wrong shape or a non-float parameter", function()
    local p = ml.ones(2, 2):requires_grad_()
    local opt = ml.optim.Adam({ p })
    -- .grad refuses a wrong shape outright
    h.assert_error("moonml.grad:", "shape", function()
      p.grad = ml.ones(3)
    end)
    h.assert_error("moonml.SGD:", "floating point", ml._optim.sgd_step, ml.ones(2, { dtype = "int64" }),
      ml.ones(2), nil, false, 0.1, 0, 0, 0, false, false)
    h.assert_error("moonml.Adam:", "shape", ml._optim.adam_step, p, ml.ones(3), ml.zeros(2, 2),
      ml.zeros(2, 2), nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false, false)
    assert.is_truthy(opt)
  end)
end)

describe("learning-rate schedules equal PyTorch's", function()
  for _, case in ipairs(fx.schedules) do
    it(case.name, function()
      local p = ml.zeros(1):requires_grad_()
      local opt = ml.optim.SGD({ p }, { lr = 0.5 })
      local s = ml.optim[case.name](opt, case.opts)
      for epoch, want in ipairs(case.lrs) do
        if case.metrics then
          s:step(case.metrics[epoch])
        else
          s:step()
        end
        local got = opt.param_groups[1].lr
        assert(math.abs(got - want) <= 1e-12 + 1e-9 * math.abs(want),
          string.format("epoch %d: lr %.17g, PyTorch %.17g", epoch, got, want))
      end
    end)
  end

  it("resumes through state_dict", function()
    local p = ml.zeros(1):requires_grad_()
    local opt = ml.optim.SGD({ p }, { lr = 0.5 })
    local s = ml.optim.StepLR(opt, { step_size = 2, gamma = 0.5 })
    s:step()
    s:step()
    local sd = s:state_dict()
    local s2 = ml.optim.StepLR(ml.optim.SGD({ p }, { lr = 0.25 }), { step_size = 7 })
    s2:load_state_dict(sd)
    assert.are.equal(2, s2.step_size)
    assert.are.equal(s.last_epoch, s2.last_epoch)
  end)

  it("rejects bad options", function()
    local opt = ml.optim.SGD({ ml.zeros(1):requires_grad_() }, { lr = 0.5 })
    h.assert_error("moonml.optim.StepLR:", "step_size", ml.optim.StepLR, opt, {})
    h.assert_error("moonml.optim.StepLR:", "unknown option", ml.optim.StepLR, opt, { step_size = 1, x = 1 })
    h.assert_error("moonml.optim.ExponentialLR:", "gamma", ml.optim.ExponentialLR, opt, {})
    h.assert_error("moonml.optim.CosineAnnealingLR:", "T_max", ml.optim.CosineAnnealingLR, opt, {})
    h.assert_error("moonml.optim.StepLR:", "optimizer", ml.optim.StepLR, 5, { step_size = 1 })
    local plateau = ml.optim.ReduceLROnPlateau(opt)
    h.assert_error("moonml.optim.ReduceLROnPlateau:", "metric", plateau.step, plateau)
  end)
end)

describe("optim.clip_grad_norm", function()
  for _, case in ipairs(fx.clip_grad.cases) do
    it(string.format("max_norm %g, norm_type %g equals PyTorch", case.max_norm, case.norm_type), function()
      local p = ml.zeros(2, 2):requires_grad_()
      p.grad = ml.tensor(fx.clip_grad.grad):view(2, 2):contiguous()
      local total = ml.optim.clip_grad_norm({ p }, case.max_norm, case.norm_type)
      assert(math.abs(total - case.total) < 1e-5, "total " .. total .. " vs " .. case.total)
      h.assert_close(p.grad, { shape = { 2, 2 }, values = case.grad }, { rtol = 1e-5 })
    end)
  end
  it("rejects bad arguments", function()
    h.assert_error("moonml.optim.clip_grad_norm:", "max_norm", ml.optim.clip_grad_norm, {}, -1)
    h.assert_error("moonml.optim.clip_grad_norm:", "array", ml.optim.clip_grad_norm, 5, 1)
  end)
end)

describe("optim group steps (one C call per group)", function()
  -- Per-parameter form: the classes' update(), driven by a Lua loop as a custom optimizer's.
  local function per_parameter(cls)
    local sub = ml.optim.Optimizer.extend(cls.__name, cls.defaults, cls.required)
    sub.check, sub.update = cls.check, cls.update
    return sub
  end

  local configs = {
    { "SGD", { lr = 0.1 } },
    { "SGD", { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01 } },
    { "SGD", { lr = 0.1, momentum = 0.5, dampening = 0.2, maximize = true } },
    { "Adam", { lr = 0.05, amsgrad = true, weight_decay = 0.1 } },
    { "AdamW", { lr = 0.05 } },
    { "RMSprop", { lr = 0.01, momentum = 0.9, centered = true } },
    { "Adagrad", { lr = 0.1, lr_decay = 0.01, initial_accumulator_value = 0.5 } },
  }
  for _, c in ipairs(configs) do
    it("equal the per-parameter steps: " .. c[1], function()
      ml.manual_seed(5)
      local init = { ml.randn(3, 4), ml.randn(4), ml.randn(2, 2, { dtype = "float64" }) }
      local results = {}
      for k, cls in ipairs({ ml.optim[c[1]], per_parameter(ml.optim[c[1]]) }) do
        local ps = {}
        for i, t in ipairs(init) do
          ps[i] = t:clone():requires_grad_()
        end
        -- the third parameter has no gradient on the first step
        local opt = cls(ps, c[2])
        for step = 1, 4 do
          opt:zero_grad()
          for i, p in ipairs(ps) do
            if i < 3 or step > 1 then
              p.grad = ml.no_grad(function()
                return p * p - p * step
              end)
            end
          end
          opt:step()
        end
        local sd = opt:state_dict()
        results[k] = { ps = ps, state = sd.state }
      end
      for i = 1, 3 do
        h.assert_close(results[1].ps[i], results[2].ps[i], { rtol = 0, atol = 0 })
      end
      for i = 1, 3 do
        local a, b = results[1].state[i], results[2].state[i]
        for key, v in pairs(b) do
          if ml.is_tensor(v) then
            h.assert_close(a[key], v, { rtol = 0, atol = 0 })
          else
            assert.are.equal(v, a[key])
          end
        end
        for key in pairs(a) do
          assert.is_not_nil(b[key], key)
        end
      end
    end)
  end

  it("zero_grad drops every group's gradients and lets the buffers go", function()
    local a, b = ml.ones(2):requires_grad_(), ml.ones(3):requires_grad_()
    local opt = ml.optim.SGD({ { params = { a } }, { params = { b } } }, { lr = 0.1 })
    a.grad, b.grad = ml.ones(2), ml.ones(3)
    opt:zero_grad()
    assert.is_nil(a.grad)
    assert.is_nil(b.grad)
  end)

  it("reports bad state and parameters", function()
    local p = ml.ones(2):requires_grad_()
    h.assert_error("moonml.Adam:", "state table", ml._optim.adam_group, { p }, 5, 0.1, 0.9, 0.999,
      1e-8, 0, false, false, false)
    h.assert_error("moonml.SGD:", "expected a tensor", ml._optim.sgd_group, { "x" }, {}, 0.1, 0, 0,
      0, false, false)
    local opt = ml.optim.Adam({ p })
    p.grad = ml.ones(2)
    opt:step()
    opt.state[p].exp_avg = ml.zeros(3)
    h.assert_error("moonml.Adam:", "exp_avg has shape", opt.step, opt)
  end)
end)
