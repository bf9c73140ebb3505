-- The list of moonml's public Lua functions, found by walking the module rather than
-- written by hand, so that spec/bad_input_spec.lua sees a function the day it is added.
--
-- Names:
--   "add"                       ml.add (tensor methods are the same functions: x:add)
--   "methods.<name>"            a method whose function differs from ml.<name>
--   "nn.functional.relu"        a function of a sub-package (nn, optim, data, rec) or of a
--                               plain table inside one
--   "nn.Linear"                 a class: the constructor, nn.Linear(...)
--   "nn.Module:load_state_dict" a method a class defines itself (inherited ones are
--                               listed once, under the class that defines them)
--   "rec.RatingSet:split"       methods of objects the sub-packages hand out (rating
--                               sets, models, rows) are listed through an instance
-- Names starting with "_" are private and metamethods are left out; each function is
-- listed once, under the first name met (keys sorted, so the walk is stable).
local ml = require("moonml")

local api = {}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  return keys
end

local function is_private(k)
  return k:sub(1, 1) == "_"
end

-- A class: callable (nn, rec and optim classes have a __call in their metatable) or
-- made by an `extend`/`new` protocol.
local function is_class(t)
  local mt = getmetatable(t)
  return (mt and mt.__call ~= nil) or rawget(t, "new") ~= nil or rawget(t, "extend") ~= nil
end

--- Walks ml and its sub-packages; returns an array of {name =, fn =} sorted by name, and
-- a map name -> fn. extra_classes: {["rec.RatingSet"] = method table, ...}, classes that
-- are reached through instances only (walked first, so they keep these names).
function api.list(extra_classes)
  local out, seen = {}, {}
  local function add(name, fn)
    if not seen[fn] then
      seen[fn] = true
      out[#out + 1] = { name = name, fn = fn }
    end
  end
  local function walk_class(prefix, cls)
    for _, k in ipairs(sorted_keys(cls)) do
      local f = rawget(cls, k)
      if type(f) == "function" and not is_private(k) and k ~= "new" then
        add(prefix .. ":" .. k, f)
      end
    end
  end
  local function walk(prefix, t)
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if not is_private(k) and not seen[v] then
        if type(v) == "function" then
          add(prefix .. k, v)
        elseif type(v) == "table" then
          seen[v] = true
          if is_class(v) then
            local ctor = getmetatable(v) and getmetatable(v).__call and v or rawget(v, "new")
            if ctor then -- base classes (nn.Module, optim.Optimizer) make no instances
              out[#out + 1] = { name = prefix .. k, fn = ctor }
            end
            walk_class(prefix .. k, v)
          else
            walk(prefix .. k .. ".", v)
          end
        end
      end
    end
  end
  for _, k in ipairs(sorted_keys(ml)) do
    local v = rawget(ml, k)
    if type(v) == "function" and not is_private(k) then
      add(k, v)
    elseif type(v) == "table" and is_private(k) then
      seen[v] = true -- private under any name (core._rec is also rec.base.C)
    end
  end
  local extra = sorted_keys(extra_classes or {})
  for _, name in ipairs(extra) do
    local cls = extra_classes[name]
    if not seen[cls] then
      seen[cls] = true
      walk_class(name, cls)
    end
  end
  for _, k in ipairs(sorted_keys(ml.methods)) do
    if not is_private(k) then
      add("methods." .. k, ml.methods[k])
    end
  end
  for _, sub in ipairs({ "data", "nn", "optim", "rec" }) do
    seen[ml[sub]] = true
    walk(sub .. ".", ml[sub])
  end
  table.sort(out, function(a, b)
    return a.name < b.name
  end)
  local by_name = {}
  for _, e in ipairs(out) do
    by_name[e.name] = e.fn
  end
  return out, by_name
end

return api
