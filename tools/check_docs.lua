-- Lists the public functions of the given Lua files that have no LDoc comment ("---" block)
-- right above them, and exits 1 if there is any (`make docs` runs it; LDoc itself only
-- complains about files without any documented item). Public: `function a.b(`, `function
-- a:b(` and `a.b = function(` whose last name does not start with "_"; local functions and
-- plain globals are left out.
--   lua5.4 tools/check_docs.lua lua/moonml/*.lua ...
local missing, total = 0, 0
for _, path in ipairs(arg) do
  local lines = {}
  for l in io.lines(path) do
    lines[#lines + 1] = l
  end
  for i, l in ipairs(lines) do
    local name = l:match("^%s*function%s+([%w_]+[.:][%w_.:]+)%s*%(")
      or l:match("^%s*([%w_]+%.[%w_.]+)%s*=%s*function%s*%(")
    if name and not name:match("[.:]_[%w_]*$") then
      total = total + 1
      local j, documented = i - 1, false
      while j > 0 and lines[j]:match("^%s*%-%-") do
        documented = documented or lines[j]:match("^%s*%-%-%-") ~= nil
        j = j - 1
      end
      if not documented then
        missing = missing + 1
        print(string.format("%s:%d: %s has no doc comment", path, i, name))
      end
    end
  end
end
print(string.format("%d of %d public functions have a doc comment", total - missing, total))
os.exit(missing == 0 and 0 or 1)
