-- ml.json (cJSON underneath) and ml.log. Reference texts: spec/fixtures/gen_json.py (Python's
-- json module, compact with sorted keys).
local ml = require("moonml")
local h = require("helpers")

local json = ml.json
local cases = h.fixture("json").cases(json.null, json.empty_array)

describe("ml.json.encode", function()
  it("writes the text Python's json module writes for the same values", function()
    for _, c in ipairs(cases) do
      assert.equal(c.text, json.encode(c.value))
    end
  end)

  it("keeps integers integers and floats floats", function()
    assert.equal("3", json.encode(3))
    assert.equal("3.0", json.encode(3.0))
    assert.equal("-0.0", json.encode(-0.0))
    assert.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.equal("-9223372036854775808", json.encode(math.mininteger))
    assert.equal("0.1", json.encode(0.1))
    assert.equal("1e+100", json.encode(1e100))
    for _, v in ipairs({ 0.1, 1 / 3, 2 ^ -1074, 1.7976931348623157e308, 123456.789e-20 }) do
      assert.equal(v, json.decode(json.encode(v)))
    end
  end)

  it("writes empty tables as objects unless marked as arrays", function()
    assert.equal("{}", json.encode({}))
    assert.equal("[]", json.encode(json.empty_array))
    assert.equal("[]", json.encode(setmetatable({}, json.array_mt)))
    assert.equal('{"a":[],"b":{}}', json.encode({ a = json.empty_array, b = {} }))
    assert.equal("[1,2]", json.encode(setmetatable({ 1, 2 }, json.array_mt)))
    assert.equal("null", json.encode(json.null))
  end)

  it("indents with spaces on request", function()
    local v = { b = { 1, 2 }, a = { x = true, e = {} } }
    assert.equal('{\n  "a": {\n    "e": {},\n    "x": true\n  },\n  "b": [1, 2]\n}',
      json.encode(v, { indent = true }))
    assert.equal('{\n    "a": 1\n}', json.encode({ a = 1 }, { indent = 4 }))
    assert.equal('{"a":1}', json.encode({ a = 1 }, { indent = false }))
    assert.equal('{"s":"tab\\there"}', json.encode({ s = "tab\there" }, { indent = 0 }))
    assert.equal('{\n  "s": "tab\\there"\n}', json.encode({ s = "tab\there" }, { indent = 2 }))
  end)

  it("refuses what JSON cannot hold, naming the place", function()
    h.assert_error("moonml.json.encode:", "NaN cannot be written in JSON at value.a[2]",
      json.encode, { a = { 1, 0 / 0 } })
    h.assert_error("moonml.json.encode:", "an infinite number cannot be written in JSON at value",
      json.encode, 1 / 0)
    h.assert_error("moonml.json.encode:", "at value.x", json.encode, { x = -1 / 0 })
    h.assert_error("moonml.json.encode:", "the table at value.cfg mixes array items (1..2) with the key 'name'",
      json.encode, { cfg = { 1, 2, name = "x" } })
    h.assert_error("moonml.json.encode:", "the array at value has a hole: 2 items but an item 3",
      json.encode, { [1] = 1, [3] = 3 })
    h.assert_error("moonml.json.encode:", "a key of type boolean (true) at value", json.encode,
      { [true] = 1 })
    h.assert_error("moonml.json.encode:", "a key of type number (1.5) at value.a", json.encode,
      { a = { [1.5] = 1 } })
    h.assert_error("moonml.json.encode:", "a key of type number (0)", json.encode, { [0] = 1 })
    h.assert_error("moonml.json.encode:", "a key of type number (-1)", json.encode, { [-1] = 1 })
    h.assert_error("moonml.json.encode:", "a function at value.f cannot be written", json.encode,
      { f = print })
    h.assert_error("moonml.json.encode:", "a tensor at value[1] cannot be written in JSON (convert it",
      json.encode, { ml.ones(2) })
    h.assert_error("moonml.json.encode:", "nil at value (use ml.json.null for null)", json.encode, nil)
    h.assert_error("moonml.json.encode:", "a string at value.s is not valid UTF-8 text (byte 2)",
      json.encode, { s = "a\255" })
    h.assert_error("moonml.json.encode:", "a string at value[1] is not valid UTF-8", json.encode,
      { "a\0b" })
    h.assert_error("moonml.json.encode:", "a key at value.\237\160\128 is not valid UTF-8",
      json.encode, { ["\237\160\128"] = 1 })
  end)

  it("refuses cycles and nesting deeper than 1000 levels, but takes a shared table", function()
    local t = { a = {} }
    t.a.back = t
    h.assert_error("moonml.json.encode:", "a cycle: the table refers back to itself at value.a.back",
      json.encode, t)
    local self_ref = {}
    self_ref[1] = self_ref
    h.assert_error("moonml.json.encode:", "a cycle", json.encode, self_ref)
    local shared = { 1 }
    assert.equal('{"x":[1],"y":[1]}', json.encode({ x = shared, y = shared }))
    local deep = {}
    local cur = deep
    for _ = 1, 1000 do
      cur[1] = {}
      cur = cur[1]
    end
    h.assert_error("moonml.json.encode:", "nesting deeper than 1000 levels", json.encode, deep)
    local ok_deep = {}
    cur = ok_deep
    for _ = 1, 999 do
      cur[1] = {}
      cur = cur[1]
    end
    -- 1000 levels: the innermost table is empty, so an object
    assert.equal(string.rep("[", 999) .. "{}" .. string.rep("]", 999), json.encode(ok_deep))
  end)

  it("checks its options", function()
    h.assert_error("moonml.json.encode:", "options must be a table, got string", json.encode, {}, "x")
    h.assert_error("moonml.json.encode:", "unknown option 'pretty'", json.encode, {}, { pretty = true })
    h.assert_error("moonml.json.encode:", "indent must be true, false or a number of spaces 0..16, got 99",
      json.encode, {}, { indent = 99 })
  end)

  it("keeps its sentinels read-only", function()
    h.assert_error("moonml.json.empty_array:", "cannot be changed", function()
      json.empty_array[1] = 1
    end)
    h.assert_error("moonml.json.null:", "cannot be changed", function()
      json.null.x = 1
    end)
    assert.equal("ml.json.null", tostring(json.null))
  end)
end)

