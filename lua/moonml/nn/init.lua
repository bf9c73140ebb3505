--- ml.nn: modules, layers, losses, initialisers and the functional forms.
-- @module moonml.nn
local nn = {}

nn.Module = require("moonml.nn.module")
nn.Sequential = require("moonml.nn.sequential")
nn.Linear = require("moonml.nn.linear")
nn.Embedding = require("moonml.nn.embedding")
nn.MultiheadAttention = require("moonml.nn.attention")
nn.functional = require("moonml.nn.functional")
nn.init = require("moonml.nn.initializers")

for _, group in ipairs({ "moonml.nn.activation", "moonml.nn.layers", "moonml.nn.loss",
  "moonml.nn.conv", "moonml.nn.pool", "moonml.nn.norm" }) do
  for name, cls in pairs(require(group)) do
    if type(cls) == "table" then
      nn[name] = cls
    end
  end
end
for name, cls in pairs(require("moonml.nn.rnn")) do nn[name] = cls end -- RNN LSTM GRU + cells

return nn
