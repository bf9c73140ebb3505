--- Rating data: raw ids <-> inner ids, rating sets, loaders and splits.
--
-- A rating set holds its ratings in a C store (inner ids, ratings, timestamps; CSR by
-- user and by item built on demand) and an id map shared with every set cut from it, so
-- a model fitted on a train set predicts the raw ids of the matching test set. Raw ids
-- that look like integers ("196") are handed back as Lua integers, others as strings;
-- look-ups accept either form. Inner ids count from 1 in Lua.
-- @module moonml.rec.data
local core = require("moonml.core")
local C = core._rec

local data = {}

-- ------------------------------------------------------------------ raw ids

--- The canonical form of a raw id: integers (and strings spelling an integer in plain
-- decimal, like "196") become Lua integers, other strings stay strings.
-- Returns nil for anything else.
function data.key(raw)
  local mt = math.type(raw)
  if mt == "integer" then
    return raw
  elseif mt == "float" then
    return math.tointeger(raw) or (raw == raw and raw or nil)
  elseif type(raw) == "string" then
    if raw:match("^%-?%d+$") then
      local n = math.tointeger(tonumber(raw))
      if n and tostring(n) == raw then
        return n
      end
    end
    return raw
  end
  return nil
end
local key = data.key

--- Orders raw ids: numbers as numbers, before strings; strings by bytes.
function data.id_less(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb then
    return a < b
  end
  return ta == "number"
end

local IdMap = {}
IdMap.__index = IdMap

--- A new empty map between raw ids and inner ids.
function data.IdMap()
  return setmetatable({ users = {}, items = {}, uindex = {}, iindex = {} }, IdMap)
end

local function add(list, index, raw)
  local k = key(raw)
  local inner = index[k]
  if not inner then
    inner = #list + 1
    list[inner] = k
    index[k] = inner
  end
  return inner
end

--- The inner id of a raw user id, added when new.
function IdMap:add_user(raw) return add(self.users, self.uindex, raw) end
--- The inner id of a raw item id, added when new.
function IdMap:add_item(raw) return add(self.items, self.iindex, raw) end
--- Inner id (1-based) of a raw user id in this id space, or nil.
function IdMap:user(raw)
  local k = key(raw)
  return k ~= nil and self.uindex[k] or nil
end
--- Inner id (1-based) of a raw item id in this id space, or nil.
function IdMap:item(raw)
  local k = key(raw)
  return k ~= nil and self.iindex[k] or nil
end

-- ------------------------------------------------------------------ rating sets

local RatingSet = {}
RatingSet.__index = RatingSet
data.RatingSet = RatingSet

local function new_set(store, ids, scale, fields)
  local self = setmetatable({ store = store, ids = ids, scale = scale }, RatingSet)
  for k, v in pairs(fields or {}) do
    self[k] = v
  end
  return self
end
data.new_set = new_set

--- Is x a rating set?
function data.is_set(x)
  return getmetatable(x) == RatingSet
end

--- Number of ratings (also `#data`).
function RatingSet:size() return self.store:size() end
RatingSet.__len = RatingSet.size

local function stats(self)
  if not self._stats then
    local mean, var, lo, hi, nu, ni = self.store:stats()
    self._stats = { mean = mean, var = var, lo = lo, hi = hi, n_users = nu, n_items = ni }
  end
  return self._stats
end

--- Users that have ratings in this set.
function RatingSet:n_users() return stats(self).n_users end
--- Items that have ratings in this set.
function RatingSet:n_items() return stats(self).n_items end
--- Mean of the ratings (NaN when empty).
function RatingSet:global_mean() return stats(self).mean end
--- Does the set hold timestamps?
function RatingSet:has_timestamps()
  local _, _, ts = self.store:space()
  return ts
end

--- Inner id (1-based) of a raw user id with ratings in this set, or nil.
function RatingSet:inner_user(raw)
  local u = self.ids:user(raw)
  if u and self.store:user_count(u) > 0 then
    return u
  end
  return nil
end
--- Inner id (1-based) of a raw item id with ratings in this set, or nil.
function RatingSet:inner_item(raw)
  local i = self.ids:item(raw)
  if i and self.store:item_count(i) > 0 then
    return i
  end
  return nil
end
--- Does the user have ratings in this set?
function RatingSet:knows_user(raw) return self:inner_user(raw) ~= nil end
--- Does the item have ratings in this set?
function RatingSet:knows_item(raw) return self:inner_item(raw) ~= nil end
--- Raw id of an inner id.
function RatingSet:raw_user(inner) return self.ids.users[inner] end
--- Raw id of an inner item id.
function RatingSet:raw_item(inner) return self.ids.items[inner] end

--- Rating k: raw user, raw item, rating, timestamp (nil without timestamps).
function RatingSet:get(k)
  if math.type(k) ~= "integer" or k < 1 or k > self:size() then
    error("moonml.rec.get: rating " .. tostring(k) .. " out of range 1.." .. self:size(), 0)
  end
  local u, i, r, ts = self.store:get(k)
  return self.ids.users[u], self.ids.items[i], r, ts
end

--- Iterator over the ratings: `for u, i, r, ts in data:ratings() do ... end` (raw ids).
function RatingSet:ratings()
  local us, is, rs, ts = self.store:columns()
  local users, items = self.ids.users, self.ids.items
  local k = 0
  return function()
    k = k + 1
    if us[k] then
      return users[us[k]], items[is[k]], rs[k], ts and ts[k]
    end
  end
end

--- The items a user rated in this set and the ratings: two Lua arrays (raw item ids).
function RatingSet:user_ratings(raw)
  local u = self.ids:user(raw)
  if not u then
    return {}, {}
  end
  local is, rs = self.store:row(false, u)
  for k = 1, #is do
    is[k] = self.ids.items[is[k]]
  end
  return is, rs
end

--- Raw ids of the users / items with ratings in this set, in inner-id order.
function RatingSet:users()
  local out = {}
  for u = 1, #self.ids.users do
    if self.store:user_count(u) > 0 then
      out[#out + 1] = self.ids.users[u]
    end
  end
  return out
end
--- Raw ids of the items with ratings in this set, in inner-id order.
function RatingSet:items()
  local out = {}
  for i = 1, #self.ids.items do
    if self.store:item_count(i) > 0 then
      out[#out + 1] = self.ids.items[i]
    end
  end
  return out
end

--- The ratings as tensors: users, items (int64), ratings (float32), timestamps (int64,
-- or nil). `{ids = "inner"}` (default) gives 1-based inner ids; `{ids = "raw"}` gives the
-- raw ids, which must then all be integers.
function RatingSet:tensors(opts)
  opts = data.check_opts(opts, "tensors", { ids = true })
  local u, i, r, ts = self.store:tensors()
  local which = opts.ids or "inner"
  if which == "raw" then
    local function raw(t, list, what)
      local v = t:totable()
      for k = 1, #v do
        local id = list[v[k]]
        if math.type(id) ~= "integer" then
          error(string.format("moonml.rec.tensors: %s id '%s' is not an integer", what,
            tostring(id)), 0)
        end
        v[k] = id
      end
      return core.tensor(v, "int64")
    end
    u, i = raw(u, self.ids.users, "user"), raw(i, self.ids.items, "item")
  elseif which ~= "inner" then
    error("moonml.rec.tensors: ids must be 'inner' or 'raw', got " .. tostring(which), 0)
  end
  return u, i, r, ts
end

function RatingSet:__tostring()
  local s = stats(self)
  return string.format("moonml.rec.RatingSet(%d ratings, %d users, %d items, scale %g..%g)",
    self:size(), s.n_users, s.n_items, self.scale[1], self.scale[2])
end

-- ------------------------------------------------------------------ subsets and splits

--- The ratings whose mark equals (or, with equal = false, differs from) value.
function RatingSet:_select(marks, value, equal)
  return new_set(C.select(self.store, marks, value, equal), self.ids, self.scale,
    { name = self.name })
end

local function check_seed(seed, fn)
  if seed ~= nil and math.type(seed) ~= "integer" then
    error(string.format("moonml.rec.%s: seed must be an integer, got %s", fn, tostring(seed)), 0)
  end
  return seed
end

local function check_opts(opts, fn, allowed)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    error(string.format("moonml.rec.%s: options must be a table, got %s", fn, type(opts)), 0)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(string.format("moonml.rec.%s: unknown option '%s'", fn, tostring(k)), 0)
    end
  end
  return opts
end
data.check_opts = check_opts

--- Random train/test split: `train, test = data:split{test = 0.2, seed = 1}`. test is a
-- proportion in (0, 1) (the test set gets ceil(test * n) ratings, as in Surprise's
-- train_test_split) or an integer count. Both parts are in the shuffled order, as in
-- Surprise.
function RatingSet:split(opts)
  opts = check_opts(opts, "split", { test = true, seed = true })
  local n = self:size()
  local t = opts.test == nil and 0.2 or opts.test
  local n_test
  if math.type(t) == "integer" then
    n_test = t
  elseif type(t) == "number" and t > 0 and t < 1 then
    n_test = math.ceil(t * n - 1e-9)
  else
    error("moonml.rec.split: test must be a proportion in (0, 1) or a count, got " ..
      tostring(t), 0)
  end
  if n_test < 0 or n_test > n then
    error(string.format("moonml.rec.split: test count %d out of range 0..%d", n_test, n), 0)
  end
  local perm = C.permutation(n, check_seed(opts.seed, "split"))
  local test, train = {}, {}
  for p = 1, n do
    if p <= n_test then
      test[#test + 1] = perm[p]
    else
      train[#train + 1] = perm[p]
    end
  end
  return self:_take(train), self:_take(test)
end

--- The ratings at the given positions, in that order.
function RatingSet:_take(rows)
  return new_set(C.take(self.store, rows), self.ids, self.scale, { name = self.name })
end

local function folds_from_marks(self, marks, k)
  local out = {}
  for f = 1, k do
    out[f] = { train = self:_select(marks, f, false), test = self:_select(marks, f, true) }
  end
  return out
end

--- Seeded k-fold cross-validation folds: an array of {train =, test =}. As Surprise's
-- KFold: the ratings are shuffled once and cut into k consecutive blocks, the first
-- n % k blocks one rating larger; both parts keep the shuffled order (which is the
-- order the SGD solvers visit each user's ratings in).
function RatingSet:folds(k, opts)
  opts = check_opts(opts, "folds", { seed = true })
  if math.type(k) ~= "integer" or k < 2 then
    error("moonml.rec.folds: k must be an integer >= 2, got " .. tostring(k), 0)
  end
  local n = self:size()
  if k > n then
    error(string.format("moonml.rec.folds: %d folds for %d ratings", k, n), 0)
  end
  local perm = C.permutation(n, check_seed(opts.seed, "folds"))
  local out, start = {}, 0
  for f = 1, k do
    local size = n // k + ((f - 1) < n % k and 1 or 0)
    local train, test = {}, {}
    for p = 1, n do
      if p > start and p <= start + size then
        test[#test + 1] = perm[p]
      else
        train[#train + 1] = perm[p]
      end
    end
    out[f] = { train = self:_take(train), test = self:_take(test) }
    start = start + size
  end
  return out
end

--- Folds given by a fold-assignment file: one fold number per line, in the order of the
-- set's ratings; the smallest number is the first fold (Surprise's dump counts from 0).
function data.folds_from_file(set, path)
  if not data.is_set(set) then
    error("moonml.rec.folds_from_file: expected a rating set as argument 1, got " ..
      type(set), 0)
  end
  if type(path) ~= "string" then
    error("moonml.rec.folds_from_file: expected a file path as argument 2, got " .. type(path), 0)
  end
  local f, err = io.open(path, "r")
  if not f then
    error("moonml.rec.folds_from_file: " .. tostring(err), 0)
  end
  local marks, lo, hi, line = {}, math.huge, -math.huge, 0
  for l in f:lines() do
    line = line + 1
    l = l:gsub("\r$", "")
    if l:match("%S") then
      local v = math.tointeger(tonumber(l))
      if not v then
        f:close()
        error(string.format("moonml.rec.folds_from_file: %s:%d: '%s' is not a fold number",
          path:match("[^/\\]*$"), line, l), 0)
      end
      marks[#marks + 1] = v
      lo, hi = math.min(lo, v), math.max(hi, v)
    end
  end
  f:close()
  if #marks ~= set:size() then
    error(string.format("moonml.rec.folds_from_file: %d fold numbers for %d ratings",
      #marks, set:size()), 0)
  end
  for k = 1, #marks do
    marks[k] = marks[k] - lo + 1
  end
  return folds_from_marks(set, marks, hi - lo + 1)
end

--- Per user, the last rating by timestamp goes to the test set (on a tie, the larger
-- item id counts as last; numeric ids compare as numbers). Returns train, test.
function RatingSet:leave_last_out()
  if not self:has_timestamps() then
    error("moonml.rec.leave_last_out: the ratings have no timestamps", 0)
  end
  local us, is, _, ts = self.store:columns()
  local items = self.ids.items
  local last = {}
  local less = data.id_less
  for k = 1, #us do
    local u = us[k]
    local b = last[u]
    if not b or ts[k] > ts[b] or (ts[k] == ts[b] and less(items[is[b]], items[is[k]])) then
      last[u] = k
    end
  end
  local marks = {}
  for k = 1, #us do
    marks[k] = 0
  end
  for _, k in pairs(last) do
    marks[k] = 1
  end
  return self:_select(marks, 0, true), self:_select(marks, 1, true)
end

-- ------------------------------------------------------------------ loading

local FORMATS = {
  ["movielens-100k"] = { sep = "\t", header = false, min = 4, max = 4, scale = { 1, 5 } },
  ["movielens-1m"] = { sep = "::", header = false, min = 4, max = 4, scale = { 1, 5 } },
  ["movielens-csv"] = { sep = ",", header = true, min = 4, max = 4, scale = { 0.5, 5 } },
  csv = { sep = ",", header = false, min = 3, max = 4 },
}

local function check_scale(scale, fn)
  if scale == nil then
    return nil
  end
  if type(scale) ~= "table" or type(scale[1]) ~= "number" or type(scale[2]) ~= "number"
      or scale[1] ~= scale[1] or scale[2] ~= scale[2] or scale[1] > scale[2] then
    error(string.format("moonml.rec.%s: scale must be {lo, hi} with lo <= hi", fn), 0)
  end
  return { scale[1], scale[2] }
end
data.check_scale = check_scale

local function format_of(path, fmt)
  if fmt == nil then
    return "csv"
  end
  if fmt == "movielens" then -- by the file's name
    if path:match("%.csv$") then
      return "movielens-csv"
    elseif path:match("%.dat$") then
      return "movielens-1m"
    end
    return "movielens-100k"
  end
  if not FORMATS[fmt] then
    error("moonml.rec.load: unknown format '" .. tostring(fmt) ..
      "' (movielens-100k, movielens-1m, movielens-csv, csv or movielens)", 0)
  end
  return fmt
end

-- Parses one file; returns store, raw user list, raw item list, skipped, rmin, rmax.
-- fn: the function the user called (load, load_many, predefined_folds), for messages.
local function parse(path, opts, fn)
  fn = fn or "load"
  if type(path) ~= "string" then
    error("moonml.rec." .. fn .. ": expected a file path, got " .. type(path), 0)
  end
  opts = check_opts(opts, fn,
    { format = true, sep = true, header = true, scale = true, skip_bad = true })
  local ok, fname = pcall(format_of, path, opts.format)
  if not ok then
    error((fname:gsub("^moonml%.rec%.load:", "moonml.rec." .. fn .. ":")), 0)
  end
  local f = FORMATS[fname]
  local sep = opts.sep == nil and f.sep or opts.sep
  if type(sep) ~= "string" or sep == "" then
    error("moonml.rec." .. fn .. ": sep must be a non-empty string", 0)
  end
  local header = f.header
  if opts.header ~= nil then
    header = opts.header and true or false
  end
  local scale = check_scale(opts.scale, fn) or (f.scale and { f.scale[1], f.scale[2] })
  local popts = {
    sep = sep, header = header, skip_bad = opts.skip_bad and true or false,
    min_fields = f.min, max_fields = f.max, name = path:match("[^/\\]*$"),
    op = "moonml.rec." .. fn,
  }
  if scale then
    popts.lo, popts.hi = scale[1], scale[2]
  end
  local store, users, items, skipped, first_skipped, lo, hi = C.parse(path, popts)
  return store, users, items, { skipped = skipped, first_skipped = first_skipped,
    scale = scale, lo = lo, hi = hi, format = fname }
end

local function canon(list)
  for k = 1, #list do
    list[k] = key(list[k])
  end
  return list
end

--- Loads a rating file (see moonml.rec.load).
function data.load(path, opts)
  local store, users, items, info = parse(path, opts)
  local ids = data.IdMap()
  canon(users)
  canon(items)
  for k = 1, #users do
    if ids:add_user(users[k]) ~= k then
      -- two spellings of one id ("7" and "7.0" are different strings, same key)
      error(string.format("moonml.rec.load: %s: user id '%s' appears in two spellings",
        path, tostring(users[k])), 0)
    end
  end
  for k = 1, #items do
    if ids:add_item(items[k]) ~= k then
      error(string.format("moonml.rec.load: %s: item id '%s' appears in two spellings",
        path, tostring(items[k])), 0)
    end
  end
  local scale = info.scale or { info.lo, info.hi }
  return new_set(store, ids, scale, { skipped = info.skipped, name = path,
    first_skipped = info.first_skipped ~= 0 and info.first_skipped or nil })
end

local function load_many(paths, opts, fn)
  if type(paths) ~= "table" or #paths == 0 then
    error("moonml.rec." .. fn .. ": expected a non-empty Lua array of file paths, got " .. type(paths), 0)
  end
  local parsed, ids = {}, data.IdMap()
  for p, path in ipairs(paths) do
    local store, users, items, info = parse(path, opts, fn)
    parsed[p] = { store = store, users = canon(users), items = canon(items), info = info }
    for _, u in ipairs(users) do ids:add_user(u) end
    for _, i in ipairs(items) do ids:add_item(i) end
  end
  local lo, hi = math.huge, -math.huge
  for _, p in ipairs(parsed) do
    lo, hi = math.min(lo, p.info.lo), math.max(hi, p.info.hi)
  end
  local out = {}
  for k, p in ipairs(parsed) do
    local umap, imap = {}, {}
    for j, u in ipairs(p.users) do umap[j] = ids.uindex[u] end
    for j, i in ipairs(p.items) do imap[j] = ids.iindex[i] end
    local store = C.remap(p.store, umap, imap, #ids.users, #ids.items)
    local scale = p.info.scale or { lo, hi }
    out[k] = new_set(store, ids, scale, { skipped = p.info.skipped, name = paths[k] })
  end
  return out
end

--- Loads several files into one id space (e.g. u1.base and u1.test): a list of sets.
function data.load_many(paths, opts)
  return load_many(paths, opts, "load_many")
end

--- The predefined ML-100k splits: `predefined_folds(dir, "u")` gives the five folds
-- u1..u5 (.base = train, .test = test), "ua" and "ub" one fold each. Every set shares
-- one id space.
function data.predefined_folds(dir, which, opts)
  if type(dir) ~= "string" then
    error("moonml.rec.predefined_folds: expected a folder as argument 1, got " .. type(dir), 0)
  end
  which = which or "u"
  local names
  if which == "u" then
    names = { "u1", "u2", "u3", "u4", "u5" }
  elseif which == "ua" or which == "ub" then
    names = { which }
  else
    error("moonml.rec.predefined_folds: which must be 'u', 'ua' or 'ub', got " ..
      tostring(which), 0)
  end
  opts = opts or { format = "movielens-100k" }
  local paths = {}
  for _, n in ipairs(names) do
    paths[#paths + 1] = dir .. "/" .. n .. ".base"
    paths[#paths + 1] = dir .. "/" .. n .. ".test"
  end
  local sets = load_many(paths, opts, "predefined_folds")
  local out = {}
  for f = 1, #names do
    out[f] = { train = sets[2 * f - 1], test = sets[2 * f], name = names[f] }
  end
  return out
end

-- Builds a set from columns of raw ids (Lua arrays).
local function from_columns(us, is, rs, ts, scale, fn)
  local ids = data.IdMap()
  local ui, ii = {}, {}
  for k = 1, #us do
    local u, i = key(us[k]), key(is[k])
    if u == nil or i == nil then
      error(string.format("moonml.rec.%s: row %d: user and item ids must be numbers or " ..
        "strings", fn, k), 0)
    end
    ui[k], ii[k] = ids:add_user(u), ids:add_item(i)
    local r = rs[k]
    if type(r) ~= "number" then
      error(string.format("moonml.rec.%s: row %d: rating must be a number, got %s", fn, k,
        type(r)), 0)
    end
    if r ~= r or r == math.huge or r == -math.huge then
      error(string.format("moonml.rec.%s: row %d: rating %s is not finite", fn, k,
        tostring(r)), 0)
    end
    if scale and (r < scale[1] or r > scale[2]) then
      error(string.format("moonml.rec.%s: row %d: rating %g is outside the scale [%g, %g]",
        fn, k, r, scale[1], scale[2]), 0)
    end
  end
  local store = C.from_columns(ui, ii, rs, ts, #ids.users, #ids.items, "moonml.rec." .. fn)
  if not scale then
    local _, _, lo, hi = store:stats()
    scale = { lo, hi }
  end
  return new_set(store, ids, scale)
end

--- A rating set from a Lua table of rows {user, item, rating[, timestamp]}.
function data.from_table(rows, opts)
  if type(rows) ~= "table" then
    error("moonml.rec.from_table: expected a table of rows, got " .. type(rows), 0)
  end
  opts = check_opts(opts, "from_table", { scale = true })
  local scale = check_scale(opts.scale, "from_table")
  local us, is, rs, ts = {}, {}, {}, nil
  for k, row in ipairs(rows) do
    if type(row) ~= "table" or #row < 3 or #row > 4 then
      error(string.format("moonml.rec.from_table: row %d: expected {user, item, rating" ..
        "[, timestamp]}", k), 0)
    end
    us[k], is[k], rs[k] = row[1], row[2], row[3]
    if k == 1 and row[4] ~= nil then
      ts = {}
    end
    if (row[4] ~= nil) ~= (ts ~= nil) then
      error(string.format("moonml.rec.from_table: row %d: timestamps must be given for " ..
        "every row or none", k), 0)
    end
    if ts then
      if math.type(row[4]) ~= "integer" then
        error(string.format("moonml.rec.from_table: row %d: timestamp must be an integer", k), 0)
      end
      ts[k] = row[4]
    end
  end
  return from_columns(us, is, rs, ts, scale, "from_table")
end

--- A rating set from 1-D tensors (or Lua arrays) of raw user ids, raw item ids, ratings
-- and optional timestamps. Ids held as floats must be whole numbers.
function data.from_tensors(users, items, ratings, timestamps, opts)
  if opts == nil and type(timestamps) == "table" and getmetatable(timestamps) == nil
      and timestamps[1] == nil and next(timestamps) ~= nil then
    timestamps, opts = nil, timestamps -- from_tensors(u, i, r, {scale = ...})
  end
  opts = check_opts(opts, "from_tensors", { scale = true })
  local function col(x, what)
    if getmetatable(x) == core.Tensor then
      if x:dim() ~= 1 then
        error("moonml.rec.from_tensors: " .. what .. " must be a 1-D tensor", 0)
      end
      local v = x:totable()
      if what == "users" or what == "items" then
        for k = 1, #v do
          local id = math.tointeger(v[k])
          if not id then
            error(string.format("moonml.rec.from_tensors: %s[%d] = %s is not a whole number",
              what, k, tostring(v[k])), 0)
          end
          v[k] = id
        end
      end
      return v
    elseif type(x) == "table" then
      return x
    end
    error("moonml.rec.from_tensors: " .. what .. " must be a tensor, got " .. type(x), 0)
  end
  local us, is, rs = col(users, "users"), col(items, "items"), col(ratings, "ratings")
  local ts = timestamps ~= nil and col(timestamps, "timestamps") or nil
  if #us ~= #is or #us ~= #rs or (ts and #ts ~= #us) then
    error(string.format("moonml.rec.from_tensors: lengths differ (%d users, %d items, " ..
      "%d ratings)", #us, #is, #rs), 0)
  end
  if ts then
    for k = 1, #ts do
      local t = math.tointeger(ts[k])
      if not t then
        error(string.format("moonml.rec.from_tensors: row %d: timestamp must be an integer", k), 0)
      end
      ts[k] = t
    end
  end
  return from_columns(us, is, rs, ts, check_scale(opts.scale, "from_tensors"), "from_tensors")
end

-- ------------------------------------------------------------------ synthetic data

--- `rec.synthetic{users =, items =, interactions =, factors = 10, noise = 0.1, seed = 0,
-- timestamps = false}`: a seeded synthetic interaction set generated in C, for tests and
-- benchmarks at any scale. A latent-factor model plus noise: `factors` latent topics;
-- every item belongs to one topic and has a Zipf popularity (exponent 0.9, random order);
-- every user mixes one to three topics with random weights (Dirichlet(1)) and draws its
-- items from its topics by popularity, or with probability `noise` from all items by
-- popularity; no pair twice; activity per user is log-normal (sigma 1, at least one
-- interaction each; a user whose likely items run out takes free items at random). The
-- rating of an interaction is round(1 + 4 w + N(0, 0.5^2)) clipped to 1..5, w the user's
-- weight of the item's topic (0 for noise draws), so the set works for rating models too.
-- Raw ids are the integers 1..users and 1..items; the scale is {1, 5}. With timestamps =
-- true every rating gets its position among its user's draws (so leave_last_out works).
-- The set holds 16 bytes per rating (24 with timestamps); the same seed gives the same set
-- on every machine.
function data.synthetic(opts)
  local fn = "synthetic"
  opts = check_opts(opts, fn, { users = true, items = true, interactions = true,
    factors = true, noise = true, seed = true, timestamps = true })
  local function int(name, def)
    local v = opts[name]
    if v == nil then
      v = def
    end
    if math.type(v) ~= "integer" then
      error(string.format("moonml.rec.synthetic: %s must be an integer, got %s", name,
        tostring(v)), 0)
    end
    return v
  end
  local users, items, n = int("users"), int("items"), int("interactions")
  local factors, seed = int("factors", 10), int("seed", 0)
  local noise = opts.noise == nil and 0.1 or opts.noise
  if type(noise) ~= "number" or not (noise >= 0 and noise <= 1) then
    error("moonml.rec.synthetic: noise must be a number in [0, 1], got " .. tostring(noise), 0)
  end
  local ts = opts.timestamps
  if ts ~= nil and type(ts) ~= "boolean" then
    error("moonml.rec.synthetic: timestamps must be a boolean, got " .. tostring(ts), 0)
  end
  local store = C.synthetic(users, items, n, factors, noise, seed, ts or false)
  local ids = data.IdMap()
  local ul, ui, il, ii = ids.users, ids.uindex, ids.items, ids.iindex
  for u = 1, users do
    ul[u], ui[u] = u, u
  end
  for i = 1, items do
    il[i], ii[i] = i, i
  end
  return new_set(store, ids, { 1, 5 }, { name = "synthetic" })
end

return data
