-- nn.RNN / nn.LSTM / nn.GRU and the cells: outputs and every gradient against PyTorch
-- (spec/fixtures/gen_rnn.py), float64 gradchecks, dropout, a small training run, bad input.
local ml = require("moonml")
local h = require("helpers")
local nn = ml.nn

local FIX = h.fixture("rnn")

local CLASSES = { LSTM = nn.LSTM, GRU = nn.GRU, RNN = nn.RNN, LSTMCell = nn.LSTMCell,
  GRUCell = nn.GRUCell, RNNCell = nn.RNNCell }
local IS_CELL = { LSTMCell = true, GRUCell = true, RNNCell = true }

-- The fixtures' results are float64 PyTorch values of float32 inputs: the float64 path
-- must agree to rounding, the float32 one within float32 error over a few steps.
local TOL = { float64 = { rtol = 1e-9, atol = 1e-11 }, float32 = { rtol = 2e-5, atol = 2e-6 } }

-- Fixture inputs are float32 values: read them as float32 first, so that the float64 path
-- gets exactly the values PyTorch had.
local function tensor_of(e, dtype)
  return ml.tensor(e.values):to(dtype or "float32"):view(e.shape)
end

local function build(case, dtype)
  local opts = { dtype = dtype }
  for k, v in pairs(case.opts) do
    opts[k] = v
  end
  local m = CLASSES[case.kind](case.input_size, case.hidden_size, opts)
  local sd = {}
  for name, e in pairs(case.weights) do
    sd[name] = tensor_of(e, dtype)
  end
  m:load_state_dict(sd, { from = "pytorch" })
  return m
end

-- A leaf holding e's values, and the tensor to feed: e itself, or (strided) a transposed
-- view of a leaf laid out the other way round, or a view of every other element.
local function input_of(e, dtype, layout)
  if e == nil then
    return nil, nil
  end
  local t = tensor_of(e, dtype)
  local nd = #e.shape
  if layout == "transposed" and nd >= 2 then
    local leaf = t:transpose(1, nd):contiguous():requires_grad_()
    return leaf, leaf:transpose(1, nd), function(g)
      return g:transpose(1, nd)
    end
  elseif layout == "strided" then -- every other element of a leaf twice as long
    local n = t:numel()
    local leaf = ml.zeros(n, 2, { dtype = dtype })
    leaf:select(2, 1):copy_(t:reshape(n))
    leaf:requires_grad_()
    return leaf, leaf:select(2, 1):view(e.shape), function(g)
      return g:select(2, 1):reshape(e.shape)
    end
  end
  local leaf = t:requires_grad_()
  return leaf, leaf, function(g)
    return g
  end
end

-- Runs a case; returns a table of the results named as in the fixture.
local function run(case, dtype, layout)
  local m = build(case, dtype)
  local xl, x, gx = input_of(case.x, dtype, layout)
  local hl, h0, gh = input_of(case.h0, dtype, layout)
  local cl, c0, gc = input_of(case.c0, dtype, layout)
  local out, hn, cn
  if IS_CELL[case.kind] then
    hn, cn = m(x, h0, c0)
  else
    out, hn, cn = m(x, h0, c0)
  end
  local loss = (hn * tensor_of(case.w_h, dtype)):sum()
  if out then
    loss = loss + (out * tensor_of(case.w_out, dtype)):sum()
  end
  if cn then
    loss = loss + (cn * tensor_of(case.w_c, dtype)):sum()
  end
  loss:backward()
  local got = { out = out, h_n = hn, c_n = cn, grad_x = gx(xl.grad),
    loss = loss:view(1) }
  if hl then
    got.grad_h0 = gh(hl.grad)
  end
  if cl then
    got.grad_c0 = gc(cl.grad)
  end
  for name in pairs(case.weights) do
    got["grad_" .. name] = m[name].grad
  end
  return got
end

