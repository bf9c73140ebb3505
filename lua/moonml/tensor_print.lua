--- tostring for tensors, after PyTorch's print: values, then shape and dtype.
-- Tensors over 1000 elements show the first and last 3 entries of each dimension.
-- Unlike PyTorch, long rows are not wrapped at 80 columns.
local EDGE, THRESHOLD = 3, 1000

local function visible(n, summarize)
  if summarize and n > 2 * EDGE then
    local idx = {}
    for i = 1, EDGE do
      idx[#idx + 1] = i
    end
    idx[#idx + 1] = false -- the "..." marker
    for i = n - EDGE + 1, n do
      idx[#idx + 1] = i
    end
    return idx
  end
  local idx = {}
  for i = 1, n do
    idx[i] = i
  end
  return idx
end

-- Collects the displayed values (row by row) to choose one format for all.
local function collect(x, summarize, out)
  if x:dim() == 0 then
    out[#out + 1] = x:item()
    return
  end
  for _, i in ipairs(visible(x:size(1), summarize)) do
    if i then
      if x:dim() == 1 then
        out[#out + 1] = x[i]
      else
        collect(x[i], summarize, out)
      end
    end
  end
end

-- PyTorch's _Formatter: the nonzero finite values decide. All whole numbers print as
-- "3." unless their range calls for scientific notation, which is also used for
-- fractions when max/min > 1000, max > 1e8 or min < 1e-4; otherwise 4 decimals.
local function float_formatter(values)
  local int_mode, maxabs, minabs = true, 0, math.huge
  for _, v in ipairs(values) do
    if v == v and v ~= 0 and v ~= math.huge and v ~= -math.huge then
      if v ~= math.floor(v) then
        int_mode = false
      end
      local a = math.abs(v)
      maxabs = math.max(maxabs, a)
      minabs = math.min(minabs, a)
    end
  end
  local sci = minabs < math.huge
    and (maxabs / minabs > 1000 or maxabs > 1e8 or (not int_mode and minabs < 1e-4))
  local function special(v)
    if v ~= v then
      return "nan"
    elseif v == math.huge then
      return "inf"
    elseif v == -math.huge then
      return "-inf"
    end
  end
  local pattern = sci and "%.4e" or int_mode and "%.0f." or "%.4f"
  return function(v)
    return special(v) or string.format(pattern, v)
  end
end

local function format_values(x, summarize)
  local values = {}
  collect(x, summarize, values)
  local dtype = x:dtype()
  local fmt, counts
  if dtype == "bool" then
    fmt = tostring
  elseif dtype == "int64" then
    fmt = function(v)
      return string.format("%d", v)
    end
  else
    fmt = float_formatter(values)
    -- as PyTorch: only nonzero finite values set the column width
    counts = function(v)
      return v == v and v ~= 0 and v ~= math.huge and v ~= -math.huge
    end
  end
  local width = 1
  for _, v in ipairs(values) do
    if not counts or counts(v) then
      width = math.max(width, #fmt(v))
    end
  end
  return function(v)
    local s = fmt(v)
    return string.rep(" ", width - #s) .. s
  end
end

local function render(x, fmt, summarize, indent)
  if x:dim() == 0 then
    return fmt(x:item())
  end
  local parts = {}
  local n = x:size(1)
  for _, i in ipairs(visible(n, summarize)) do
    if not i then
      parts[#parts + 1] = "..."
    elseif x:dim() == 1 then
      parts[#parts + 1] = fmt(x[i])
    else
      parts[#parts + 1] = render(x[i], fmt, summarize, indent .. " ")
    end
  end
  local sep = ", "
  if x:dim() > 1 then
    sep = "," .. string.rep("\n", x:dim() - 1) .. indent .. " "
  end
  return "[" .. table.concat(parts, sep) .. "]"
end

return function(x)
  if not pcall(x.dim, x) then
    return "tensor(closed)" -- like Lua's "file (closed)"
  end
  local summarize = x:numel() > THRESHOLD
  local body
  if x:numel() == 0 and x:dim() > 0 then
    body = "[]" -- as PyTorch prints any empty tensor; the shape follows
  else
    body = render(x, format_values(x, summarize), summarize, "       ")
  end
  local extras = { "shape={" .. table.concat(x:shape(), ", ") .. "}" }
  if x:dtype() ~= "float32" then
    extras[#extras + 1] = "dtype=" .. x:dtype()
  end
  return "tensor(" .. body .. ", " .. table.concat(extras, ", ") .. ")"
end
