--- Recurrent layers: nn.RNN, nn.LSTM and nn.GRU over whole sequences, and the one-step
-- cells nn.RNNCell, nn.LSTMCell and nn.GRUCell. Parameter names, shapes and gate order are
-- PyTorch's (`weight_ih_l0` is 4*hidden x input for LSTM with gates i, f, g, o stacked;
-- 3*hidden for GRU with r, z, n; `_reverse` for the backward direction), so state dicts
-- move between the two unchanged. Every parameter starts uniform in +-1/sqrt(hidden_size),
-- as in PyTorch. The whole network (all layers, both directions, every step) runs in C with
-- one autograd node (src/ops/rnn.c).
--
--   local lstm = nn.LSTM(64, 128, {num_layers = 2, batch_first = true})
--   local out, h_n, c_n = lstm(x)            -- or lstm(x, h0, c0), or lstm(x, {h0, c0})
--   local gru = nn.GRU(64, 128)
--   local out, h_n = gru(x[, h0])
--
-- x is (T, N, input_size), or (N, T, input_size) with batch_first, or (T, input_size)
-- unbatched. out is (T, N, D * hidden_size) (batch first with batch_first); h_n and c_n
-- are (num_layers * D, N, hidden_size), D being 2 when bidirectional. An LSTM returns
-- out, h_n, c_n as three values (PyTorch: out, (h_n, c_n)).
-- @module moonml.nn.rnn
local ml = require("moonml")
local Module = require("moonml.nn.module")
local init = require("moonml.nn.initializers")

local M = {}

local GATES = { lstm = 4, gru = 3, rnn_tanh = 1, rnn_relu = 1 }

local function fail(cls, fmt, ...)
  error(string.format("moonml.nn.%s: " .. fmt, cls, ...), 0)
end

local function check_size(cls, v, what)
  if math.type(v) ~= "integer" or v < 1 then
    fail(cls, "%s must be a positive integer, got %s", what, tostring(v))
  end
end

local function check_bool(cls, opts, key, default)
  local v = opts[key]
  if v == nil then
    return default
  end
  if type(v) ~= "boolean" then
    fail(cls, "%s must be a boolean, got %s", key, type(v))
  end
  return v
end

local function shape_str(s)
  return "{" .. table.concat(s, ", ") .. "}"
end

local function same_shape(a, b)
  return table.concat(a, ",") == table.concat(b, ",")
end

