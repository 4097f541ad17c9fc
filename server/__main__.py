"""`python -m tui_chat_server`: the same as `tui-chat-server`."""

from .cli import main

raise SystemExit(main())
