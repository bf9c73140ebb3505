-- What fuzz_json.c runs for each input: ml.json.decode of the text. A refusal must say
-- "moonml.json.decode:"; a value that decodes must encode, and its text must be a fixed
-- point (decode then encode gives the same text, compact or indented).
local json = require("moonml").json

local T = {}

local function finding(fmt, ...)
  error("FINDING: " .. string.format(fmt, ...), 0)
end

function T.run(text)
  local ok, value = pcall(json.decode, text)
  if not ok then
    if type(value) ~= "string" or not value:find("^moonml%.json%.decode:") then
      finding("decode raised a non-moonml error: %s", tostring(value))
    end
    return
  end
  local encoded, s1 = pcall(json.encode, value)
  if not encoded then
    finding("a decoded value does not encode: %s", tostring(s1))
  end
  local s2 = json.encode(json.decode(s1))
  if s2 ~= s1 then
    finding("encode(decode(text)) is not a fixed point:\n%s\n%s", s1, s2)
  end
  local s3 = json.encode(json.decode(json.encode(value, { indent = true })))
  if s3 ~= s1 then
    finding("the indented text reads back differently:\n%s\n%s", s1, s3)
  end
end

return T
