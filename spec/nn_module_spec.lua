-- nn.Module mechanics: parameters, state dicts (and PyTorch's key numbering), modes,
-- printing, errors that name the failing child. Layer values are checked in their own specs.
local ml = require("moonml")
local h = require("helpers")
local nn = ml.nn

local function keys(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

local function mlp()
  ml.manual_seed(1)
  return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
end

describe("nn.Module", function()
  it("lists parameters in registration order, each once", function()
    local m = mlp()
    local names = {}
    for name, p in m:named_parameters() do
      names[#names + 1] = name
      assert.is_true(p.requires_grad)
    end
    assert.are.same({ "1.weight", "1.bias", "3.weight", "3.bias" }, names)
    assert.are.equal(4, #m:parameters())
    assert.are.equal(4 * 8 + 8 + 8 * 3 + 3, m:num_parameters())
    local shared = nn.Sequential(m[1], m[1]) -- the same layer twice
    assert.are.equal(2, #shared:parameters())
  end)

  it("gives PyTorch's default Linear initialisation range", function()
    ml.manual_seed(3)
    local l = nn.Linear(100, 50)
    local bound = 1 / math.sqrt(100)
    assert.is_true(l.weight:abs():max():item() <= bound)
    assert.is_true(l.bias:abs():max():item() <= bound)
    -- uniform in +-bound: the variance is bound^2 / 3
    local var = (l.weight * l.weight):mean():item()
    assert(math.abs(var - bound * bound / 3) < 0.1 * bound * bound / 3, "variance " .. var)
  end)

  it("computes Linear as x W^T + b", function()
    local l = nn.Linear(3, 2)
    ml.no_grad(function()
      l.weight:copy_(ml.tensor({ { 1, 2, 3 }, { -1, 0, 1 } }))
      l.bias:copy_(ml.tensor({ 0.5, -0.5 }))
    end)
    h.assert_close(l(ml.tensor({ { 1, 1, 1 }, { 0, 1, 2 } })), { { 6.5, -0.5 }, { 8.5, 1.5 } })
    -- a 3-D batch uses the last dimension
    h.assert_close(l(ml.ones(2, 1, 3)), { { { 6.5, -0.5 } }, { { 6.5, -0.5 } } })
    assert.are.equal("nn.Linear(3 -> 2)", tostring(l):match("^[^\n]*"):gsub("  %-%-.*", ""))
  end)

  it("names state-dict keys with 1-based child numbers, and converts to and from PyTorch's", function()
    local m = mlp()
    assert.are.same({ "1.bias", "1.weight", "3.bias", "3.weight" }, keys(m:state_dict()))
    assert.are.same({ "0.bias", "0.weight", "2.bias", "2.weight" }, keys(m:state_dict({ to = "pytorch" })))
    local other = mlp()
    ml.no_grad(function()
      for _, p in ipairs(other:parameters()) do
        p:fill_(0.25)
      end
    end)
    m:load_state_dict(other:state_dict({ to = "pytorch" }), { from = "pytorch" })
    h.assert_close(m[3].bias, { 0.25, 0.25, 0.25 })
    -- names with numbers inside a segment are kept
    assert.are.equal("1.weight_ih_l0", nn.Module.shift_key("0.weight_ih_l0", 1))
  end)

  it("load_state_dict checks keys and shapes and changes nothing on error", function()
    local m = mlp()
    local before = m[1].weight:clone()
    local sd = mlp():state_dict()
    sd["1.weight"] = ml.zeros(8, 5)
    h.assert_error("moonml.nn.load_state_dict:", "1.weight", m.load_state_dict, m, sd)
    h.assert_close(m[1].weight, before)
    local missing = mlp():state_dict()
    missing["3.bias"] = nil
    h.assert_error("moonml.nn.load_state_dict:", "missing key '3.bias'", m.load_state_dict, m, missing)
    local extra = mlp():state_dict()
    extra["4.weight"] = ml.zeros(1)
    h.assert_error("moonml.nn.load_state_dict:", "unexpected key '4.weight'", m.load_state_dict, m, extra)
    m:load_state_dict(missing, { strict = false })
    h.assert_error("moonml.nn.load_state_dict:", "table", m.load_state_dict, m, 5)
    h.assert_error("moonml.nn.load_state_dict:", "unknown option", m.load_state_dict, m, {}, { form = "x" })
    h.assert_error("moonml.nn.state_dict:", "pytorch", m.state_dict, m, { to = "tf" })
  end)

  it("switches train and eval on the whole tree", function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert.are.equal(m, m:eval())
    assert.is_false(m[2][1].training)
    m:train()
    assert.is_true(m[2][1].training)
    -- dropout is the identity in eval mode
    local x = ml.ones(100)
    m[2][1]:eval()
    h.assert_close(m[2][1](x), x)
  end)

  it("zero_grad drops gradients", function()
    local m = mlp()
    for _, p in ipairs(m:parameters()) do
      p.grad = ml.ones_like(p)
    end
    m:zero_grad()
    for _, p in ipairs(m:parameters()) do
      assert.is_nil(p.grad)
    end
  end)

  it("prints a summary with the parameter count", function()
    local text = tostring(mlp())
    assert.are.equal("nn.Sequential(\n  (1): nn.Linear(4 -> 8)\n  (2): nn.ReLU()\n  (3): nn.Linear(8 -> 3)\n)"
      .. "  -- 67 parameters", text)
  end)

  it("names the failing child in errors", function()
    local m = mlp()
    h.assert_error("moonml.nn.Sequential:", "child 1 (nn.Linear(4 -> 8))", m, ml.zeros(2, 5))
    h.assert_error("moonml.nn.Linear:", "expected a tensor", m[1], "x")
  end)

  it("rejects bad constructor arguments", function()
    h.assert_error("moonml.nn.Linear:", "in_features", nn.Linear, 0, 3)
    h.assert_error("moonml.nn.Linear:", "out_features", nn.Linear, 3, 2.5)
    h.assert_error("moonml.nn.Linear:", "unknown option", nn.Linear, 3, 2, { bais = false })
    h.assert_error("moonml.nn.Sequential.add:", "expected a module", nn.Sequential, 5)
    h.assert_error("moonml.nn.Dropout:", "probability", nn.Dropout, 2)
    h.assert_error("moonml.nn.Identity.register_parameter:", "tensor", nn.Module.register_parameter,
      nn.Identity(), "w", 5)
  end)
end)

describe("nn.init", function()
  it("computes fans and gains as PyTorch", function()
    local fan_in, fan_out = nn.init.calculate_fan_in_and_fan_out(ml.zeros(16, 8, 3, 3))
    assert.are.equal(72, fan_in)
    assert.are.equal(144, fan_out)
    assert.are.equal(math.sqrt(2), nn.init.calculate_gain("relu"))
    assert.are.equal(5 / 3, nn.init.calculate_gain("tanh"))
    assert.are.equal(math.sqrt(2 / (1 + 0.2 ^ 2)), nn.init.calculate_gain("leaky_relu", 0.2))
    h.assert_error("moonml.nn.init.calculate_gain:", "unknown", nn.init.calculate_gain, "swish")
    h.assert_error("moonml.nn.init.calculate_fan_in_and_fan_out:", "2 dimensions",
      nn.init.calculate_fan_in_and_fan_out, ml.zeros(3))
  end)

  it("draws within the bounds and spreads PyTorch's definitions imply", function()
    ml.manual_seed(5)
    local w = ml.empty(200, 300)
    nn.init.xavier_uniform_(w)
    local bound = math.sqrt(6 / 500)
    assert.is_true(w:abs():max():item() <= bound)
    nn.init.kaiming_normal_(w, { nonlinearity = "relu" })
    local std = math.sqrt((w * w):mean():item())
    assert(math.abs(std - math.sqrt(2 / 300)) < 0.02 * math.sqrt(2 / 300), "std " .. std)
    nn.init.constant_(w, 3)
    assert.are.equal(3, w:get(7, 9))
    assert.are.equal(nn.init.zeros_, nn.init.zeros)
    h.assert_error("moonml.nn.init.kaiming_uniform_:", "mode", nn.init.kaiming_uniform_, w, { mode = "x" })
  end)

  it("initialises leaves that require grad without recording a graph", function()
    local w = ml.empty(3, 3):requires_grad_()
    nn.init.normal_(w)
    assert.is_true(w.is_leaf)
    assert.is_nil(w.grad_fn)
  end)
end)

describe("nn losses", function()
  it("MSELoss and L1Loss with each reduction", function()
    local a, b = ml.tensor({ 1, 2, 4 }), ml.tensor({ 1, 0, 1 })
    assert(math.abs(nn.MSELoss()(a, b):item() - 13 / 3) < 1e-6)
    assert.are.equal(13, nn.MSELoss({ reduction = "sum" })(a, b):item())
    h.assert_close(nn.L1Loss({ reduction = "none" })(a, b), { 0, 2, 3 })
    h.assert_error("moonml.mse_loss:", "does not match", nn.MSELoss(), a, ml.zeros(2))
    h.assert_error("moonml.nn.MSELoss:", "reduction", nn.MSELoss, { reduction = "avg" })
    h.assert_error("moonml.nn.MSELoss:", "unknown option", nn.MSELoss, { reduce = true })
  end)
end)