describe("ml.json.decode", function()
  it("reads the texts Python wrote back to the values", function()
    for _, c in ipairs(cases) do
      assert.same(c.value, json.decode(c.text))
    end
  end)

  it("gives integers as Lua integers up to 2^53, other numbers as floats", function()
    -- 2^53 itself is a float: the text may have been 2^53 + 1, which a double cannot tell apart
    local v = json.decode("[1, -7, 100e0, 1e2, 2.5, 9007199254740991, 9007199254740993, 1e300, -0]")
    assert.equal("integer", math.type(v[1]))
    assert.equal(-7, v[2])
    assert.equal("integer", math.type(v[3]))
    assert.equal(100, v[4])
    assert.equal("float", math.type(v[5]))
    assert.equal("integer", math.type(v[6]))
    assert.equal(9007199254740991, v[6])
    assert.equal("float", math.type(v[7]))
    assert.equal(1e300, v[8])
    assert.equal(0, v[9])
  end)

  it("reads escapes, surrogate pairs, null, booleans and empty containers", function()
    local v = json.decode('{"s": "a\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00", "n": null, "t": true, '
      .. '"f": false, "arr": [], "obj": {}}')
    assert.equal('a"b\\c/\né😀', v.s)
    assert.equal(json.null, v.n)
    assert.is_true(v.t)
    assert.is_false(v.f)
    assert.same({}, v.arr)
    assert.equal(json.array_mt, getmetatable(v.arr))
    assert.is_nil(getmetatable(v.obj))
    assert.equal('{"arr":[],"f":false,"n":null,"obj":{},"s":"a\\"b\\\\c/\\né😀","t":true}',
      json.encode(v))
    assert.same({ json.null, 1 }, json.decode("[null, 1]"))
    assert.equal(json.null, json.decode(" null "))
  end)

  it("says where malformed text goes wrong", function()
    h.assert_error("moonml.json.decode:", "malformed JSON at line 3, column 8, near '}'",
      json.decode, '{\n  "a": 1,\n  "b": }')
    h.assert_error("moonml.json.decode:", "malformed JSON at line 1, column 5, near 'x'",
      json.decode, "[1] x")
    h.assert_error("moonml.json.decode:", "the text ends early", json.decode, '{"a": [1, 2')
    h.assert_error("moonml.json.decode:", "the text ends early", json.decode, "")
    h.assert_error("moonml.json.decode:", "near 'NaN]'", json.decode, "[NaN]")
    h.assert_error("moonml.json.decode:", "near ''a']'", json.decode, "['a']")
    h.assert_error("moonml.json.decode:", "malformed JSON at line 1, column 8", json.decode,
      '{"a":1,}')
    h.assert_error("moonml.json.decode:", "nesting deeper than 1000 levels", json.decode,
      string.rep("[", 1001) .. string.rep("]", 1001))
    assert.equal(999, (function()
      local v, d = json.decode(string.rep("[", 999) .. string.rep("]", 999)), 0
      while type(v) == "table" do
        d, v = d + 1, v[1]
      end
      return d
    end)())
  end)

  it("refuses what a Lua value cannot hold and text that is not UTF-8", function()
    h.assert_error("moonml.json.decode:", "a number is out of the range of a double", json.decode,
      "[1e400]")
    h.assert_error("moonml.json.decode:", "\\u0000 (a zero character) at line 1, column 4",
      json.decode, '["a\\u0000b"]')
    assert.equal("\\u0000", json.decode('"\\\\u0000"'))
    h.assert_error("moonml.json.decode:", "the text is not valid UTF-8 at line 2, column 4",
      json.decode, '[1,\n  "\255"]')
    h.assert_error("moonml.json.decode:", "a zero byte at line 1, column 3", json.decode, "[1\0]")
  end)

  it("checks its argument", function()
    h.assert_error("moonml.json.decode:", "expected a string as argument 1, got nil", json.decode)
    h.assert_error("moonml.json.decode:", "expected a string as argument 1, got table", json.decode, {})
    h.assert_error("moonml.json.decode:", "expected a string as argument 1, got number", json.decode, 12)
  end)
end)

