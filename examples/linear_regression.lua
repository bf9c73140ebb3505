-- Linear regression fitted by gradient descent, written out with tensor ops: the first
-- model of the documents moonml grew from. The data is generated here, so the demo runs
-- on a fresh clone with nothing downloaded.
--
--   lua5.4 examples/linear_regression.lua [n_samples] [epochs]
--   (or `make demo`, which sets the paths to the in-tree build)
local ml = require("moonml")

local n = tonumber(arg and arg[1]) or 1000
local epochs = tonumber(arg and arg[2]) or 100
local lr = 0.1

ml.manual_seed(42)
local true_w = ml.tensor({ { 2.0 }, { -3.4 }, { 1.7 } }) -- 3 x 1
local true_b = 4.2
local x = ml.randn(n, 3)
local y = x:matmul(true_w) + true_b + ml.randn(n, 1) * 0.1 -- noise of std 0.1

local w = ml.zeros(3, 1)
local b = 0.0
print(string.format("fitting y = x*w + b on %d samples, learning rate %g", n, lr))
for epoch = 1, epochs do
  local err = x:matmul(w) + b - y -- n x 1 residuals
  local loss = (err * err):mean():item()
  -- gradients of the mean squared error
  local grad_w = x:t():matmul(err) * (2 / n)
  local grad_b = 2 * err:mean():item()
  w:sub_(grad_w * lr)
  b = b - lr * grad_b
  if epoch == 1 or epoch % 10 == 0 then
    print(string.format("epoch %4d   loss %.6f", epoch, loss))
  end
end

local wt = w:totable()
print(string.format("learned w = (%.3f, %.3f, %.3f), b = %.3f", wt[1][1], wt[2][1], wt[3][1], b))
print("true    w = (2.000, -3.400, 1.700), b = 4.200")
