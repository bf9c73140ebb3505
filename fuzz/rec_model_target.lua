-- What fuzz_rec_model.c runs for each input: rec.load_model on a saved recommender that
-- the input has damaged, then predictions from whatever loaded. Also writes that harness's
-- seeds (make fuzz-build runs `lua5.4 fuzz/rec_model_target.lua OUTDIR`).
--
-- The input's first byte picks the mode (mod 3), the second the class (mod #CLASSES):
--   0  the rest is the whole file (a byte-level mutation of a real saved model);
--   1  the rest replaces the JSON document in the metadata of that class's saved model
--      (parameters, raw ids, scale, mean, the model's values), its tensors kept;
--   2  the third byte picks one of that model's tensors and the rest replaces its bytes
--      (its shape kept when the length fits, else 1-D), the rest of the file kept.
-- The property: a load either fails with an error starting "moonml.", or gives a model
-- whose predict, predict_batch, recommend and test run without any error (similar_items
-- and recommend_new may refuse, with a moonml error).
local ml = require("moonml")
local rec = ml.rec

local T = {}

T.CLASSES = {
  { "ALS", { factors = 3, iterations = 2, random_state = 1 } },
  { "BPR", { factors = 3, iterations = 2, random_state = 1 } },
  { "BaselineOnly", {} },
  { "CoClustering", { n_cltr_u = 2, n_cltr_i = 2, n_epochs = 2, random_state = 1 } },
  { "ItemKNN", { K = 3 } },
  { "KNNBaseline", { k = 3 } },
  { "KNNBasic", { k = 3, sim_options = { user_based = false } } },
  { "KNNWithMeans", { k = 3 } },
  { "KNNWithZScore", { k = 3 } },
  { "NMF", { n_factors = 2, n_epochs = 2, random_state = 1 } },
  { "NeuMF", { factors = 2, layers = { 4, 2 }, epochs = 1, random_state = 1 } },
  { "NormalPredictor", {} },
  { "Popular", {} },
  { "SVD", { n_factors = 2, n_epochs = 2, random_state = 1 } },
  { "SVDpp", { n_factors = 2, n_epochs = 2, random_state = 1 } },
  { "SlopeOne", {} },
}

-- A small train set with string and integer raw ids, so both kinds go through the JSON.
local function train_set()
  local rows = {}
  for u = 1, 8 do
    for i = 1, 6 do
      if (u * 7 + i * 3) % 4 ~= 0 then
        local user = u % 2 == 0 and ("u" .. u) or u
        rows[#rows + 1] = { user, "i" .. i, 1 + (u * i) % 5, u * 10 + i }
      end
    end
  end
  return rec.from_table(rows, { scale = { 1, 5 } })
end

-- Each class fitted and saved once: {name, tensors, metadata, tensor names sorted}.
local bases
function T.bases(scratch)
  if bases then
    return bases
  end
  bases = {}
  local train = train_set()
  for k, spec in ipairs(T.CLASSES) do
    local m = rec[spec[1]](spec[2])
    m:fit(train)
    m:save(scratch)
    local tensors, meta = ml.load(scratch)
    local names = {}
    for name in pairs(tensors) do
      names[#names + 1] = name
    end
    table.sort(names)
    bases[k] = { name = spec[1], tensors = tensors, meta = meta, names = names }
  end
  os.remove(scratch)
  return bases
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

-- Builds the file the input describes at path; false when the input says nothing to load.
local function build(input, path)
  if #input < 2 then
    return false
  end
  local mode, base = input:byte(1) % 3, bases[input:byte(2) % #bases + 1]
  if mode == 0 then
    write(path, input:sub(3))
    return true
  end
  local tensors, meta = {}, {}
  for name, t in pairs(base.tensors) do
    tensors[name] = t
  end
  for key, v in pairs(base.meta) do
    meta[key] = v
  end
  if mode == 1 then
    meta.model = input:sub(3)
  else
    if #input < 3 then
      return false
    end
    local name = base.names[input:byte(3) % #base.names + 1]
    local old, bytes = tensors[name], input:sub(4)
    local size = #old:to_bytes() // math.max(old:numel(), 1)
    if #bytes == old:numel() * size then
      tensors[name] = ml.from_bytes(bytes, old:dtype(), old:shape())
    else
      tensors[name] = ml.from_bytes(bytes:sub(1, #bytes - #bytes % size), old:dtype())
    end
  end
  -- metadata that cannot be written (a NUL byte, bad UTF-8) is not a load test
  return pcall(ml.save, tensors, path, { metadata = meta })
end

local function check_error(err, what)
  if type(err) ~= "string" or not err:find("^moonml%.") then
    error("FINDING: " .. what .. " raised a non-moonml error: " .. tostring(err), 0)
  end
end

-- Everything a user does with a loaded model must work (no error at all).
local function must_work(what, fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then
    error("FINDING: a model that loaded fails in " .. what .. ": " .. tostring(err), 0)
  end
  return err
end

-- Returns what happened ("refused: <error>", "loaded", or nil when nothing was loaded),
-- for looking at a corpus by hand.
function T.run(input, path)
  T.bases(path)
  if not build(input, path) then
    return nil
  end
  local ok, m = pcall(rec.load_model, path)
  os.remove(path)
  if not ok then
    check_error(m, "rec.load_model")
    return "refused: " .. m
  end
  local users, items = m.ids.users, m.ids.items
  -- a user of the first and last rating (ids without ratings are allowed: a split's train
  -- set keeps the whole id space)
  local cu = m.trainset.store:columns()
  local u, i, u2 = users[cu[1]], items[1], users[cu[#cu]]
  must_work("predict", m.predict, m, u, i)
  must_work("predict (unknown ids)", m.predict, m, "no such user", "no such item")
  must_work("predict_batch", m.predict_batch, m, { u, users[#users] }, { i, items[#items] })
  must_work("test (the train set)", m.test, m, m.trainset)
  must_work("test (other ids)", m.test, m,
    rec.from_table({ { u, i, 3 }, { users[#users], items[#items], 4 }, { "new", "new", 5 } }))
  must_work("recommend", m.recommend, m, u, 3)
  must_work("recommend (all items)", m.recommend, m, u2, #items + 1,
    { exclude_seen = false })
  -- these two may rightly be unsupported by a class, or (fold-in) find no known item
  local sim_ok, err = pcall(m.similar_items, m, i, 2)
  if not sim_ok then
    check_error(err, "similar_items")
  end
  local fold_ok, ferr = pcall(m.recommend_new, m, { [i] = 4, [items[#items]] = 2 }, 3)
  if not fold_ok then
    check_error(ferr, "recommend_new")
  end
  return "loaded"
end

-- Seeds: each class's file as it is (mode 0), its JSON document (mode 1), and each of its
-- tensors' bytes (mode 2).
function T.write_seeds(outdir)
  local scratch = outdir .. "/scratch.safetensors"
  T.bases(scratch)
  local n = 0
  local function seed(bytes)
    n = n + 1
    write(string.format("%s/seed-%04d", outdir, n), bytes)
  end
  for k, b in ipairs(bases) do
    local c = string.char(k - 1)
    ml.save(b.tensors, scratch, { metadata = b.meta })
    local f = assert(io.open(scratch, "rb"))
    seed("\0" .. c .. f:read("a"))
    f:close()
    seed("\1" .. c .. b.meta.model)
    for j, name in ipairs(b.names) do
      seed("\2" .. c .. string.char(j - 1) .. b.tensors[name]:to_bytes())
    end
  end
  os.remove(scratch)
  return n
end

if arg and arg[0] and arg[0]:find("rec_model_target%.lua$") and arg[1] then
  print(string.format("seeds in %s: rec_model %d", arg[1], T.write_seeds(arg[1])))
end

return T
