"""The bundled tui-chat server: rooms, nicknames, history and both dialects on one port."""

from .app import ChatServer, ServerConfig

__all__ = ["ChatServer", "ServerConfig"]
