-- Rating data: loaders, ids, from_table/from_tensors, splits.
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

local function sorted(t)
  local c = {}
  for k, v in ipairs(t) do
    c[k] = v
  end
  table.sort(c, function(a, b) return tostring(a) < tostring(b) end)
  return c
end

describe("rec.load", function()
  it("reads MovieLens-100k u.data (tab separated)", function()
    local d = rec.load("spec/fixtures/rec_small.data", { format = "movielens-100k" })
    assert.equal(4, #d)
    assert.equal(3, d:n_users())
    assert.equal(4, d:n_items())
    assert.same({ 1, 5 }, d.scale)
    local u, i, r, ts = d:get(1)
    assert.equal(196, u)
    assert.equal(242, i)
    assert.equal("integer", math.type(u))
    assert.equal(3, r)
    assert.equal(881250949, ts)
    assert.is_true(d:knows_user(196))
    assert.is_true(d:knows_user("196"))
    assert.is_false(d:knows_user("0196"))
    assert.near(9 / 4, d:global_mean(), 1e-12)
    local items, ratings = d:user_ratings("196")
    assert.same({ 242, 51 }, items)
    assert.same({ 3, 2 }, ratings)
  end)

  it("reads MovieLens-1M ratings.dat ('::', CRLF)", function()
    local d = rec.load("spec/fixtures/rec_ratings.dat", { format = "movielens-1m" })
    assert.equal(3, #d)
    local u, i, r, ts = d:get(3)
    assert.same({ 2, 1193, 4, 978298413 }, { u, i, r, ts })
  end)

  it("reads MovieLens ratings.csv (header, CRLF, half stars)", function()
    local d = rec.load("spec/fixtures/rec_ratings.csv", { format = "movielens-csv" })
    assert.equal(3, #d)
    assert.same({ 0.5, 5 }, d.scale)
    local u, i, r, ts = d:get(2)
    assert.same({ 1, 3, 4.5, 964981247 }, { u, i, r, ts })
    -- "movielens" picks the format by extension
    assert.equal(3, #rec.load("spec/fixtures/rec_ratings.csv", { format = "movielens" }))
  end)

  it("reads generic files with string ids, trimmed fields, blank lines, inferred scale", function()
    local d = rec.load("spec/fixtures/rec_generic.csv")
    assert.equal(4, #d)
    assert.same({ 2, 5 }, d.scale)
    assert.is_false(d:has_timestamps())
    local u, i, r, ts = d:get(3)
    assert.same({ "alice", "heat", 2 }, { u, i, r })
    assert.is_nil(ts)
    assert.same({ "alice", "bob" }, d:users())
    local given = rec.load("spec/fixtures/rec_generic.csv", { scale = { 1, 5 } })
    assert.same({ 1, 5 }, given.scale)
  end)

  it("takes sep and header options", function()
    local p = tmpfile("u;i;r\n1;10;4\n2;10;2\n")
    local d = rec.load(p, { sep = ";", header = true })
    os.remove(p)
    assert.equal(2, #d)
    assert.same({ 2, 4 }, d.scale)
  end)

  it("names file and line of a malformed line", function()
    local p = tmpfile("1\t2\t3\t4\n5\t6\n7\t8\t5\t9\n")
    local name = p:match("[^/]*$")
    local err = h.assert_error("moonml.rec.load:", name .. ":2: expected 4 fields, got 2",
      rec.load, p, { format = "movielens-100k" })
    assert.truthy(err)
    h.assert_error("moonml.rec.load:", "is not a number", rec.load,
      tmpfile("1,2,abc\n"))
    h.assert_error("moonml.rec.load:", ":1: timestamp 'x' is not an integer", rec.load,
      tmpfile("1,2,3,x\n"))
    h.assert_error("moonml.rec.load:", ":2: expected 3 fields, got 4", rec.load,
      tmpfile("1,2,3\n1,2,3,4\n"))
    h.assert_error("moonml.rec.load:", "empty user id", rec.load, tmpfile(",2,3\n"))
    os.remove(p)
  end)

  it("skips malformed lines with skip_bad and counts them", function()
    local p = tmpfile("1\t2\t3\t4\n5\t6\n7\t8\t5\t9\nbad\n")
    local d = rec.load(p, { format = "movielens-100k", skip_bad = true })
    os.remove(p)
    assert.equal(2, #d)
    assert.equal(2, d.skipped)
    assert.equal(2, d.first_skipped)
  end)

  it("rejects NaN, infinite and out-of-scale ratings even with skip_bad", function()
    h.assert_error("moonml.rec.load:", ":1: rating 'nan' is not finite", rec.load,
      tmpfile("1,2,nan\n"), { skip_bad = true })
    h.assert_error("moonml.rec.load:", "not finite", rec.load, tmpfile("1,2,inf\n"))
    h.assert_error("moonml.rec.load:", ":2: rating 7 is outside the scale [1, 5]", rec.load,
      tmpfile("1\t2\t3\t4\n1\t3\t7\t5\n"), { format = "movielens-100k", skip_bad = true })
  end)

  it("rejects bad arguments", function()
    h.assert_error("moonml.rec.load:", "cannot read", rec.load, "/nonexistent/u.data")
    h.assert_error("moonml.rec.load:", "file path", rec.load, nil)
    h.assert_error("moonml.rec.load:", "unknown format", rec.load,
      "spec/fixtures/rec_small.data", { format = "xml" })
    h.assert_error("moonml.rec.load:", "unknown option 'colour'", rec.load,
      "spec/fixtures/rec_small.data", { colour = 1 })
    h.assert_error("moonml.rec.load:", "scale", rec.load, "spec/fixtures/rec_small.data",
      { scale = { 5, 1 } })
  end)

  it("loads an empty file as an empty set (an error only at fit time)", function()
    local p = tmpfile("")
    local d = rec.load(p)
    os.remove(p)
    assert.equal(0, #d)
    h.assert_error("moonml.rec.SVD.fit:", "empty", function() rec.SVD():fit(d) end)
  end)
end)

describe("rec.from_table / from_tensors", function()
  it("builds a set with mixed ids and timestamps", function()
    local d = rec.from_table({ { 1, "a", 4, 10 }, { "2", "b", 2, 20 }, { 1, "b", 5, 30 } })
    assert.equal(3, #d)
    assert.same({ 2, 5 }, d.scale)
    assert.equal(2, (d:get(2)))          -- "2" comes back as the integer 2
    assert.equal("integer", math.type((d:get(2))))
    assert.is_true(d:knows_item("a"))
    local u, i, r, ts = d:tensors()
    h.assert_close(u, { 1, 2, 1 }, { dtype = "int64" })
    h.assert_close(i, { 1, 2, 2 }, { dtype = "int64" })
    h.assert_close(r, { 4, 2, 5 }, { dtype = "float32" })
    h.assert_close(ts, { 10, 20, 30 }, { dtype = "int64" })
  end)

  it("round-trips through tensors of raw ids", function()
    local d = rec.from_tensors(ml.tensor({ 7, 7, 9 }, "int64"), ml.tensor({ 100, 200, 100 }),
      ml.tensor({ 3, 4, 5 }), { scale = { 1, 5 } })
    assert.equal(3, #d)
    assert.same({ 1, 5 }, d.scale)
    local u, i = d:tensors({ ids = "raw" })
    h.assert_close(u, { 7, 7, 9 }, { dtype = "int64" })
    h.assert_close(i, { 100, 200, 100 }, { dtype = "int64" })
    -- a non-contiguous view works too
    local cols = ml.tensor({ { 1, 10, 4 }, { 2, 10, 3 } }):t()
    local d2 = rec.from_tensors(cols[1], cols[2], cols[3])
    assert.equal(2, #d2)
    assert.equal(2, d2:n_users())
  end)

  it("rejects bad rows", function()
    h.assert_error("moonml.rec.from_table:", "row 2: rating", function()
      rec.from_table({ { 1, 1, 3 }, { 1, 2, 0 / 0 } })
    end)
    h.assert_error("moonml.rec.from_table:", "row 1: rating inf is not finite", function()
      rec.from_table({ { 1, 1, math.huge } })
    end)
    h.assert_error("moonml.rec.from_table:", "outside the scale [1, 5]", function()
      rec.from_table({ { 1, 1, 6 } }, { scale = { 1, 5 } })
    end)
    h.assert_error("moonml.rec.from_table:", "row 1:", function()
      rec.from_table({ { 1, 2 } })
    end)
    h.assert_error("moonml.rec.from_table:", "expected a table", rec.from_table, nil)
    h.assert_error("moonml.rec.from_tensors:", "whole number", function()
      rec.from_tensors(ml.tensor({ 1.5 }), ml.tensor({ 1 }), ml.tensor({ 3 }))
    end)
    h.assert_error("moonml.rec.from_tensors:", "lengths differ", function()
      rec.from_tensors(ml.tensor({ 1, 2 }), ml.tensor({ 1 }), ml.tensor({ 3 }))
    end)
  end)
end)

-- 10 ratings: users 1..4, items 1..5
local function ten()
  local rows = {}
  for k = 1, 10 do
    rows[k] = { (k - 1) % 4 + 1, (k - 1) % 5 + 1, (k % 5) + 1, 1000 + k }
  end
  return rec.from_table(rows)
end

local function keys(set)
  local out = {}
  for u, i, r, ts in set:ratings() do
    out[#out + 1] = string.format("%s/%s/%g/%d", u, i, r, ts)
  end
  return out
end

describe("splits", function()
  it("split{test = 0.2} gives ceil(0.2 n) test ratings, seeded", function()
    local d = ten()
    local tr, te = d:split({ test = 0.2, seed = 3 })
    assert.equal(8, #tr)
    assert.equal(2, #te)
    local tr2, te2 = d:split({ test = 0.2, seed = 3 })
    assert.same(keys(te), keys(te2))
    assert.same(keys(tr), keys(tr2))
    local all = keys(tr)
    for _, k in ipairs(keys(te)) do
      all[#all + 1] = k
    end
    assert.same(sorted(keys(d)), sorted(all))
    local _, te3 = d:split({ test = 3, seed = 3 })
    assert.equal(3, #te3)
    -- the id space is shared, so a model on train predicts the test ids
    assert.equal(d.ids, tr.ids)
    h.assert_error("moonml.rec.split:", "proportion", function() d:split({ test = 1.5 }) end)
    h.assert_error("moonml.rec.split:", "seed", function() d:split({ seed = "x" }) end)
  end)

  it("different seeds give different splits", function()
    local d = ten()
    local seen = {}
    for s = 1, 5 do
      local _, te = d:split({ test = 0.3, seed = s })
      seen[table.concat(sorted(keys(te)), ",")] = true
    end
    local n = 0
    for _ in pairs(seen) do
      n = n + 1
    end
    assert.is_true(n > 1)
  end)

  it("folds(k) partitions the ratings, first n % k folds one larger", function()
    local d = ten()
    local folds = d:folds(3, { seed = 1 })
    assert.equal(3, #folds)
    assert.same({ 4, 3, 3 }, { #folds[1].test, #folds[2].test, #folds[3].test })
    local all = {}
    for _, f in ipairs(folds) do
      assert.equal(10, #f.train + #f.test)
      for _, k in ipairs(keys(f.test)) do
        all[#all + 1] = k
      end
    end
    assert.same(sorted(keys(d)), sorted(all))
    local again = d:folds(3, { seed = 1 })
    assert.same(keys(folds[2].test), keys(again[2].test))
    h.assert_error("moonml.rec.folds:", "k must be", function() d:folds(1) end)
    h.assert_error("moonml.rec.folds:", "11 folds", function() d:folds(11) end)
  end)

  it("leave_last_out keeps the latest rating per user; ties go to the larger item id", function()
    local d = rec.from_table({
      { 1, 5, 3, 100 }, { 1, 10, 4, 300 }, { 1, 9, 2, 300 }, -- tie at 300: 10 > 9 (numbers)
      { 2, "b", 1, 50 }, { 2, "a", 5, 50 },                  -- tie: "b" > "a"
      { 3, 2, 4, 7 },
    })
    local tr, te = d:leave_last_out()
    assert.equal(3, #te)
    assert.equal(3, #tr)
    assert.same({ "1/10/4/300", "2/b/1/50", "3/2/4/7" }, keys(te))
    h.assert_error("moonml.rec.leave_last_out:", "timestamps", function()
      rec.from_table({ { 1, 1, 3 } }):leave_last_out()
    end)
  end)

  it("folds_from_file reads one fold number per line (0 = first fold)", function()
    local d = ten()
    local p = tmpfile("0\n1\n2\n0\n1\n2\n0\n1\n2\n0\n")
    local folds = rec.folds_from_file(d, p)
    assert.equal(3, #folds)
    assert.equal(4, #folds[1].test)
    local u, i = folds[1].test:get(2)
    assert.same({ 4, 4 }, { u, i }) -- rating 4 of ten()
    local bad = tmpfile("0\n1\n")
    h.assert_error("moonml.rec.folds_from_file:", "2 fold numbers for 10 ratings",
      rec.folds_from_file, d, bad)
    os.remove(p)
    os.remove(bad)
  end)
end)

describe("ML-100k files", function()
  -- (its load time is a figure of make bench-rec, not a test: timed tests fail under valgrind)
  it("loads u.data with the published counts", function()
    local path, why = h.shared_data("ml-100k/u.data")
    if not path then
      pending(why)
      return
    end
    local d = rec.load(path, { format = "movielens-100k" })
    assert.equal(100000, #d)
    assert.equal(943, d:n_users())
    assert.equal(1682, d:n_items())
  end)

  it("predefined_folds shares one id space between u1.base and u1.test", function()
    local path, why = h.shared_data("ml-100k/u1.base")
    if not path then
      pending(why)
      return
    end
    local folds = rec.predefined_folds(path:match("^(.*)/"), "u")
    assert.equal(5, #folds)
    assert.equal(80000, #folds[1].train)
    assert.equal(20000, #folds[1].test)
    assert.equal(folds[1].train.ids, folds[1].test.ids)
    local ua = rec.predefined_folds(path:match("^(.*)/"), "ua")
    assert.equal(1, #ua)
    assert.equal(90570, #ua[1].train)
    assert.equal(9430, #ua[1].test)
    h.assert_error("moonml.rec.predefined_folds:", "which", rec.predefined_folds, ".", "uc")
  end)
end)
