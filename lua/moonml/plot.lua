--- ml.plot: line plots, scatter plots and heatmaps rendered to PNG, without Python.
--
--   local fig = ml.plot.figure{width = 640, height = 480, title = "loss"}
--   fig:line(epochs, train_loss, {label = "train"})
--   fig:line(epochs, test_loss, {label = "test", color = {0.84, 0.15, 0.16}})
--   fig:xlabel("epoch"); fig:ylabel("cross-entropy")
--   fig:save("loss.png")
--   ml.plot.heatmap(confusion, {labels = classes, title = "confusion", path = "cm.png"})
--
-- Figures are drawn into a 3 x H x W float32 tensor (fig:render()) by the C primitives of
-- core._image (anti-aliased lines and markers, rectangles, a 5 x 9 bitmap font) and saved
-- with ml.image.save. Series without a colour take the next of `plot.palette` (matplotlib's
-- "tab10" colours, a Lua array of {r, g, b}).
-- @module moonml.plot
local ml = require("moonml")
local core = require("moonml.core")

local draw = core._image
local FONT = draw.font -- width, height (glyph rows), advance
local CAP = 7 -- rows above the baseline

local plot = {}

local function fail(fn, msg)
  error("moonml.plot." .. fn .. ": " .. msg, 0)
end

-- ------------------------------------------------------------------ colours