describe("ml.log", function()
  local path
  before_each(function()
    path = os.tmpname()
    os.remove(path)
  end)
  after_each(function() os.remove(path) end)

  it("appends one JSON line per call, readable at once", function()
    ml.log(path, { epoch = 1, loss = 0.5 })
    local f = assert(io.open(path))
    assert.equal('{"epoch":1,"loss":0.5}\n', f:read("a"))
    f:close()
    ml.log(path, { epoch = 2, loss = 0.25, tags = { "a", "b" } })
    local lines = {}
    for line in io.lines(path) do
      lines[#lines + 1] = json.decode(line)
    end
    assert.same({ { epoch = 1, loss = 0.5 }, { epoch = 2, loss = 0.25, tags = { "a", "b" } } }, lines)
  end)

  it("is still the element-wise logarithm when given a tensor", function()
    h.assert_close(ml.log(ml.tensor({ 1, math.exp(2) })), { 0, 2 })
    h.assert_error("moonml.log:", "expected a tensor as argument 1, got nil", ml.log)
  end)

  it("raises moonml.log errors and writes nothing then", function()
    h.assert_error("moonml.log:", "expected a file path as argument 1, got nil", json.log, nil, {})
    h.assert_error("moonml.log:", "expected a table as argument 2, got number", ml.log, path, 3)
    h.assert_error("moonml.log:", "expected a table as argument 2, got table", ml.log, path, json.null)
    h.assert_error("moonml.log:", "NaN cannot be written in JSON at value.loss", ml.log, path,
      { loss = 0 / 0 })
    assert.is_nil(io.open(path))
    h.assert_error("moonml.log:", "/no/such/folder/x.jsonl", ml.log, "/no/such/folder/x.jsonl", {})
  end)
end)
