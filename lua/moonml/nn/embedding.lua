--- nn.Embedding(num_embeddings, embedding_dim[, {padding_idx =}]): a lookup table.
-- Ids are 1-based (int64 tensors, or float tensors of whole numbers); the output has the
-- ids' shape plus embedding_dim. weight (num x dim) starts N(0, 1) as in PyTorch. With
-- padding_idx, positions holding that id give zeros and send no gradient to its row.
-- @classmod moonml.nn.Embedding
local ml = require("moonml")
local Module = require("moonml.nn.module")
local init = require("moonml.nn.initializers")

local Embedding = Module:extend("Embedding")

local function fail(msg)
  error("moonml.nn.Embedding: " .. msg, 0)
end

--- Creates the module; the arguments are described at the top of this file.
function Embedding.new(num_embeddings, embedding_dim, opts)
  for _, v in ipairs({ { num_embeddings, "num_embeddings" }, { embedding_dim, "embedding_dim" } }) do
    if math.type(v[1]) ~= "integer" or v[1] < 1 then
      fail(v[2] .. " must be a positive integer, got " .. tostring(v[1]))
    end
  end
  opts = Module.check_opts("Embedding", opts, { padding_idx = true, dtype = true })
  local self = Module.init(Embedding)
  self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
  local pad = opts.padding_idx
  if pad ~= nil then
    if math.type(pad) ~= "integer" or pad == 0 or pad > num_embeddings or pad < -num_embeddings then
      fail("padding_idx must be an id in 1.." .. num_embeddings .. ", got " .. tostring(pad))
    end
    self.padding_idx = pad > 0 and pad or pad + num_embeddings + 1
  end
  local w = self:register_parameter("weight",
    ml.empty(num_embeddings, embedding_dim, { dtype = opts.dtype or "float32" }))
  init.normal_(w)
  if self.padding_idx then
    ml.no_grad(function()
      w[self.padding_idx] = 0
    end)
  end
  return self
end

--- Applies the module to its input (called as module(x)).
function Embedding:forward(ids)
  if not ml.is_tensor(ids) then
    fail("expected a tensor of ids, got " .. type(ids))
  end
  if ids:dtype() == "bool" then
    fail("ids must be int64 or whole numbers, got a bool tensor")
  end
  if ids:numel() > 0 then
    -- float ids must be whole (NaN and infinities are not): checked before the range,
    -- whose message prints them as integers
    if ids:dtype() ~= "int64" and (ids - ids:floor()):abs():max():item() ~= 0 then
      fail("ids must be whole numbers")
    end
    local lo, hi = ids:min():item(), ids:max():item()
    if lo < 1 or hi > self.num_embeddings then
      fail(string.format("id %d out of range 1..%d", lo < 1 and lo or hi, self.num_embeddings))
    end
  end
  local shape = ids:shape()
  shape[#shape + 1] = self.embedding_dim
  local out = self.weight:index_select(1, ids:reshape(-1)):view(shape)
  if self.padding_idx then
    out = out * ids:ne(self.padding_idx):unsqueeze(-1)
  end
  return out
end

--- The settings shown by tostring.
function Embedding:extra_repr()
  return string.format("%d, %d%s", self.num_embeddings, self.embedding_dim,
    self.padding_idx and (", padding_idx=" .. self.padding_idx) or "")
end

return Embedding
