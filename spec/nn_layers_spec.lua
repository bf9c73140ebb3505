-- Linear, Embedding and MultiheadAttention against PyTorch 1.13 (spec/fixtures/gen_layers.py):
-- outputs and gradients for the same weights and inputs, in float64.
local ml = require("moonml")
local h = require("helpers")
local nn = ml.nn

local fx = h.fixture("layers")
local TOL = { rtol = 1e-10, atol = 1e-12 }

local function t64(spec, requires_grad)
  local t = ml.tensor(spec.values, "float64"):view(spec.shape):contiguous()
  if requires_grad then
    t:requires_grad_()
  end
  return t
end

local function load(param, spec)
  ml.no_grad(function()
    param:copy_(t64(spec))
  end)
end

describe("nn.Linear against PyTorch", function()
  it("gives the same output and gradients", function()
    local c = fx.linear
    local l = nn.Linear(5, 3, { dtype = "float64" })
    load(l.weight, c.weight)
    load(l.bias, c.bias)
    local x = t64(c.x, true)
    local y = l(x)
    h.assert_close(y, c.y, TOL)
    local loss = (y * t64(c.g)):sum()
    loss:backward()
    h.assert_close(x.grad, c.dx, TOL)
    h.assert_close(l.weight.grad, c.dw, TOL)
    h.assert_close(l.bias.grad, c.db, TOL)
  end)
end)

describe("nn.Embedding", function()
  it("matches PyTorch with padding_idx (1-based ids)", function()
    local c = fx.embedding
    local e = nn.Embedding(6, 4, { padding_idx = 3, dtype = "float64" })
    load(e.weight, c.weight)
    local ids = ml.tensor(c.ids.values, "int64"):view(c.ids.shape)
    local y = e(ids)
    h.assert_close(y, c.y, TOL)
    local loss = (y * t64(c.g)):sum()
    loss:backward()
    h.assert_close(e.weight.grad, c.dw, TOL)
  end)

  it("starts the padding row at zero and accepts whole-number float ids", function()
    local e = nn.Embedding(5, 3, { padding_idx = -1 })
    assert.are.equal(5, e.padding_idx)
    h.assert_close(e.weight[5], { 0, 0, 0 })
    h.assert_close(e(ml.tensor({ 2, 2 })), e(ml.tensor({ 2, 2 }, "int64")))
  end)

  it("rejects bad ids and arguments", function()
    local e = nn.Embedding(4, 2)
    h.assert_error("moonml.nn.Embedding:", "id 5 out of range 1..4", e, ml.tensor({ 1, 5 }, "int64"))
    h.assert_error("moonml.nn.Embedding:", "id 0 out of range", e, ml.tensor({ 0 }, "int64"))
    h.assert_error("moonml.nn.Embedding:", "tensor of ids", e, { 1 })
    h.assert_error("moonml.nn.Embedding:", "num_embeddings", nn.Embedding, 0, 3)
    h.assert_error("moonml.nn.Embedding:", "padding_idx", nn.Embedding, 4, 2, { padding_idx = 9 })
    h.assert_error("moonml.nn.Embedding:", "whole numbers", e, ml.tensor({ 1.5 }))
  end)
end)

describe("nn.MultiheadAttention against PyTorch", function()
  for i, c in ipairs(fx.mha) do
    it(string.format("case %d (batch_first %s, average %s%s%s)", i, tostring(c.batch_first),
      tostring(c.average), c.key_padding_mask and ", key padding mask" or "",
      c.attn_mask and ", float attn_mask" or ""), function()
      local m = nn.MultiheadAttention(8, 2, { batch_first = c.batch_first, dtype = "float64" })
      load(m.in_proj_weight, c.in_proj_weight)
      load(m.in_proj_bias, c.in_proj_bias)
      load(m.out_proj.weight, c.out_weight)
      load(m.out_proj.bias, c.out_bias)
      local q, k, v = t64(c.q, true), t64(c.k, true), t64(c.v, true)
      local opts = { average_attn_weights = c.average }
      if c.key_padding_mask then
        opts.key_padding_mask = ml.tensor(c.key_padding_mask)
      end
      if c.attn_mask then
        opts.attn_mask = t64(c.attn_mask)
      end
      local y, w = m(q, k, v, opts)
      h.assert_close(y, c.y, TOL)
      h.assert_close(w, c.attn, TOL)
      local loss = (y * t64(c.g)):sum()
    loss:backward()
      h.assert_close(q.grad, c.dq, TOL)
      h.assert_close(k.grad, c.dk, TOL)
      h.assert_close(v.grad, c.dv, TOL)
      h.assert_close(m.in_proj_weight.grad, c.d_in_proj_weight, TOL)
      h.assert_close(m.out_proj.weight.grad, c.d_out_weight, TOL)
    end)
  end

  it("uses PyTorch's state-dict names", function()
    local names = {}
    for k in pairs(nn.MultiheadAttention(4, 2):state_dict()) do
      names[#names + 1] = k
    end
    table.sort(names)
    assert.are.same({ "in_proj_bias", "in_proj_weight", "out_proj.bias", "out_proj.weight" }, names)
  end)

  it("rejects bad shapes and arguments", function()
    local m = nn.MultiheadAttention(4, 2)
    h.assert_error("moonml.nn.MultiheadAttention:", "dividing", nn.MultiheadAttention, 5, 2)
    h.assert_error("moonml.nn.MultiheadAttention:", "3-D", m, ml.zeros(2, 4), ml.zeros(2, 4), ml.zeros(2, 4))
    h.assert_error("moonml.nn.MultiheadAttention:", "features", m, ml.zeros(2, 1, 3), ml.zeros(2, 1, 3),
      ml.zeros(2, 1, 3))
    h.assert_error("moonml.nn.MultiheadAttention:", "key_padding_mask", m, ml.zeros(2, 1, 4),
      ml.zeros(3, 1, 4), ml.zeros(3, 1, 4), { key_padding_mask = ml.zeros(1, 2, { dtype = "bool" }) })
    h.assert_error("moonml.nn.MultiheadAttention.forward:", "unknown option", m, ml.zeros(2, 1, 4),
      ml.zeros(2, 1, 4), ml.zeros(2, 1, 4), { mask = 1 })
  end)
end)
