-- Tensor memory is told to Lua's collector (DESIGN.md, "Memory"): loops of temporaries
-- stay flat without collectgarbage(), and `local t <close>` frees at once.
-- Resident-size growth after warm-up (each loop in a fresh process), Debian 12, Lua 5.4.4:
--   as built: the small loops well under 1 MB, the 4 MB loop 0 MB;
--   with mml_push_tensor's lua_gc step removed, the 4 MB loop passes 300 MB (fails).
-- The small loops catch leaks: losing even 16 bytes per call grows them by 16 MB.
-- Tagged #nosan: make test-asan / test-valgrind leave them out (a sanitizer's quarantine
-- and shadow memory change the resident size).
local ml = require("moonml")
local h = require("helpers")

-- The loops run in a fresh lua5.4 process, so that the heap left by other spec files does
-- not set the collector's pace. The child prints the largest growth of its resident size
-- (KB) over the size after warm-up, sampled every `every` calls; it stops early once the
-- growth passes limit_kb, so a regression fails fast instead of eating the machine. No
-- collectgarbage() is called in the child.
local CHILD = [[
local ml = require("moonml")
local make_temp = load(arg[1], "temp", "t", { ml = ml })()
local n, warm, every, limit = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local function rss()
  local f = io.open("/proc/self/status", "r")
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end
for _ = 1, warm do make_temp() end
local base = rss()
local peak = base
for i = 1, n do
  make_temp()
  if i % every == 0 then
    peak = math.max(peak, rss())
    if peak - base > limit then break end
  end
end
print(peak - base)
]]

local function rss_growth(body, n, warm, every, limit_kb)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(CHILD)
  f:close()
  local cmd = string.format("LUA_PATH=%q LUA_CPATH=%q lua5.4 %s %q %d %d %d %d", package.path,
    package.cpath, script, "return function() " .. body .. " end", n, warm, every, limit_kb)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  os.remove(script)
  return assert(tonumber(out), "the child process printed: " .. out)
end

local MB = 1024

describe("memory", function()
  local status = io.open("/proc/self/status", "r")
  if not status then
    pending("needs /proc/self/status (Linux) to read the resident size")
    return
  end
  status:close()

  it("10^6 small temporaries (zeros(4)) keep the resident size within 2 MB #nosan", function()
    local growth = rss_growth("return ml.zeros(4)", 1000000, 100000, 10000, 2 * MB)
    assert(growth < 2 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("10^6 results of a + b on 16-element tensors keep the resident size within 2 MB #nosan", function()
    local growth = rss_growth("local x = ml.arange(16); return x + x", 1000000, 100000, 10000, 2 * MB)
    assert(growth < 2 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("3,000 temporaries of 400 kB keep the resident size within 64 MB #nosan", function()
    local growth = rss_growth("return ml.zeros(100000)", 3000, 100, 10, 64 * MB)
    assert(growth < 64 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("2,000 temporaries of 4 MB keep the resident size within 300 MB #nosan", function()
    local growth = rss_growth("return ml.zeros(1024 * 1024)", 2000, 20, 10, 300 * MB)
    assert(growth < 300 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("frees a <close> tensor when its scope ends, before any collection", function()
    -- Only <close> may free anything while we measure: no garbage left, collector stopped.
    collectgarbage("collect")
    collectgarbage("stop")
    local ok, err = pcall(function()
      local before = ml.memory_stats().live_bytes
      local inside, escaped
      do
        local t <close> = ml.zeros(1e6)
        escaped = t -- a second reference does not keep the memory alive
        inside = ml.memory_stats().live_bytes
      end
      local after = ml.memory_stats().live_bytes
      assert.are.equal(before + 4e6, inside)
      assert.are.equal(before, after)
      h.assert_error("moonml.numel:", "closed", function()
        return escaped:numel()
      end)
    end)
    collectgarbage("restart")
    assert(ok, err)
  end)
end)
