--- ml.progress: a progress bar for any loop or loader.
--
--   local bar = ml.progress.bar{total = n, desc = "epoch 1"}
--   for i = 1, n do ...; bar:update(1, {loss = l}) end
--   bar:close()
--
--   for i, xb, yb in ml.progress.wrap(loader, {total = nbatches, desc = "train"}) do ... end
--
-- On a terminal the line is redrawn in place (carriage return), at most every `mininterval`
-- seconds:
--   epoch 1:  45%|#############.................| 45/100 [00:12<00:15, 3.71 it/s] loss=0.3
-- When the output is not a terminal (a log file, a pipe) a plain line without the bar is
-- printed each time another tenth of the total is done, at least every `interval` seconds,
-- and when the bar closes.
-- @module moonml.progress
local core = require("moonml.core")

local term = core._term
local progress = {}

local function fail(fn, msg)
  error("moonml.progress." .. fn .. ": " .. msg, 0)
end

--- "MM:SS", or "H:MM:SS" from an hour on.
-- @number s seconds
-- @treturn string
function progress.format_time(s)
  s = math.floor(s)
  local h, m = s // 3600, s % 3600 // 60
  if h > 0 then
    return string.format("%d:%02d:%02d", h, m, s % 60)
  end
  return string.format("%02d:%02d", m, s % 60)
end

