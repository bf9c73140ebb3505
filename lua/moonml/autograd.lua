--- Autograd helpers written in Lua on top of the C engine: grad-mode scopes and a
-- finite-difference gradient check.
-- @module moonml.autograd
return function(ml, core)
  local function restore_after(prev, ok, ...)
    core.set_grad_enabled(prev)
    if not ok then
      error((...), 0)
    end
    return ...
  end

  --- Calls fn(...) with gradient recording off, then restores the previous mode (also
  -- when fn raises an error). Returns fn's results.
  function ml.no_grad(fn, ...)
    if type(fn) ~= "function" then
      error("moonml.no_grad: expected a function, got " .. type(fn), 0)
    end
    return restore_after(core.set_grad_enabled(false), pcall(fn, ...))
  end

  --- Calls fn(...) with gradient recording on (inside a no_grad scope, say).
  function ml.enable_grad(fn, ...)
    if type(fn) ~= "function" then
      error("moonml.enable_grad: expected a function, got " .. type(fn), 0)
    end
    return restore_after(core.set_grad_enabled(true), pcall(fn, ...))
  end

  local defaults = {
    float64 = { eps = 1e-6, atol = 1e-5, rtol = 1e-3 },
    -- float32: a step of 1e-3 balances rounding (~1e-7 / 1e-3) against truncation
    -- error (~1e-6 for smooth ops); tolerances follow from that.
    float32 = { eps = 1e-3, atol = 1e-2, rtol = 1e-2 },
  }

  local function flat_positions(x)
    local shape, positions = x:shape(), {}
    local idx = {}
    local function walk(d)
      if d > #shape then
        positions[#positions + 1] = { table.unpack(idx) }
        return
      end
      for i = 1, shape[d] do
        idx[d] = i
        walk(d + 1)
      end
    end
    walk(1)
    return positions
  end

  -- x:set(i, j, ..., v) with the indices from a table (table.unpack in the middle of an
  -- argument list would pass only the first index)
  local function set_at(x, pos, v)
    local args = { table.unpack(pos) }
    args[#args + 1] = v
    x:set(table.unpack(args))
  end

  local function output_of(fn, inputs)
    local y = fn(table.unpack(inputs))
    if not ml.is_tensor(y) then
      error("moonml.gradcheck: fn must return a tensor, got " .. type(y), 0)
    end
    return y
  end

  --- Checks the analytic gradients of fn at inputs against central finite differences.
  -- inputs: a Lua array of tensors; those with requires_grad are checked (their .grad
  -- is overwritten). opts: eps, atol, rtol (defaults per dtype: float64 1e-6/1e-5/1e-3,
  -- float32 1e-3/1e-2/1e-2). Returns true, or false and a message naming the first
  -- mismatch.
  function ml.gradcheck(fn, inputs, opts)
    if type(fn) ~= "function" then
      error("moonml.gradcheck: expected a function, got " .. type(fn), 0)
    end
    if type(inputs) ~= "table" then
      error("moonml.gradcheck: inputs must be a Lua array of tensors, got " .. type(inputs), 0)
    end
    opts = opts or {}
    if type(opts) ~= "table" then
      error("moonml.gradcheck: options must be a table, got " .. type(opts), 0)
    end
    for key, v in pairs(opts) do
      if key ~= "eps" and key ~= "atol" and key ~= "rtol" then
        error("moonml.gradcheck: unknown option '" .. tostring(key) .. "'", 0)
      end
      if type(v) ~= "number" then
        error("moonml.gradcheck: " .. key .. " must be a number, got " .. type(v), 0)
      end
    end
    local checked = {}
    for k, x in ipairs(inputs) do
      if ml.is_tensor(x) and x.requires_grad then
        checked[#checked + 1] = k
      end
    end
    if #checked == 0 then -- as PyTorch
      error("moonml.gradcheck: expects at least one input tensor that requires grad", 0)
    end
    -- analytic Jacobian, one backward per output element
    local ypos = flat_positions(output_of(fn, inputs))
    local analytic = {}
    for j, q in ipairs(ypos) do
      for _, k in ipairs(checked) do
        inputs[k].grad = nil
      end
      local y = output_of(fn, inputs)
      local onehot = ml.zeros_like(y)
      set_at(onehot, q, 1)
      y:backward(onehot)
      analytic[j] = {}
      for _, k in ipairs(checked) do
        local g = inputs[k].grad
        analytic[j][k] = g and g:clone() or ml.zeros_like(inputs[k])
      end
    end
    -- numerical Jacobian, one column per input element
    for _, k in ipairs(checked) do
      local x = inputs[k]
      local d = defaults[x:dtype()] or defaults.float32
      local eps, atol, rtol = opts.eps or d.eps, opts.atol or d.atol, opts.rtol or d.rtol
      for _, p in ipairs(flat_positions(x)) do
        local numeric = ml.no_grad(function()
          local old = x:get(table.unpack(p))
          set_at(x, p, old + eps)
          local plus = output_of(fn, inputs):clone()
          set_at(x, p, old - eps)
          local minus = output_of(fn, inputs):clone()
          set_at(x, p, old)
          return (plus - minus) / (2 * eps)
        end)
        for j, q in ipairs(ypos) do
          local got = analytic[j][k]:get(table.unpack(p))
          local want = numeric:get(table.unpack(q))
          if math.abs(got - want) > atol + rtol * math.abs(want) then
            return false, string.format("moonml.gradcheck: input %d element {%s}, output "
              .. "element %d: analytic %.6g, numeric %.6g", k, table.concat(p, ", "), j, got, want)
          end
        end
      end
    end
    return true
  end
end
