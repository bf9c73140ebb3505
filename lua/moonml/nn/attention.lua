--- nn.MultiheadAttention(embed_dim, num_heads[, {bias = true, dropout = 0,
-- batch_first = false}]), PyTorch's layout and arithmetic: in_proj_weight (3E x E),
-- in_proj_bias (3E), out_proj.weight (E x E), out_proj.bias (E).
-- `local out, weights = mha(query, key, value[, {key_padding_mask =, attn_mask =,
-- need_weights = true, average_attn_weights = true}])`; inputs are (L, N, E), or
-- (N, L, E) with batch_first. Masks: bool (true = not attended) or float (added).
-- @classmod moonml.nn.MultiheadAttention
local ml = require("moonml")
local F = require("moonml.nn.functional")
local Linear = require("moonml.nn.linear")
local Module = require("moonml.nn.module")
local init = require("moonml.nn.initializers")

local MHA = Module:extend("MultiheadAttention")

local function fail(msg)
  error("moonml.nn.MultiheadAttention: " .. msg, 0)
end

--- Creates the module; the arguments are described at the top of this file.
function MHA.new(embed_dim, num_heads, opts)
  if math.type(embed_dim) ~= "integer" or embed_dim < 1 then
    fail("embed_dim must be a positive integer, got " .. tostring(embed_dim))
  end
  if math.type(num_heads) ~= "integer" or num_heads < 1 or embed_dim % num_heads ~= 0 then
    fail("num_heads must be a positive integer dividing embed_dim, got " .. tostring(num_heads))
  end
  opts = Module.check_opts("MultiheadAttention", opts, { bias = true, dropout = true,
    batch_first = true, dtype = true })
  local self = Module.init(MHA)
  self.embed_dim, self.num_heads = embed_dim, num_heads
  self.head_dim = embed_dim // num_heads
  self.dropout = opts.dropout or 0
  self.batch_first = opts.batch_first == true
  local dtype = opts.dtype or "float32"
  init.xavier_uniform_(self:register_parameter("in_proj_weight",
    ml.empty(3 * embed_dim, embed_dim, { dtype = dtype })))
  local bias = opts.bias ~= false
  if bias then
    self:register_parameter("in_proj_bias", ml.zeros(3 * embed_dim, { dtype = dtype }))
  end
  local out_proj = Linear(embed_dim, embed_dim, { bias = bias, dtype = dtype })
  if bias then
    init.zeros_(out_proj.bias)
  end
  self:add_module("out_proj", out_proj)
  return self
end

-- rows first..first+E-1 of the packed projection
local function part(t, i, e)
  if t == nil then
    return nil
  end
  return t:narrow(1, (i - 1) * e + 1, e)
end

local function check_input(name, x, e)
  if not ml.is_tensor(x) or x:dim() ~= 3 then
    fail(name .. " must be a 3-D tensor, got " .. (ml.is_tensor(x) and (x:dim() .. "-D") or type(x)))
  end
  if x:size(3) ~= e then
    fail(string.format("%s has %d features, embed_dim is %d", name, x:size(3), e))
  end
end

-- A mask as an additive float tensor (bool: true becomes -inf).
local function additive(mask, like)
  if mask:dtype() == "bool" then
    return ml.zeros(mask:shape(), { dtype = like:dtype() }):masked_fill(mask, -math.huge)
  end
  return mask
end

--- Applies the module to its input (called as module(x)).
function MHA:forward(query, key, value, opts)
  opts = Module.check_opts("MultiheadAttention.forward", opts, { key_padding_mask = true,
    attn_mask = true, need_weights = true, average_attn_weights = true })
  local e, h, hd = self.embed_dim, self.num_heads, self.head_dim
  check_input("query", query, e)
  check_input("key", key, e)
  check_input("value", value, e)
  if self.batch_first then
    query, key, value = query:transpose(1, 2), key:transpose(1, 2), value:transpose(1, 2)
  end
  local tgt, n, src = query:size(1), query:size(2), key:size(1)
  if key:size(2) ~= n or value:size(2) ~= n or value:size(1) ~= src then
    fail("query, key and value disagree on the batch or source length")
  end
  local w, b = self.in_proj_weight, self.in_proj_bias
  local q = F.linear(query, part(w, 1, e), part(b, 1, e))
  local k = F.linear(key, part(w, 2, e), part(b, 2, e))
  local v = F.linear(value, part(w, 3, e), part(b, 3, e))
  -- (L, N, E) -> (N*H, L, hd)
  q = q:contiguous():view(tgt, n * h, hd):transpose(1, 2)
  k = k:contiguous():view(src, n * h, hd):transpose(1, 2)
  v = v:contiguous():view(src, n * h, hd):transpose(1, 2)
  q = q / math.sqrt(hd)
  local scores = q:bmm(k:transpose(2, 3)) -- (N*H, L, S)
  if opts.attn_mask ~= nil then
    local m = additive(opts.attn_mask, scores)
    if m:dim() == 2 and (m:size(1) ~= tgt or m:size(2) ~= src) then
      fail(string.format("attn_mask must be %d x %d", tgt, src))
    end
    scores = scores + m
  end
  if opts.key_padding_mask ~= nil then
    local kpm = opts.key_padding_mask
    if kpm:dim() ~= 2 or kpm:size(1) ~= n or kpm:size(2) ~= src then
      fail(string.format("key_padding_mask must be %d x %d (batch x source)", n, src))
    end
    local m = additive(kpm, scores):view(n, 1, 1, src)
    scores = (scores:view(n, h, tgt, src) + m):view(n * h, tgt, src)
  end
  local attn = scores:softmax(-1)
  if self.dropout > 0 and self.training then
    attn = F.dropout(attn, self.dropout, true)
  end
  local out = attn:bmm(v) -- (N*H, L, hd)
  out = out:transpose(1, 2):contiguous():view(tgt * n, e)
  out = self.out_proj(out):view(tgt, n, e)
  if self.batch_first then
    out = out:transpose(1, 2)
  end
  if opts.need_weights == false then
    return out, nil
  end
  local weights = attn:view(n, h, tgt, src)
  if opts.average_attn_weights ~= false then
    weights = weights:mean(2)
  end
  return out, weights
end

--- The settings shown by tostring.
function MHA:extra_repr()
  return string.format("embed_dim=%d, num_heads=%d", self.embed_dim, self.num_heads)
end

return MHA