-- Registers weight_ih<sfx>, weight_hh<sfx>[, bias_ih<sfx>, bias_hh<sfx>]; returns their names.
local function add_weights(self, names, sfx, gh, in_size, opts)
  local k = 1 / math.sqrt(self.hidden_size)
  local dtype = { dtype = opts.dtype or "float32" }
  if dtype.dtype ~= "float32" and dtype.dtype ~= "float64" then
    fail(self.__name, "dtype must be \"float32\" or \"float64\", got %s", tostring(dtype.dtype))
  end
  local function add(name, t)
    self:register_parameter(name, init.uniform_(t, -k, k))
    names[#names + 1] = name
  end
  add("weight_ih" .. sfx, ml.empty(gh, in_size, dtype))
  add("weight_hh" .. sfx, ml.empty(gh, self.hidden_size, dtype))
  if self.bias then
    add("bias_ih" .. sfx, ml.empty(gh, dtype))
    add("bias_hh" .. sfx, ml.empty(gh, dtype))
  end
end

local function weights_of(self)
  local ws = {}
  for i, name in ipairs(self._weight_names) do
    ws[i] = self[name]
  end
  return ws
end

local function check_state(cls, what, s, want)
  if s == nil then
    return
  end
  if not ml.is_tensor(s) then
    fail(cls, "%s must be a tensor or nil, got %s", what, type(s))
  end
  if not same_shape(s:shape(), want) then
    fail(cls, "expected %s of shape %s, got %s", what, shape_str(want), shape_str(s:shape()))
  end
end

-- ------------------------------------------------------------------ sequence layers

local function new_layer(cls, mode, input_size, hidden_size, opts)
  local name = cls.__name
  check_size(name, input_size, "input_size")
  check_size(name, hidden_size, "hidden_size")
  local allowed = { num_layers = true, bias = true, batch_first = true, dropout = true,
    bidirectional = true, dtype = true }
  if name == "RNN" then
    allowed.nonlinearity = true
  end
  opts = Module.check_opts(name, opts, allowed)
  if mode == "rnn" then
    local nl = opts.nonlinearity or "tanh"
    if nl ~= "tanh" and nl ~= "relu" then
      fail(name, "nonlinearity must be \"tanh\" or \"relu\", got %s", tostring(nl))
    end
    mode = "rnn_" .. nl
  end
  local num_layers = opts.num_layers or 1
  check_size(name, num_layers, "num_layers")
  local dropout = opts.dropout or 0
  if type(dropout) ~= "number" or not (dropout >= 0 and dropout <= 1) then
    fail(name, "dropout must be a probability in [0, 1], got %s", tostring(dropout))
  end
  local self = Module.init(cls)
  self.mode = mode
  self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
  self.bias = check_bool(name, opts, "bias", true)
  self.batch_first = check_bool(name, opts, "batch_first", false)
  self.bidirectional = check_bool(name, opts, "bidirectional", false)
  self.dropout = dropout
  local dirs = self.bidirectional and 2 or 1
  self._weight_names = {}
  for l = 0, num_layers - 1 do
    local in_size = l == 0 and input_size or hidden_size * dirs
    for d = 0, dirs - 1 do
      add_weights(self, self._weight_names, "_l" .. l .. (d == 1 and "_reverse" or ""),
        GATES[mode] * hidden_size, in_size, opts)
    end
  end
  return self
end

-- Checks x and the states, runs ml.rnn; unbatched input gets a batch of one on the way.
local function run_layer(self, x, h0, c0)
  local name = self.__name
  if not ml.is_tensor(x) then
    fail(name, "expected a tensor input, got %s", type(x))
  end
  local nd = x:dim()
  if nd ~= 2 and nd ~= 3 then
    fail(name, "expected a 3-D input (%s, features) or a 2-D unbatched one, got %d-D",
      self.batch_first and "batch, sequence" or "sequence, batch", nd)
  end
  if x:size(-1) ~= self.input_size then
    fail(name, "input has %d features in its last dimension, the layer expects %d", x:size(-1),
      self.input_size)
  end
  local batched = nd == 3
  local bdim = self.batch_first and 1 or 2
  local ld = self.num_layers * (self.bidirectional and 2 or 1)
  local want = batched and { ld, x:size(bdim), self.hidden_size } or { ld, self.hidden_size }
  check_state(name, "h0", h0, want)
  check_state(name, "c0", c0, want)
  if not batched then
    x = x:unsqueeze(bdim)
    h0 = h0 and h0:unsqueeze(2)
    c0 = c0 and c0:unsqueeze(2)
  end
  local out, hn, cn = ml.rnn(self.mode, x, h0, c0, weights_of(self), {
    hidden_size = self.hidden_size, num_layers = self.num_layers, bias = self.bias,
    batch_first = self.batch_first, bidirectional = self.bidirectional, dropout = self.dropout,
    train = self.training, name = "nn." .. name })
  if not batched then
    out, hn = out:squeeze(bdim), hn:squeeze(2)
    cn = cn and cn:squeeze(2)
  end
  return out, hn, cn
end

local function layer_repr(self)
  local parts = { tostring(self.input_size), tostring(self.hidden_size) }
  if self.mode == "rnn_relu" then
    parts[#parts + 1] = "nonlinearity=relu"
  end
  if self.num_layers ~= 1 then
    parts[#parts + 1] = "num_layers=" .. self.num_layers
  end
  if not self.bias then
    parts[#parts + 1] = "bias=false"
  end
  if self.batch_first then
    parts[#parts + 1] = "batch_first=true"
  end
  if self.dropout ~= 0 then
    parts[#parts + 1] = "dropout=" .. tostring(self.dropout)
  end
  if self.bidirectional then
    parts[#parts + 1] = "bidirectional=true"
  end
  return table.concat(parts, ", ")
end

--- nn.RNN(input_size, hidden_size[, opts]): Elman RNN, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1}
-- + b_hh). opts: nonlinearity ("tanh" or "relu"), num_layers (1), bias (true), batch_first
-- (false), dropout (0: on the outputs of every layer but the last, in training mode),
-- bidirectional (false), dtype ("float32"; "float64" too). `rnn(x[, h0])` returns out, h_n.
local RNN = Module:extend("RNN")
--- Creates the module; the arguments are described at the top of this file.
function RNN.new(input_size, hidden_size, opts)
  return new_layer(RNN, "rnn", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function RNN:forward(x, h0)
  local out, hn = run_layer(self, x, h0)
  return out, hn
end
RNN.extra_repr = layer_repr
M.RNN = RNN

--- nn.LSTM(input_size, hidden_size[, opts]): options as nn.RNN but nonlinearity.
-- `lstm(x[, h0, c0])` (or `lstm(x, {h0, c0})`) returns out, h_n, c_n; h0 and c0 come
-- together or not at all (zeros).
local LSTM = Module:extend("LSTM")
--- Creates the module; the arguments are described at the top of this file.
function LSTM.new(input_size, hidden_size, opts)
  return new_layer(LSTM, "lstm", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function LSTM:forward(x, h0, c0)
  if type(h0) == "table" and not ml.is_tensor(h0) then
    h0, c0 = h0[1], h0[2]
  end
  if (h0 == nil) ~= (c0 == nil) then
    fail("LSTM", "h0 and c0 must be given together (or neither)")
  end
  return run_layer(self, x, h0, c0)
end
LSTM.extra_repr = layer_repr
M.LSTM = LSTM

--- nn.GRU(input_size, hidden_size[, opts]): options as nn.LSTM. `gru(x[, h0])` returns
-- out, h_n.
local GRU = Module:extend("GRU")
--- Creates the module; the arguments are described at the top of this file.
function GRU.new(input_size, hidden_size, opts)
  return new_layer(GRU, "gru", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function GRU:forward(x, h0)
  local out, hn = run_layer(self, x, h0)
  return out, hn
end
GRU.extra_repr = layer_repr
M.GRU = GRU

-- ------------------------------------------------------------------ cells

local function new_cell(cls, mode, input_size, hidden_size, opts)
  local name = cls.__name
  check_size(name, input_size, "input_size")
  check_size(name, hidden_size, "hidden_size")
  local allowed = { bias = true, dtype = true }
  if name == "RNNCell" then
    allowed.nonlinearity = true
  end
  opts = Module.check_opts(name, opts, allowed)
  if mode == "rnn" then
    local nl = opts.nonlinearity or "tanh"
    if nl ~= "tanh" and nl ~= "relu" then
      fail(name, "nonlinearity must be \"tanh\" or \"relu\", got %s", tostring(nl))
    end
    mode = "rnn_" .. nl
  end
  local self = Module.init(cls)
  self.mode = mode
  self.input_size, self.hidden_size = input_size, hidden_size
  self.bias = check_bool(name, opts, "bias", true)
  self._weight_names = {}
  add_weights(self, self._weight_names, "", GATES[mode] * hidden_size, input_size, opts)
  return self
end

-- One step: x (N, input) or (input); h, c (N, hidden) or (hidden), or nil for zeros.
local function run_cell(self, x, h, c)
  local name = self.__name
  if not ml.is_tensor(x) then
    fail(name, "expected a tensor input, got %s", type(x))
  end
  local nd = x:dim()
  if nd ~= 1 and nd ~= 2 then
    fail(name, "expected a 2-D input (batch, features) or a 1-D unbatched one, got %d-D", nd)
  end
  if x:size(-1) ~= self.input_size then
    fail(name, "input has %d features in its last dimension, the cell expects %d", x:size(-1),
      self.input_size)
  end
  local want = nd == 2 and { x:size(1), self.hidden_size } or { self.hidden_size }
  check_state(name, "h", h, want)
  check_state(name, "c", c, want)
  local function seq(t) -- a sequence of one step with a batch dim
    return t and (nd == 2 and t:unsqueeze(1) or t:view(1, 1, -1))
  end
  local _, hn, cn = ml.rnn(self.mode, seq(x), seq(h), seq(c), weights_of(self), {
    hidden_size = self.hidden_size, bias = self.bias, name = "nn." .. name })
  local shape = nd == 2 and { x:size(1), self.hidden_size } or { self.hidden_size }
  return hn:view(shape), cn and cn:view(shape)
end

local function cell_repr(self)
  local s = self.input_size .. ", " .. self.hidden_size
  if self.mode == "rnn_relu" then
    s = s .. ", nonlinearity=relu"
  end
  return self.bias and s or s .. ", bias=false"
end

--- nn.RNNCell(input_size, hidden_size[, {bias, nonlinearity, dtype}]): `cell(x[, h])`
-- returns h'. Parameters weight_ih, weight_hh, bias_ih, bias_hh.
local RNNCell = Module:extend("RNNCell")
--- Creates the module; the arguments are described at the top of this file.
function RNNCell.new(input_size, hidden_size, opts)
  return new_cell(RNNCell, "rnn", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function RNNCell:forward(x, h)
  return (run_cell(self, x, h))
end
RNNCell.extra_repr = cell_repr
M.RNNCell = RNNCell

--- nn.LSTMCell(input_size, hidden_size[, {bias, dtype}]): `cell(x[, h, c])` (or
-- `cell(x, {h, c})`) returns h', c'.
local LSTMCell = Module:extend("LSTMCell")
--- Creates the module; the arguments are described at the top of this file.
function LSTMCell.new(input_size, hidden_size, opts)
  return new_cell(LSTMCell, "lstm", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function LSTMCell:forward(x, h, c)
  if type(h) == "table" and not ml.is_tensor(h) then
    h, c = h[1], h[2]
  end
  if (h == nil) ~= (c == nil) then
    fail("LSTMCell", "h and c must be given together (or neither)")
  end
  return run_cell(self, x, h, c)
end
LSTMCell.extra_repr = cell_repr
M.LSTMCell = LSTMCell

--- nn.GRUCell(input_size, hidden_size[, {bias, dtype}]): `cell(x[, h])` returns h'.
local GRUCell = Module:extend("GRUCell")
--- Creates the module; the arguments are described at the top of this file.
function GRUCell.new(input_size, hidden_size, opts)
  return new_cell(GRUCell, "gru", input_size, hidden_size, opts)
end
--- Applies the module to its input (called as module(x)).
function GRUCell:forward(x, h)
  return (run_cell(self, x, h))
end
GRUCell.extra_repr = cell_repr
M.GRUCell = GRUCell

return M
