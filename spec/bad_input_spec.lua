-- Bad input everywhere (DESIGN.md, "Errors"): every public function, called with wrong
-- types, nil, mismatched shapes, huge sizes and out-of-range indices, raises a Lua error
-- whose text starts with "moonml." and names the function; never a crash or a Lua
-- runtime error from inside moonml.
--
-- The functions come from walking the module (spec/support/public_api.lua), not from a
-- list kept by hand: a public function with no case below fails "add bad-input cases for
-- <name>". ALLOWED lists the few that legitimately accept anything.
--
-- Then: empty tensors, NaN and infinities give PyTorch's results in tensor math (spot
-- checks against closed forms and PyTorch 1.13's documented results), NaN and infinity
-- are errors where a value must be valid (sizes, indices, ratings, file contents), and
-- the inputs libFuzzer found (fuzz/README.md) stay fixed.
local ml = require("moonml")
local h = require("helpers")
local api = require("support.public_api")

local A = table.pack
local NAN, INF = 0 / 0, math.huge
local HUGE = 2 ^ 40 -- with a second 2^40 dimension, far past moonml's 64 TiB limit

-- Shared operands. None of them may be changed by a failed call (checked at the end).
local x = ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }) -- 2 x 3 float32
local xi = ml.tensor({ 1, 2, 3 }, "int64")
local xb = ml.tensor({ true, false })
local v3 = ml.tensor({ 1, 2, 3 })
local v4 = ml.ones(4)
local m44 = ml.ones(4, 4)
local leaf = ml.ones(3, { requires_grad = true })
local empty = ml.zeros(0)
local cube = ml.ones(2, 2, 2)

