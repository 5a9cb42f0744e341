"""One module per command: the flow of that command (connect, check, act, record, report). The Click layer
(flwrazure.cli) parses options and calls these; the plan modules decide, the azure modules act."""
