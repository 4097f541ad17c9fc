"""`python -m server`: the same as `tui-chat-server`."""

from server.cli import main

raise SystemExit(main())
