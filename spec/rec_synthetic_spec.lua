-- rec.synthetic: the seeded interaction generator, and the memory the implicit models hold.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

describe("rec.synthetic", function()
  local opts = { users = 300, items = 200, interactions = 6000, factors = 8, seed = 5,
    timestamps = true }

  it("gives exactly the asked sizes, one rating per pair, ratings 1..5", function()
    local d = rec.synthetic(opts)
    assert.equal(6000, #d)
    assert.equal(300, d:n_users())
    assert.is_true(d:n_items() <= 200 and d:n_items() > 150)
    assert.same({ 1, 5 }, d.scale)
    local seen, last_user, pos = {}, 0, 0
    for u, i, r, ts in d:ratings() do
      assert.is_true(math.type(u) == "integer" and u >= 1 and u <= 300)
      assert.is_true(math.type(i) == "integer" and i >= 1 and i <= 200)
      local key = u * 1000 + i
      assert.is_nil(seen[key])
      seen[key] = true
      assert.is_true(r == math.floor(r) and r >= 1 and r <= 5)
      -- user by user; the timestamp is the draw position within the user
      assert.is_true(u >= last_user)
      pos = u == last_user and pos + 1 or 1
      assert.equal(pos, ts)
      last_user = u
    end
  end)

  it("is the same for the same seed and differs for another", function()
    local a, b = rec.synthetic(opts), rec.synthetic(opts)
    local o2 = {}
    for k, v in pairs(opts) do
      o2[k] = v
    end
    o2.seed = 6
    local c = rec.synthetic(o2)
    local au, ai, ar = a:tensors()
    local bu, bi, br = b:tensors()
    local _, ci = c:tensors()
    assert.same(au:totable(), bu:totable())
    assert.same(ai:totable(), bi:totable())
    assert.same(ar:totable(), br:totable())
    assert.are_not.same(ai:totable(), ci:totable())
    assert.is_false(a:has_timestamps() == false)
    assert.is_false(rec.synthetic({ users = 10, items = 10, interactions = 20 }):has_timestamps())
    -- skewed popularity: the most popular item has many times the median's interactions
    local counts = {}
    for _, i in ipairs(ai:totable()) do
      counts[i] = (counts[i] or 0) + 1
    end
    local list = {}
    for _, n in pairs(counts) do
      list[#list + 1] = n
    end
    table.sort(list)
    assert.is_true(list[#list] > 4 * list[(#list + 1) // 2])
  end)

  it("holds latent structure: ALS ranks held-out items far better than popularity", function()
    local d = rec.synthetic({ users = 600, items = 300, interactions = 15000, factors = 8,
      seed = 1, timestamps = true })
    local train, test = d:leave_last_out()
    local als = rec.ALS({ factors = 16, regularization = 0.05, random_state = 0 }):fit(train)
    local pop = rec.Popular():fit(train)
    local all = { threshold = -math.huge }
    local hr_als = rec.hit_rate(als, test, 10, all)
    local hr_pop = rec.hit_rate(pop, test, 10, all)
    assert.is_true(hr_als > 2 * hr_pop, string.format("ALS %.3f, Popular %.3f", hr_als, hr_pop))
  end)

  it("noise = 1 draws by popularity alone, so ALS gains little", function()
    local d = rec.synthetic({ users = 600, items = 300, interactions = 15000, factors = 8,
      noise = 1, seed = 1, timestamps = true })
    local train, test = d:leave_last_out()
    local all = { threshold = -math.huge }
    local als = rec.ALS({ factors = 16, regularization = 0.05, random_state = 0 }):fit(train)
    local pop = rec.Popular():fit(train)
    assert.is_true(rec.hit_rate(als, test, 10, all) < 1.5 * rec.hit_rate(pop, test, 10, all))
  end)

  it("rejects impossible sizes and bad options", function()
    h.assert_error("moonml.rec.synthetic:", "users must be an integer", function()
      rec.synthetic({ items = 10, interactions = 10 })
    end)
    h.assert_error("moonml.rec.synthetic:", "interactions must be in", function()
      rec.synthetic({ users = 10, items = 10, interactions = 5 })
    end)
    h.assert_error("moonml.rec.synthetic:", "interactions must be in", function()
      rec.synthetic({ users = 10, items = 10, interactions = 51 })
    end)
    h.assert_error("moonml.rec.synthetic:", "factors must be in", function()
      rec.synthetic({ users = 10, items = 10, interactions = 20, factors = 11 })
    end)
    h.assert_error("moonml.rec.synthetic:", "noise must be", function()
      rec.synthetic({ users = 10, items = 10, interactions = 20, noise = 2 })
    end)
    h.assert_error("moonml.rec.synthetic:", "unknown option 'size'", function()
      rec.synthetic({ users = 10, items = 10, interactions = 20, size = 1 })
    end)
    h.assert_error("moonml.rec.synthetic:", "users must be >= 1", function()
      rec.synthetic({ users = 0, items = 10, interactions = 20 })
    end)
  end)
end)

describe("implicit models' memory", function()
  it("the interactions take 8 bytes per entry and orientation, plus the row offsets", function()
    local d = rec.synthetic({ users = 1000, items = 500, interactions = 20000, seed = 2 })
    local m = rec.ItemKNN({ K = 10 }):fit(d)
    local nu, ni, nnz = m.inter:space()
    assert.equal(20000, nnz)
    local bytes = m.inter:bytes()
    local least = 2 * 8 * nnz + 8 * (nu + ni)
    -- plus one recommend call's scratch: a score and three indices per item
    assert.is_true(bytes >= least and bytes < least + 20 * ni + 1024,
      string.format("%d bytes for %d entries", bytes, nnz))
    -- K neighbours per item: 12 bytes each plus offsets
    assert.is_true(m.sims:bytes() <= 12 * 10 * ni + 8 * (ni + 1) + 128)
  end)
end)
