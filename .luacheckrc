-- luacheck configuration (make lint)
std = "lua54"
max_line_length = 120
exclude_files = { "build/", "lua_modules/", ".luarocks/", "spec/fixtures/" }
files["spec/"] = { std = "+busted" }
files[".busted"] = { std = "lua54" }
self = false -- methods need not use self
