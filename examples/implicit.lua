-- What to watch next from clicks and plays, not ratings: MovieLens-100k read as implicit
-- feedback (every rating one interaction), ALS / BPR / item-kNN / popularity judged on
-- each user's last film, then a new visitor folded in from a few films without a refit,
-- and added to the model for good with partial_fit_users.
--
--   lua5.4 examples/implicit.lua [PATH]        (PATH: the ml-100k folder)
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local ml = require("moonml")
local rec = ml.rec

local dir = arg[1] or "../shared/data/ml-100k"
local data = rec.load(dir .. "/u.data", { format = "movielens-100k" })

local titles = {}
local f = io.open(dir .. "/u.item", "rb")
if f then
  for line in f:lines() do
    local id, title = line:match("^(%d+)|([^|]*)")
    if id then
      titles[tonumber(id)] = title
    end
  end
  f:close()
end
local function title(id)
  return titles[id] or ("item " .. tostring(id))
end

-- each user's last film (by time) is held out; how often is it in the user's top 10?
local train, test = data:leave_last_out()
local models = {
  { "ALS, alpha 40", rec.ALS({ factors = 64, regularization = 0.05, alpha = 40, random_state = 0 }) },
  { "BPR", rec.BPR({ factors = 64, random_state = 0 }) },
  { "ItemKNN bm25", rec.ItemKNN({ K = 20, similarity = "bm25" }) },
  { "Popular", rec.Popular() },
}
print(string.format("%-14s %8s %8s", "model", "HR@10", "NDCG@10"))
for _, e in ipairs(models) do
  e[2]:fit(train)
  local r = rec.ranking_metrics(e[2], test, 10, { threshold = -math.huge })
  print(string.format("%-14s %8.4f %8.4f", e[1], r.hit_rate, r.ndcg_at_k))
end

-- a visitor who watched three Star Wars-era films: recommendations at once, no refit
local als = models[1][2]
local session = { [50] = 1, [172] = 1, [181] = 1 } -- Star Wars, Empire, Return of the Jedi
print("\nA new visitor watched: " .. title(50) .. ", " .. title(172) .. ", " .. title(181))
for _, e in ipairs(models) do
  local ids = e[2]:recommend_new(session, 5)
  local names = {}
  for k, id in ipairs(ids) do
    names[k] = title(id)
  end
  print(string.format("  %-14s %s", e[1], table.concat(names, "; ")))
end

-- the visitor becomes a user of the ALS model (no refit of anyone else)
als:partial_fit_users({ visitor = session })
local ids, scores = als:recommend("visitor", 5)
print("\nALS after partial_fit_users, for 'visitor':")
for k, id in ipairs(ids) do
  print(string.format("%2d. %-50s %.3f", k, title(id), scores[k]))
end
local like = als:similar_items(50, 5)
local names = {}
for k, id in ipairs(like) do
  names[k] = title(id)
end
print("\nFilms closest to " .. title(50) .. " (cosine of ALS item factors): " ..
  table.concat(names, "; "))