local function check_case(name, case, dtype, layout)
  local got = run(case, dtype, layout)
  local n = 0
  for key, want in pairs(case) do
    if key == "out" or key == "h_n" or key == "c_n" or key == "loss" or key:match("^grad_") then
      assert(got[key] ~= nil, name .. ": no result for " .. key)
      local ok, err = pcall(h.assert_close, got[key], want, TOL[dtype])
      assert(ok, string.format("%s (%s, %s) %s: %s", name, dtype, layout or "contiguous", key,
        tostring(err)))
      n = n + 1
    end
  end
  assert(n >= 4, name .. ": too few results checked")
end

local function names(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

describe("nn.RNN / LSTM / GRU against PyTorch", function()
  for _, name in ipairs(names(FIX)) do
    local case = FIX[name]
    it(name .. ": outputs and every gradient, float64 and float32", function()
      check_case(name, case, "float64")
      check_case(name, case, "float32")
    end)
  end

  it("takes transposed and strided inputs and states", function()
    for _, name in ipairs({ "lstm_bidirectional", "lstm_batch_first", "gru_bi_batch_first",
      "rnn_tanh", "lstm_cell", "lstm_unbatched" }) do
      check_case(name, FIX[name], "float64", "transposed")
      check_case(name, FIX[name], "float32", "strided")
    end
  end)

  it("keeps PyTorch's parameter names and shapes in the state dict", function()
    local m = nn.LSTM(3, 4, { num_layers = 2, bidirectional = true })
    local sd = m:state_dict()
    assert.are.same({ "bias_hh_l0", "bias_hh_l0_reverse", "bias_hh_l1", "bias_hh_l1_reverse",
      "bias_ih_l0", "bias_ih_l0_reverse", "bias_ih_l1", "bias_ih_l1_reverse", "weight_hh_l0",
      "weight_hh_l0_reverse", "weight_hh_l1", "weight_hh_l1_reverse", "weight_ih_l0",
      "weight_ih_l0_reverse", "weight_ih_l1", "weight_ih_l1_reverse" }, names(sd))
    assert.are.same({ 16, 3 }, sd.weight_ih_l0:shape())
    assert.are.same({ 16, 8 }, sd.weight_ih_l1_reverse:shape())
    assert.are.same({ 16, 4 }, sd.weight_hh_l1:shape())
    local order = {}
    for n in m:named_parameters() do
      order[#order + 1] = n
    end
    assert.are.same({ "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0" },
      { order[1], order[2], order[3], order[4] })
    assert.are.equal("weight_ih_l0_reverse", order[5])
    local seq = nn.Sequential(nn.GRU(2, 3, { bias = false }))
    assert.are.same({ "0.weight_hh_l0", "0.weight_ih_l0" }, names(seq:state_dict({ to = "pytorch" })))
    assert.are.same({ 9, 2 }, seq[1].weight_ih_l0:shape())
    assert.are.same({ 3, 5 }, nn.RNN(5, 3).weight_ih_l0:shape())
    assert.are.same({ "bias_hh", "bias_ih", "weight_hh", "weight_ih" },
      names(nn.LSTMCell(2, 3):state_dict()))
    assert.is_truthy(tostring(m):find("nn.LSTM(3, 4, num_layers=2, bidirectional=true)", 1, true))
    assert.is_truthy(tostring(nn.RNN(2, 3, { nonlinearity = "relu" })):find("nonlinearity=relu"))
  end)

  it("initialises every parameter uniform in +-1/sqrt(hidden_size)", function()
    ml.manual_seed(5)
    local m = nn.GRU(10, 25, { num_layers = 2 })
    local bound = 1 / math.sqrt(25)
    local sumsq, n = 0, 0
    for _, p in ipairs(m:parameters()) do
      assert.is_true(p:abs():max():item() <= bound)
      sumsq = sumsq + (p * p):sum():item()
      n = n + p:numel()
    end
    -- uniform in +-b: variance b^2 / 3
    assert(math.abs(sumsq / n - bound * bound / 3) < 0.05 * bound * bound / 3)
    assert.are.equal("float64", nn.LSTM(2, 3, { dtype = "float64" }).weight_hh_l0:dtype())
  end)

  it("returns out, h_n, c_n with the documented shapes; h_n is out's last step", function()
    ml.manual_seed(2)
    local m = nn.LSTM(3, 5, { num_layers = 2, batch_first = true })
    local out, hn, cn = m(ml.randn(4, 6, 3))
    assert.are.same({ 4, 6, 5 }, out:shape())
    assert.are.same({ 2, 4, 5 }, hn:shape())
    assert.are.same({ 2, 4, 5 }, cn:shape())
    h.assert_close(out:select(2, 6), hn[2], { rtol = 0, atol = 0 })
    local bi = nn.GRU(3, 5, { bidirectional = true })
    local o2, h2 = bi(ml.randn(6, 4, 3))
    assert.are.same({ 6, 4, 10 }, o2:shape())
    -- forward direction ends at the last step, backward at the first
    h.assert_close(o2[6]:narrow(2, 1, 5), h2[1], { rtol = 0, atol = 0 })
    h.assert_close(o2[1]:narrow(2, 6, 5), h2[2], { rtol = 0, atol = 0 })
    local o3, h3, c3 = bi(ml.randn(6, 4, 3))
    assert.is_nil(c3)
    assert.is_truthy(o3 and h3)
    -- states given as a table, as PyTorch's tuple
    local l1 = nn.LSTM(3, 4)
    local x, h0, c0 = ml.randn(2, 1, 3), ml.randn(1, 1, 4), ml.randn(1, 1, 4)
    local a = l1(x, h0, c0)
    local b = l1(x, { h0, c0 })
    h.assert_close(a, b, { rtol = 0, atol = 0 })
  end)

  it("runs an empty batch", function()
    local m = nn.LSTM(3, 4, { num_layers = 2, bidirectional = true })
    local x = ml.zeros(5, 0, 3):requires_grad_()
    local out, hn, cn = m(x)
    assert.are.same({ 5, 0, 8 }, out:shape())
    assert.are.same({ 4, 0, 4 }, hn:shape())
    assert.are.same({ 4, 0, 4 }, cn:shape())
    ;(out:sum() + hn:sum()):backward()
    assert.are.same({ 5, 0, 3 }, x.grad:shape())
    assert.are.equal(0, m.weight_ih_l1.grad:abs():sum():item())
    assert.are.equal(0, m.bias_hh_l0_reverse.grad:abs():sum():item())
  end)

  it("leaves weights alone when they do not require grad, and records nothing under no_grad", function()
    local m = nn.GRU(3, 4)
    for _, p in ipairs(m:parameters()) do
      p:requires_grad_(false)
    end
    local x = ml.randn(3, 2, 3):requires_grad_()
    local out = m(x)
    out:sum():backward()
    assert.are.same({ 3, 2, 3 }, x.grad:shape())
    assert.is_nil(m.weight_ih_l0.grad)
    local o2 = ml.no_grad(function()
      return nn.LSTM(3, 4)(x)
    end)
    assert.is_false(o2.requires_grad)
    assert.is_nil(o2.grad_fn)
  end)

  it("backward twice with retain_graph doubles the gradients; in-place changes of out count", function()
    ml.manual_seed(4)
    local m = nn.GRU(3, 4, { num_layers = 2 })
    local x = ml.randn(4, 2, 3):requires_grad_()
    local out, hn = m(x)
    local loss = out:sum() + hn:sum()
    loss:backward({ retain_graph = true })
    local g1, gx1 = m.weight_hh_l1.grad:clone(), x.grad:clone()
    loss:backward()
    h.assert_close(m.weight_hh_l1.grad, g1 * 2, { rtol = 1e-6, atol = 1e-7 })
    h.assert_close(x.grad, gx1 * 2, { rtol = 1e-6, atol = 1e-7 })
    -- out * 3 written in place into out's own storage: the gradient triples
    m:zero_grad()
    local out2 = m(x)
    out2:mul_(3)
    out2:sum():backward()
    local m3 = m.weight_hh_l1.grad:clone()
    m:zero_grad()
    ;(m(x) * 3):sum():backward()
    h.assert_close(m3, m.weight_hh_l1.grad, { rtol = 1e-6, atol = 1e-7 })
  end)

  it("gives the same results on two threads", function()
    ml.manual_seed(6)
    local m = nn.LSTM(20, 40, { num_layers = 2, bidirectional = true })
    local x = ml.randn(30, 64, 20)
    local function go(n)
      ml.set_num_threads(n)
      m:zero_grad()
      local out, hn, cn = m(x)
      ;(out:sum() + hn:sum() + cn:sum()):backward()
      return out, m.weight_ih_l1.grad:clone(), m.weight_hh_l0_reverse.grad:clone()
    end
    local prev = ml.get_num_threads()
    local o1, a1, b1 = go(1)
    local o2, a2, b2 = go(2)
    ml.set_num_threads(prev)
    h.assert_close(o2, o1, { rtol = 1e-5, atol = 1e-6 })
    h.assert_close(a2, a1, { rtol = 1e-4, atol = 1e-5 })
    h.assert_close(b2, b1, { rtol = 1e-4, atol = 1e-5 })
  end)

  it("routes every weight's gradient through the packing tree, frozen weights skipped", function()
    ml.manual_seed(9) -- 3 layers, 2 directions: 24 weights, three levels of packing nodes
    local m = nn.LSTM(2, 3, { num_layers = 3, bidirectional = true })
    local x = ml.randn(4, 2, 2)
    local function grads()
      m:zero_grad()
      local out, hn, cn = m(x)
      ;((out * out):sum() + hn:sum() + (cn * 2):sum()):backward()
      local g = {}
      for name, p in m:named_parameters() do
        g[name] = p.grad and p.grad:clone()
      end
      return g
    end
    local all = grads()
    local frozen = { "weight_hh_l0", "bias_ih_l1_reverse", "weight_ih_l2", "bias_hh_l2_reverse" }
    for _, name in ipairs(frozen) do
      m[name]:requires_grad_(false)
    end
    local some = grads()
    local n = 0
    for name, g in pairs(all) do
      if some[name] then
        h.assert_close(some[name], g, { rtol = 0, atol = 0 })
        n = n + 1
      end
    end
    assert.are.equal(20, n)
    for _, name in ipairs(frozen) do
      assert.is_nil(m[name].grad)
      assert.is_nil(some[name])
    end
  end)

  it("refuses a backward after the input changed in place", function()
    local m = nn.LSTM(3, 4)
    local x = ml.randn(3, 2, 3)
    local out = m(x)
    x:add_(1)
    h.assert_error("moonml.backward:", "modified by an in-place operation", function()
      out:sum():backward()
    end)
  end)
end)

describe("gradcheck on float64", function()
  -- The network's outputs reduced to one number by fixed weights, so that gradcheck takes
  -- one backward; every input, state and parameter is checked.
  local function check(m, x, h0, c0, seed)
    local inputs = { x, h0, c0 }
    for _, p in ipairs(m:parameters()) do
      inputs[#inputs + 1] = p
    end
    ml.manual_seed(99)
    local wo, wh, wc
    local function fn()
      if seed then
        ml.manual_seed(seed) -- the same dropout masks in every call
      end
      local out, hn, cn = m(x, h0, c0)
      wo = wo or ml.randn(out:shape(), { dtype = "float64" })
      wh = wh or ml.randn(hn:shape(), { dtype = "float64" })
      local y = (out * wo):sum() + (hn * wh):sum()
      if cn then
        wc = wc or ml.randn(cn:shape(), { dtype = "float64" })
        y = y + (cn * wc):sum()
      end
      return y
    end
    local ok, msg = ml.gradcheck(fn, inputs)
    assert(ok, msg)
  end

  local function rand(...)
    return ml.randn({ ... }, { dtype = "float64" }):requires_grad_()
  end

  it("LSTM: 2 layers, bidirectional, with h0 and c0", function()
    ml.manual_seed(11)
    local m = nn.LSTM(2, 3, { num_layers = 2, bidirectional = true, dtype = "float64" })
    check(m, rand(3, 2, 2), rand(4, 2, 3), rand(4, 2, 3))
  end)

  it("LSTM with dropout between layers (same masks in every call)", function()
    ml.manual_seed(12)
    local m = nn.LSTM(2, 3, { num_layers = 3, dropout = 0.4, batch_first = true,
      dtype = "float64" })
    check(m, rand(2, 3, 2), nil, nil, 5)
  end)

  it("GRU: 2 layers, bidirectional, batch first", function()
    ml.manual_seed(13)
    local m = nn.GRU(2, 3, { num_layers = 2, bidirectional = true, batch_first = true,
      dtype = "float64" })
    check(m, rand(2, 3, 2), rand(4, 2, 3))
  end)

  it("RNN tanh and relu, without bias", function()
    ml.manual_seed(14)
    check(nn.RNN(2, 3, { num_layers = 2, dtype = "float64" }), rand(4, 2, 2), rand(2, 2, 3))
    check(nn.RNN(2, 3, { nonlinearity = "relu", bias = false, bidirectional = true,
      dtype = "float64" }), rand(4, 2, 2), rand(2, 2, 3))
  end)

  it("cells", function()
    ml.manual_seed(15)
    local x, hh, c = rand(2, 3), rand(2, 4), rand(2, 4)
    local function cell_check(m, fn_inputs)
      local inputs = fn_inputs
      for _, p in ipairs(m:parameters()) do
        inputs[#inputs + 1] = p
      end
      local ok, msg = ml.gradcheck(function()
        local h1, c1 = m(table.unpack(fn_inputs, 1, 3))
        return h1:sum() + (c1 and (c1 * c1):sum() or 0)
      end, inputs)
      assert(ok, msg)
    end
    cell_check(nn.LSTMCell(3, 4, { dtype = "float64" }), { x, hh, c })
    cell_check(nn.GRUCell(3, 4, { dtype = "float64" }), { x, hh })
    cell_check(nn.RNNCell(3, 4, { dtype = "float64" }), { x, hh })
  end)
end)

describe("dropout between layers", function()
  it("is off in eval mode and with one layer, on and seeded in training", function()
    ml.manual_seed(21)
    local m = nn.LSTM(3, 6, { num_layers = 2, dropout = 0.5 })
    local plain = nn.LSTM(3, 6, { num_layers = 2 })
    plain:load_state_dict(m:state_dict())
    local x = ml.randn(5, 4, 3)
    local ref = plain(x)
    m:eval()
    h.assert_close(m(x), ref, { rtol = 0, atol = 0 })
    m:train()
    ml.manual_seed(3)
    local a = m(x)
    ml.manual_seed(3)
    local b = m(x)
    h.assert_close(a, b, { rtol = 0, atol = 0 })
    assert.is_true((a - ref):abs():max():item() > 1e-3)
    -- one layer: nothing to drop between
    local one = nn.GRU(3, 4, { dropout = 0.9 })
    local one_plain = nn.GRU(3, 4)
    one_plain:load_state_dict(one:state_dict())
    h.assert_close(one(x), one_plain(x), { rtol = 0, atol = 0 })
  end)

  it("drops each element with probability p and scales the rest by 1/(1-p)", function()
    -- a 2-layer RNN whose second layer copies its input (W_ih = I, W_hh = 0, relu, no bias)
    -- shows the mask applied to a first layer's output of ones
    local m = nn.RNN(1, 50, { num_layers = 2, nonlinearity = "relu", bias = false,
      dropout = 0.3 })
    ml.no_grad(function()
      m.weight_ih_l0:fill_(1)
      m.weight_hh_l0:zero_()
      m.weight_ih_l1:copy_(ml.eye(50))
      m.weight_hh_l1:zero_()
    end)
    ml.manual_seed(8)
    local out = m(ml.ones(40, 50, 1)) -- 100,000 elements
    local kept = out:gt(0):float():mean():item()
    assert(math.abs(kept - 0.7) < 5 * math.sqrt(0.21 / 1e5), "kept fraction " .. kept)
    local nz = out:max():item()
    assert(math.abs(nz - 1 / 0.7) < 1e-6, "scale " .. nz)
    assert.are.equal(0, out:min():item())
  end)
end)

describe("training", function()
  it("learns the sum of a short sequence with Adam (seeded; held-out loss below 0.01)", function()
    ml.manual_seed(1)
    local lstm, head = nn.LSTM(1, 16), nn.Linear(16, 1)
    local params = lstm:parameters()
    for _, p in ipairs(head:parameters()) do
      params[#params + 1] = p
    end
    local opt = ml.optim.Adam(params, { lr = 0.02 })
    local T = 6
    local function batch(n) -- n sequences of T numbers in [-1, 1) and their sums
      local x = ml.rand(T, n, 1) * 2 - 1
      return x, x:sum(1):view(n, 1)
    end
    local function loss_of(x, target)
      local _, hn = lstm(x)
      return nn.functional.mse_loss(head(hn[1]), target)
    end
    local xt, tt = batch(512)
    local before = ml.no_grad(loss_of, xt, tt):item()
    for _ = 1, 300 do
      local x, target = batch(32)
      opt:zero_grad()
      loss_of(x, target):backward()
      opt:step()
    end
    local after = ml.no_grad(loss_of, xt, tt):item()
    -- the sum of 6 uniform numbers has variance 2: an untrained model is far off
    assert(before > 1, "loss before training " .. before)
    assert(after < 0.01, "held-out loss after 300 steps " .. after)
  end)
end)

describe("bad input", function()
  local m = nn.LSTM(3, 4, { num_layers = 2 })
  local P = "moonml.nn.LSTM:"

  it("names the layer in every error", function()
    h.assert_error(P, "expected a tensor input", m, "x")
    h.assert_error(P, "got 4-D", m, ml.zeros(2, 2, 2, 3))
    h.assert_error(P, "got 1-D", m, ml.zeros(3))
    h.assert_error(P, "has 5 features", m, ml.zeros(4, 2, 5))
    h.assert_error(P, "expected h0 of shape {2, 2, 4}, got {1, 2, 4}", m, ml.zeros(4, 2, 3),
      ml.zeros(1, 2, 4), ml.zeros(1, 2, 4))
    h.assert_error(P, "expected c0 of shape {2, 2, 4}, got {2, 3, 4}", m, ml.zeros(4, 2, 3),
      ml.zeros(2, 2, 4), ml.zeros(2, 3, 4))
    h.assert_error(P, "h0 and c0 must be given together", m, ml.zeros(4, 2, 3), ml.zeros(2, 2, 4))
    h.assert_error(P, "h0 must be a tensor", m, ml.zeros(4, 2, 3), 1, ml.zeros(2, 2, 4))
    h.assert_error(P, "expected a float32 or float64 input, got int64", m,
      ml.zeros(4, 2, 3, { dtype = "int64" }))
    h.assert_error(P, "weight_ih_l0 is float32 but the input is float64", m,
      ml.zeros(4, 2, 3, { dtype = "float64" }))
    h.assert_error(P, "h0 is float64 but the input is float32", m, ml.zeros(4, 2, 3),
      ml.zeros(2, 2, 4, { dtype = "float64" }), ml.zeros(2, 2, 4, { dtype = "float64" }))
    h.assert_error(P, "sequence length must be at least 1", m, ml.zeros(0, 2, 3))
  end)

  it("checks the constructor's arguments", function()
    h.assert_error(P, "hidden_size must be a positive integer, got 0", nn.LSTM, 3, 0)
    h.assert_error(P, "hidden_size must be a positive integer, got -2", nn.LSTM, 3, -2)
    h.assert_error(P, "input_size must be a positive integer", nn.LSTM, 1.5, 2)
    h.assert_error(P, "num_layers must be a positive integer, got 0", nn.LSTM, 3, 4,
      { num_layers = 0 })
    h.assert_error(P, "dropout must be a probability", nn.LSTM, 3, 4, { dropout = 1.5 })
    h.assert_error(P, "unknown option 'nonlinearity'", nn.LSTM, 3, 4, { nonlinearity = "relu" })
    h.assert_error(P, "batch_first must be a boolean", nn.LSTM, 3, 4, { batch_first = 1 })
    h.assert_error(P, "dtype must be \"float32\" or \"float64\", got int64", nn.LSTM, 3, 4,
      { dtype = "int64" })
    h.assert_error("moonml.nn.RNN:", "nonlinearity must be", nn.RNN, 3, 4,
      { nonlinearity = "sigmoid" })
    h.assert_error("moonml.nn.GRU:", "hidden_size must be", nn.GRU, 3, nil)
    h.assert_error("moonml.nn.GRUCell:", "got 3-D", nn.GRUCell(2, 3), ml.zeros(1, 1, 2))
    h.assert_error("moonml.nn.LSTMCell:", "expected h of shape {2, 3}", nn.LSTMCell(2, 3),
      ml.zeros(2, 2), ml.zeros(3), ml.zeros(3))
    h.assert_error("moonml.nn.RNNCell:", "has 4 features", nn.RNNCell(2, 3), ml.zeros(4))
  end)

  it("checks ml.rnn's own arguments", function()
    local w = { ml.zeros(4, 3), ml.zeros(4, 4) }
    local o = { hidden_size = 4, bias = false }
    h.assert_error("moonml.rnn:", "mode must be", ml.rnn, "lstmx", ml.zeros(2, 1, 3), nil, nil, w, o)
    h.assert_error("moonml.rnn:", "expected 2 weight tensors, got 1", ml.rnn, "rnn_tanh",
      ml.zeros(2, 1, 3), nil, nil, { w[1] }, o)
    h.assert_error("moonml.rnn:", "weight_hh_l0 must have shape [4, 4], got [4, 3]", ml.rnn,
      "rnn_tanh", ml.zeros(2, 1, 3), nil, nil, { w[1], ml.zeros(4, 3) }, o)
    h.assert_error("moonml.rnn:", "only an LSTM takes a cell state", ml.rnn, "rnn_tanh",
      ml.zeros(2, 1, 3), nil, ml.zeros(1, 1, 4), w, o)
    h.assert_error("moonml.rnn:", "weight 2 must be a tensor", ml.rnn, "rnn_tanh",
      ml.zeros(2, 1, 3), nil, nil, { w[1], 7 }, o)
    h.assert_error("moonml.rnn:", "unknown option 'layers'", ml.rnn, "rnn_tanh",
      ml.zeros(2, 1, 3), nil, nil, w, { hidden_size = 4, layers = 2 })
    h.assert_error("moonml.rnn:", "hidden_size must be an integer", ml.rnn, "rnn_tanh",
      ml.zeros(2, 1, 3), nil, nil, w, {})
    h.assert_error("moonml.rnn:", "options must be a table", ml.rnn, "gru", ml.zeros(2, 1, 3),
      nil, nil, w)
    h.assert_error("moonml.rnn:", "expected 4 weight tensors", ml.rnn, "gru", ml.zeros(2, 1, 3),
      nil, nil, w, { hidden_size = 4 })
  end)
end)
