local ml = require("moonml")
local h = require("helpers")

describe("moonml module", function()
  it("loads and reports its version", function()
    assert.is_string(ml._VERSION)
    assert.is_true(ml.is_tensor(ml.zeros(2)))
  end)
  it("builds a tensor from nested tables", function()
    h.assert_close(ml.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }), { { 1, 2, 3 }, { 4, 5, 6 } },
      { dtype = "float32" })
  end)
end)
