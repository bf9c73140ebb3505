-- A failed call leaves every tensor, model and file as it was (DESIGN.md, "Errors" and
-- "Files"): a process killed in the middle of a save leaves the previous file intact;
-- an error in the middle of backward, an optimizer step or a fit leaves parameters,
-- gradients, optimizer state and the fitted model as they were before the call.
local ml = require("moonml")
local h = require("helpers")
local kill = require("support.kill_during_save")

-- every element of x equals y's (NaN-free data here)
local function same_values(x, y)
  local eq = x:eq(y)
  return eq:numel() == eq:long():sum():item()
end

local function snapshot(tensors)
  local out = {}
  for i, t in ipairs(tensors) do
    out[i] = t and t:clone() or false
  end
  return out
end

local function assert_same(before, tensors, what)
  for i, t in ipairs(tensors) do
    if before[i] == false then
      assert(t == nil, what .. " " .. i .. " was nil and is now set")
    else
      assert(t ~= nil, what .. " " .. i .. " was set and is now nil")
      assert(same_values(before[i], t), what .. " " .. i .. " changed")
    end
  end
end


------------------------------------------------------------------ files

-- Savers the harness (spec/support/kill_during_save.lua) kills in the middle of a save.
-- Each is Lua source returning make(tag), save(obj, path), tag_of(path).
local SAVERS = {
  {
    name = "ml.save (safetensors)",
    source = [[
      return {
        make = function(tag) return { w = ml.full({ 1024, 1024 }, tag), b = ml.full({ 7 }, tag) } end,
        save = function(obj, path) ml.save(obj, path) end,
        tag_of = function(path)
          local sd = ml.load(path)
          local t = sd.w:get(1, 1)
          if sd.w:min():item() == t and sd.w:max():item() == t and sd.b:get(7) == t then return t end
        end,
      }]],
  },
  {
    name = "a fitted recommender's m:save (rec.load_model)",
    source = [[
      local rows = {}
      for u = 1, 400 do for i = 1, 50 do rows[#rows + 1] = { u, i, (u + i) % 5 + 1 } end end
      local set = ml.rec.from_table(rows)
      return {
        make = function(tag) return ml.rec.SVD({ n_factors = 64, n_epochs = tag, random_state = 1 }):fit(set) end,
        save = function(m, path) m:save(path) end,
        tag_of = function(path)
          local m = ml.rec.load_model(path)
          return m.n_epochs
        end,
      }]],
  },
}

-- The harness checks itself on two savers written here in Lua: one atomic (write a
-- temporary file, then rename it over the target, as DESIGN asks), one that writes the
-- target in place. The first must never leave a torn file, the second must be caught.
local LUA_SAVER = [[
  local SIZE = 8 * 1024 * 1024
  local atomic = %s
  return {
    make = function(tag) return string.rep(tostring(tag), SIZE) end,
    save = function(obj, path)
      local target = atomic and path .. ".tmp" or path
      local f = assert(io.open(target, "wb"))
      for k = 1, #obj, 65536 do f:write(obj:sub(k, k + 65535)) end
      f:close()
      if atomic then assert(os.rename(target, path)) end
    end,
    tag_of = function(path)
      local f = assert(io.open(path, "rb"))
      local s = f:read("a")
      f:close()
      if #s == SIZE and s == string.rep(s:sub(1, 1), SIZE) then return tonumber(s:sub(1, 1)) end
    end,
  }]]

describe("a process killed in the middle of a save #nosan", function()
  if not io.open("/proc/self/stat", "r") then
    pending("needs /proc (Linux) to see the killed process go")
    return
  end

  it("the harness: an atomic saver (temporary file, rename) always leaves a whole file", function()
    local report = kill.run(string.format(LUA_SAVER, "true"), { rounds = 8 })
    assert(report.torn == 0, table.concat(report.messages, "\n"))
    assert(report.new > 0, "no kill came after a whole save: the child never saved")
  end)

  it("the harness: a saver writing in place is caught leaving a torn file", function()
    local report
    for _ = 1, 3 do -- a kill lands inside a write most of the time; three tries make it sure
      report = kill.run(string.format(LUA_SAVER, "false"), { rounds = 8 })
      if report.torn > 0 then
        break
      end
    end
    assert(report.torn > 0, "24 kills never caught an in-place save in the middle")
  end)

  for _, saver in ipairs(SAVERS) do
    it(saver.name .. " leaves the previous file or the new one, never a torn one", function()
      local report = kill.run(saver.source, { rounds = 8 })
      assert(report.torn == 0, table.concat(report.messages, "\n"))
      assert(report.new > 0, "no kill came after a whole save: the child never saved")
    end)
  end
end)

------------------------------------------------------------------ backward

describe("an error in the middle of backward", function()
  it("leaves every leaf and every .grad as it was", function()
    local a = ml.tensor({ 1, 2, 3 }, { requires_grad = true })
    local b = ml.tensor({ 0.5, -1, 2 }, { requires_grad = true })
    local c = ml.tensor({ 2, 2, 2 }, { requires_grad = true })
    local d = ml.tensor({ 3 }, { requires_grad = true })
    -- earlier gradients on some leaves (backward accumulates into them), none on others
    local y0 = (a * 2):sum() + (c * 3):sum()
    y0:backward()
    local leaves = { a, b, c, d }
    local values = snapshot(leaves)
    local grads = snapshot({ a.grad, b.grad, c.grad, d.grad })
    -- a graph whose middle fails: exp saves its output, which is then changed in place;
    -- gradients reach a, c and d on paths that do not cross the failing node
    local e = (b * c):exp()
    local y = (a * d):sum() + e:sum() + (c * a):sum() + d:sum()
    e:add_(1)
    h.assert_error("moonml.backward:", "modified by an in-place operation", function()
      y:backward()
    end)
    assert_same(values, leaves, "leaf")
    assert_same(grads, { a.grad, b.grad, c.grad, d.grad }, "grad")
  end)

  it("leaves them as they were when the gradient given does not fit", function()
    local w = ml.ones(2, 2, { requires_grad = true })
    local y = w * 3
    h.assert_error("moonml.backward:", "does not match", function()
      y:backward(ml.ones(3))
    end)
    assert.is_nil(w.grad)
    h.assert_close(w, { { 1, 1 }, { 1, 1 } })
  end)
end)

------------------------------------------------------------------ optimizers

describe("an optimizer step that fails", function()
  local function setup(cls, opts)
    ml.manual_seed(3)
    local ps = { ml.randn(2, 3, { requires_grad = true }), ml.randn(3, 2, { requires_grad = true }),
      ml.randn(4, { requires_grad = true }) }
    local opt = ml.optim[cls](ps, opts)
    local function grads()
      for k, p in ipairs(ps) do
        p.grad = ml.full(p:shape(), 0.1 * k)
      end
    end
    grads()
    opt:step() -- state exists (momentum buffers, Adam's moments and step counts)
    grads()
    return ps, opt
  end

  local function state_copy(opt, ps)
    local out = {}
    for k, p in ipairs(ps) do
      local s = {}
      for key, v in pairs(opt.state[p] or {}) do
        s[key] = ml.is_tensor(v) and v:clone() or v
      end
      out[k] = s
    end
    return out
  end

  local function assert_state(before, opt, ps)
    for k, p in ipairs(ps) do
      local s = opt.state[p] or {}
      for key, v in pairs(before[k]) do
        if ml.is_tensor(v) then
          assert(same_values(v, s[key]), "state " .. key .. " of parameter " .. k .. " changed")
        else
          assert.are.equal(v, s[key], "state " .. key .. " of parameter " .. k)
        end
      end
    end
  end

  for _, case in ipairs({ { "SGD", { lr = 0.1, momentum = 0.9 } }, { "Adam", { lr = 0.1 } },
    { "AdamW", { lr = 0.1 } }, { "RMSprop", { lr = 0.1, momentum = 0.5, centered = true } },
    { "Adagrad", { lr = 0.1 } } }) do
    it(case[1] .. ": a bad gradient on the second parameter changes none of them", function()
      local ps, opt = setup(case[1], case[2])
      -- a gradient the fused update cannot take (not contiguous); the first parameter
      -- comes before it in the update order, the third after it
      ps[2].grad = ml.full({ 2, 3 }, 0.2):t()
      local values, grads, state = snapshot(ps), snapshot({ ps[1].grad, ps[2].grad, ps[3].grad }),
        state_copy(opt, ps)
      h.assert_error("moonml.optim." .. case[1] .. ":", "parameter 2", opt.step, opt)
      assert_same(values, ps, "parameter")
      assert_same(grads, { ps[1].grad, ps[2].grad, ps[3].grad }, "grad")
      assert_state(state, opt, ps)
      -- and the same optimizer steps normally once the gradient is fixed
      ps[2].grad = ps[2].grad:contiguous()
      opt:step()
      assert(not same_values(values[1], ps[1]), "the step after the fix changed nothing")
    end)
  end

  it("load_state_dict refuses state tensors of the wrong shape before changing anything", function()
    local ps, opt = setup("SGD", { lr = 0.1, momentum = 0.9 })
    local sd = opt:state_dict()
    sd.state[2].momentum_buffer = ml.zeros(5)
    local state = state_copy(opt, ps)
    h.assert_error("moonml.optim.SGD:", "momentum_buffer", opt.load_state_dict, opt, sd)
    assert_state(state, opt, ps)
    local values = snapshot(ps)
    opt:step() -- still steps every parameter
    assert(not same_values(values[3], ps[3]))
  end)
end)

------------------------------------------------------------------ recommender fit

describe("a recommender fit that fails", function()
  local rec = ml.rec
  local function set_of(n_users, seed)
    local rows = {}
    for u = 1, n_users do
      for i = 1, 8 do
        if (u * 7 + i * seed) % 3 ~= 0 then
          rows[#rows + 1] = { u, i, (u + i * seed) % 5 + 1 }
        end
      end
    end
    return rec.from_table(rows)
  end
  local a, b = set_of(10, 1), set_of(30, 2)

  local function answers(m)
    local out = {}
    for u = 1, 10 do
      out[#out + 1] = m:predict(u, u % 8 + 1)
    end
    local items = m:recommend(1, 3)
    for _, i in ipairs(items) do
      out[#out + 1] = i
    end
    return out
  end

  it("SVD: bad initial factors (found mid-fit) leave the fitted model usable and unchanged", function()
    local m = rec.SVD({ n_factors = 3, n_epochs = 5, random_state = 1 }):fit(a)
    local before = answers(m)
    h.assert_error("moonml.rec.SVD.fit:", "init.pu", m.fit, m, b, { init = { pu = ml.zeros(1, 3) } })
    assert.are.same(before, answers(m))
    assert.are.equal(a, m.trainset)
  end)

  it("BaselineOnly: a bad baseline method leaves the fitted model usable and unchanged", function()
    local m = rec.BaselineOnly():fit(a)
    local before = answers(m)
    m.bsl_options = { method = "nope" } -- checked by fit, as in Surprise
    h.assert_error("moonml.rec.BaselineOnly:", "invalid method", m.fit, m, b)
    assert.are.same(before, answers(m))
  end)

  it("KNNBaseline: the same, through its baselines", function()
    local m = rec.KNNBaseline({ k = 3 }):fit(a)
    local before = answers(m)
    m.bsl_options = { method = "sgd", reg = "a lot" }
    h.assert_error("moonml.rec.KNNBaseline:", "must be a number", m.fit, m, b)
    assert.are.same(before, answers(m))
  end)

  it("fit with something that is not a rating set changes nothing", function()
    local m = rec.SlopeOne():fit(a)
    local before = answers(m)
    h.assert_error("moonml.rec.SlopeOne.fit:", "rating set", m.fit, m, { { 1, 2, 3 } })
    h.assert_error("moonml.rec.SlopeOne.fit:", "empty", m.fit, m, rec.from_table({}))
    assert.are.same(before, answers(m))
  end)
end)
