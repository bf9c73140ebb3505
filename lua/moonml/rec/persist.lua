--- Saving fitted recommenders (m:save) and loading them (rec.load_model), as safetensors
-- files: the model's arrays and the train set's ratings as tensors, and in the metadata
-- (`__metadata__`) the class, the moonml version and one JSON document with the
-- parameters, the raw ids, the rating scale, the mean rating and the model's other values.
-- Each class says what its fitted state is (moonml.rec.base.persist).
--
-- Tensors in the file: `train.users`, `train.items` (1-based inner ids, I32),
-- `train.ratings` (F64), `train.timestamps` (I64, when the ratings have them), and the
-- model's own under `model.<name>`.
-- @module moonml.rec.persist
local ml = require("moonml")
local base = require("moonml.rec.base")
local data = require("moonml.rec.data")
local core = require("moonml.core")
local json = require("moonml.json")

local persist = {}

local FORMAT, VERSION = "moonml.rec", "1"

-- Raw ids as JSON: integers as their decimal text (exact at any size; data.key turns the
-- text back into the integer), strings as they are, the rare float id as a number.
local function ids_out(list)
  local out = {}
  for k, id in ipairs(list) do
    out[k] = math.type(id) == "integer" and tostring(id) or id
  end
  return out
end

--- m:save(path) (see moonml.rec.base).
function persist.save(model, path)
  if not model.trainset then
    base.fail(model, "save", "the model is not fitted (call fit first)")
  end
  if type(path) ~= "string" then
    base.fail(model, "save", "expected a file path as argument 1, got %s", type(path))
  end
  local own, values = model:_state()
  local tensors, dtypes = {}, {}
  for name, t in pairs(own) do
    tensors["model." .. name] = t
  end
  local store = model.trainset.store
  local users, items, _, ts = store:tensors()
  local _, _, ratings = store:columns() -- doubles (tensors() gives float32)
  tensors["train.users"], tensors["train.items"] = users, items
  tensors["train.ratings"] = core.tensor(ratings, "float64")
  tensors["train.timestamps"] = ts
  dtypes["train.users"], dtypes["train.items"] = "I32", "I32"
  local nu, ni = store:space()
  local doc = {
    params = model._given,
    mu = model.mu,
    scale = { model.scale[1], model.scale[2] },
    n_users = nu,
    n_items = ni,
    users = ids_out(model.ids.users),
    items = ids_out(model.ids.items),
    state = values,
  }
  local ok, text = pcall(json.encode, doc)
  if not ok then
    base.fail(model, "save", "%s", (tostring(text):gsub("^moonml%.json%.encode: ", "")))
  end
  local meta = { format = FORMAT, format_version = VERSION, class = model.name,
    moonml = core._VERSION, model = text }
  local saved, err = pcall(ml.save, tensors, path, { metadata = meta, dtypes = dtypes })
  if not saved then
    base.fail(model, "save", "%s", (tostring(err):gsub("^moonml%.save: ", "")))
  end
end

local function ids_in(list, what, bad)
  local ids = {}
  if type(list) ~= "table" then
    bad("the %s ids are missing", what)
  end
  for k, id in ipairs(list) do
    local key = data.key(id)
    if key == nil then
      bad("%s id %d is not a number or a string", what, k)
    end
    ids[k] = key
  end
  return ids
end

--- `rec.load_model(path)`: a fitted model saved with m:save. Every tensor and value of the
-- file is checked against the class's declared state before the model is handed out.
-- @tparam string path
-- @return the model
function persist.load_model(path)
  if type(path) ~= "string" then
    error("moonml.rec.load_model: expected a file path as argument 1, got " .. type(path), 0)
  end
  local function bad(fmt, ...)
    error(string.format("moonml.rec.load_model: %s: " .. fmt, path, ...), 0)
  end
  local ok, tensors, meta = pcall(ml.load, path)
  if not ok then
    error((tostring(tensors):gsub("^moonml%.load:", "moonml.rec.load_model:")), 0)
  end
  if meta.format ~= FORMAT then
    bad("not a saved recommender (its metadata has no format = \"%s\")", FORMAT)
  end
  if meta.format_version ~= VERSION then
    bad("format version %s, this moonml reads version %s", tostring(meta.format_version), VERSION)
  end
  local cls = base.classes[meta.class]
  if not cls then
    bad("unknown recommender class '%s'", tostring(meta.class))
  end
  local decoded, doc = pcall(json.decode, meta.model or "")
  if not decoded or type(doc) ~= "table" then
    bad("the model's metadata is not a JSON object (%s)", tostring(doc))
  end
  local built, model = pcall(cls, doc.params)
  if not built then
    bad("%s", tostring(model))
  end
  local nu, ni = doc.n_users, doc.n_items
  if math.type(nu) ~= "integer" or math.type(ni) ~= "integer" or nu < 0 or ni < 0 then
    bad("n_users and n_items must be non-negative integers")
  end
  local ids = data.IdMap()
  for k, id in ipairs(ids_in(doc.users, "user", bad)) do
    if ids:add_user(id) ~= k then
      bad("user id '%s' appears twice", tostring(id))
    end
  end
  for k, id in ipairs(ids_in(doc.items, "item", bad)) do
    if ids:add_item(id) ~= k then
      bad("item id '%s' appears twice", tostring(id))
    end
  end
  if #ids.users ~= nu or #ids.items ~= ni then
    bad("%d user ids and %d item ids for an id space of %d users and %d items", #ids.users,
      #ids.items, nu, ni)
  end
  local scale = doc.scale
  if type(scale) ~= "table" or type(scale[1]) ~= "number" or type(scale[2]) ~= "number"
      or scale[1] ~= scale[1] or scale[2] ~= scale[2] or scale[1] > scale[2] then
    bad("the rating scale must be {lo, hi}")
  end
  if type(doc.mu) ~= "number" or doc.mu ~= doc.mu then
    bad("the mean rating must be a number")
  end
  local cols = { "train.users", "train.items", "train.ratings" }
  for _, name in ipairs(cols) do
    if not ml.is_tensor(tensors[name]) or tensors[name]:dim() ~= 1 then
      bad("the tensor '%s' is missing or not 1-D", name)
    end
  end
  local made, store = pcall(base.C.from_columns, tensors["train.users"], tensors["train.items"],
    tensors["train.ratings"], tensors["train.timestamps"], nu, ni, "train set")
  if not made then
    bad("%s", (tostring(store):gsub("^moonml%.rec: ", "")))
  end
  local train = data.new_set(store, ids, { scale[1], scale[2] })
  if train:size() == 0 then
    bad("the train set is empty")
  end
  model.ids, model.scale, model.mu = ids, train.scale, doc.mu
  local own = {}
  for name, t in pairs(tensors) do
    local field = name:match("^model%.(.+)$")
    if field then
      own[field] = t
    end
  end
  model:_from_state(own, type(doc.state) == "table" and doc.state or {}, train, bad)
  model.trainset = train
  return model
end

return persist
