"""`python -m tui_chat`: the same as `tui-chat`."""

from tui_chat.cli import main

raise SystemExit(main())
