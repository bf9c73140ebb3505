-- Shared by the specs: loading fixtures and comparing tensors with reference values.
local ml = require("moonml")

local helpers = {}

--- Loads spec/fixtures/<name>.lua (a Lua file returning a table).
function helpers.fixture(name)
  local chunk = assert(loadfile("spec/fixtures/" .. name .. ".lua", "t", {}))
  return chunk()
end

local function flatten(t, out)
  if type(t) ~= "table" then
    out[#out + 1] = t
    return out
  end
  for _, v in ipairs(t) do
    flatten(v, out)
  end
  return out
end

local function shape_of(t, out)
  out = out or {}
  if type(t) == "table" then
    out[#out + 1] = #t
    if #t > 0 then
      shape_of(t[1], out)
    end
  end
  return out
end

local function same(a, b, tol)
  if type(a) == "boolean" or type(b) == "boolean" then
    return a == b
  end
  if a ~= a or b ~= b then
    return a ~= a and b ~= b -- NaN matches NaN
  end
  if a == b then
    return true -- equal infinities
  end
  return math.abs(a - b) <= tol.atol + tol.rtol * math.abs(b)
end

--- Asserts that tensor `x` holds `expected` (a nested table, number or tensor)
-- with the same shape, within rtol/atol (default 1e-5 / 1e-6).
-- `expected` may be {shape = {...}, values = {...flat...}} as fixtures write it.
function helpers.assert_close(x, expected, opts)
  opts = opts or {}
  local tol = { rtol = opts.rtol or 1e-5, atol = opts.atol or 1e-6 }
  assert(ml.is_tensor(x), "expected a tensor, got " .. type(x))
  local want_shape, want
  if ml.is_tensor(expected) then
    want_shape, want = expected:shape(), flatten(expected:totable(), {})
  elseif type(expected) == "table" and expected.values then
    want_shape, want = expected.shape, expected.values
  elseif type(expected) == "table" then
    want_shape, want = shape_of(expected), flatten(expected, {})
  else
    want_shape, want = {}, { expected }
  end
  local got_shape = x:shape()
  assert(
    table.concat(got_shape, ",") == table.concat(want_shape, ","),
    string.format("shape {%s} ~= expected {%s}", table.concat(got_shape, ", "),
      table.concat(want_shape, ", "))
  )
  if opts.dtype then
    assert(x:dtype() == opts.dtype, "dtype " .. x:dtype() .. " ~= expected " .. opts.dtype)
  end
  local got = flatten(x:totable(), {})
  assert(#got == #want, string.format("%d values ~= expected %d", #got, #want))
  for i = 1, #got do
    if not same(got[i], want[i], tol) then
      error(string.format("value %d: %s ~= expected %s (rtol %g, atol %g)", i,
        tostring(got[i]), tostring(want[i]), tol.rtol, tol.atol), 2)
    end
  end
  return true
end

--- Asserts that fn(...) raises an error whose message starts with `prefix`
-- (e.g. "moonml.matmul:") and, if given, contains `fragment`.
function helpers.assert_error(prefix, fragment, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error starting with " .. prefix .. ", but the call succeeded")
  err = tostring(err)
  assert(err:sub(1, #prefix) == prefix, "error '" .. err .. "' does not start with " .. prefix)
  if fragment then
    assert(err:find(fragment, 1, true),
      "error '" .. err .. "' does not mention '" .. fragment .. "'")
  end
  return err
end

--- The shared data folder (../shared/data), or nil with a message when it is absent.
function helpers.shared_data(sub)
  local dir = os.getenv("MOONML_DATA") or "../shared/data"
  local path = dir .. "/" .. sub
  local f = io.open(path, "r")
  if not f then
    return nil, "skipped: " .. path .. " is absent (set MOONML_DATA to the shared data folder)"
  end
  f:close()
  return path
end

return helpers
