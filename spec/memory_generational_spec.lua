-- Tensor memory under Lua's generational collector, the mode lua.c (and so busted) runs
-- in. A tensor held in a local across two collections grows old, and minor collections
-- never free old objects; the native bytes reported with lua_gc steps do not count as heap
-- growth either, so no major collection would come. mml_push_tensor then forces a full
-- collection once live tensor memory passes twice what survived the previous one plus the
-- larger of the Lua heap and 16 MB. Without that, the loop below held every result:
-- 100 x 4 MB = 400 MB.
local ml = require("moonml")

describe("memory in generational mode", function()
  it("a loop keeping each 4 MB result in a local does not pile up old tensors", function()
    local mode = collectgarbage("generational")
    local ok, err = pcall(function()
      local n = 1000000
      local a, b = ml.randn(n), ml.randn(n)
      collectgarbage("collect")
      local live = ml.memory_stats().live_bytes
      local heap = collectgarbage("count") * 1024
      -- the backstop's threshold after this collection, and room for the tensors made
      -- before the check sees it passed (one report step, at most a few results)
      local bound = 2 * live + math.max(heap, 16 * 2 ^ 20) + 4 * (4 * n)
      local steps = 100
      assert(steps * 4 * n > 2 * bound, "the loop must be able to exceed the bound")
      local peak = live
      for _ = 1, steps do
        local x = a + b
        assert(x:numel() == n)
        peak = math.max(peak, ml.memory_stats().live_bytes)
      end
      assert(
        peak <= bound,
        string.format("live tensor memory reached %.0f MB (bound %.0f MB)", peak / 2 ^ 20, bound / 2 ^ 20)
      )
    end)
    collectgarbage(mode)
    assert(ok, err)
  end)
end)
