-- busted output handler: the plain terminal output, then one closing line
--   "N passed, N failed, N skipped"
-- failed counts assertion failures and errors (spec files that fail to load included).
return function(options)
  local busted = require("busted")
  local inner = os.getenv("BUSTED_INNER") or "plainTerminal"
  local handler = require("busted.outputHandlers." .. inner)(options)

  busted.subscribe({ "suite", "end" }, function()
    local failed = handler.failuresCount + handler.errorsCount
    io.write(
      string.format(
        "%d passed, %d failed, %d skipped\n",
        handler.successesCount,
        failed,
        handler.pendingsCount
      )
    )
    io.flush()
    return nil, true
  end)

  return handler
end
