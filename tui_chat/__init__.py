"""tui-chat: a terminal chat client, its wire protocol, and (in `server`) the bundled server."""

__version__ = "0.1.0"
