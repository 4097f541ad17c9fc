"""The bundled tui-chat server: rooms, nicknames, history and both dialects on one port."""

from server.app import ChatServer, ServerConfig

__all__ = ["ChatServer", "ServerConfig"]
