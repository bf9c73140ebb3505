-- Tensor memory is told to Lua's collector (DESIGN.md, "Memory"): loops of temporaries
-- stay flat without collectgarbage(), and `local t <close>` frees at once.
-- Resident-size growth after warm-up, measured on Debian 12 (Lua 5.4.4, busted):
--   collector told (mml_push_tensor's lua_gc step): zeros(4) loop 0.1-0.25 MB,
--     clone loop 0-0.1 MB, 4 MB loop 0 MB;
--   lua_gc step commented out: zeros(4) loop 5.5 MB, clone loop 4.6-8.1 MB,
--     4 MB loop past 300 MB within about 80 iterations (stopped there).
local ml = require("moonml")
local h = require("helpers")

-- Resident set size in KB (VmRSS), or nil where /proc is absent.
local function rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then
    return nil
  end
  local status = f:read("a")
  f:close()
  return tonumber(status:match("VmRSS:%s*(%d+)"))
end

-- Runs make_temp() n times after `warm` warm-up calls; returns the largest growth of the
-- resident size (KB) over the size after warm-up, sampled every `every` calls. Stops early
-- once the growth passes limit_kb, so a regression fails fast instead of eating the machine.
local function rss_growth(make_temp, n, warm, every, limit_kb)
  -- One full collection before the warm-up (never inside the loop): earlier spec files
  -- leave a large heap whose garbage would otherwise be reused during the measurement.
  collectgarbage("collect")
  for _ = 1, warm do
    make_temp()
  end
  local base = rss_kb()
  local peak = base
  for i = 1, n do
    make_temp()
    if i % every == 0 then
      peak = math.max(peak, rss_kb())
      if peak - base > limit_kb then
        break
      end
    end
  end
  return peak - base
end

local MB = 1024

describe("memory", function()
  if not rss_kb() then
    pending("needs /proc/self/status (Linux) to read the resident size")
    return
  end

  it("10^6 small temporaries (zeros(4)) keep the resident size within 2 MB", function()
    local growth = rss_growth(function()
      return ml.zeros(4)
    end, 1000000, 100000, 10000, 2 * MB)
    assert(growth < 2 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("10^6 clones of a 16-element tensor keep the resident size within 2 MB", function()
    local x = ml.arange(16)
    local growth = rss_growth(function()
      return x:clone()
    end, 1000000, 100000, 10000, 2 * MB)
    assert(growth < 2 * MB, string.format("resident size grew by %.1f MB", growth / MB))
  end)

  it("2,000 temporaries of 4 MB keep the resident size within 300 MB", function()
    local growth = rss_growth(function()
      return ml.zeros(1024 * 1024)
    end, 2000, 20, 10, 300 * MB)
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