--- Cases: name -> list of argument packs (A(...)) or functions f(fn) that call fn.
local CASES = {}
local function cases(names, ...)
  for name in names:gmatch("%S+") do
    local list = CASES[name] or {}
    for _, c in ipairs({ ... }) do
      list[#list + 1] = c
    end
    CASES[name] = list
  end
end

-- Functions that take no arguments, or any value, and so have no bad input. Every
-- entry says why; keep this list short.
local ALLOWED = {
  is_tensor = "answers for any value",
  ["rec.is_ratings"] = "answers for any value",
  get_num_threads = "takes no arguments",
  is_grad_enabled = "takes no arguments",
  clock = "takes no arguments",
  memory_stats = "takes no arguments",
  ["nn.Module:children"] = "takes no arguments but self",
  ["nn.Module:modules"] = "takes no arguments but self",
  ["nn.Module:named_buffers"] = "takes no arguments but self",
  ["nn.Module:named_children"] = "takes no arguments but self",
  ["nn.Module:named_parameters"] = "takes no arguments but self",
  ["nn.Module:num_parameters"] = "takes no arguments but self",
  ["nn.Module:parameters"] = "takes no arguments but self",
  ["nn.Module:eval"] = "takes no arguments but self",
  ["nn.Module:zero_grad"] = "takes no arguments but self",
  ["nn.Module:extra_repr"] = "takes no arguments but self",
  ["nn.Dropout:extra_repr"] = "takes no arguments but self",
  ["nn.Embedding:extra_repr"] = "takes no arguments but self",
  ["nn.Flatten:extra_repr"] = "takes no arguments but self",
  ["nn.L1Loss:extra_repr"] = "takes no arguments but self",
  ["nn.Linear:extra_repr"] = "takes no arguments but self",
  ["nn.LogSoftmax:extra_repr"] = "takes no arguments but self",
  ["nn.MSELoss:extra_repr"] = "takes no arguments but self",
  ["nn.MultiheadAttention:extra_repr"] = "takes no arguments but self",
  ["nn.Softmax:extra_repr"] = "takes no arguments but self",
  ["nn.Sequential:len"] = "takes no arguments but self",
  ["nn.Identity:forward"] = "returns its argument, whatever it is (as PyTorch)",
  ["nn.Identity"] = "takes no arguments",
  ["nn.ReLU"] = "takes no arguments",
  ["nn.Sigmoid"] = "takes no arguments",
  ["nn.Tanh"] = "takes no arguments",
  ["optim.Optimizer:zero_grad"] = "takes no arguments but self",
  ["optim.Optimizer:state_dict"] = "takes no arguments but self",
  ["optim.CosineAnnealingLR:get_last_lr"] = "takes no arguments but self",
  ["optim.CosineAnnealingLR:state_dict"] = "takes no arguments but self",
  ["optim.ExponentialLR:get_last_lr"] = "takes no arguments but self",
  ["optim.ExponentialLR:state_dict"] = "takes no arguments but self",
  ["optim.ReduceLROnPlateau:get_last_lr"] = "takes no arguments but self",
  ["optim.ReduceLROnPlateau:state_dict"] = "takes no arguments but self",
  ["optim.StepLR:get_last_lr"] = "takes no arguments but self",
  ["optim.StepLR:state_dict"] = "takes no arguments but self",
  ["rec.Algo:clone"] = "takes no arguments but self",
  ["rec.RatingSet:global_mean"] = "takes no arguments but self",
  ["rec.RatingSet:has_timestamps"] = "takes no arguments but self",
  ["rec.RatingSet:items"] = "takes no arguments but self",
  ["rec.RatingSet:users"] = "takes no arguments but self",
  ["rec.RatingSet:n_items"] = "takes no arguments but self",
  ["rec.RatingSet:n_users"] = "takes no arguments but self",
  ["rec.RatingSet:ratings"] = "takes no arguments but self",
  ["rec.RatingSet:size"] = "takes no arguments but self",
  ["rec.RatingSet:leave_last_out"] = "takes no arguments but self",
  ["rec.RatingSet:knows_item"] = "answers for any value (false for what is not an id)",
  ["rec.RatingSet:knows_user"] = "answers for any value (false for what is not an id)",
  ["rec.RatingSet:inner_item"] = "answers for any value (nil for what is not an id)",
  ["rec.RatingSet:inner_user"] = "answers for any value (nil for what is not an id)",
  ["rec.RatingSet:raw_item"] = "answers for any value (nil for what is not an inner id)",
  ["rec.RatingSet:raw_user"] = "answers for any value (nil for what is not an inner id)",
  ["rec.RatingSet:user_ratings"] = "answers for any value (empty lists for an unknown user)",
  ["optim.SGD:check"] = "a hook Optimizer.init calls with the group it built (see optim.SGD's cases)",
  ["optim.Adam:check"] = "a hook Optimizer.init calls with the group it built (see optim.Adam's cases)",
  ["optim.RMSprop:check"] = "a hook Optimizer.init calls with the group it built (see optim.RMSprop's cases)",
  ["optim.Adagrad:check"] = "a hook Optimizer.init calls with the group it built (see optim.Adagrad's cases)",
  ["rec.base.fail"] = "raises the error it is given, by design",
  ["rec.base.mf_estimate_many"] = "a building block of fitted factor models, called by Algo with checked ids",
  ["rec.base.mf_scores"] = "a building block of fitted factor models, called by Algo with checked ids",
  ["rec.base.mf_similar"] = "a building block of fitted factor models, called by Algo with checked ids",
  ["rec.base.top_n"] = "a helper of recommend, called with checked arguments",
  ["nn.AdaptiveAvgPool2d:extra_repr"] = "takes no arguments but self",
  ["nn.AvgPool2d:extra_repr"] = "takes no arguments but self",
  ["nn.BCELoss:extra_repr"] = "takes no arguments but self",
  ["nn.BCEWithLogitsLoss:extra_repr"] = "takes no arguments but self",
  ["nn.BatchNorm1d:extra_repr"] = "takes no arguments but self",
  ["nn.BatchNorm2d:extra_repr"] = "takes no arguments but self",
  ["nn.Conv2d:extra_repr"] = "takes no arguments but self",
  ["nn.CrossEntropyLoss:extra_repr"] = "takes no arguments but self",
  ["nn.ELU:extra_repr"] = "takes no arguments but self",
  ["nn.GRU:extra_repr"] = "takes no arguments but self",
  ["nn.GRUCell:extra_repr"] = "takes no arguments but self",
  ["nn.HingeEmbeddingLoss:extra_repr"] = "takes no arguments but self",
  ["nn.KLDivLoss:extra_repr"] = "takes no arguments but self",
  ["nn.LayerNorm:extra_repr"] = "takes no arguments but self",
  ["nn.LeakyReLU:extra_repr"] = "takes no arguments but self",
  ["nn.MaxPool2d:extra_repr"] = "takes no arguments but self",
  ["nn.MultiMarginLoss:extra_repr"] = "takes no arguments but self",
  ["nn.NLLLoss:extra_repr"] = "takes no arguments but self",
  ["optim.SGD:step_group"] = "called by Optimizer:step with the groups the constructor checked",
  ["optim.Adam:step_group"] = "called by Optimizer:step with the groups the constructor checked",
  ["optim.AdamW:step_group"] = "called by Optimizer:step with the groups the constructor checked",
  ["optim.RMSprop:step_group"] = "called by Optimizer:step with the groups the constructor checked",
  ["optim.Adagrad:step_group"] = "called by Optimizer:step with the groups the constructor checked",
  ["rec.base.best_items"] = "a helper of recommend, called with checked arguments",
  ["rec.base.persist"] = "declares a class's saved state when the package loads; called by the package",
}


------------------------------------------------------------------ tensor functions

local NOT_TENSOR = { A(nil), A("x"), A({ 1, 2 }), A(true) }

-- a tensor, nothing else
cases("abs neg relu sigmoid tanh exp log sqrt rsqrt sin cos sign floor ceil round clone "
  .. "contiguous detach float double long bool numel dim dtype is_contiguous storage_id "
  .. "totable shape to_bytes item t nonzero masked_select unique argmax argmin sum mean prod "
  .. "max min var std norm logsumexp softmax log_softmax flatten squeeze stride size "
  .. "requires_grad_ zero_ relu_ sigmoid_ tanh_ exp_ log_ sqrt_ rsqrt_ sin_ cos_ sign_ floor_ "
  .. "ceil_ round_ abs_ neg_ normal_ uniform_ bernoulli bernoulli_ sort topk cumsum cumprod "
  .. "multinomial", table.unpack(NOT_TENSOR))

-- in-place ops refuse a leaf that requires grad
cases("zero_ relu_ sigmoid_ tanh_ exp_ log_ sqrt_ rsqrt_ sin_ cos_ sign_ floor_ ceil_ round_ "
  .. "abs_ neg_ normal_ uniform_ bernoulli_", A(leaf))
-- results that int64 cannot hold
cases("sqrt_ rsqrt_ sin_ cos_ exp_ log_ sigmoid_ tanh_", A(xi))
cases("floor ceil round floor_ ceil_ round_", A(xb))
cases("floor round ceil sin", A(x, 2)) -- x:round(2) is not rounding to 2 decimals

-- dims out of range or of the wrong type
local BAD_DIM = { A(x, 3), A(x, -3), A(x, 0), A(x, "a"), A(x, 1.5), A(x, NAN) }
cases("sum mean prod max min argmax argmin var std logsumexp softmax log_softmax cumsum "
  .. "cumprod squeeze sort", table.unpack(BAD_DIM))
cases("cumsum cumprod", A(x)) -- the dim is required
cases("norm", A(x, "nuc"), A(x, 2, 3), A(x, 2, "a"))
cases("var std", A(x, 1, false, { correction = "a" }), A(x, 1, false, { bogus = 1 }))
cases("size stride", A(x, 3), A(x, 0), A(x, "a"))
cases("flatten", A(x, 3), A(x, 2, 1), A(x, 1, 5))
cases("item", A(x), A(empty))
cases("t", A(cube))
cases("topk", A(x, 4), A(x, -1), A(x, "a"), A(x, 1, 3), A(x, 1, 1, { bogus = true }))
cases("sort", A(x, 1, { bogus = true }))
cases("unique", A(x, { bogus = true }), A(x, 5))
cases("nonzero", A(x, { bogus = true }))
cases("multinomial", A(ml.tensor({ -1, 1 }), 1), A(ml.tensor({ 0, 0 }), 1), A(v3, 5),
  A(v3, -1), A(ml.tensor({ NAN, 1 }), 1), A(ml.tensor({ INF, 1 }), 1), A(cube, 1))
cases("bernoulli", A(ml.tensor({ 2 })), A(ml.tensor({ -0.5 })), A(ml.tensor({ NAN })))
cases("bernoulli_", A(x, 1.5), A(x, -1), A(x, NAN), A(x, "a"))
cases("normal_", A(x, 0, -1), A(x, "a"), A(x, 0, NAN), A(xi))
cases("uniform_", A(x, "a"), A(x, 0, INF), A(x, 0, NAN), A(xb))
cases("requires_grad_", A(xi), A(x, "yes"))

-- two operands
local BINARY = { A(x, v4), A(x, m44), A(x, "a"), A(nil, x), A(x, {}), A(x, nil), A(x, true) }
cases("add sub mul div pow maximum minimum eq ne lt le gt ge add_ sub_ mul_ div_ pow_ "
  .. "maximum_ minimum_ lerp lerp_ copy_ allclose dot mv mm matmul bmm view_as expand_as",
  table.unpack(BINARY))
cases("add sub", A(x, x, { alpha = "a" }), A(x, x, { bogus = 1 }))
cases("add_ sub_ mul_ div_ pow_ maximum_ minimum_ lerp_ copy_", A(leaf, v3))
cases("add_ mul_", A(xi, 1.5), A(v3, x)) -- float into int64; broadcast that grows self
cases("allclose", A(x, x, { rtol = "a" }), A(x, x, { bogus = 1 }))
cases("lerp lerp_", A(x, x, "a"), A(x, x, v4))
cases("dot", A(v3, v4), A(x, x))
cases("mv", A(x, v4), A(v3, v3))
cases("mm", A(x, x), A(v3, v3))
cases("matmul", A(x, x), A(empty, x))
cases("bmm", A(cube, x), A(cube, ml.ones(3, 2, 2)))
cases("addmm", A(x, x, x), A(nil, x, x), A(x, "a", x), A(ml.ones(2, 2), x, ml.ones(2, 2)),
  A(ml.ones(2, 2), x, ml.ones(3, 2), { beta = "a" }), A(ml.ones(2, 2), x, ml.ones(3, 2), { bogus = 1 }))
cases("clamp clamp_", A(x, "a"), A(x, nil, "b"), A(x, { min = "a" }), A(nil, 0, 1),
  A(x, { bogus = 1 }))
cases("clamp_", A(leaf, 0, 1))
cases("where", A(xb, x, x), A(x, x, x), A(nil, x, x), A(ml.tensor({ true, false, true }), v3, "a"))
cases("methods.where", A(x, xb, x), A(x, x, x), A(x, nil, x), A(v3, ml.tensor({ true, false, true }), {}))
cases("fill_", A(x, "a"), A(x, {}), A(leaf, 1), A(xi, NAN), A(xi, INF), A(xb, "x"))
cases("masked_fill masked_fill_", A(x, x, 1), A(x, xb, 1), A(x, ml.ones(2, 3, { dtype = "bool" }), "a"),
  A(nil, xb, 1))
cases("masked_select", A(x, x), A(x, xb))

-- creation: sizes must be non-negative whole numbers, not too large, and options known
local BAD_SIZE = { A(-1), A("a"), A(HUGE, HUGE), A(NAN), A(INF), A(1.5), A({ 2, "a" }), A({ 2, -1 }),
  A(2, { dtype = "int8" }), A(2, { bogus = 1 }), A({ dtype = "int64" }), A(nil), A(1, 2, 3, 4, 5, 6, 7, 8, 9) }
cases("zeros ones empty rand randn", table.unpack(BAD_SIZE))
cases("full", A({ 2 }, "a"), A({ -1 }, 1), A({ HUGE, HUGE }, 1), A(2, 1), A({ 2 }), A({ 2 }, 1, { bogus = 1 }),
  A({ 2 }, NAN, { dtype = "int64" }), A({ 2 }, INF, { dtype = "int64" }))
cases("arange", A("a"), A(1, 10, 0), A(1, NAN), A(1, INF), A(1, 2 ^ 60),
  A(1, 3, 1, { bogus = 1 }), A())
cases("linspace", A(0, 1, -1), A(0, 1, "a"), A(0, 1, HUGE * HUGE), A(0, 1))
cases("eye", A(-1), A("a"), A(HUGE, HUGE), A(2, -1), A(NAN))
cases("tensor", A(nil), A("a"), A({ 1, "a" }), A({ { 1, 2 }, { 3 } }), A({ { 1 }, 2 }),
  A({ 1, 2 }, "int8"), A({ 1, 2 }, { bogus = 1 }), A({ NAN }, "int64"), A({ 2 ^ 70 }, "int64"))
cases("randint", A(1, 0, { 2 }), A("a", { 2 }), A(1, 5, { -1 }), A(1, 5), A(1, NAN, { 2 }),
  A(5, { 2 }, { dtype = "bool" }))
cases("randperm", A(-1), A("a"), A(NAN), A(HUGE * HUGE), A(3, { dtype = "bool" }), A(3, { bogus = 1 }))
cases("zeros_like ones_like empty_like rand_like randn_like", A(nil), A("x"), A(x, { dtype = "bad" }),
  A(x, { bogus = 1 }), A(x, "int8"))
cases("rand_like randn_like", A(xi, { dtype = "int64" }))
cases("full_like", A(x, "a"), A(nil, 1), A(x), A(x, 1, { dtype = "bad" }), A(xi, NAN))
cases("randint_like", A(x, 1, 0), A(x, "a"), A(nil, 5), A(x), A(x, 1, NAN))
cases("manual_seed", A("a"), A(nil), A(1.5), A(NAN))
cases("set_num_threads", A(0), A(-1), A(65), A("a"), A(nil), A(1.5))
cases("set_grad_enabled", A("yes"), A(nil), A(1))
cases("no_grad enable_grad", A(nil), A(5), A("f"))
cases("gradcheck", A(nil, { x }), A(function(a)
  return a
end, { x }), A(function(a)
  return a
end, "x"), A(function()
  return 1
end, { ml.ones(1, { dtype = "float64", requires_grad = true }) }), A(function(a)
  return a
end, { ml.ones(1, { dtype = "float64", requires_grad = true }) }, { bogus = 1 }))
cases("backward", A(x), A(nil), A(ml.ones(2, { requires_grad = true }) * 2),
  A((leaf * 2):sum(), "a"), A((leaf * 2):sum(), ml.ones(2)), A((leaf * 2):sum(), nil, { bogus = 1 }))

-- shapes
cases("view reshape", A(x, 4), A(x, -1, -1), A(x, "a"), A(x, -2, 3), A(x, { 7 }), A(nil, 6),
  A(x, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6))
cases("expand", A(x, 3, 3), A(x, "a"), A(x, 3), A(x, -2, 3), A(nil, 2, 3))
cases("permute", A(x, 1), A(x, 1, 1), A(x, 1, 3), A(x, "a", 1), A(nil, 1, 2))
cases("transpose", A(x, 1, 3), A(x, 0, 1), A(x, "a", 1), A(x, 1), A(nil, 1, 2))
cases("unsqueeze", A(x, 4), A(x, -4), A(x, 0), A(x, "a"), A(x), A(nil, 1))
cases("narrow", A(x, 1, 2, 5), A(x, 3, 1, 1), A(x, 1, 0, 1), A(x, 1, 1, -1), A(x, 1, "a", 1),
  A(x, 1, 1), A(nil, 1, 1, 1))
cases("slice", A(x, 1, 1, 5), A(x, 3, 1, 1), A(x, 1, 0, 1), A(x, 1, 1, 2, 0), A(x, 1, 1, 2, -1),
  A(x, 1, "a", 1), A(nil, 1, 1, 1))
cases("select", A(x, 1, 3), A(x, 1, 0), A(x, 1, -3), A(x, 3, 1), A(x, 1, "a"), A(x, 1), A(nil, 1, 1))
cases("split", A(x, 0), A(x, -1), A(x, "a"), A(x, { 1, 3 }), A(x, { 1, -1, 2 }), A(x, 1, 3), A(nil, 1))
cases("chunk", A(x, 0), A(x, -1), A(x, "a"), A(x, 1, 3), A(nil, 1))
cases("tile", A(x, -1), A(x, "a"), A(x, HUGE, HUGE), A(nil, 2))
cases("repeat", A(x, 2), A(x, -1, 1), A(x, "a", 1), A(x, HUGE, HUGE), A(nil, 2, 2))
cases("flip", A(x, 3), A(x, 1, 1), A(x, "a"), A(nil, 1))
cases("cat", A({ x, v3 }), A({ x, xi }, 3), A({}), A({ x, "a" }), A(nil), A(x), A({ x, x }, 3),
  A({ x, ml.ones(2, 4) }, 1))
cases("stack", A({ x, v3 }), A({}), A({ x, "a" }), A(nil), A({ x, x }, 4), A(x))
cases("to", A(x), A(x, "int8"), A(x, 5), A(nil, "int64"))

-- elements and indices: out of range, NaN, wrong types
cases("get", A(x, 3, 1), A(x, 1, 4), A(x, 0, 1), A(x, 1), A(x, 1, 1, 1), A(x, NAN, 1), A(x, "a", 1),
  A(x, -3, 1), A(nil, 1, 1))
cases("set", A(x, 3, 1, 0), A(x, 1, 4, 0), A(x, 1, 1), A(x, 1, 1, "a"), A(x, NAN, 1, 0), A(xi, 1, NAN),
  A(xi, 1, INF), A(nil, 1, 1, 0))
cases("index_select", A(x, 1, ml.tensor({ 3 }, "int64")), A(x, 1, ml.tensor({ 0 }, "int64")),
  A(x, 1, ml.tensor({ 1.5 })), A(x, 1, ml.tensor({ NAN })), A(x, 1, { 1, "a" }), A(x, 3, { 1 }),
  A(x, 1, x), A(x, 1, "a"), A(nil, 1, { 1 }))
cases("gather", A(x, 2, ml.tensor({ { 4 }, { 1 } }, "int64")), A(x, 2, ml.tensor({ { 0 }, { 1 } }, "int64")),
  A(x, 2, ml.tensor({ { NAN }, { 1 } })), A(x, 3, ml.tensor({ { 1 } }, "int64")), A(x, 2, "a"),
  A(x, 2, ml.tensor({ 1 }, "int64")))
cases("scatter scatter_ scatter_add scatter_add_", A(x, 2, ml.tensor({ { 4 } }, "int64"), x),
  A(x, 2, ml.tensor({ { 0 } }, "int64"), x), A(x, 2, ml.tensor({ { NAN } }), x),
  A(x, 3, ml.tensor({ { 1 } }, "int64"), x), A(x, 2, ml.tensor({ { 1 } }, "int64"), "a"),
  A(nil, 2, ml.tensor({ { 1 } }, "int64"), x))
cases("scatter_ scatter_add_", A(leaf, 1, ml.tensor({ 1 }, "int64"), ml.ones(1)))
cases("from_bytes", A(nil, "float32"), A("abc", "float32"), A("abcd", "int8"), A("abcd", "float32", 2),
  A("abcd", "float32", HUGE, HUGE), A("abcd", "float32", -1), A(5, "float32"), A("abcd", nil))

-- files
cases("read_idx", A(nil), A(5), A("/nonexistent/file.idx"), A("spec/fixtures/rec_small.data"),
  A("spec/fixtures/rec_small.data", { dtype = "bool" }), A("x", { bogus = 1 }))

------------------------------------------------------------------ nn

local nn, optim, rec = ml.nn, ml.optim, ml.rec
local lin = nn.Linear(3, 2)
local seq = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
local emb = nn.Embedding(4, 2)
local mha = nn.MultiheadAttention(4, 2)
local function method(obj, ...)
  local packs = { ... }
  for i, p in ipairs(packs) do
    packs[i] = A(obj, table.unpack(p, 1, p.n))
  end
  return table.unpack(packs)
end

------------------------------------------------------------------ layers, files (added at merge)

do
  local img = ml.ones(1, 1, 4, 4)
  cases("conv2d conv_transpose2d max_pool2d avg_pool2d adaptive_avg_pool2d batch_norm layer_norm "
    .. "leaky_relu elu gelu softplus cross_entropy nll_loss mse_loss l1_loss binary_cross_entropy "
    .. "binary_cross_entropy_with_logits kl_div hinge_embedding_loss multi_margin_loss",
    A(nil), A("x"), A({ 1, 2 }), A(true))
  cases("conv2d", A(x, x), A(img, ml.ones(2, 3, 3, 3)))
  cases("max_pool2d avg_pool2d", A(img, 9), A(img, 2, { bogus = 1 }))
  cases("cross_entropy nll_loss", A(x, ml.tensor({ 1, 9 }, "int64")), A(x, ml.tensor({ 1 }, "int64")))
  cases("mse_loss l1_loss", A(x, v3), A(x, "a"))
  cases("rnn", A(nil), A("bogus", x))
  cases("linear", A(nil), A("x"), A(x, "w"), A(x, ml.ones(4, 4)), A(x, ml.ones(2, 3), ml.ones(5)))
  cases("methods.log", A(nil), A({ 1, 2 }), A(true))
  cases("save", A(nil, "p"), A({ x = 5 }, os.tmpname()), A({ x = v3 }, nil))
  cases("load", A(nil), A(5), A("/nonexistent/moonml.safetensors"))
  cases("rec.load_model", A(nil), A(5), A("/nonexistent/moonml.safetensors"))
  cases("rec.Algo:save", method(ml.rec.SVD(), A(os.tmpname())), method(ml.rec.SVD(), A(nil)))
  cases("rec.NeuMF", A({ factors = -1 }), A({ layers = "x" }), A("x"), A({ bogus = 1 }))
  cases("rec.ALS rec.BPR", A({ factors = -1 }), A("x"), A({ bogus = 1 }), A({ iterations = 1.5 }))
  cases("rec.ItemKNN", A({ similarity = "x" }), A({ K = 0 }), A("x"), A({ bogus = 1 }))
  cases("rec.Popular", A("x"), A({ bogus = 1 }), A({ values = "x" }))
  cases("rec.synthetic", A(nil), A("x"), A({ users = -1 }), A({ bogus = 1 }))
  local als = ml.rec.ALS()
  cases("rec.ALS:fit", method(als, A(nil)), method(als, A("x")))
  cases("rec.ALS:partial_fit_users rec.ALS:partial_fit_items", method(als, A(nil, nil)), method(als, A("x", 1)))
  cases("rec.ALS:recommend rec.ALS:recommend_new", method(als, A(1, 10)), method(als, A(nil, 10)))
  cases("rec.ALS:similar_items rec.ALS:similar_users", method(als, A(1, 10)), method(als, A(nil, 10)))
  cases("rec.Algo:recommend_new", method(ml.rec.SVD(), A(nil, 10)), method(ml.rec.SVD(), A({ [1] = 5 }, 10)))
  cases("rec.NeuMF:recommend", method(ml.rec.NeuMF(), A(1, 10)), method(ml.rec.NeuMF(), A(nil, 10)))

  cases("nn.Conv2d nn.ConvTranspose2d", A(0, 1, 3), A(1, 1, "3"), A(1, 1, 3, { bogus = 1 }))
  cases("nn.MaxPool2d nn.AvgPool2d", A(2, { bogus = 1 }), A(2, "x"))
  cases("nn.AdaptiveAvgPool2d", A("x"), A(0), A(nil))
  cases("nn.BatchNorm1d nn.BatchNorm2d", A(0), A("x"), A(3, { bogus = 1 }))
  cases("nn.LayerNorm", A(0), A("x"), A(3, { bogus = 1 }))
  cases("nn.LeakyReLU nn.ELU", A("x"), A({}))
  cases("nn.GELU", A({ bogus = 1 }), A("x"))
  cases("nn.BCELoss nn.BCEWithLogitsLoss nn.CrossEntropyLoss nn.NLLLoss nn.KLDivLoss "
    .. "nn.HingeEmbeddingLoss nn.MultiMarginLoss", A({ bogus = 1 }), A("mean"),
    A({ reduction = "max" }))
  cases("nn.RNN nn.LSTM nn.GRU nn.RNNCell nn.LSTMCell nn.GRUCell", A(0, 4), A(4, "x"), A(nil, 4))
  local function forward_cases(name, obj, ...)
    cases(name .. ":forward", method(obj, A("x"), A(nil), ...))
  end
  forward_cases("nn.Conv2d", nn.Conv2d(1, 2, 3), A(x))
  forward_cases("nn.ConvTranspose2d", nn.ConvTranspose2d(1, 2, 3), A(x))
  forward_cases("nn.MaxPool2d", nn.MaxPool2d(2))
  forward_cases("nn.AvgPool2d", nn.AvgPool2d(2))
  forward_cases("nn.AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d(1))
  forward_cases("nn.BatchNorm1d", nn.BatchNorm1d(3), A(ml.ones(2, 4)))
  forward_cases("nn.BatchNorm2d", nn.BatchNorm2d(3), A(x))
  forward_cases("nn.LayerNorm", nn.LayerNorm(4), A(x))
  forward_cases("nn.LeakyReLU", nn.LeakyReLU())
  forward_cases("nn.ELU", nn.ELU())
  forward_cases("nn.GELU", nn.GELU())
  forward_cases("nn.RNN", nn.RNN(4, 2), A(x))
  forward_cases("nn.LSTM", nn.LSTM(4, 2), A(x))
  forward_cases("nn.GRU", nn.GRU(4, 2), A(x))
  forward_cases("nn.RNNCell", nn.RNNCell(4, 2), A(x))
  forward_cases("nn.LSTMCell", nn.LSTMCell(4, 2), A(x))
  forward_cases("nn.GRUCell", nn.GRUCell(4, 2), A(x))
  for _, name in ipairs({ "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "KLDivLoss",
    "HingeEmbeddingLoss", "MultiMarginLoss" }) do
    cases("nn." .. name .. ":forward", method(nn[name](), A(x, "a"), A(nil, x), A("x", x)))
  end
end


cases("nn.Linear", A(0, 2), A(3, "a"), A(nil, 2), A(1.5, 2), A(3, 2, { bogus = 1 }), A(3, 2, "x"),
  A(3, 2, { dtype = "int8" }), A(HUGE, HUGE))
cases("nn.Linear:forward", method(lin, A(ml.ones(2, 4)), A("x"), A(nil), A(ml.ones(0))))
cases("nn.Embedding", A(0, 2), A(4, "a"), A(4, 2, { bogus = 1 }), A(4, 2, { padding_idx = 9 }))
cases("nn.Embedding:forward", method(emb, A(ml.tensor({ 5 }, "int64")), A(ml.tensor({ 0 }, "int64")),
  A(ml.tensor({ 1.5 })), A(ml.tensor({ NAN })), A("x"), A(nil)))
cases("nn.MultiheadAttention", A(4, 3), A(0, 1), A("a", 2), A(4, 2, { bogus = 1 }))
cases("nn.MultiheadAttention:forward", method(mha, A(ml.ones(2, 3)), A(ml.ones(2, 3, 5)),
  A("x"), A(ml.ones(2, 3, 4), ml.ones(2, 5, 4), ml.ones(2, 6, 4)),
  A(ml.ones(2, 3, 4), nil, nil, { bogus = 1 })))
cases("nn.Dropout", A(1.5), A(-0.1), A("a"), A(NAN))
cases("nn.Dropout:forward", method(nn.Dropout(0.5), A("x"), A(nil)))
cases("nn.Flatten", A("a"), A(1, "b"), A(1.5))
cases("nn.Flatten:forward", method(nn.Flatten(), A("x"), A(v3)))
cases("nn.Softmax nn.LogSoftmax", A("a"), A(1.5))
cases("nn.Softmax:forward", method(nn.Softmax(), A("x"), A(nil)))
cases("nn.LogSoftmax:forward", method(nn.LogSoftmax(3), A(x)))
cases("nn.ReLU:forward", method(nn.ReLU(), A("x"), A(nil)))
cases("nn.Sigmoid:forward", method(nn.Sigmoid(), A("x"), A(nil)))
cases("nn.Tanh:forward", method(nn.Tanh(), A("x"), A(nil)))
cases("nn.MSELoss nn.L1Loss", A({ reduction = "max" }), A({ bogus = 1 }), A("mean"))
cases("nn.MSELoss:forward", method(nn.MSELoss(), A(x, v3), A(x, "a"), A(nil, x)))
cases("nn.L1Loss:forward", method(nn.L1Loss(), A(x, v3), A(x, "a"), A(nil, x)))
cases("nn.Sequential", A("x"), A(nn.Linear(3, 2), 5), A({}))
cases("nn.Sequential:add", method(nn.Sequential(), A("x"), A(nil), A({})))
cases("nn.Sequential:forward", method(seq, A(v4), A("x"), A(nil)))
cases("nn.Module:forward", method(nn.Module.init(nn.Module), A(x)))
cases("nn.Module:add_module", method(nn.Module.init(nn.Module), A("a", "x"), A("a", nil), A(nil, lin)))
cases("nn.Module:register_parameter", method(nn.Module.init(nn.Module), A("w", "x"), A(nil, x),
  A("w", xi)))
cases("nn.Module:register_buffer", method(nn.Module.init(nn.Module), A("b", "x"), A(nil, x)))
cases("nn.Module:apply", method(nn.Module.init(nn.Module), A(nil), A("f")))
cases("nn.Module:train", method(nn.Module.init(nn.Module), A("yes"), A(1)))
cases("nn.Module:state_dict", method(lin, A({ to = "tf" }), A({ bogus = 1 }), A("x")))
cases("nn.Module:load_state_dict", method(lin, A(nil), A("x"), A({ weight = "x" }),
  A({ weight = ml.ones(3, 3), bias = ml.ones(2) }), A({ weight = ml.ones(2, 3) }),
  A({ weight = ml.ones(2, 3), bias = ml.ones(2), extra = ml.ones(1) }), A({}, { from = "tf" }),
  A({}, { bogus = 1 })))
cases("nn.Module:extend", A(nn.Module, nil), A(nn.Module, 5))
cases("nn.Module:init", A(nil), A("x"))
cases("nn.Module:check_opts", A("f", "x", {}), A("f", { bogus = 1 }, {}))
cases("nn.Module:shift_key", A(nil, 1), A("a.1", "x"))
cases("nn.functional.linear", A(x, "w"), A("x", lin.weight), A(x, lin.weight, "b"), A(v4, lin.weight),
  A(x, lin.weight, v4))
cases("nn.functional.softmax nn.functional.log_softmax", A("x"), A(x, 3), A(nil))
cases("nn.functional.dropout", A(x, 2), A(x, "a"), A("x", 0.5), A(nil, 0.5))
cases("nn.init.constant nn.init.normal nn.init.uniform nn.init.zeros nn.init.ones "
  .. "nn.init.xavier_uniform nn.init.xavier_normal nn.init.kaiming_uniform nn.init.kaiming_normal",
  A(nil), A("x"))
cases("nn.init.constant", A(x, "a"), A(x))
cases("nn.init.normal", A(x, 0, -1), A(x, "a"))
cases("nn.init.uniform", A(x, "a"), A(x, 0, NAN))
cases("nn.init.xavier_uniform nn.init.xavier_normal", A(v3), A(x, "a"))
cases("nn.init.kaiming_uniform nn.init.kaiming_normal", A(v3), A(x, { mode = "x" }), A(x, { bogus = 1 }),
  A(x, "a"), A(x, { nonlinearity = "nope" }))
cases("nn.init.calculate_fan_in_and_fan_out", A(v3), A("x"), A(nil))
cases("nn.init.calculate_gain", A("nope"), A(nil), A("leaky_relu", "a"))

------------------------------------------------------------------ optim

local p1 = ml.ones(2, { requires_grad = true })
local sgd = optim.SGD({ p1 }, { lr = 0.1 })
local BAD_OPTIM = { A(nil), A("x"), A({ "x" }), A({ leaf * 1 }), A({}), A({ p1 }, { lr = -1 }),
  A({ p1 }, { lr = "a" }), A({ p1 }, { bogus = 1 }), A({ p1 }, "x"), A({ { params = { p1 }, lr = "a" } }) }
cases("optim.SGD optim.Adam optim.AdamW optim.RMSprop optim.Adagrad", table.unpack(BAD_OPTIM))
cases("optim.SGD", A({ p1 }), A({ p1 }, { lr = 0.1, momentum = -1 }), A({ p1 }, { lr = 0.1, nesterov = true }))
cases("optim.Adam optim.AdamW", A({ p1 }, { betas = { 1, 0.9 } }), A({ p1 }, { betas = "a" }),
  A({ p1 }, { eps = -1 }))
cases("optim.RMSprop", A({ p1 }, { alpha = -1 }))
cases("optim.Adagrad", A({ p1 }, { lr_decay = -1 }))
local group = { lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false, maximize = false,
  betas = { 0.9, 0.999 }, eps = 1e-8, amsgrad = false, alpha = 0.99, centered = false, lr_decay = 0,
  initial_accumulator_value = 0 }
cases("optim.SGD:update optim.Adam:update optim.AdamW:update optim.RMSprop:update optim.Adagrad:update",
  A(sgd, group, ml.ones(2), ml.ones(3), {}), A(sgd, group, ml.ones(2), "g", {}),
  A(sgd, group, ml.ones(2, { dtype = "int64" }), ml.ones(2, { dtype = "int64" }), {}))
cases("optim.Optimizer:extend", A(nil, {}), A("X", "defaults"))
cases("optim.Optimizer:init", A(optim.SGD, nil, { lr = 1 }), A(optim.SGD, { "x" }, { lr = 1 }))
cases("optim.Optimizer:step", function(fn)
  local p = ml.ones(2, { requires_grad = true })
  local opt = optim.SGD({ p }, { lr = 0.1 })
  p.grad = ml.ones(3)
  return fn(opt)
end, function(fn)
  local p = ml.ones(2, { requires_grad = true })
  return fn(optim.SGD({ p }, { lr = 0.1 }), "not a function")
end, function(fn)
  local p = ml.ones(2, { requires_grad = true })
  p.grad = ml.ones(2, { dtype = "float64" })
  return fn(optim.SGD({ p }, { lr = 0.1 }))
end)
cases("optim.Optimizer:load_state_dict", method(sgd, A(nil), A("x"), A({ state = {} }),
  A({ state = {}, param_groups = {} }), A({ state = { [5] = {} }, param_groups = { { params = { 1 } } } })))
cases("optim.clip_grad_norm", A("x", 1), A({ p1 }, -1), A({ p1 }, "a"), A({ p1 }, 1, 0), A({ p1 }, 1, "a"),
  A({ "x" }, 1), A(nil, 1))
local BAD_SCHED = { A(nil), A("x"), A({}), A(sgd, "x"), A(sgd, { bogus = 1 }) }
cases("optim.StepLR", A(sgd), A(sgd, { step_size = 0 }), A(sgd, { step_size = "a" }), table.unpack(BAD_SCHED))
cases("optim.ExponentialLR", A(sgd), A(sgd, { gamma = "a" }), table.unpack(BAD_SCHED))
cases("optim.CosineAnnealingLR", A(sgd), A(sgd, { T_max = 0 }), A(sgd, { T_max = 5, eta_min = "a" }),
  table.unpack(BAD_SCHED))
cases("optim.ReduceLROnPlateau", A(sgd, { mode = "x" }), A(sgd, { factor = 2 }), A(sgd, { patience = "a" }),
  A(sgd, { threshold_mode = "x" }), A(nil), A("x"), A({}), A(sgd, "x"), A(sgd, { bogus = 1 }))
local function sched(cls, opts)
  return cls(optim.SGD({ ml.ones(1, { requires_grad = true }) }, { lr = 0.1 }), opts)
end
cases("optim.StepLR:step", method(sched(optim.StepLR, { step_size = 2 }), A("a"), A(-1), A(1.5)))
cases("optim.ExponentialLR:step", method(sched(optim.ExponentialLR, { gamma = 0.5 }), A("a"), A(-1)))
cases("optim.CosineAnnealingLR:step", method(sched(optim.CosineAnnealingLR, { T_max = 3 }), A("a")))
cases("optim.ReduceLROnPlateau:step", method(sched(optim.ReduceLROnPlateau), A(nil), A("a"), A(x)))
cases("optim.ReduceLROnPlateau:is_better", method(sched(optim.ReduceLROnPlateau), A(nil),
  A("a")))
for _, cls in ipairs({ "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau" }) do
  local opts = ({ StepLR = { step_size = 2 }, ExponentialLR = { gamma = 0.5 }, CosineAnnealingLR = { T_max = 3 } })[cls]
  cases("optim." .. cls .. ":load_state_dict", method(sched(optim[cls], opts), A(nil), A("x"),
    A({ last_epoch = "a" })))
end

------------------------------------------------------------------ data

local ds = ml.data.TensorDataset(ml.ones(4, 2), ml.ones(4))
cases("data.TensorDataset", A(), A("x"), A(ml.ones(4, 2), ml.ones(3)), A(ml.ones(4), nil, ml.ones(4)),
  A(ml.tensor(1)))
cases("data.TensorDataset:get", method(ds, A(0), A(5), A(-5), A("a"), A(nil), A(1.5), A(NAN)))
cases("data.loader", A(nil), A("x"), A(ds, { batch_size = 0 }), A(ds, { batch_size = "a" }),
  A(ds, { bogus = 1 }), A(ds, { seed = "a" }), A(ds, "x"), A(ds, { batch_size = NAN }),
  A(ds, { batch_size = INF }))
cases("data.fashion_mnist", A({ split = "val" }), A("x"), A({ dir = "/nonexistent" }), A({ bogus = 1 }))

------------------------------------------------------------------ rec

local rows = {}
for u = 1, 6 do
  for i = 1, 5 do
    if (u + i) % 3 ~= 0 then
      rows[#rows + 1] = { u, i, (u * i) % 5 + 1 }
    end
  end
end
local set = rec.from_table(rows)
local svd = rec.SVD({ n_factors = 2, n_epochs = 2, random_state = 1 }):fit(set)
local knn = rec.KNNBasic({ k = 2 }):fit(set)

cases("rec.load", A(nil), A(5), A("/nonexistent.data"), A("spec/fixtures/rec_small.data", { format = "x" }),
  A("spec/fixtures/rec_small.data", { bogus = 1 }), A("spec/fixtures/rec_small.data", { sep = "" }),
  A("spec/fixtures/rec_small.data", { scale = { 5, 1 } }), A("spec/fixtures/rec_small.data", "x"),
  A("spec/fixtures/rec_small.data", { format = "movielens-1m" }),
  A("spec/fixtures/rec_small.data", { format = "movielens-100k", scale = { 1, 2 } }))
cases("rec.load_many", A(nil), A({}), A({ "/nonexistent" }), A({ 5 }), A("x"))
cases("rec.from_table", A(nil), A("x"), A({ { 1, 2 } }), A({ { 1, 2, NAN } }), A({ { 1, 2, INF } }),
  A({ { 1, 2, "a" } }), A({ { {}, 2, 3 } }), A({ { 1, 2, 3 } }, { scale = { 4, 5 } }),
  A({ { 1, 2, 3 } }, { bogus = 1 }), A({ { 1, 2, 3, "t" } }))
cases("rec.from_tensors", A(nil, xi, v3), A(xi, ml.tensor({ 1, 2 }, "int64"), v3),
  A(xi, xi, ml.tensor({ 1, NAN, 3 })), A(xi, xi, ml.tensor({ 1, INF, 3 })), A(ml.tensor({ 1.5, 2, 3 }), xi, v3),
  A(xi, xi, v3, "t"), A(xi, xi, v3, nil, { bogus = 1 }), A("x", xi, v3))
cases("rec.folds_from_file", A(set, "/nonexistent"), A(nil, "spec/fixtures/rec_small.data"),
  A(set, "spec/fixtures/rec_small.data"), A(set, nil))
cases("rec.predefined_folds", A("/nonexistent"), A(nil), A(5), A("/nonexistent", "x"))
cases("rec.SVD rec.SVDpp rec.NMF rec.BaselineOnly rec.KNNBasic rec.KNNWithMeans rec.KNNWithZScore "
  .. "rec.KNNBaseline rec.SlopeOne rec.CoClustering rec.NormalPredictor", A("x"), A({ bogus = 1 }), A(5))
cases("rec.SVD rec.SVDpp rec.NMF", A({ n_factors = -1 }), A({ n_factors = 1.5 }), A({ n_epochs = "a" }),
  A({ lr_all = NAN }))
cases("rec.KNNBasic rec.KNNWithMeans rec.KNNWithZScore rec.KNNBaseline", A({ k = 0 }),
  A({ sim_options = { name = "nope" } }), A({ sim_options = "x" }), A({ min_k = -1 }))
cases("rec.CoClustering", A({ n_cltr_u = 0 }), A({ n_epochs = -1 }))
cases("rec.BaselineOnly", A({ bsl_options = "x" }), function(fn) -- as Surprise: checked by fit
  return fn({ bsl_options = { method = "nope" } }):fit(set)
end)
cases("rec.compute_baselines", A(nil), A("x"), A(set, { method = "nope" }), A(set, "x"))
cases("rec.Algo:fit", method(rec.SVD(), A(nil), A("x"), A(rec.from_table({})), A(set, "x")))
cases("rec.Algo:predict", method(svd, A(nil, 1), A(1, nil), A({}, 1), A(1, 1, "a")),
  A(rec.SVD(), 1, 1))
cases("rec.Algo:predict_batch", method(svd, A({ 1 }, { 1, 2 }), A("x", { 1 }), A(nil, nil),
  A(ml.ones(2, 2), ml.ones(2, 2)), A({ {} }, { 1 })))
cases("rec.Algo:test", method(svd, A(nil), A("x"), A({ { 1, 2, 3 } })))
cases("rec.Algo:recommend", method(svd, A(1, -1), A(1, 1.5), A(1, "a"), A(nil, 3), A(999, 3),
  A(1, 3, "x"), A(1, 3, { bogus = 1 }), A({}, 3)))
cases("rec.Algo:similar_items", method(svd, A(1, -1), A(nil, 3), A(999, 3), A(1, "a")),
  method(rec.SlopeOne():fit(set), A(1, 3)))
cases("rec.Algo:similar_users", method(knn, A(1, -1), A(nil, 3), A(999, 3), A(1, "a")))
cases("rec.rmse rec.mae rec.mse rec.fcp", A(nil, set), A(svd, nil), A(svd, "x"), A("x", set), A({}),
  A(rec.SVD(), set))
local RANK = { A(nil, set, 3), A(svd, nil, 3), A(svd, set, 0), A(svd, set, "a"), A(svd, set, 1.5),
  A(svd, set, 3, { bogus = 1 }), A("x", set, 3) }
cases("rec.precision_at_k rec.recall_at_k rec.ndcg_at_k rec.map_at_k rec.hit_rate rec.auc rec.coverage "
  .. "rec.ranking_metrics", table.unpack(RANK))
cases("rec.cross_validate", A(nil, set), A(rec.SVD, "x"), A(rec.SVD, set, { folds = 0 }),
  A(rec.SVD, set, { measures = { "nope" } }), A(rec.SVD, set, { bogus = 1 }), A("x", set))
cases("rec.grid_search", A(nil, {}, set), A(rec.SVD, "x", set), A(rec.SVD, { nope = { 1 } }, set),
  A(rec.SVD, { n_factors = {} }, set), A(rec.SVD, { n_factors = { 1 } }, "x"),
  A(rec.SVD, { n_factors = { 1 } }, set, { measure = "nope" }))
cases("rec.RatingSet:split", method(set, A({ test = 1000 }), A({ test = -0.1 }), A({ test = "a" }),
  A({ bogus = 1 }), A({ test = 0.2, seed = "a" }), A("x"), A({ test = NAN })))
cases("rec.RatingSet:folds", method(set, A(0), A(1), A(1000), A("a"), A(5, { seed = "a" }),
  A(5, { bogus = 1 })))
cases("rec.RatingSet:get", method(set, A(0), A(set:size() + 1), A("a"), A(nil), A(NAN)))
cases("rec.RatingSet:tensors", method(set, A("x"), A({ bogus = 1 })))
cases("rec.base.class", A(nil, {}), A("X", "spec"))

------------------------------------------------------------------ the walk

-- A failed call must raise "moonml.<something>: ..." where <something> names the
-- function: exactly its name for ml's own functions, and for the sub-packages a head that
-- contains the function's name or its class's name (moonml.nn.Linear: for nn.Linear's
-- forward, moonml.rec.SVD.predict: for rec.Algo:predict, moonml.dropout: for
-- nn.functional.dropout).
-- Loss modules whose forward is a functional op under PyTorch's other name.
local CLASS_OP = { bceloss = "binarycrossentropy", bcewithlogitsloss = "binarycrossentropywithlogits",
  crossentropyloss = "crossentropy", kldivloss = "kldiv" }

local function names_ok(name, err)
  local head = err:match("^moonml%.([%w_%.:]+): ")
  if not head then
    return false
  end
  if not name:find("[%.:]") then
    return head == name
  end
  local function norm(s) -- case and underscores aside: L1Loss's forward says moonml.l1_loss
    return s and s:lower():gsub("_", "")
  end
  local short = norm(name:match("[%.:]([%w_]+)$"))
  local class = norm(name:match("%.(%u[%w_]*)"))
  head = norm(head)
  if class ~= nil and CLASS_OP[class:lower()] == head then
    return true
  end
  return head:find(short, 1, true) ~= nil or (class ~= nil and head:find(class:lower(), 1, true) ~= nil)
    or (class == "algo" or class == "ratingset" or class == "optimizer" or class == "module")
end

local set_mt = getmetatable(set)
local LIST, BY_NAME = api.list({ ["rec.Algo"] = rec.base.Algo,
  ["rec.RatingSet"] = type(set_mt.__index) == "table" and set_mt.__index or set_mt })

describe("bad input #badinput", function()
  it("has cases for every public function (and none for functions that do not exist)", function()
    local missing = {}
    for _, e in ipairs(LIST) do
      if not CASES[e.name] and not ALLOWED[e.name] then
        missing[#missing + 1] = "add bad-input cases for " .. e.name
      end
    end
    for name in pairs(CASES) do
      if not BY_NAME[name] then
        missing[#missing + 1] = "cases for " .. name .. ", which is not a public function"
      end
    end
    for name in pairs(ALLOWED) do
      if not BY_NAME[name] then
        missing[#missing + 1] = "allowed " .. name .. ", which is not a public function"
      end
    end
    table.sort(missing)
    assert(#missing == 0, table.concat(missing, "\n"))
    assert(#LIST > 300, "the walk found only " .. #LIST .. " functions")
  end)

  it("raises a moonml.<name>: error for every bad call", function()
    local wrong = {}
    local calls = 0
    for _, e in ipairs(LIST) do
      for k, c in ipairs(CASES[e.name] or {}) do
        calls = calls + 1
        local ok, err
        if type(c) == "function" then
          ok, err = pcall(c, e.fn)
        else
          ok, err = pcall(e.fn, table.unpack(c, 1, c.n))
        end
        if ok then
          wrong[#wrong + 1] = string.format("%s, case %d: accepted", e.name, k)
        elseif not names_ok(e.name, tostring(err)) then
          wrong[#wrong + 1] = string.format("%s, case %d: %s", e.name, k, err)
        end
      end
    end
    assert(#wrong == 0, #wrong .. " of " .. calls .. " bad calls:\n" .. table.concat(wrong, "\n"))
  end)

  it("leaves the operands of failed calls as they were", function()
    h.assert_close(x, { { 1, 2, 3 }, { 4, 5, 6 } })
    h.assert_close(v3, { 1, 2, 3 })
    h.assert_close(leaf, { 1, 1, 1 })
    assert.is_nil(leaf.grad)
    h.assert_close(xi, ml.tensor({ 1, 2, 3 }, "int64"), { dtype = "int64" })
    h.assert_close(p1, { 1, 1 })
    assert.are.equal(0.1, sgd.param_groups[1].lr)
  end)
end)

-- The metamethods are not in the walk (they are not called by name): their cases here.
describe("operators and indexing with bad operands", function()
  it("raise moonml.<op>: errors", function()
    local v = ml.ones(3)
    local cases_ops = {
      { "moonml.add:", function() return x + "a" end },
      { "moonml.add:", function() return x + {} end },
      { "moonml.mul:", function() return "a" * x end },
      { "moonml.add:", function() return x + v4 end },
      { "moonml.pow:", function() return x ^ "a" end },
      { "moonml.neg:", function() return -xb end },
      { "moonml.index:", function() return x[3] end },
      { "moonml.index:", function() return x[0] end },
      { "moonml.index:", function() return x[-3] end },
      { "moonml.index:", function() return x[1.5] end },
      { "moonml.index:", function() return x[NAN] end },
      { "moonml.index:", function() return x[true] end },
      { "moonml.index:", function() return x[{ 1, 2 }] end },
      { "moonml.index:", function() return x[ml.tensor({ 3 }, "int64")] end },
      { "moonml.newindex:", function() v[4] = 1 end },
      { "moonml.newindex:", function() v[1] = "a" end },
      { "moonml.newindex:", function() x[1] = v4 end },
      { "moonml.newindex:", function() x[NAN] = 1 end },
      { "moonml.newindex:", function() xi[1] = NAN end },
      { "moonml.newindex:", function() x.foo = 1 end },
      { "moonml.requires_grad:", function() x.requires_grad = "yes" end },
      { "moonml.grad:", function() leaf.grad = "g" end },
      { "moonml.grad:", function() leaf.grad = ml.ones(4) end },
      { "moonml.__len:", function() return #ml.tensor(3) end },
    }
    for k, c in ipairs(cases_ops) do
      local ok, err = pcall(c[2])
      assert(not ok, "case " .. k .. " was accepted")
      assert(tostring(err):sub(1, #c[1]) == c[1], "case " .. k .. ": " .. tostring(err))
    end
    h.assert_close(v, { 1, 1, 1 })
    h.assert_close(x, { { 1, 2, 3 }, { 4, 5, 6 } })
    h.assert_close(xi, ml.tensor({ 1, 2, 3 }, "int64"))
    assert.is_nil(leaf.grad)
  end)
end)

------------------------------------------------------------------ IEEE values and empty tensors

-- PyTorch 1.13's results (checked with torch on this machine when written), or closed
-- forms: moonml follows IEEE as PyTorch does (DESIGN.md, "Errors").
describe("empty tensors, NaN and infinities give PyTorch's results", function()
  local e, e20 = ml.zeros(0), ml.zeros(2, 0)

  it("in reductions of empty tensors", function()
    h.assert_close(e:sum(), 0)
    h.assert_close(e:mean(), NAN)
    h.assert_close(e:prod(), 1)
    h.assert_close(e:var(), NAN)
    h.assert_close(e:norm(), 0)
    h.assert_close(e:logsumexp(1), -INF)
    h.assert_close(e20:sum(2), { 0, 0 })
    h.assert_close(e20:mean(2), { NAN, NAN })
    h.assert_close(e20:prod(2), { 1, 1 })
    h.assert_close(ml.tensor({ 3 }):std(), NAN) -- one sample, correction 1
    -- no identity for max/argmax: PyTorch raises, and so does moonml
    h.assert_error("moonml.max:", "empty", ml.max, e)
    h.assert_error("moonml.argmax:", "empty", ml.argmax, e)
    h.assert_error("moonml.max:", "size 0", ml.max, e20, 2)
  end)

  it("in the other ops on empty tensors", function()
    h.assert_close(ml.zeros(2, 0):matmul(ml.zeros(0, 3)), ml.zeros(2, 3))
    h.assert_close(e:dot(e), 0)
    h.assert_close(e:cumsum(1), {})
    h.assert_close(e:softmax(1), {})
    local v, i = e:sort()
    assert.are.same({ { 0 }, { 0 }, "int64" }, { v:shape(), i:shape(), i:dtype() })
    v, i = e:topk(0)
    assert.are.same({ { 0 }, { 0 } }, { v:shape(), i:shape() })
    h.assert_close(e:unique(), {})
    h.assert_close(ml.cat({ e, ml.tensor({ 1 }) }), { 1 })
    h.assert_close(e + 1, {})
    h.assert_close(e20:t(), ml.zeros(0, 2))
  end)

  it("with NaN", function()
    local xn = ml.tensor({ 1, NAN, 3 })
    h.assert_close(xn:max(), NAN) -- NaN propagates through max and min
    h.assert_close(xn:min(), NAN)
    assert.are.equal(2, xn:argmax():item()) -- the NaN's position, 1-based
    h.assert_close(xn:sum(), NAN)
    local v, i = xn:sort()
    h.assert_close(v, { 1, 3, NAN }) -- NaN sorts last ascending ...
    h.assert_close(i, ml.tensor({ 1, 3, 2 }, "int64"))
    v = xn:sort(1, { descending = true })
    h.assert_close(v, { NAN, 3, 1 }) -- ... and first descending
    v, i = xn:topk(1)
    h.assert_close(v, { NAN })
    assert.are.equal(2, i[1])
    h.assert_close(ml.maximum(xn, ml.full({ 3 }, 2)), { 2, NAN, 3 })
    h.assert_close(xn:clamp(0, 2), { 1, NAN, 2 })
    h.assert_close(xn:relu(), { 1, NAN, 3 })
    h.assert_close(ml.tensor({ NAN, -0.0, 2 }):sign(), { 0, 0, 1 })
    assert.is_false(xn:allclose(xn))
    assert.is_true(xn:allclose(xn, { equal_nan = true }))
    h.assert_close(xn:eq(xn), { true, false, true })
    h.assert_close(ml.tensor({ { NAN, 0 } }):matmul(ml.tensor({ { 0 }, { 1 } })), { { NAN } })
    h.assert_close(ml.tensor({ NAN, 1 }):norm(INF), NAN)
    -- float -> int64 of NaN is INT64_MIN in PyTorch (x86's conversion); no UB here
    assert.are.equal(math.mininteger, xn:long()[2])
  end)

  it("with infinities", function()
    h.assert_close(ml.tensor({ -INF, INF }):sigmoid(), { 0, 1 })
    h.assert_close(ml.tensor({ -INF, INF }):tanh(), { -1, 1 })
    h.assert_close(ml.tensor({ -INF, INF, NAN }):exp(), { 0, INF, NAN })
    h.assert_close(ml.tensor({ 0, -1, INF }):log(), { -INF, NAN, INF })
    h.assert_close(ml.tensor({ -1, INF }):sqrt(), { NAN, INF })
    h.assert_close(ml.tensor({ 0, -0.0, INF }):rsqrt(), { INF, -INF, 0 })
    h.assert_close(ml.tensor({ 1, -1, 0 }) / 0, { INF, -INF, NAN })
    h.assert_close(ml.tensor({ 1, 2 }, "int64") / 0, { INF, INF }) -- true division
    h.assert_close(ml.tensor({ INF, 1 }):softmax(1), { NAN, NAN })
    h.assert_close(ml.tensor({ -INF, 0 }):softmax(1), { 0, 1 })
    h.assert_close(ml.tensor({ -INF, -INF }):softmax(1), { NAN, NAN })
    h.assert_close(ml.tensor({ -INF, 0 }):log_softmax(1), { -INF, 0 })
    h.assert_close(ml.tensor({ -INF, -INF }):logsumexp(1), -INF)
    h.assert_close(ml.tensor({ INF, 1 }):logsumexp(1), INF)
    h.assert_close(ml.tensor({ INF, 1 }):norm(), INF)
    h.assert_close(ml.tensor({ INF, -INF, 1 }):cumsum(1), { INF, NAN, NAN })
    h.assert_close(ml.tensor({ 0, INF }):cumprod(1), { 0, NAN })
    h.assert_close(ml.tensor({ 0, -8, NAN }):pow(ml.tensor({ 0, 1 / 3, 0 })), { 1, NAN, 1 })
    h.assert_close(ml.tensor({ INF, -INF, NAN }):floor(), { INF, -INF, NAN })
    h.assert_close(ml.tensor({ 0.5, 1.5, 2.5, -0.5 }):round(), { 0, 2, 2, -0.0 }) -- half to even
    h.assert_close(ml.tensor({ INF, -INF }):mean(), NAN)
    h.assert_close(ml.tensor({ INF, 1 }):var(), NAN)
    h.assert_close(ml.lerp(ml.tensor({ INF }), ml.tensor({ 1 }), 0.5), { INF })
    h.assert_close(ml.tensor({ { INF, 1 } }):matmul(ml.tensor({ { 0 }, { 1 } })), { { NAN } }) -- inf * 0
  end)
end)

------------------------------------------------------------------ values that must be valid

describe("NaN and infinity are errors where a value must be valid", function()
  it("in sizes", function()
    for _, n in ipairs({ NAN, INF, -INF, 2.5 }) do
      h.assert_error("moonml.zeros:", nil, ml.zeros, n)
      h.assert_error("moonml.zeros:", nil, ml.zeros, { 2, n })
      h.assert_error("moonml.view:", nil, ml.view, x, n, -1)
      h.assert_error("moonml.randperm:", nil, ml.randperm, n)
    end
  end)

  it("in indices", function()
    for _, i in ipairs({ NAN, INF, -INF, 1.5 }) do
      h.assert_error("moonml.index_select:", nil, ml.index_select, x, 1, ml.tensor({ i }))
      h.assert_error("moonml.gather:", nil, ml.gather, x, 1, ml.tensor({ { i, 1, 1 } }))
      h.assert_error("moonml.get:", nil, ml.get, x, i, 1)
      h.assert_error("moonml.nn.Embedding:", nil, nn.Embedding(4, 2), ml.tensor({ i }))
    end
  end)

  it("in ratings, from tables, tensors and files", function()
    for _, r in ipairs({ NAN, INF, -INF }) do
      h.assert_error("moonml.rec.from_table:", "finite", rec.from_table, { { 1, 1, 4 }, { 1, 2, r } })
      h.assert_error("moonml.rec.from_tensors:", nil, rec.from_tensors, ml.tensor({ 1, 2 }), ml.tensor({ 1, 1 }),
        ml.tensor({ 3, r }))
    end
    local path = os.tmpname()
    for _, spelling in ipairs({ "nan", "inf", "-inf", "NaN", "1e999" }) do
      local f = assert(io.open(path, "w"))
      f:write("1,1,4\n1,2," .. spelling .. "\n")
      f:close()
      -- even with skip_bad: the line is well formed, its value wrong
      h.assert_error("moonml.rec.load:", "not finite", rec.load, path)
      h.assert_error("moonml.rec.load:", "not finite", rec.load, path, { skip_bad = true })
    end
    os.remove(path)
  end)

  it("in file contents: sizes an IDX header promises must be in the file", function()
    local path = os.tmpname()
    local function write(bytes)
      local f = assert(io.open(path, "wb"))
      f:write(bytes)
      f:close()
    end
    write(string.pack(">I4I4", 0x0801, 5) .. "abc") -- 5 bytes promised, 3 given
    h.assert_error("moonml.read_idx:", "truncated", ml.read_idx, path)
    write(string.pack(">I4I4", 0x0801, 2) .. "abc") -- one too many
    h.assert_error("moonml.read_idx:", "past", ml.read_idx, path)
    write(string.pack(">I4I4I4", 0x0802, 0xFFFFFFFF, 0xFFFFFFFF)) -- 2^64 elements
    h.assert_error("moonml.read_idx:", nil, ml.read_idx, path)
    os.remove(path)
  end)
end)

------------------------------------------------------------------ fuzz findings

-- Inputs libFuzzer found (make fuzz, fuzz/README.md), each fixed; they stay fixed.
describe("inputs found by fuzzing", function()
  local path = os.tmpname()
  local function write(bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
  end
  teardown(function()
    os.remove(path)
  end)

  it("IDX: a few bytes claiming a huge tensor are refused before any allocation", function()
    -- fuzz_idx's first find: the header's shape {0x10000004} was allocated (1 GiB of
    -- float32) before the read found the data missing. The data must fit in the file now:
    -- a claim of 2^40 elements says "truncated" instead of trying (and failing) to
    -- allocate 4 TiB.
    write(string.pack(">I4I4I4", 0x0D02, 0x100000, 0x100000) .. string.rep("\0", 16))
    local before = ml.memory_stats().live_bytes
    h.assert_error("moonml.read_idx:", "truncated", ml.read_idx, path)
    assert.are.equal(before, ml.memory_stats().live_bytes)
    -- the same through gzip: deflate expands at most 1032:1, so a 40-byte file cannot
    -- hold more than ~41 kB
    local gz = path .. ".gz"
    assert(os.execute("gzip -c " .. path .. " > " .. gz))
    h.assert_error("moonml.read_idx:", "truncated", ml.read_idx, gz)
    os.remove(gz)
  end)

  it("IDX: an empty shape with huge other dimensions is refused, not given overflowing strides", function()
    -- fuzz_idx's second find: shape {2, 0, 2^31, 2^31, 2^31} has no elements, so the size
    -- check passed, and the contiguous strides overflowed int64 (UBSan: signed overflow)
    write(string.pack(">I4I4I4I4I4I4", 0x0805, 2, 0, 0x80000000, 0x80000000, 0x80000000))
    h.assert_error("moonml.read_idx:", "too large", ml.read_idx, path)
    h.assert_error("moonml.zeros:", "too large", ml.zeros, 0, 2 ^ 31, 2 ^ 31, 2 ^ 31)
    assert.are.same({ 0, 2 ^ 40 }, ml.zeros(0, 2 ^ 40):shape()) -- PyTorch allows this one
  end)

  it("rating files: an id with a NUL byte is a malformed line", function()
    -- fuzz_ratings' find: "a\0x" and "a\0y" were two inner ids but one raw id "a"
    write("a\0x,i,1\na\0y,i,2\nb,i,3\n")
    h.assert_error("moonml.rec.load:", "NUL", rec.load, path)
    local loaded = rec.load(path, { skip_bad = true })
    assert.are.equal(1, loaded:size())
    assert.are.equal(2, loaded.skipped)
  end)

  it("rating files: an empty file gives an empty set (UBSan: memcpy from NULL)", function()
    write("")
    assert.are.equal(0, rec.load(path):size())
  end)

  -- PNG files built byte by byte: chunk(type, data[, claimed length])
  local function crc32(s)
    local crc = 0xFFFFFFFF
    for i = 1, #s do
      crc = crc ~ s:byte(i)
      for _ = 1, 8 do
        crc = (crc & 1 == 1) and ((crc >> 1) ~ 0xEDB88320) or (crc >> 1)
      end
    end
    return crc ~ 0xFFFFFFFF
  end
  local function chunk(kind, data, len)
    return string.pack(">I4", len or #data) .. kind .. data .. string.pack(">I4", crc32(kind .. data))
  end
  local function png_head(w, hgt, depth, ctype)
    return "\137PNG\r\n\26\n" .. chunk("IHDR", string.pack(">I4I4BBBBB", w, hgt, depth, ctype, 0, 0, 0))
  end

  it("PNG: a few bytes claiming a huge image are refused before any allocation", function()
    -- a 58-byte file claiming 30000 x 30000 RGBA: the loader allocated 14 GB of float32
    -- (and libpng its row buffers) before reading found the pixels missing
    write(png_head(30000, 30000, 8, 6) .. chunk("IDAT", "x") .. chunk("IEND", ""))
    local before = ml.memory_stats().live_bytes
    h.assert_error("moonml.image.load:", "cannot fit in 58 bytes", ml.image.load, path)
    assert.are.equal(before, ml.memory_stats().live_bytes)
  end)

  it("PNG: a chunk claiming 2 GB is not allocated #nosan", function()
    -- fuzz_png's find: after an iCCP chunk, an iTXt chunk whose length field says 2 GB made
    -- libpng malloc 2 GB for a 70-byte file (untouched pages, so it shows in the peak
    -- virtual size, VmPeak, of a fresh process rather than in its resident size)
    write(png_head(3, 2, 8, 3) .. chunk("iCCP", "\0\0\0\255\0\0\0\255\0\0\0\255")
      .. string.pack(">I4", 0x7bffffff) .. "iTXt\174B`\130")
    local script = [[
      local function peak()
        return tonumber(io.open("/proc/self/status"):read("a"):match("VmPeak:%s*(%d+)"))
      end
      local ml = require("moonml")
      local before = peak()
      local ok, err = pcall(ml.image.load, arg[1])
      print((peak() - before) // 1024, err)
    ]]
    local file = os.tmpname()
    local f = assert(io.open(file, "w"))
    f:write(script)
    f:close()
    local p = assert(io.popen(string.format("LUA_PATH=%q LUA_CPATH=%q lua5.4 %q %q 2>&1",
      package.path, package.cpath, file, path)))
    local out = p:read("a")
    p:close()
    os.remove(file)
    local grew_mb, err = out:match("^(%d+)%s+(.*)")
    assert.is_truthy(grew_mb, out)
    assert.is_truthy(err:find("^moonml.image.load:.*Read Error"), out)
    assert(tonumber(grew_mb) < 64, "the load raised the peak virtual size by " .. grew_mb .. " MB")
  end)
end)
