-- luacheck configuration (make lint)
std = "lua54"
max_line_length = 100
exclude_files = { "build/", "lua_modules/", ".luarocks/" }
files["spec/"] = { std = "+busted" }
files[".busted"] = { std = "lua54" }
