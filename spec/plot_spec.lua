-- ml.plot: figures rendered into 3 x H x W tensors and saved as PNG. Pixels are checked where
-- the layout puts them (fig:to_pixel, the heatmap's cell positions).
local ml = require("moonml")
local h = require("helpers")

local RED = { 1, 0, 0 }
local BLUE = { 0, 0, 1 }

local function pixel(img, row, col)
  return { img:get(1, row, col), img:get(2, row, col), img:get(3, row, col) }
end

local function is_color(img, row, col, c, tol)
  tol = tol or 1e-6
  local p = pixel(img, row, col)
  for k = 1, 3 do
    if math.abs(p[k] - c[k]) > tol then
      return false
    end
  end
  return true
end

-- Number of pixels of (about) colour c in rows r0..r1 and columns c0..c1.
local function count_color(img, c, r0, r1, c0, c1)
  local region = img:narrow(2, r0, r1 - r0 + 1):narrow(3, c0, c1 - c0 + 1)
  local hit = ml.ones(r1 - r0 + 1, c1 - c0 + 1, { dtype = "bool" })
  local match = hit:long()
  for k = 1, 3 do
    match = match:mul((region[k] - c[k]):abs():lt(1e-3):long())
  end
  return match:sum():item()
end

local function not_white(img)
  return img:lt(0.999):sum():item()
end

local function temp_png()
  return os.tmpname() .. ".png"
end

describe("ml.plot.figure", function()
  it("renders the figure's size, on white", function()
    local fig = ml.plot.figure()
    fig:line({ 1, 2, 3 }, { 3, 1, 2 })
    local img = fig:render()
    assert.are.same({ 3, 480, 640 }, img:shape())
    assert.are.equal("float32", img:dtype())
    assert.is_true(is_color(img, 1, 1, { 1, 1, 1 }))
    local small = ml.plot.figure({ width = 200, height = 150 }):line({ 1, 2 }):render()
    assert.are.same({ 3, 150, 200 }, small:shape())
  end)

  it("saves a PNG of the expected size that is not blank", function()
    local fig = ml.plot.figure({ width = 320, height = 240, title = "loss" })
    fig:line({ 1, 2, 3, 4 }, { 1.0, 0.6, 0.4, 0.3 }, { label = "train" })
    fig:xlabel("epoch")
    fig:ylabel("loss")
    local path = temp_png()
    local img = fig:save(path)
    local back = ml.image.load(path)
    os.remove(path)
    assert.are.same({ 3, 240, 320 }, back:shape())
    assert.is_true(not_white(back) > 1000)
    h.assert_close(back, img, { rtol = 0, atol = 0.5 / 255 + 1e-6 }) -- 8-bit rounding only
  end)

  it("draws a horizontal series in its colour at the row of its value", function()
    local fig = ml.plot.figure({ ylim = { 0, 1 }, xlim = { 0, 10 } })
    fig:line({ 0, 10 }, { 0.5, 0.5 }, { color = RED, width = 3 })
    local img = fig:render()
    local _, row = fig:to_pixel(5, 0.5)
    for _, x in ipairs({ 1, 2.5, 5, 7.5, 9 }) do
      local col, r = fig:to_pixel(x, 0.5)
      assert.are.equal(row, r)
      assert.is_true(is_color(img, row, col, RED), "red at x = " .. x)
      assert.is_false(is_color(img, row - 4, col, RED, 0.1))
      assert.is_false(is_color(img, row + 4, col, RED, 0.1))
    end
    -- 0.5 of [0, 1] is half way down the plot area: the rows of 0 and 1 frame it
    local _, top = fig:to_pixel(0, 1)
    local _, bottom = fig:to_pixel(0, 0)
    assert.is_true(math.abs(row - (top + bottom) / 2) <= 1)
    -- a 3-pixel line: the red rows in that column are 3 or 4 (anti-aliased edges)
    local col = fig:to_pixel(5, 0.5)
    local n = count_color(img, RED, row - 5, row + 5, col, col)
    assert.is_true(n >= 2 and n <= 4, "red pixels in a column: " .. n)
  end)

  it("keeps series inside the plot area", function()
    local fig = ml.plot.figure({ xlim = { 2, 3 }, ylim = { 0, 1 } })
    fig:line({ 0, 10 }, { 0.5, 0.5 }, { color = RED })
    local img = fig:render()
    local x0, row = fig:to_pixel(2, 0.5)
    local x1 = fig:to_pixel(3, 0.5)
    assert.are.equal(0, count_color(img, RED, row - 2, row + 2, 1, x0 - 3))
    assert.are.equal(0, count_color(img, RED, row - 2, row + 2, x1 + 3, 640))
    assert.is_true(count_color(img, RED, row - 2, row + 2, x0 + 2, x1 - 2) > 0)
  end)

  it("breaks a line at NaN", function()
    local fig = ml.plot.figure({ xlim = { 0, 4 }, ylim = { 0, 1 } })
    fig:line({ 0, 1, 2, 3, 4 }, { 0.5, 0.5, 0 / 0, 0.5, 0.5 }, { color = RED })
    local img = fig:render()
    local col, row = fig:to_pixel(0.5, 0.5)
    assert.is_true(is_color(img, row, col, RED))
    col = fig:to_pixel(2, 0.5)
    assert.are.equal(0, count_color(img, RED, row - 2, row + 2, col - 10, col + 10))
  end)

  it("draws scatter dots at the points", function()
    local fig = ml.plot.figure({ xlim = { 0, 1 }, ylim = { 0, 1 } })
    fig:scatter({ 0.25, 0.75 }, { 0.25, 0.75 }, { color = BLUE, size = 4 })
    local img = fig:render()
    for _, p in ipairs({ { 0.25, 0.25 }, { 0.75, 0.75 } }) do
      local col, row = fig:to_pixel(p[1], p[2])
      assert.is_true(is_color(img, row, col, BLUE))
      local n = count_color(img, BLUE, row - 8, row + 8, col - 8, col + 8)
      assert.is_true(n >= 30 and n <= 60, "dot of radius 4: " .. n .. " pixels")
    end
    local col, row = fig:to_pixel(0.5, 0.5)
    assert.is_false(is_color(img, row, col, BLUE, 0.1))
  end)

  it("gives series the palette's colours in turn, from tensors too", function()
    local fig = ml.plot.figure({ xlim = { 0, 1 }, ylim = { 0, 3 } })
    fig:line(ml.tensor({ 0, 1 }), ml.tensor({ 1, 1 }))
    fig:line(ml.tensor({ 0, 1 }, "float64"), ml.tensor({ 2, 2 }, "int64"))
    fig:legend(false)
    local img = fig:render()
    for k = 1, 2 do
      local col, row = fig:to_pixel(0.5, k)
      assert.is_true(is_color(img, row, col, ml.plot.palette[k]), "series " .. k)
    end
  end)

  it("takes fig:line(ys) with x = 1, 2, ...", function()
    local fig = ml.plot.figure({ xlim = { 1, 3 }, ylim = { 0, 4 } })
    fig:line({ 2, 2, 2 }, { color = "#00ff00" })
    local img = fig:render()
    local col, row = fig:to_pixel(2, 2)
    assert.is_true(is_color(img, row, col, { 0, 1, 0 }))
  end)

  it("draws a title, axis labels and a legend only when asked", function()
    local plain = ml.plot.figure({ legend = "upper left" })
    plain:line({ 1, 2 }, { 1, 2 })
    local a = plain:render()
    local fig = ml.plot.figure({ title = "TITLE", legend = "upper left" })
    fig:line({ 1, 2 }, { 1, 2 }, { label = "train" })
    fig:xlabel("epoch")
    fig:ylabel("loss")
    local b = fig:render()
    -- the title, centred at the top
    assert.are.equal(0, not_white(a:narrow(2, 1, 10)))
    assert.is_true(not_white(b:narrow(2, 1, 30):narrow(3, 280, 80)) > 40)
    -- the legend box: grey frame in the upper left of the plot area
    local col, row = fig:to_pixel(fig:layout().xmin, fig:layout().ymax)
    assert.is_true(count_color(b, { 0.8, 0.8, 0.8 }, row, row + 40, col, col + 100) > 50)
    local pc, pr = plain:to_pixel(plain:layout().xmin, plain:layout().ymax)
    assert.are.equal(0, count_color(a, { 0.8, 0.8, 0.8 }, pr, pr + 40, pc, pc + 100))
    -- the y label at the far left (columns 11-19), upwards, centred on the plot area; the
    -- tick numbers move right to make room
    local L = fig:layout()
    local w = 4 * 6 - 1 -- "loss" in the 5-pixel font with 1-pixel gaps
    local r0 = L.y0 + (L.ph - w) // 2 + 1
    assert.is_true(not_white(b:narrow(3, 11, 9):narrow(2, r0, w)) > 20)
    assert.are.equal(0, not_white(b:narrow(3, 11, 9)) - not_white(b:narrow(3, 11, 9):narrow(2, r0, w)))
    assert.are.equal(L.x0, plain:layout().x0 + 9 + 8)
    -- the x label below the tick numbers, centred; nothing below the numbers without it
    local label_row = L.y0 + L.ph + 5 + 4 + 9 + 6 + 1
    local cx = L.x0 + L.pw // 2
    assert.is_true(not_white(b:narrow(2, label_row, 7):narrow(3, cx - 20, 40)) > 20)
    local A = plain:layout()
    local below = A.y0 + A.ph + 5 + 4 + 9 + 1
    assert.are.equal(0, not_white(a:narrow(2, below, 480 - below + 1)))
  end)

  -- (how fast is a figure of make bench, not a test: timed tests fail under valgrind)
  it("renders 640 x 480 with three series of 1000 points", function()
    local fig = ml.plot.figure({ title = "speed", xlabel = "x", ylabel = "y" })
    for s = 1, 3 do
      local xs, ys = {}, {}
      for i = 1, 1000 do
        xs[i], ys[i] = i, math.sin(i / 50 + s)
      end
      fig:line(xs, ys, { label = "s" .. s })
    end
    fig:scatter({ 1, 500, 1000 }, { 0, 0.5, -0.5 }, { label = "dots" })
    local img = fig:render()
    assert.are.same({ 3, 480, 640 }, img:shape())
    -- the series are drawn: the image is not blank white
    assert.is_true(img:min():item() < 0.5)
  end)

  it("refuses bad input", function()
    local e = "moonml.plot."
    h.assert_error(e .. "figure:", "width", ml.plot.figure, { width = 10 })
    h.assert_error(e .. "figure:", "unknown option 'colour'", ml.plot.figure, { colour = 1 })
    h.assert_error(e .. "figure:", "xlim", ml.plot.figure, { xlim = { 1, 1 } })
    h.assert_error(e .. "figure:", "title must be a string", ml.plot.figure, { title = 3 })
    local fig = ml.plot.figure()
    h.assert_error(e .. "line:", "xs has 2 values but ys has 3", fig.line, fig, { 1, 2 },
      { 1, 2, 3 })
    h.assert_error(e .. "line:", "ys[2] is a string", fig.line, fig, { 1, 2 }, { 1, "a" })
    h.assert_error(e .. "line:", "2-D tensor", fig.line, fig, ml.zeros(2, 2), ml.zeros(2, 2))
    h.assert_error(e .. "line:", "color", fig.line, fig, { 1 }, { 1 }, { color = { 2, 0, 0 } })
    h.assert_error(e .. "line:", "color", fig.line, fig, { 1 }, { 1 }, { color = "#12" })
    h.assert_error(e .. "line:", "width", fig.line, fig, { 1 }, { 1 }, { width = 0 })
    h.assert_error(e .. "scatter:", "unknown option 'marker'", fig.scatter, fig, { 1 }, { 1 },
      { marker = "o" })
    h.assert_error(e .. "legend:", "position", fig.legend, fig, "middle")
    h.assert_error(e .. "ylim:", "low < high", fig.ylim, fig, 2, 1)
    h.assert_error(e .. "save:", "file name", fig.save, fig, nil)
    local tiny = ml.plot.figure({ width = 64, height = 64, title = "t", xlabel = "x", ylabel = "y" })
    tiny:line({ 1, 2 }, { 123456.5, 234567.25 })
    h.assert_error(e .. "render:", "no room", tiny.render, tiny)
  end)
end)

describe("ml.plot.ticks", function()
  it("steps by 1, 2 or 5 times a power of ten", function()
    local cases = {
      { 0, 1, 5, { 0, 0.2, 0.4, 0.6, 0.8, 1 }, { "0.0", "0.2", "0.4", "0.6", "0.8", "1.0" } },
      { -1, 1, 4, { -1, -0.5, 0, 0.5, 1 }, { "-1.0", "-0.5", "0.0", "0.5", "1.0" } },
      { 0.43, 20.57, 4, { 5, 10, 15, 20 }, { "5", "10", "15", "20" } },
      { 0, 1000, 5, { 0, 200, 400, 600, 800, 1000 }, { "0", "200", "400", "600", "800", "1000" } },
      { 0.001, 0.0042, 3, { 0.001, 0.002, 0.003, 0.004 },
        { "0.001", "0.002", "0.003", "0.004" } },
      { 1e6, 3e6, 2, { 1e6, 2e6, 3e6 }, { "1e+06", "2e+06", "3e+06" } },
      { -0.3, 0.3, 3, { -0.2, 0, 0.2 }, { "-0.2", "0.0", "0.2" } },
    }
    for _, c in ipairs(cases) do
      local values, labels = ml.plot.ticks(c[1], c[2], c[3])
      assert.are.same(c[5], labels)
      assert.are.equal(#c[4], #values)
      for k = 1, #values do
        assert.is_near(c[4][k], values[k], 1e-12)
      end
    end
  end)
end)

describe("ml.plot.heatmap", function()
  local cm = { { 50, 2, 3 }, { 4, 41, 1 }, { 0, 3, 48 } }

  it("colours cells by value with numbers in them and a colour bar", function()
    local img, at = ml.plot.heatmap(cm, { labels = { "a", "b", "c" }, title = "confusion" })
    assert.are.equal(3, img:size(1))
    assert.is_true(img:size(3) >= at.x + 3 * at.cell)
    assert.is_true(img:size(2) >= at.y + 3 * at.cell)
    -- a cell's corner (text sits in the middle): the largest value is the map's dark end,
    -- 0 the light end (matplotlib's Blues: #08306b and #f7fbff)
    local function corner(i, j)
      return pixel(img, at.y + (i - 1) * at.cell + 2, at.x + (j - 1) * at.cell + 2)
    end
    h.assert_close(ml.tensor(corner(1, 1)), { 8 / 255, 48 / 255, 107 / 255 }, { atol = 1e-6 })
    h.assert_close(ml.tensor(corner(3, 1)), { 247 / 255, 251 / 255, 1 }, { atol = 1e-6 })
    -- darker for larger values
    assert.is_true(corner(2, 2)[1] < corner(2, 1)[1])
    -- the numbers: white ink on the dark cell, dark ink on the light one
    local function cell(i, j)
      return img:narrow(2, at.y + (i - 1) * at.cell + 1, at.cell)
        :narrow(3, at.x + (j - 1) * at.cell + 1, at.cell)
    end
    assert.is_true(count_color(cell(1, 1), { 1, 1, 1 }, 1, at.cell, 1, at.cell) > 20)
    assert.is_true(count_color(cell(3, 1), { 0.1, 0.1, 0.1 }, 1, at.cell, 1, at.cell) > 10)
    -- the colour bar: dark at the top, light at the bottom
    local top = pixel(img, at.y + 1, at.colorbar_x + 5)
    local bottom = pixel(img, at.y + 3 * at.cell, at.colorbar_x + 5)
    assert.is_true(top[1] < 0.1 and bottom[1] > 0.9)
  end)

  it("takes a tensor, writes a PNG at path, and formats fractions", function()
    local path = temp_png()
    local m = ml.tensor({ { 0.25, 0.75 }, { 1, 0 } })
    local img, at = ml.plot.heatmap(m, { path = path, cmap = "gray", colorbar = false,
      row_labels = { "x", "y" }, col_labels = { "first class", "second class" } })
    local back = ml.image.load(path)
    os.remove(path)
    assert.are.same(img:shape(), back:shape())
    assert.is_nil(at.colorbar_x)
    -- gray map: 0 is white, 1 black
    h.assert_close(ml.tensor(pixel(img, at.y + at.cell + 2, at.x + 2)), { 0, 0, 0 }, { atol = 1e-6 })
    -- long column labels are written upwards below the cells: more rows than one line
    assert.is_true(img:size(2) > at.y + 2 * at.cell + 60)
  end)

  it("refuses bad input", function()
    local e = "moonml.plot.heatmap:"
    h.assert_error(e, "3-D", ml.plot.heatmap, ml.zeros(2, 2, 2))
    h.assert_error(e, "row 2", ml.plot.heatmap, { { 1, 2 }, { 3 } })
    h.assert_error(e, "table of rows", ml.plot.heatmap, { 1, 2 })
    h.assert_error(e, "3 names", ml.plot.heatmap, cm, { labels = { "a" } })
    h.assert_error(e, "cmap", ml.plot.heatmap, cm, { cmap = "jet" })
    h.assert_error(e, "unknown option 'colour'", ml.plot.heatmap, cm, { colour = 1 })
    h.assert_error(e, "cell", ml.plot.heatmap, cm, { cell = 2 })
  end)
end)

describe("examples/plots.lua", function()
  it("writes the loss curve and the confusion matrix", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local cmd = "LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;' "
      .. "lua5.4 examples/plots.lua " .. dir .. " > " .. dir .. "/out.txt 2>&1"
    local ok = os.execute(cmd)
    local f = io.open(dir .. "/out.txt")
    local text = f and f:read("a") or ""
    if f then
      f:close()
    end
    assert.is_true(ok == true, text)
    local loss = ml.image.load(dir .. "/loss.png")
    assert.are.same({ 3, 400, 640 }, loss:shape())
    assert.is_true(not_white(loss) > 5000)
    local cm = ml.image.load(dir .. "/confusion.png")
    assert.are.equal(3, cm:size(1))
    assert.is_true(not_white(cm) > 5000)
    assert.is_truthy(text:find("test accuracy", 1, true))
    os.execute("rm -rf " .. dir)
  end)
end)
