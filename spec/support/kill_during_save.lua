-- Kills a process in the middle of a save and reports what the file holds afterwards
-- (DESIGN.md, "Files": saves are atomic, so a save cut short leaves the previous file).
--
--   local kill = require("support.kill_during_save")
--   local report = kill.run(saver, {rounds = 8})
--
-- saver: Lua source (a string) of a chunk returning {make = fn(tag) -> obj, save =
-- fn(obj, path), tag_of = fn(path) -> tag or nil}. make(tag) builds an object whose saved
-- file is large enough that a save takes a few milliseconds; tag_of reads a file back and
-- returns the tag it was made with, or nil (or an error) when the file is not one whole
-- saved object. The chunk runs with `ml` (require "moonml") as its only upvalue-free
-- global besides the standard library, in this process and in the child.
--
-- Each round: this process saves make(1) to the path; a child lua5.4 process saves make(2)
-- to the same path in a loop; after a delay (stepping through 0..200 ms, so that the
-- kill lands before the first save, during one and between two) the child gets SIGKILL
-- (os.execute("kill -9 <pid>")); then tag_of(path) must be 1 or 2. The report counts the
-- rounds by outcome: {old =, new =, torn =, rounds =, messages = {...}}.
local kill = {}

local CHILD = [[
local ml = require("moonml")
local saver = assert(load(assert(io.open(arg[1])):read("a"), "saver", "t",
  setmetatable({ ml = ml }, { __index = _G })))()
local obj, path = saver.make(2), arg[2]
while true do
  saver.save(obj, path)
end
]]

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

-- The process is gone (or a zombie nobody waits for: the shell that started it exited).
local function gone(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() (%a)") == "Z"
end

function kill.load_saver(source)
  local ml = require("moonml")
  local env = setmetatable({ ml = ml }, { __index = _G })
  return assert(load(source, "saver", "t", env))()
end

function kill.run(source, opts)
  opts = opts or {}
  local rounds = opts.rounds or 8
  local saver = kill.load_saver(source)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local saver_file, child_file, pid_file = dir .. "/saver.lua", dir .. "/child.lua", dir .. "/pid"
  local path = dir .. "/target"
  write_file(saver_file, source)
  write_file(child_file, CHILD)
  local old = saver.make(1)
  local report = { old = 0, new = 0, torn = 0, rounds = rounds, messages = {} }
  for r = 1, rounds do
    saver.save(old, path)
    assert(saver.tag_of(path) == 1, "the saver cannot read back its own file")
    local cmd = string.format("LUA_PATH=%q LUA_CPATH=%q lua5.4 %s %s %s >/dev/null 2>&1 & echo $! > %s",
      package.path, package.cpath, child_file, saver_file, path, pid_file)
    assert(os.execute(cmd))
    local pid = assert(tonumber(read_file(pid_file)), "no pid from the shell")
    local delay = 0.2 * (r - 1) / math.max(1, rounds - 1)
    os.execute(string.format("sleep %.3f", delay))
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    for _ = 1, 200 do -- at most 2 s
      if gone(pid) then
        break
      end
      os.execute("sleep 0.01")
    end
    assert(gone(pid), "the child " .. pid .. " survived kill -9")
    local ok, tag = pcall(saver.tag_of, path)
    if ok and tag == 1 then
      report.old = report.old + 1
    elseif ok and tag == 2 then
      report.new = report.new + 1
    else
      report.torn = report.torn + 1
      report.messages[#report.messages + 1] = string.format("round %d (killed after %.0f ms): %s",
        r, delay * 1000, ok and ("tag " .. tostring(tag)) or tostring(tag))
    end
  end
  os.execute("rm -rf " .. dir)
  return report
end

return kill
