--- ml.json: JSON text to and from Lua values (through cJSON), and ml.log for metric logs.
--
--     local cfg = ml.json.decode(io.open("config.json"):read("a"))
--     print(ml.json.encode({lr = 1e-3, layers = {784, 256, 10}}, {indent = true}))
--     ml.log("train.jsonl", {epoch = 3, loss = 0.41})   -- one line per call
--
-- Mapping: a table whose keys are exactly 1..n is an array; a table of string keys is an
-- object (written with its keys sorted, so the text is reproducible); an empty table is
-- `{}` unless it is `ml.json.empty_array` or has `ml.json.array_mt` as its metatable.
-- Other keys (booleans, floats, 0, negative numbers, holes in 1..n) and tables mixing
-- 1..n with string keys are errors naming the place. Lua integers are written as
-- integers, floats with a fraction or exponent ("2.0"), NaN and infinities are errors.
-- JSON null is `ml.json.null`. Reading: numbers with an integral value below 2^53 come
-- back as Lua integers, others as floats; an empty array comes back as an empty table
-- with `ml.json.array_mt`, so it is written back as `[]`. Cycles and nesting deeper than
-- 1000 levels are errors; malformed text gives an error with line and column.
-- @module moonml.json
local core = require("moonml.core")
local C = core._json

local json = {}

local function frozen(name)
  return function()
    error("moonml.json." .. name .. ": cannot be changed", 0)
  end
end

--- The JSON null: `ml.json.decode("null") == ml.json.null`; encode it to write null.
json.null = setmetatable({}, {
  __name = "moonml.json.null",
  __tostring = function() return "ml.json.null" end,
  __newindex = frozen("null"),
})

--- Metatable that marks a table as a JSON array even when empty.
json.array_mt = { __jsontype = "array" }

--- An empty JSON array (read-only): `ml.json.encode({tags = ml.json.empty_array})` gives
-- `{"tags":[]}`.
json.empty_array = setmetatable({}, {
  __jsontype = "array",
  __name = "moonml.json.empty_array",
  __newindex = frozen("empty_array"),
})

--- JSON text of a Lua value.
-- @param value a table, string, number, boolean or `ml.json.null`
-- @tparam[opt] table opts `{indent = true}` (2 spaces) or `{indent = n}` for n spaces;
-- compact by default
-- @treturn string
function json.encode(value, opts)
  local indent = 0
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("moonml.json.encode: options must be a table, got " .. type(opts), 0)
    end
    for k in pairs(opts) do
      if k ~= "indent" then
        error("moonml.json.encode: unknown option '" .. tostring(k) .. "'", 0)
      end
    end
    local i = opts.indent
    if i == true then
      indent = 2
    elseif math.type(i) == "integer" and i >= 0 and i <= 16 then
      indent = i
    elseif i ~= nil and i ~= false then
      error("moonml.json.encode: indent must be true, false or a number of spaces 0..16, got "
        .. tostring(i), 0)
    end
  end
  return C.encode(value, indent, json.null)
end

--- The Lua value of a JSON text.
-- @tparam string text
-- @return the value (a table for objects and arrays, `ml.json.null` for null)
function json.decode(text)
  return C.decode(text, json.null, json.array_mt)
end

--- Appends `record` to the file at `path` as one line of JSON (JSON Lines), flushed at
-- once, so a log read while training runs is always whole lines.
-- @tparam string path
-- @tparam table record e.g. `{epoch = 1, loss = 0.5}`
function json.log(path, record)
  if type(path) ~= "string" then
    error("moonml.log: expected a file path as argument 1, got " .. type(path), 0)
  end
  if type(record) ~= "table" or record == json.null then
    error("moonml.log: expected a table as argument 2, got " .. type(record), 0)
  end
  local ok, line = pcall(json.encode, record)
  if not ok then
    error((tostring(line):gsub("^moonml%.json%.encode:", "moonml.log:")), 0)
  end
  local f, err = io.open(path, "a")
  if not f then
    error("moonml.log: " .. tostring(err), 0)
  end
  local wrote, werr = f:write(line, "\n")
  local flushed = wrote and f:flush()
  f:close()
  if not (wrote and flushed) then
    error("moonml.log: " .. path .. ": " .. tostring(werr or "write failed"), 0)
  end
end

return json