local function format_value(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then
      return string.format("%d", v)
    end
    return string.format("%.4g", v)
  end
  if type(v) == "userdata" and type(v.item) == "function" then -- a one-element tensor
    return format_value(v:item())
  end
  return tostring(v)
end

local Bar = {}
Bar.__index = Bar

local BAR_OPTS = { total = true, desc = true, stream = true, tty = true, clock = true,
  width = true, mininterval = true, interval = true, unit = true, disable = true }

--- A new progress bar. It draws its first line at once on a terminal.
-- @tab[opt] opts `total` (the count at 100%; without it the bar shows the count and rate
-- only), `desc` (a prefix), `stream` (io.stderr; any value with a `write` method), `tty`
-- (true: redraw in place; false: plain lines; default: whether `stream` is a terminal),
-- `width` (30 characters of bar), `mininterval` (0.1 s between redraws on a terminal),
-- `interval` (30 s: the longest wait between plain lines), `unit` ("it"), `clock` (a function
-- returning seconds; default a monotonic clock), `disable` (true: print nothing)
-- @return a Bar (also closed by `<close>` and at the end of a `wrap` loop)
function progress.bar(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("bar", "options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not BAR_OPTS[k] then
      fail("bar", "unknown option '" .. tostring(k) .. "'")
    end
  end
  local total = opts.total
  if total ~= nil and (type(total) ~= "number" or total < 0 or total ~= total) then
    fail("bar", "total must be a number >= 0, got " .. tostring(total))
  end
  if opts.desc ~= nil and type(opts.desc) ~= "string" then
    fail("bar", "desc must be a string, got " .. type(opts.desc))
  end
  local stream = opts.stream or io.stderr
  if (type(stream) ~= "table" and type(stream) ~= "userdata") or stream.write == nil then
    fail("bar", "stream must be a file handle or have a write method, got " .. type(stream))
  end
  local clock = opts.clock or core.clock
  if type(clock) ~= "function" then
    fail("bar", "clock must be a function, got " .. type(clock))
  end
  local width = opts.width or 30
  if math.type(width) ~= "integer" or width < 1 then
    fail("bar", "width must be a positive integer, got " .. tostring(width))
  end
  local tty = opts.tty
  if tty == nil then
    tty = term.isatty(stream)
  end
  local now = clock()
  local bar = setmetatable({
    total = total, desc = opts.desc, stream = stream, tty = tty and true or false,
    clock = clock, width = width, mininterval = opts.mininterval or 0.1,
    interval = opts.interval or 30, unit = opts.unit or "it", disable = opts.disable,
    n = 0, start = now, last_draw = now, last_len = 0, decile = 0, dirty = true,
    field_keys = {}, fields = {}, closed = false,
  }, Bar)
  if bar.tty and not bar.disable then
    bar:draw(now)
  end
  return bar
end

--- The line the bar shows now (without "\r" or newline).
-- @number[opt] now the clock's reading (default: read it)
-- @treturn string
function Bar:line(now)
  now = now or self.clock()
  local elapsed = math.max(0, now - self.start)
  local rate = elapsed > 0 and self.n / elapsed or nil
  local parts = { self.desc and (self.desc .. ": ") or "" }
  local rate_s
  if not rate then
    rate_s = "? " .. self.unit .. "/s"
  elseif rate >= 1 or rate == 0 then
    rate_s = string.format("%.2f %s/s", rate, self.unit)
  else
    rate_s = string.format("%.2f s/%s", 1 / rate, self.unit)
  end
  if self.total and self.total > 0 then
    local frac = math.min(1, self.n / self.total)
    parts[#parts + 1] = string.format("%3d%%", math.floor(100 * self.n / self.total))
    if self.tty then
      local filled = math.floor(self.width * frac)
      parts[#parts + 1] = "|" .. string.rep("#", filled) .. string.rep(".", self.width - filled)
        .. "| "
    else
      parts[#parts + 1] = " "
    end
    local eta = "?"
    if rate and rate > 0 then
      eta = progress.format_time(math.max(0, self.total - self.n) / rate)
    end
    parts[#parts + 1] = string.format("%s/%s [%s<%s, %s]", format_value(self.n),
      format_value(self.total), progress.format_time(elapsed), eta, rate_s)
  else
    parts[#parts + 1] = string.format("%s %s [%s, %s]", format_value(self.n), self.unit,
      progress.format_time(elapsed), rate_s)
  end
  for _, k in ipairs(self.field_keys) do
    parts[#parts + 1] = " " .. k .. "=" .. format_value(self.fields[k])
  end
  return table.concat(parts)
end

local function write(self, s)
  self.stream:write(s)
  if self.stream.flush then
    self.stream:flush()
  end
end

-- Writes the current line: in place on a terminal, as a line of its own otherwise.
--- Redraws the bar on its stream now.
function Bar:draw(now)
  local line = self:line(now)
  if self.tty then
    local pad = math.max(0, self.last_len - #line)
    write(self, "\r" .. line .. string.rep(" ", pad))
    self.last_len = #line
  else
    write(self, line .. "\n")
  end
  self.last_draw = now
  self.dirty = false
end

--- Sets the user fields shown after the counts (kept until set again; `nil` values leave
-- a field as it was). Keys show in the order they were first set (alphabetical within one
-- call). Does not redraw.
-- @tab fields e.g. {loss = 0.31, acc = 0.9}; numbers, strings or one-element tensors
function Bar:set(fields)
  if fields == nil then
    return self
  end
  if type(fields) ~= "table" then
    fail("set", "fields must be a table, got " .. type(fields))
  end
  local new = {}
  for k in pairs(fields) do
    if type(k) ~= "string" then
      fail("set", "field names must be strings, got " .. type(k))
    end
    if self.fields[k] == nil then
      new[#new + 1] = k
    end
  end
  table.sort(new)
  for _, k in ipairs(new) do
    self.field_keys[#self.field_keys + 1] = k
  end
  for k, v in pairs(fields) do
    self.fields[k] = v
  end
  self.dirty = true
  return self
end

--- Advances the count by n (default 1), sets fields, and redraws when it is time.
-- @number[opt] n
-- @tab[opt] fields as in `set`
function Bar:update(n, fields)
  if type(n) == "table" and fields == nil then
    n, fields = 1, n
  end
  n = n or 1
  if type(n) ~= "number" or n ~= n then
    fail("update", "n must be a number, got " .. tostring(n))
  end
  if self.closed then
    fail("update", "the bar is closed")
  end
  self:set(fields)
  self.n = self.n + n
  self.dirty = true
  if self.disable then
    return self
  end
  local now = self.clock()
  local done = self.total and self.n >= self.total
  if self.tty then
    if done or now - self.last_draw >= self.mininterval then
      self:draw(now)
    end
  else
    local decile = self.total and self.total > 0 and math.floor(10 * self.n / self.total) or 0
    if decile > self.decile or now - self.last_draw >= self.interval then
      self.decile = math.max(decile, self.decile)
      self:draw(now)
    end
  end
  return self
end

--- Draws the final state if it was not drawn yet, and ends the line. Closing twice does
-- nothing.
function Bar:close()
  if self.closed then
    return
  end
  self.closed = true
  if self.disable then
    return
  end
  if self.dirty then
    self:draw(self.clock())
  end
  if self.tty then
    write(self, "\n")
  end
end

Bar.__close = Bar.close

-- Iterates `iter`: a function (an iterator such as ml.data.loader's) or an array.
local function source(iter, fn)
  if type(iter) == "function" then
    return iter
  end
  if type(iter) == "table" then
    local i = 0
    return function()
      i = i + 1
      if i <= #iter then
        return iter[i]
      end
    end
  end
  fail(fn, "expected an iterator function or an array, got " .. type(iter))
end

--- Loops over `iter` with this bar: `for i, ... in bar:wrap(iter) do`, i counting from 1
-- before the iterator's own values. The count advances when the loop asks for the next
-- item; the bar closes when the loop ends, by `break` too.
-- @param iter an iterator function or an array
function Bar:wrap(iter)
  local next_item = source(iter, "wrap")
  local i = 0
  local function step()
    if i > 0 then
      self:update(1)
    end
    local vals = table.pack(next_item())
    if vals[1] == nil then
      self:close()
      return nil
    end
    i = i + 1
    return i, table.unpack(vals, 1, vals.n)
  end
  return step, self, nil, self
end

--- A bar around a loop: `for i, xb, yb in ml.progress.wrap(loader, {total = n}) do`.
-- `opts` as for `bar` (`total` defaults to #iter for an array). The bar is also the loop's
-- second value: `local it, bar = ml.progress.wrap(...)` gives access to `bar:set{...}`.
-- @param iter an iterator function or an array
-- @tab[opt] opts
function progress.wrap(iter, opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail("wrap", "options must be a table, got " .. type(opts))
  end
  source(iter, "wrap")
  if opts.total == nil and type(iter) == "table" then
    local o = { total = #iter }
    for k, v in pairs(opts) do
      o[k] = v
    end
    opts = o
  end
  return progress.bar(opts):wrap(iter)
end

return progress
