-- Algorithms on tiny hand-made rating sets whose answers are worked out by hand (or by
-- a literal transcription of Surprise's loops, for the multi-step cases).
local ml = require("moonml")
local h = require("helpers")
local rec = ml.rec

-- u1: i1=5, i2=3; u2: i1=4, i3=1; u3: i2=2. mu = 15/5 = 3.
local function five()
  return rec.from_table({ { 1, 1, 5 }, { 1, 2, 3 }, { 2, 1, 4 }, { 2, 3, 1 }, { 3, 2, 2 } },
    { scale = { 1, 5 } })
end

describe("BaselineOnly", function()
  it("ALS, one epoch: item biases first, then user biases (reg_i 10, reg_u 15)", function()
    local m = rec.BaselineOnly({ bsl_options = { method = "als", n_epochs = 1 } }):fit(five())
    -- bi = sum(r - mu - bu) / (reg_i + |U(i)|) with bu = 0
    h.assert_close(m.bi, { 3 / 12, -1 / 12, -2 / 11 }, { rtol = 1e-12, atol = 1e-12 })
    -- bu = sum(r - mu - bi) / (reg_u + |I(u)|)
    -- u1: (2 - 1/4) + (0 + 1/12) = 11/6; u2: (1 - 1/4) + (-2 + 2/11) = -47/44; u3: -11/12
    h.assert_close(m.bu, { 11 / 6 / 17, -47 / 44 / 17, -11 / 12 / 16 },
      { rtol = 1e-12, atol = 1e-12 })
    local est, details = m:predict(1, 3)
    assert.near(3 + 11 / 102 - 2 / 11, est, 1e-12)
    assert.is_false(details.was_impossible)
    -- unknown user: mu + bi, not impossible (Surprise's BaselineOnly)
    est, details = m:predict(99, 1)
    assert.near(3 + 0.25, est, 1e-12)
    assert.is_false(details.was_impossible)
  end)

  it("SGD, one epoch: lr 0.005, reg 0.02 over the ratings by user", function()
    local m = rec.BaselineOnly({ bsl_options = { method = "sgd", n_epochs = 1 } }):fit(five())
    -- worked by hand in rating order (u1,i1) (u1,i2) (u2,i1) (u2,i3) (u3,i2):
    -- err 2 -> bu1 = bi1 = 0.01; err -0.01 -> bu1 = 0.009949, bi2 = -0.00005;
    -- err 0.99 -> bu2 = 0.00495, bi1 = 0.014949; err -2.00495 -> bu2 = -0.005075245,
    -- bi3 = -0.01002475; err -0.99995 -> bu3 = -0.00499975, bi2 = -0.005049745
    h.assert_close(m.bu, { 0.009949, -0.005075245, -0.00499975 }, { rtol = 1e-9, atol = 1e-12 })
    h.assert_close(m.bi, { 0.014949, -0.005049745, -0.01002475 }, { rtol = 1e-9, atol = 1e-12 })
  end)

  it("defaults to ALS with 10 epochs and checks its options", function()
    local a = rec.BaselineOnly():fit(five())
    local b = rec.BaselineOnly({ bsl_options = { method = "als", n_epochs = 10, reg_u = 15,
      reg_i = 10 } }):fit(five())
    h.assert_close(a.bu, b.bu:totable(), { rtol = 0, atol = 0 })
    h.assert_error("moonml.rec.BaselineOnly:", "invalid method 'lbfgs'", function()
      rec.BaselineOnly({ bsl_options = { method = "lbfgs" } }):fit(five())
    end)
    h.assert_error("moonml.rec.BaselineOnly:", "unknown baseline option 'reg'", function()
      rec.BaselineOnly({ bsl_options = { method = "als", reg = 1 } }):fit(five())
    end)
    h.assert_error("moonml.rec.BaselineOnly:", "bsl_options must be a table", function()
      rec.BaselineOnly({ bsl_options = 3 })
    end)
  end)
end)

describe("SVD", function()
  it("one SGD epoch from known factors matches the hand computation", function()
    -- u1 rates i1 = 4 then i2 = 2; mu = 3; lr 0.1, reg 0.5, 2 factors
    local d = rec.from_table({ { 1, 1, 4 }, { 1, 2, 2 } }, { scale = { 1, 5 } })
    local m = rec.SVD({ n_factors = 2, n_epochs = 1, lr_all = 0.1, reg_all = 0.5 })
    m:fit(d, { init = { pu = ml.tensor({ { 0.1, 0.2 } }),
      qi = ml.tensor({ { 0.3, -0.1 }, { 0.5, 0.4 } }) } })
    -- rating 1: dot = 0.01, err = 0.99; bu = bi1 = 0.099
    --   pu = p + 0.1 (0.99 q - 0.5 p) = (0.1247, 0.1801); qi1 = (0.2949, -0.0752)
    -- rating 2: dot = 0.1247*0.5 + 0.1801*0.4 = 0.13439, est = 3.23339, err = -1.23339
    --   bu = 0.099 + 0.1 (err - 0.0495) = -0.029289; bi2 = -0.123339
    --   pu = (0.0567955, 0.1217594); qi2 = (0.4596196267, 0.3577866461)
    h.assert_close(m.bu, { -0.029289 }, { rtol = 1e-6 })
    h.assert_close(m.bi, { 0.099, -0.123339 }, { rtol = 1e-6 })
    h.assert_close(m.pu, { { 0.0567955, 0.1217594 } }, { rtol = 1e-5 })
    h.assert_close(m.qi, { { 0.2949, -0.0752 }, { 0.4596196267, 0.3577866461 } }, { rtol = 1e-5 })
    local est = m:predict(1, 1)
    assert.near(3.07730368607, est, 1e-5)
  end)

  it("unbiased SVD leaves the biases out and cannot predict unknown pairs", function()
    local d = rec.from_table({ { 1, 1, 4 } }, { scale = { 1, 5 } })
    local m = rec.SVD({ n_factors = 1, n_epochs = 1, lr_all = 0.1, reg_all = 0, biased = false })
    m:fit(d, { init = { pu = ml.tensor({ { 1 } }), qi = ml.tensor({ { 2 } }) } })
    -- err = 4 - 2 = 2; pu = 1 + 0.1*2*2 = 1.4; qi = 2 + 0.1*2*1 = 2.2
    h.assert_close(m.pu, { { 1.4 } })
    h.assert_close(m.qi, { { 2.2 } })
    assert.near(3.08, (m:predict(1, 1)), 1e-5)
    local est, details = m:predict(1, 42)
    assert.equal(4, est) -- the train set's mean
    assert.is_true(details.was_impossible)
    assert.equal("User and item are unknown.", details.reason)
  end)

  it("is reproducible with random_state and checks its parameters", function()
    local a = rec.SVD({ n_factors = 4, random_state = 7 }):fit(five())
    local b = rec.SVD({ n_factors = 4, random_state = 7 }):fit(five())
    h.assert_close(a.pu, b.pu:totable(), { rtol = 0, atol = 0 })
    h.assert_error("moonml.rec.SVD:", "n_factors must be an integer", rec.SVD, { n_factors = 1.5 })
    h.assert_error("moonml.rec.SVD:", "unknown parameter 'lr'", rec.SVD, { lr = 1 })
    h.assert_error("moonml.rec.SVD.fit:", "init.pu has shape [1, 2], expected [3, 4]",
      function()
        rec.SVD({ n_factors = 4 }):fit(five(), { init = { pu = ml.zeros(1, 2) } })
      end)
  end)
end)

-- Surprise's SVD++ loop transcribed literally (every y_j updated after every rating).
local function svdpp_reference(d, k, init, p)
  local mu = d:global_mean()
  local pu, qi, yj = init.pu:totable(), init.qi:totable(), init.yj:totable()
  local nu, ni = #pu, #qi
  local bu, bi = {}, {}
  for u = 1, nu do bu[u] = 0 end
  for i = 1, ni do bi[i] = 0 end
  local rows = {}
  for u = 1, nu do
    local items, ratings = d.store:row(false, u)
    rows[u] = { items, ratings }
  end
  for _ = 1, p.n_epochs do
    for u = 1, nu do
      local Iu, rs = rows[u][1], rows[u][2]
      local sq = math.sqrt(#Iu)
      for x = 1, #Iu do
        local i, r = Iu[x], rs[x]
        local imp = {}
        for f = 1, k do
          imp[f] = 0
          for _, j in ipairs(Iu) do imp[f] = imp[f] + yj[j][f] / sq end
        end
        local dot = 0
        for f = 1, k do dot = dot + qi[i][f] * (pu[u][f] + imp[f]) end
        local err = r - (mu + bu[u] + bi[i] + dot)
        bu[u] = bu[u] + p.lr * (err - p.reg * bu[u])
        bi[i] = bi[i] + p.lr * (err - p.reg * bi[i])
        for f = 1, k do
          local puf, qif = pu[u][f], qi[i][f]
          pu[u][f] = puf + p.lr * (err * qif - p.reg * puf)
          qi[i][f] = qif + p.lr * (err * (puf + imp[f]) - p.reg * qif)
          for _, j in ipairs(Iu) do
            yj[j][f] = yj[j][f] + p.lr * (err * qif / sq - p.reg * yj[j][f])
          end
        end
      end
    end
  end
  return { pu = pu, qi = qi, yj = yj, bu = bu, bi = bi }
end

describe("SVDpp", function()
  it("matches Surprise's literal loop (per-rating y_j updates)", function()
    local d = rec.from_table({
      { 1, 1, 5 }, { 1, 2, 3 }, { 1, 4, 4 }, { 2, 1, 4 }, { 2, 3, 1 }, { 2, 4, 2 },
      { 3, 2, 2 }, { 3, 3, 5 },
    }, { scale = { 1, 5 } })
    local k = 3
    local init = {}
    local seed = 0
    local function mat(r, c)
      local t = {}
      for a = 1, r do
        t[a] = {}
        for b = 1, c do
          seed = seed + 1
          t[a][b] = 0.1 * math.sin(seed * 1.7) -- fixed "random" values
        end
      end
      return ml.tensor(t)
    end
    init.pu, init.qi, init.yj = mat(3, k), mat(4, k), mat(4, k)
    local p = { n_epochs = 3, lr = 0.05, reg = 0.1 }
    local m = rec.SVDpp({ n_factors = k, n_epochs = p.n_epochs, lr_all = p.lr, reg_all = p.reg })
    m:fit(d, { init = init })
    local ref = svdpp_reference(d, k, init, p)
    h.assert_close(m.bu, ref.bu, { rtol = 1e-4, atol = 1e-6 })
    h.assert_close(m.bi, ref.bi, { rtol = 1e-4, atol = 1e-6 })
    h.assert_close(m.pu, ref.pu, { rtol = 1e-4, atol = 1e-6 })
    h.assert_close(m.qi, ref.qi, { rtol = 1e-4, atol = 1e-6 })
    h.assert_close(m.yj, ref.yj, { rtol = 1e-4, atol = 1e-6 })
    -- prediction: mu + bu + bi + q_i . (p_u + |I(u)|^-1/2 sum y_j)
    -- inner ids follow first appearance: raw items 1, 2, 4, 3 are inner 1, 2, 3, 4
    assert.equal(4, d:inner_item(3))
    local imp = {}
    for f = 1, k do
      imp[f] = (ref.yj[1][f] + ref.yj[2][f] + ref.yj[3][f]) / math.sqrt(3)
    end
    local want = d:global_mean() + ref.bu[1] + ref.bi[4]
    for f = 1, k do
      want = want + ref.qi[4][f] * (ref.pu[1][f] + imp[f])
    end
    assert.near(want, (m:predict(1, 3)), 1e-5)
  end)
end)

-- Surprise's NMF loop transcribed literally.
local function nmf_reference(d, pu, qi, p)
  local nu, ni = #pu, #qi
  local k = #pu[1]
  local mu = p.biased and d:global_mean() or 0
  local bu, bi = {}, {}
  for u = 1, nu do bu[u] = 0 end
  for i = 1, ni do bi[i] = 0 end
  for _ = 1, p.n_epochs do
    local un, ud, inum, iden = {}, {}, {}, {}
    for u = 1, nu do un[u], ud[u] = {}, {} for f = 1, k do un[u][f], ud[u][f] = 0, 0 end end
    for i = 1, ni do inum[i], iden[i] = {}, {} for f = 1, k do inum[i][f], iden[i][f] = 0, 0 end end
    for u = 1, nu do
      local items, rs = d.store:row(false, u)
      for x = 1, #items do
        local i, r = items[x], rs[x]
        local dot = 0
        for f = 1, k do dot = dot + qi[i][f] * pu[u][f] end
        local est = mu + bu[u] + bi[i] + dot
        local err = r - est
        if p.biased then
          bu[u] = bu[u] + p.lr_bu * (err - p.reg_bu * bu[u])
          bi[i] = bi[i] + p.lr_bi * (err - p.reg_bi * bi[i])
        end
        for f = 1, k do
          un[u][f] = un[u][f] + qi[i][f] * r
          ud[u][f] = ud[u][f] + qi[i][f] * est
          inum[i][f] = inum[i][f] + pu[u][f] * r
          iden[i][f] = iden[i][f] + pu[u][f] * est
        end
      end
    end
    for u = 1, nu do
      local n = d.store:user_count(u)
      for f = 1, k do
        if pu[u][f] ~= 0 then
          ud[u][f] = ud[u][f] + n * p.reg_pu * pu[u][f]
          pu[u][f] = pu[u][f] * un[u][f] / ud[u][f]
        end
      end
    end
    for i = 1, ni do
      local n = d.store:item_count(i)
      for f = 1, k do
        if qi[i][f] ~= 0 then
          iden[i][f] = iden[i][f] + n * p.reg_qi * qi[i][f]
          qi[i][f] = qi[i][f] * inum[i][f] / iden[i][f]
        end
      end
    end
  end
  return pu, qi, bu, bi
end

describe("NMF", function()
  for _, biased in ipairs({ false, true }) do
    it("matches Surprise's multiplicative updates (biased = " .. tostring(biased) .. ")", function()
      local d = five()
      local pu0 = { { 0.5, 0.2 }, { 0.1, 0.9 }, { 0.7, 0.3 } }
      local qi0 = { { 0.4, 0.6 }, { 0.8, 0.1 }, { 0.3, 0.3 } }
      local p = { n_epochs = 2, biased = biased, reg_pu = 0.06, reg_qi = 0.06, reg_bu = 0.02,
        reg_bi = 0.02, lr_bu = 0.005, lr_bi = 0.005 }
      local m = rec.NMF({ n_factors = 2, n_epochs = 2, biased = biased })
      m:fit(d, { init = { pu = ml.tensor(pu0), qi = ml.tensor(qi0) } })
      local pu, qi, bu, bi = nmf_reference(d, pu0, qi0, p)
      h.assert_close(m.pu, pu, { rtol = 1e-5 })
      h.assert_close(m.qi, qi, { rtol = 1e-5 })
      if biased then
        h.assert_close(m.bu, bu, { rtol = 1e-5, atol = 1e-9 }) -- float32 factors
        h.assert_close(m.bi, bi, { rtol = 1e-5, atol = 1e-9 })
      end
    end)
  end

  it("rejects a negative init_low, as Surprise", function()
    h.assert_error("moonml.rec.NMF:", "init_low", rec.NMF, { init_low = -1 })
  end)
end)

describe("NormalPredictor", function()
  it("draws around the train mean with the maximum-likelihood deviation", function()
    local d = five() -- mu 3, sigma^2 = (4 + 0 + 1 + 4 + 1) / 5 = 2
    local m = rec.NormalPredictor():fit(d)
    assert.near(math.sqrt(2), m.sigma, 1e-12)
    ml.manual_seed(3)
    local big = {}
    for k = 1, 4000 do big[k] = 1 end
    local est = m:predict_batch(big, big):totable()
    local s = 0
    for _, v in ipairs(est) do
      assert.is_true(v >= 1 and v <= 5)
      s = s + v
    end
    assert.near(3, s / #est, 0.1) -- clipping at 1 and 5 is symmetric around 3
  end)
end)

describe("recommend", function()
  -- u1: a=5, b=3; u2: a=4, c=1, d=5; u3: b=2, d=4. One ALS epoch: bi(a) = bi(d) exactly
  -- ((5 - mu) + (4 - mu)) / 12, bi(b) = (5 - 2 mu) / 12, bi(c) = (1 - mu) / 11.
  local function seven(ids)
    local r = {
      { 1, ids[1], 5 }, { 1, ids[2], 3 }, { 2, ids[1], 4 }, { 2, ids[3], 1 }, { 2, ids[4], 5 },
      { 3, ids[2], 2 }, { 3, ids[4], 4 },
    }
    return rec.from_table(r, { scale = { 1, 5 } })
  end

  it("leaves seen items out and orders by score, ties to the smaller id", function()
    for _, ids in ipairs({ { 10, 20, 30, 40 }, { "a", "b", "c", "d" } }) do
      local m = rec.BaselineOnly({ bsl_options = { n_epochs = 1 } }):fit(seven(ids))
      local items, scores = m:recommend(1, 10)
      assert.same({ ids[4], ids[3] }, items)
      local mu = 24 / 7
      local bu1 = ((5 - mu - (9 - 2 * mu) / 12) + (3 - mu - (5 - 2 * mu) / 12)) / 17
      assert.near(mu + bu1 + (9 - 2 * mu) / 12, scores[1], 1e-12)
      assert.near(mu + bu1 + (1 - mu) / 11, scores[2], 1e-12)
      items = m:recommend(1, 3, { exclude_seen = false })
      assert.same({ ids[1], ids[4], ids[2] }, items) -- a and d tie: a first
      items = m:recommend(2, 1)
      assert.same({ ids[2] }, items)
      assert.same({}, (m:recommend(1, 0)))
    end
  end)

  it("rejects unknown users and bad arguments", function()
    local m = rec.BaselineOnly():fit(seven({ 1, 2, 3, 4 }))
    h.assert_error("moonml.rec.BaselineOnly.recommend:", "unknown user '9'", function()
      m:recommend(9, 3)
    end)
    h.assert_error("moonml.rec.BaselineOnly.recommend:", "n must be", function()
      m:recommend(1, -1)
    end)
    h.assert_error("moonml.rec.BaselineOnly.recommend:", "unknown option 'seen'", function()
      m:recommend(1, 2, { seen = true })
    end)
  end)
end)
