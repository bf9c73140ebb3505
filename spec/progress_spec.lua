-- ml.progress: exact output under a fake clock into a fake stream.
local ml = require("moonml")
local h = require("helpers")

-- A stream that keeps what is written, and a clock the spec moves by hand.
local function fakes()
  local out = { chunks = {} }
  function out:write(s)
    self.chunks[#self.chunks + 1] = s
    return self
  end
  function out:text()
    return table.concat(self.chunks)
  end
  local clock = { t = 100 }
  function clock.now()
    return clock.t
  end
  return out, clock
end

local function bar(opts, out, clock)
  opts.stream, opts.clock = out, clock.now
  return ml.progress.bar(opts)
end

describe("ml.progress.bar, not a terminal", function()
  it("prints a plain line at every tenth and at the close", function()
    local out, clock = fakes()
    local b = bar({ total = 20, desc = "epoch 1", tty = false }, out, clock)
    assert.are.equal("", out:text()) -- nothing at the start
    for i = 1, 20 do
      clock.t = clock.t + 0.5
      b:update(1, { loss = 1 / i })
    end
    b:close()
    local lines = {}
    for line in out:text():gmatch("[^\n]*\n") do
      lines[#lines + 1] = line
    end
    assert.are.equal(10, #lines)
    assert.are.equal("epoch 1:  10% 2/20 [00:01<00:09, 2.00 it/s] loss=0.5\n", lines[1])
    assert.are.equal("epoch 1:  30% 6/20 [00:03<00:07, 2.00 it/s] loss=0.1667\n", lines[3])
    assert.are.equal("epoch 1: 100% 20/20 [00:10<00:00, 2.00 it/s] loss=0.05\n", lines[10])
  end)

  it("prints after `interval` seconds even without a new tenth", function()
    local out, clock = fakes()
    local b = bar({ total = 1000, tty = false, interval = 60 }, out, clock)
    clock.t = clock.t + 59
    b:update(1)
    assert.are.equal("", out:text())
    clock.t = clock.t + 1
    b:update(1)
    assert.are.equal("  0% 2/1000 [01:00<8:19:00, 30.00 s/it]\n", out:text())
  end)

  it("prints the final state at close when it was not printed", function()
    local out, clock = fakes()
    local b = bar({ total = 10, tty = false }, out, clock)
    clock.t = clock.t + 4
    b:update(3)
    b:set({ acc = 0.5 })
    b:close()
    b:close()
    assert.are.equal(" 30% 3/10 [00:04<00:09, 1.33 s/it]\n"
      .. " 30% 3/10 [00:04<00:09, 1.33 s/it] acc=0.5\n", out:text())
  end)

  it("shows count, elapsed time and rate without a total", function()
    local out, clock = fakes()
    local b = bar({ desc = "read", tty = false, unit = "batch" }, out, clock)
    clock.t = clock.t + 3723
    b:update(7446)
    b:close()
    assert.are.equal("read: 7446 batch [1:02:03, 2.00 batch/s]\n", out:text())
  end)

  it("writes s/it for slow loops, the fields in the order first set", function()
    local out, clock = fakes()
    local b = bar({ total = 4, tty = false }, out, clock)
    b:set({ lr = 0.001 })
    clock.t = clock.t + 5
    b:update(1, { loss = ml.tensor(0.25), step = 10, acc = 0.9, note = "warm" })
    assert.are.equal(" 25% 1/4 [00:05<00:15, 5.00 s/it] lr=0.001 acc=0.9 loss=0.25 note=warm "
      .. "step=10\n", out:text())
  end)
end)

describe("ml.progress.bar on a terminal", function()
  it("redraws in place, padding over a longer line, and ends the line at close", function()
    local out, clock = fakes()
    local b = bar({ total = 4, desc = "train", tty = true, width = 8 }, out, clock)
    clock.t = clock.t + 1
    b:update(1, { loss = 2.5 })
    clock.t = clock.t + 1
    b:update(1)
    b:set({ loss = 1 })
    b:close()
    assert.are.same({
      "\rtrain:   0%|........| 0/4 [00:00<?, ? it/s]",
      "\rtrain:  25%|##......| 1/4 [00:01<00:03, 1.00 it/s] loss=2.5",
      "\rtrain:  50%|####....| 2/4 [00:02<00:02, 1.00 it/s] loss=2.5",
      "\rtrain:  50%|####....| 2/4 [00:02<00:02, 1.00 it/s] loss=1  ",
      "\n",
    }, out.chunks)
  end)

  it("redraws at most every mininterval seconds, and always at the total", function()
    local out, clock = fakes()
    local b = bar({ total = 100, tty = true, width = 4, mininterval = 0.5 }, out, clock)
    for _ = 1, 99 do
      clock.t = clock.t + 1 / 64 -- exact in binary: 0.5 s is 32 steps
      b:update(1)
    end
    assert.are.same({
      "\r  0%|....| 0/100 [00:00<?, ? it/s]",
      "\r 32%|#...| 32/100 [00:00<00:01, 64.00 it/s]",
      "\r 64%|##..| 64/100 [00:01<00:00, 64.00 it/s]",
      "\r 96%|###.| 96/100 [00:01<00:00, 64.00 it/s]",
    }, out.chunks)
    clock.t = clock.t + 1 / 64
    b:update(1)
    assert.are.equal("\r100%|####| 100/100 [00:01<00:00, 64.00 it/s]", out.chunks[5])
    b:close()
    assert.are.equal("\n", out.chunks[6])
    assert.are.equal(6, #out.chunks)
  end)

  it("prints nothing when disabled", function()
    local out, clock = fakes()
    local b = bar({ total = 3, tty = true, disable = true }, out, clock)
    b:update(3)
    b:close()
    assert.are.same({}, out.chunks)
  end)

  it("is not a terminal for a fake stream or a file, unless told", function()
    assert.is_false(ml._term.isatty({}))
    local f = io.tmpfile()
    assert.is_false(ml._term.isatty(f))
    local b = ml.progress.bar({ total = 2, stream = f })
    b:update(2)
    b:close()
    f:seek("set")
    local text = f:read("a")
    f:close()
    assert.is_truthy(text:match("^100%% 2/2 %[00:00<00:00, [%d.]+ it/s%]\n$"), text)
  end)

  it("closes through <close>", function()
    local out, clock = fakes()
    do
      local b <close> = bar({ total = 2, tty = true, width = 2 }, out, clock)
      b:update(1)
    end
    assert.are.equal("\n", out.chunks[#out.chunks])
  end)
end)

describe("ml.progress.wrap", function()
  it("counts the items of an array and passes them on", function()
    local out, clock = fakes()
    local seen = {}
    for i, v in ml.progress.wrap({ "a", "b", "c" }, { stream = out, clock = clock.now,
      tty = true, width = 3 }) do
      seen[#seen + 1] = i .. v
      clock.t = clock.t + 1
    end
    assert.are.same({ "1a", "2b", "3c" }, seen)
    assert.are.same({
      "\r  0%|...| 0/3 [00:00<?, ? it/s]",
      "\r 33%|#..| 1/3 [00:01<00:02, 1.00 it/s]",
      "\r 66%|##.| 2/3 [00:02<00:01, 1.00 it/s]",
      "\r100%|###| 3/3 [00:03<00:00, 1.00 it/s]",
      "\n",
    }, out.chunks)
  end)

  it("wraps an iterator function giving several values, as a loader does", function()
    local out, clock = fakes()
    local k = 0
    local function loader()
      k = k + 1
      if k <= 4 then
        return k * 10, k * 100
      end
    end
    local got = {}
    local iter, b = ml.progress.wrap(loader, { total = 4, stream = out, clock = clock.now,
      tty = false, desc = "batches" })
    for i, x, y in iter, b do
      got[#got + 1] = { i, x, y }
      clock.t = clock.t + 2
      b:set({ loss = 1 / i })
    end
    assert.are.same({ { 1, 10, 100 }, { 2, 20, 200 }, { 3, 30, 300 }, { 4, 40, 400 } }, got)
    assert.are.equal("batches:  25% 1/4 [00:02<00:06, 2.00 s/it] loss=1\n"
      .. "batches:  50% 2/4 [00:04<00:04, 2.00 s/it] loss=0.5\n"
      .. "batches:  75% 3/4 [00:06<00:02, 2.00 s/it] loss=0.3333\n"
      .. "batches: 100% 4/4 [00:08<00:00, 2.00 s/it] loss=0.25\n", out:text())
  end)

  it("closes the bar when the loop breaks", function()
    local out, clock = fakes()
    for i in ml.progress.wrap({ 1, 2, 3, 4 }, { stream = out, clock = clock.now, tty = false }) do
      clock.t = clock.t + 1
      if i == 2 then
        break
      end
    end
    assert.are.equal(" 25% 1/4 [00:01<00:03, 1.00 it/s]\n", out:text())
  end)
end)

describe("ml.progress errors", function()
  it("refuses bad options and calls", function()
    local e = "moonml.progress."
    h.assert_error(e .. "bar:", "unknown option 'totl'", ml.progress.bar, { totl = 3 })
    h.assert_error(e .. "bar:", "total", ml.progress.bar, { total = -1 })
    h.assert_error(e .. "bar:", "total", ml.progress.bar, { total = "3" })
    h.assert_error(e .. "bar:", "stream", ml.progress.bar, { stream = 3 })
    h.assert_error(e .. "bar:", "desc", ml.progress.bar, { desc = 3 })
    h.assert_error(e .. "bar:", "width", ml.progress.bar, { width = 0 })
    h.assert_error(e .. "bar:", "options must be a table", ml.progress.bar, 3)
    h.assert_error(e .. "wrap:", "iterator function or an array", ml.progress.wrap, 3)
    local out, clock = fakes()
    local b = bar({ total = 3, tty = false }, out, clock)
    h.assert_error(e .. "update:", "n must be a number", b.update, b, "x")
    h.assert_error(e .. "set:", "fields must be a table", b.set, b, 3)
    h.assert_error(e .. "set:", "field names must be strings", b.set, b, { 1 })
    b:close()
    h.assert_error(e .. "update:", "closed", b.update, b, 1)
  end)

  it("formats times", function()
    assert.are.equal("00:00", ml.progress.format_time(0))
    assert.are.equal("01:05", ml.progress.format_time(65.9))
    assert.are.equal("59:59", ml.progress.format_time(3599))
    assert.are.equal("1:00:00", ml.progress.format_time(3600))
    assert.are.equal("27:46:40", ml.progress.format_time(100000))
  end)
end)