-- The colours given to series in turn (matplotlib's "tab10"), as plot.palette.
plot.palette = {
  { 0.122, 0.467, 0.706 }, { 1.000, 0.498, 0.055 }, { 0.173, 0.627, 0.173 },
  { 0.839, 0.153, 0.157 }, { 0.580, 0.404, 0.741 }, { 0.549, 0.337, 0.294 },
  { 0.890, 0.467, 0.761 }, { 0.498, 0.498, 0.498 }, { 0.737, 0.741, 0.133 },
  { 0.090, 0.745, 0.812 },
}

local NAMED = {
  black = { 0, 0, 0 }, white = { 1, 1, 1 }, gray = { 0.5, 0.5, 0.5 }, grey = { 0.5, 0.5, 0.5 },
  red = { 0.839, 0.153, 0.157 }, green = { 0.173, 0.627, 0.173 },
  blue = { 0.122, 0.467, 0.706 }, orange = { 1.000, 0.498, 0.055 },
  purple = { 0.580, 0.404, 0.741 }, brown = { 0.549, 0.337, 0.294 },
}

local INK = { 0.1, 0.1, 0.1 }
local AXIS = { 0.25, 0.25, 0.25 }
local GRID = { 0.9, 0.9, 0.9 }
local WHITE = { 1, 1, 1 }

-- {r, g, b} in [0, 1], "#rrggbb" or a name from NAMED.
local function parse_color(c, fn)
  if type(c) == "string" then
    if NAMED[c] then
      return NAMED[c]
    end
    local r, g, b = c:match("^#(%x%x)(%x%x)(%x%x)$")
    if r then
      return { tonumber(r, 16) / 255, tonumber(g, 16) / 255, tonumber(b, 16) / 255 }
    end
  elseif type(c) == "table" and #c == 3 then
    for k = 1, 3 do
      if type(c[k]) ~= "number" or not (c[k] >= 0 and c[k] <= 1) then
        fail(fn, "color components must be numbers in [0, 1]")
      end
    end
    return { c[1], c[2], c[3] }
  end
  fail(fn, "color must be {r, g, b} in [0, 1], \"#rrggbb\" or a name, got " .. tostring(c))
end

-- Colour maps: evenly spaced stops, interpolated linearly.
local CMAPS = {
  blues = { "#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5",
    "#08519c", "#08306b" },
  viridis = { "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
    "#6ece58", "#b5de2b", "#fde725" },
  gray = { "#ffffff", "#000000" },
}
for name, stops in pairs(CMAPS) do
  for k, hex in ipairs(stops) do
    stops[k] = parse_color(hex, "cmap")
  end
  CMAPS[name] = stops
end

-- The colour at t in [0, 1] of a colour map.
local function cmap_color(stops, t)
  t = t ~= t and 0 or math.max(0, math.min(1, t))
  local pos = t * (#stops - 1)
  local k = math.min(math.floor(pos), #stops - 2)
  local f = pos - k
  local a, b = stops[k + 1], stops[k + 2]
  return { a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, a[3] + (b[3] - a[3]) * f }
end

-- ------------------------------------------------------------------ text and numbers

local function text_width(s, scale)
  scale = scale or 1
  return #s == 0 and 0 or (#s * FONT.advance - 1) * scale
end

-- Draws s with its top-left corner at (x, y); align "left", "center" or "right" around x.
local function put_text(canvas, s, x, y, opts)
  opts = opts or {}
  local scale = opts.scale or 1
  local w = text_width(s, scale)
  if opts.align == "center" then
    x = x - w // 2
  elseif opts.align == "right" then
    x = x - w
  end
  draw.text(canvas, s, math.floor(x), math.floor(y), scale, false, opts.color or INK)
end

--- A "nice" tick step (1, 2 or 5 times a power of ten) for about `target` intervals over
-- `span`, and the number of decimals its multiples need.
-- @number span
-- @int target
-- @treturn number step
-- @treturn int decimals
function plot.nice_step(span, target)
  local raw = span / math.max(target, 1)
  local e = math.floor(math.log(raw, 10))
  local f = raw / 10 ^ e
  local m
  if f < 1.5 then
    m = 1
  elseif f < 3.5 then
    m = 2
  elseif f < 7.5 then
    m = 5
  else
    m, e = 1, e + 1
  end
  return m * 10 ^ e, math.max(0, -e)
end

--- Tick values in [lo, hi] at multiples of a nice step, with their labels.
-- @treturn {number,...} values
-- @treturn {string,...} labels
function plot.ticks(lo, hi, target)
  local step, decimals = plot.nice_step(hi - lo, target)
  local first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
  local big = math.max(math.abs(lo), math.abs(hi))
  local values, labels = {}, {}
  for k = first, last do
    local v = k * step
    values[#values + 1] = v
    local s
    if big >= 1e6 or step < 1e-4 then
      s = string.format("%.3g", v)
    else
      s = string.format("%." .. decimals .. "f", v)
    end
    if s:match("^%-0%.?0*$") then
      s = s:sub(2) -- no "-0"
    end
    labels[#labels + 1] = s
  end
  return values, labels
end

-- ------------------------------------------------------------------ data

-- A Lua array of numbers from a table or a 1-D tensor.
local function numbers(v, fn, what)
  if ml.is_tensor(v) then
    if v:dim() ~= 1 then
      fail(fn, what .. " must be a 1-D tensor or a table of numbers, got a " .. v:dim()
        .. "-D tensor")
    end
    return v:double():totable()
  end
  if type(v) ~= "table" then
    fail(fn, what .. " must be a table of numbers or a 1-D tensor, got " .. type(v))
  end
  local out = {}
  for i = 1, #v do
    if type(v[i]) ~= "number" then
      fail(fn, string.format("%s[%d] is a %s, not a number", what, i, type(v[i])))
    end
    out[i] = v[i]
  end
  return out
end

local function finite(v)
  return v == v and v ~= math.huge and v ~= -math.huge
end

-- ------------------------------------------------------------------ figures

local Figure = {}
Figure.__index = Figure

local FIGURE_OPTS = { width = true, height = true, title = true, xlabel = true, ylabel = true,
  xlim = true, ylim = true, legend = true, grid = true }
local LEGEND_POS = { ["upper right"] = true, ["upper left"] = true, ["lower right"] = true,
  ["lower left"] = true }

local function check_opts(opts, allowed, fn)
  opts = opts or {}
  if type(opts) ~= "table" then
    fail(fn, "options must be a table, got " .. type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then
      fail(fn, "unknown option '" .. tostring(k) .. "'")
    end
  end
  return opts
end

local function check_limits(v, fn, what)
  if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number"
      or not finite(v[1]) or not finite(v[2]) or v[1] >= v[2] then
    fail(fn, what .. " must be {low, high} with low < high")
  end
  return { v[1], v[2] }
end

local function check_string(v, fn, what)
  if v ~= nil and type(v) ~= "string" then
    fail(fn, what .. " must be a string, got " .. type(v))
  end
  return v
end

--- A new figure.
-- @tab[opt] opts `width` (640), `height` (480), `title`, `xlabel`, `ylabel`, `xlim` and
-- `ylim` ({low, high}; default: the data's range plus 4%), `legend` ("upper right" (default),
-- "upper left", "lower right", "lower left", or false), `grid` (true: light lines at the ticks)
-- @return a Figure
function plot.figure(opts)
  opts = check_opts(opts, FIGURE_OPTS, "figure")
  local fig = setmetatable({ series = {}, width = opts.width or 640, height = opts.height or 480,
    legend_pos = "upper right", grid = opts.grid ~= false }, Figure)
  for _, key in ipairs({ "width", "height" }) do
    local v = fig[key]
    if math.type(v) ~= "integer" or v < 64 or v > 8192 then
      fail("figure", key .. " must be an integer from 64 to 8192, got " .. tostring(v))
    end
  end
  fig.title_text = check_string(opts.title, "figure", "title")
  fig.xlabel_text = check_string(opts.xlabel, "figure", "xlabel")
  fig.ylabel_text = check_string(opts.ylabel, "figure", "ylabel")
  if opts.xlim ~= nil then
    fig.xlim_v = check_limits(opts.xlim, "figure", "xlim")
  end
  if opts.ylim ~= nil then
    fig.ylim_v = check_limits(opts.ylim, "figure", "ylim")
  end
  if opts.legend ~= nil then
    fig:legend(opts.legend)
  end
  return fig
end

--- Sets the title.
-- @string s
function Figure:title(s)
  self.title_text = check_string(s, "title", "the title")
  return self
end

--- Sets the x-axis label.
-- @string s
function Figure:xlabel(s)
  self.xlabel_text = check_string(s, "xlabel", "the label")
  return self
end

--- Sets the y-axis label (drawn upwards along the axis).
-- @string s
function Figure:ylabel(s)
  self.ylabel_text = check_string(s, "ylabel", "the label")
  return self
end

--- Fixes the x range.
-- @number lo
-- @number hi
function Figure:xlim(lo, hi)
  self.xlim_v = check_limits({ lo, hi }, "xlim", "the range")
  return self
end

--- Fixes the y range.
-- @number lo
-- @number hi
function Figure:ylim(lo, hi)
  self.ylim_v = check_limits({ lo, hi }, "ylim", "the range")
  return self
end

--- Places the legend: "upper right", "upper left", "lower right", "lower left", or false
-- for none.
function Figure:legend(pos)
  if pos ~= false and not LEGEND_POS[pos] then
    fail("legend", "position must be \"upper right\", \"upper left\", \"lower right\", "
      .. "\"lower left\" or false, got " .. tostring(pos))
  end
  self.legend_pos = pos
  return self
end

local SERIES_OPTS = { label = true, color = true, width = true, size = true }

local function add_series(fig, kind, fn, xs, ys, opts)
  -- fig:line(ys [, opts]): x is 1, 2, ...
  if ys == nil or (type(ys) == "table" and not ml.is_tensor(ys) and #ys == 0
        and next(ys) ~= nil) then
    xs, ys, opts = nil, xs, ys
  end
  opts = check_opts(opts, SERIES_OPTS, fn)
  ys = numbers(ys, fn, "ys")
  if xs == nil then
    xs = {}
    for i = 1, #ys do
      xs[i] = i
    end
  else
    xs = numbers(xs, fn, "xs")
  end
  if #xs ~= #ys then
    fail(fn, string.format("xs has %d values but ys has %d", #xs, #ys))
  end
  local s = { kind = kind, xs = xs, ys = ys, label = check_string(opts.label, fn, "label") }
  s.color = opts.color ~= nil and parse_color(opts.color, fn)
    or plot.palette[(#fig.series) % #plot.palette + 1]
  local size = opts[kind == "line" and "width" or "size"] or (kind == "line" and 2 or 3)
  if type(size) ~= "number" or not (size > 0 and size <= 50) then
    fail(fn, (kind == "line" and "width" or "size") .. " must be a number in (0, 50]")
  end
  s.size = size
  fig.series[#fig.series + 1] = s
  return fig
end

--- Adds a line through the points (xs[i], ys[i]); a NaN breaks the line.
-- `fig:line(ys, opts)` takes x = 1, 2, ....
-- @param xs table or 1-D tensor
-- @param ys table or 1-D tensor
-- @tab[opt] opts `label` (shown in the legend), `color` ({r, g, b} in [0, 1], "#rrggbb" or a
-- name; default: the next colour of plot.palette), `width` (2 pixels)
function Figure:line(xs, ys, opts)
  return add_series(self, "line", "line", xs, ys, opts)
end

--- Adds a dot at every point (xs[i], ys[i]).
-- @param xs table or 1-D tensor
-- @param ys table or 1-D tensor
-- @tab[opt] opts `label`, `color`, `size` (the dots' radius, 3 pixels)
function Figure:scatter(xs, ys, opts)
  return add_series(self, "scatter", "scatter", xs, ys, opts)
end

-- The data range of one axis, widened by 4% each side (a flat range by +-0.5, or 10%).
local function data_range(series, key)
  local lo, hi = math.huge, -math.huge
  for _, s in ipairs(series) do
    for _, v in ipairs(s[key]) do
      if finite(v) then
        lo, hi = math.min(lo, v), math.max(hi, v)
      end
    end
  end
  if lo > hi then
    return 0, 1
  end
  if lo == hi then
    local d = lo == 0 and 0.5 or math.abs(lo) * 0.1
    return lo - d, hi + d
  end
  local pad = (hi - lo) * 0.04
  return lo - pad, hi + pad
end

--- Where everything goes, for the figure as it is now.
-- @return a table: `x0`, `y0` (0-based pixel offsets of the plot area's top-left corner),
-- `pw`, `ph` (its size), `xmin`, `xmax`, `ymin`, `ymax` (the data ranges shown), `xticks`,
-- `yticks` (tick values) and `xlabels`, `ylabels` (their text)
function Figure:layout()
  local L = {}
  local W, H = self.width, self.height
  L.xmin, L.xmax = table.unpack(self.xlim_v or { data_range(self.series, "xs") })
  L.ymin, L.ymax = table.unpack(self.ylim_v or { data_range(self.series, "ys") })
  local pad, tick = 10, 5
  local top = pad + (self.title_text and (FONT.height * 2 + 8) or 4)
  local bottom = pad + tick + 4 + FONT.height + (self.xlabel_text and (FONT.height + 8) or 0)
  local ph = H - top - bottom
  L.yticks, L.ylabels = plot.ticks(L.ymin, L.ymax, math.max(2, ph // 60))
  local label_w = 0
  for _, s in ipairs(L.ylabels) do
    label_w = math.max(label_w, text_width(s))
  end
  local left = pad + (self.ylabel_text and (FONT.height + 8) or 0) + label_w + 4 + tick
  local right = pad + 10
  local pw = W - left - right
  if pw < 16 or ph < 16 then
    fail("render", string.format("a %d x %d figure leaves no room for the plot", W, H))
  end
  L.xticks, L.xlabels = plot.ticks(L.xmin, L.xmax, math.max(2, pw // 90))
  L.x0, L.y0, L.pw, L.ph, L.tick = left, top, pw, ph, tick
  return L
end

-- Data to pixel coordinates inside the plot area (0, 0 its top-left corner).
local function area_x(L, x)
  return (x - L.xmin) / (L.xmax - L.xmin) * L.pw
end

local function area_y(L, y)
  return (L.ymax - y) / (L.ymax - L.ymin) * L.ph
end

--- The pixel (column, row, both 1-based as in canvas:get(c, row, column)) of the rendered
-- image where the data point (x, y) falls, for the figure as it is now.
-- @treturn int column
-- @treturn int row
function Figure:to_pixel(x, y)
  local L = self:layout()
  return math.floor(L.x0 + area_x(L, x)) + 1, math.floor(L.y0 + area_y(L, y)) + 1
end

local function draw_series(area, L, s)
  local xy = {}
  for i = 1, #s.xs do
    local x, y = s.xs[i], s.ys[i]
    if finite(x) and finite(y) then
      xy[#xy + 1], xy[#xy + 2] = area_x(L, x), area_y(L, y)
    else
      xy[#xy + 1], xy[#xy + 2] = 0 / 0, 0 / 0
    end
  end
  if s.kind == "line" then
    draw.polyline(area, xy, s.size, s.color)
  else
    draw.markers(area, xy, s.size, s.color)
  end
end

local function draw_legend(canvas, L, fig)
  local items = {}
  local tw = 0
  for _, s in ipairs(fig.series) do
    if s.label then
      items[#items + 1] = s
      tw = math.max(tw, text_width(s.label))
    end
  end
  if #items == 0 or not fig.legend_pos then
    return
  end
  local row_h, sample_w, inner = FONT.height + 6, 22, 6
  local bw, bh = inner + sample_w + 6 + tw + inner, inner * 2 + #items * row_h - 6
  local bx = fig.legend_pos:find("left") and L.x0 + 10 or L.x0 + L.pw - 10 - bw
  local by = fig.legend_pos:find("upper") and L.y0 + 10 or L.y0 + L.ph - 10 - bh
  draw.rect(canvas, bx, by, bx + bw, by + bh, { 0.8, 0.8, 0.8 })
  draw.rect(canvas, bx + 1, by + 1, bx + bw - 1, by + bh - 1, WHITE)
  for k, s in ipairs(items) do
    local ty = by + inner + (k - 1) * row_h
    local cy = ty + CAP / 2
    if s.kind == "line" then
      draw.polyline(canvas, { bx + inner, cy, bx + inner + sample_w, cy }, s.size, s.color)
    else
      draw.markers(canvas, { bx + inner + sample_w / 2, cy }, s.size, s.color)
    end
    put_text(canvas, s.label, bx + inner + sample_w + 6, ty)
  end
end

--- Draws the figure.
-- @return a 3 x height x width float32 tensor (RGB in [0, 1])
function Figure:render()
  local L = self:layout()
  local canvas = ml.ones(3, self.height, self.width)
  -- the plot area is drawn on its own canvas, so that nothing spills over its edges
  local area = ml.ones(3, L.ph, L.pw)
  local xs, ys = {}, {}
  for k, v in ipairs(L.xticks) do
    xs[k] = math.floor(area_x(L, v))
  end
  for k, v in ipairs(L.yticks) do
    ys[k] = math.floor(area_y(L, v))
  end
  if self.grid then
    for _, x in ipairs(xs) do
      draw.rect(area, x, 0, x + 1, L.ph, GRID)
    end
    for _, y in ipairs(ys) do
      draw.rect(area, 0, y, L.pw, y + 1, GRID)
    end
  end
  for _, s in ipairs(self.series) do
    draw_series(area, L, s)
  end
  canvas:narrow(2, L.y0 + 1, L.ph):narrow(3, L.x0 + 1, L.pw):copy_(area)
  -- frame, ticks and their numbers
  local x0, y0, x1, y1 = L.x0, L.y0, L.x0 + L.pw, L.y0 + L.ph
  draw.rect(canvas, x0 - 1, y0 - 1, x1 + 1, y0, AXIS)
  draw.rect(canvas, x0 - 1, y1, x1 + 1, y1 + 1, AXIS)
  draw.rect(canvas, x0 - 1, y0 - 1, x0, y1 + 1, AXIS)
  draw.rect(canvas, x1, y0 - 1, x1 + 1, y1 + 1, AXIS)
  for k, x in ipairs(xs) do
    draw.rect(canvas, x0 + x, y1 + 1, x0 + x + 1, y1 + 1 + L.tick, AXIS)
    put_text(canvas, L.xlabels[k], x0 + x + 1, y1 + L.tick + 4, { align = "center" })
  end
  for k, y in ipairs(ys) do
    draw.rect(canvas, x0 - 1 - L.tick, y0 + y, x0 - 1, y0 + y + 1, AXIS)
    put_text(canvas, L.ylabels[k], x0 - L.tick - 4, y0 + y - CAP // 2, { align = "right" })
  end
  if self.title_text then
    put_text(canvas, self.title_text, x0 + L.pw // 2, 10, { scale = 2, align = "center" })
  end
  if self.xlabel_text then
    put_text(canvas, self.xlabel_text, x0 + L.pw // 2, y1 + L.tick + 4 + FONT.height + 6,
      { align = "center" })
  end
  if self.ylabel_text then
    local w = text_width(self.ylabel_text)
    draw.text(canvas, self.ylabel_text, 10, y0 + (L.ph - w) // 2, 1, true, INK)
  end
  draw_legend(canvas, L, self)
  return canvas
end

--- Renders the figure and writes it as a PNG file.
-- @string path
-- @return the rendered 3 x H x W tensor
function Figure:save(path)
  if type(path) ~= "string" then
    fail("save", "expected a file name, got " .. type(path))
  end
  local img = self:render()
  ml.image.save(img, path)
  return img
end

-- ------------------------------------------------------------------ heatmaps

local HEATMAP_OPTS = { labels = true, row_labels = true, col_labels = true, title = true,
  xlabel = true, ylabel = true, path = true, cmap = true, fmt = true, vmin = true,
  vmax = true, cell = true, colorbar = true }

-- The matrix as rows of numbers, from a 2-D tensor or a table of rows.
local function matrix_rows(m)
  if ml.is_tensor(m) then
    if m:dim() ~= 2 then
      fail("heatmap", "expected a 2-D matrix, got a " .. m:dim() .. "-D tensor")
    end
    return m:double():totable()
  end
  if type(m) ~= "table" or #m == 0 or type(m[1]) ~= "table" then
    fail("heatmap", "expected a 2-D tensor or a table of rows, got " .. type(m))
  end
  local rows, ncol = {}, #m[1]
  for i, r in ipairs(m) do
    if type(r) ~= "table" or #r ~= ncol then
      fail("heatmap", "row " .. i .. " does not have " .. ncol .. " numbers like row 1")
    end
    rows[i] = numbers(r, "heatmap", "row " .. i)
  end
  return rows
end

local function check_labels(labels, n, what)
  if labels == nil then
    local out = {}
    for i = 1, n do
      out[i] = tostring(i)
    end
    return out
  end
  if type(labels) ~= "table" or #labels ~= n then
    fail("heatmap", string.format("%s must be a table of %d names", what, n))
  end
  local out = {}
  for i = 1, n do
    out[i] = tostring(labels[i])
  end
  return out
end

--- A heatmap of a matrix with each value written in its cell: a confusion matrix, say.
-- Rows run down (row 1 at the top), columns across; a colour bar at the right shows the scale.
-- @param m a 2-D tensor or a table of rows
-- @tab[opt] opts `labels` (names for both rows and columns), `row_labels`, `col_labels`,
-- `title`, `xlabel`, `ylabel`, `cmap` ("blues" (default), "viridis" or "gray"), `fmt` (a
-- string.format pattern; default "%d" when every value is a whole number, else "%.2f"),
-- `vmin`/`vmax` (the colour scale's ends; default the data's), `cell` (cell size in pixels;
-- default fits the numbers and labels), `colorbar` (true), `path` (also save the PNG there)
-- @return a 3 x H x W float32 tensor
-- @return where the cells are: `{x =, y =, cell =, colorbar_x =}`, 0-based pixel offsets of
-- the top-left corner of cell (1, 1) and of the colour bar, and the cell size
function plot.heatmap(m, opts)
  opts = check_opts(opts, HEATMAP_OPTS, "heatmap")
  local rows = matrix_rows(m)
  local nr, nc = #rows, #rows[1]
  if nc == 0 then
    fail("heatmap", "the matrix has no columns")
  end
  local row_labels = check_labels(opts.row_labels or opts.labels, nr, "row_labels")
  local col_labels = check_labels(opts.col_labels or opts.labels, nc, "col_labels")
  local stops = CMAPS[opts.cmap or "blues"]
  if not stops then
    fail("heatmap", "cmap must be \"blues\", \"viridis\" or \"gray\", got " .. tostring(opts.cmap))
  end
  for _, key in ipairs({ "title", "xlabel", "ylabel", "path", "fmt" }) do
    check_string(opts[key], "heatmap", key)
  end
  local lo, hi, whole = math.huge, -math.huge, true
  for _, r in ipairs(rows) do
    for _, v in ipairs(r) do
      if finite(v) then
        lo, hi = math.min(lo, v), math.max(hi, v)
        whole = whole and v == math.floor(v)
      end
    end
  end
  if lo > hi then
    lo, hi = 0, 1
  end
  lo, hi = opts.vmin or lo, opts.vmax or hi
  if type(lo) ~= "number" or type(hi) ~= "number" then
    fail("heatmap", "vmin and vmax must be numbers")
  end
  if hi <= lo then
    hi = lo + 1
  end
  local fmt = opts.fmt or (whole and "%d" or "%.2f")
  local texts, text_w = {}, 0
  for i, r in ipairs(rows) do
    texts[i] = {}
    for j, v in ipairs(r) do
      local s
      if v ~= v then
        s = "nan"
      elseif not finite(v) then
        s = v > 0 and "inf" or "-inf"
      elseif fmt == "%d" then
        s = string.format("%d", math.floor(v))
      else
        s = string.format(fmt, v)
      end
      texts[i][j] = s
      text_w = math.max(text_w, text_width(s))
    end
  end
  local col_w = 0
  for _, s in ipairs(col_labels) do
    col_w = math.max(col_w, text_width(s))
  end
  local row_w = 0
  for _, s in ipairs(row_labels) do
    row_w = math.max(row_w, text_width(s))
  end
  local cell = opts.cell or math.max(40, 2 * text_w + 14)
  if math.type(cell) ~= "integer" or cell < 8 or cell > 512 then
    fail("heatmap", "cell must be an integer from 8 to 512, got " .. tostring(cell))
  end
  local value_scale = 2 * text_w + 8 <= cell and 2 or 1
  -- column labels across when they fit in a cell, else upwards
  local vertical = col_w > cell - 4
  local col_h = vertical and col_w or FONT.height
  local pad = 10
  local top = pad + (opts.title and (FONT.height * 2 + 8) or 0)
  local left = pad + (opts.ylabel and (FONT.height + 8) or 0) + row_w + 6
  local gx0, gy0 = left, top
  local gw, gh = nc * cell, nr * cell
  local bottom_y = gy0 + gh + 6 + col_h + (opts.xlabel and (8 + FONT.height) or 0) + pad
  local show_bar = opts.colorbar ~= false
  local bar_ticks, bar_labels = {}, {}
  local bar_x, bar_w = gx0 + gw + 16, 14
  local width = gx0 + gw + pad
  if show_bar then
    bar_ticks, bar_labels = plot.ticks(lo, hi, math.max(2, gh // 50))
    local lw = 0
    for _, s in ipairs(bar_labels) do
      lw = math.max(lw, text_width(s))
    end
    width = bar_x + bar_w + 7 + lw + pad
  end
  if opts.title then
    width = math.max(width, text_width(opts.title, 2) + 2 * pad)
  end
  local height = math.max(bottom_y, gy0 + gh + pad)
  if width > 8192 or height > 8192 then
    fail("heatmap", "the picture would be larger than 8192 pixels; pass a smaller cell")
  end
  local canvas = ml.ones(3, height, width)
  for i = 1, nr do
    for j = 1, nc do
      local v = rows[i][j]
      local x, y = gx0 + (j - 1) * cell, gy0 + (i - 1) * cell
      local c = finite(v) and cmap_color(stops, (v - lo) / (hi - lo)) or { 0.8, 0.8, 0.8 }
      draw.rect(canvas, x, y, x + cell, y + cell, c)
      local lum = 0.299 * c[1] + 0.587 * c[2] + 0.114 * c[3]
      put_text(canvas, texts[i][j], x + cell // 2, y + (cell - CAP * value_scale) // 2,
        { align = "center", color = lum < 0.5 and WHITE or INK, scale = value_scale })
    end
  end
  for i, s in ipairs(row_labels) do
    put_text(canvas, s, gx0 - 6, gy0 + (i - 1) * cell + (cell - CAP) // 2, { align = "right" })
  end
  for j, s in ipairs(col_labels) do
    local cx = gx0 + (j - 1) * cell + cell // 2
    if vertical then
      draw.text(canvas, s, cx - CAP // 2, gy0 + gh + 6, 1, true, INK)
    else
      put_text(canvas, s, cx, gy0 + gh + 6, { align = "center" })
    end
  end
  if opts.title then
    -- centred over the cells when it fits there, else kept inside the picture
    local half = text_width(opts.title, 2) // 2
    local cx = math.max(pad + half, math.min(gx0 + gw // 2, width - pad - half))
    put_text(canvas, opts.title, cx, pad, { scale = 2, align = "center" })
  end
  if opts.xlabel then
    put_text(canvas, opts.xlabel, gx0 + gw // 2, gy0 + gh + 6 + col_h + 8, { align = "center" })
  end
  if opts.ylabel then
    local w = text_width(opts.ylabel)
    draw.text(canvas, opts.ylabel, pad, gy0 + (gh - w) // 2, 1, true, INK)
  end
  if show_bar then
    for y = 0, gh - 1 do
      draw.rect(canvas, bar_x, gy0 + y, bar_x + bar_w, gy0 + y + 1,
        cmap_color(stops, 1 - (y + 0.5) / gh))
    end
    for k, v in ipairs(bar_ticks) do
      local y = gy0 + math.floor((hi - v) / (hi - lo) * (gh - 1))
      draw.rect(canvas, bar_x + bar_w, y, bar_x + bar_w + 3, y + 1, AXIS)
      put_text(canvas, bar_labels[k], bar_x + bar_w + 7, y - CAP // 2)
    end
  end
  if opts.path then
    ml.image.save(canvas, opts.path)
  end
  return canvas, { x = gx0, y = gy0, cell = cell, colorbar_x = show_bar and bar_x or nil }
end

return plot
