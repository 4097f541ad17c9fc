"""The layers hold: the protocol and the server never import textual (nor, the protocol, websockets).

So they stay usable headless and testable without a terminal. And every module says in
its first line what lives in it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEADLESS = {
    "tui_chat/protocol.py": {"textual", "websockets", "rich"},
    "tui_chat/nicknames.py": {"textual", "websockets", "rich"},
    "tui_chat/cleaning.py": {"textual", "websockets", "rich"},
    "tui_chat/mentions.py": {"textual", "websockets", "rich"},
    "tui_chat/hosting.py": {"textual", "rich"},
    "tui_chat/client.py": {"textual", "rich"},
    "tui_chat/updates.py": {"textual", "rich", "websockets"},
    "tui_chat/outbox.py": {"textual", "rich"},
    "tui_chat/commands.py": {"textual", "rich", "websockets"},
    "tui_chat/cli.py": {"textual"},  # the app is imported lazily, only to run it
    "tui_chat/headless.py": {"textual", "rich"},
    "tui_chat/position.py": {"textual", "rich", "websockets"},
    "tui_chat/reasons.py": {"textual", "rich"},
    "tui_chat/renames.py": {"textual", "rich", "websockets"},
    "tui_chat/collector.py": {"textual", "rich", "websockets"},
    **{str(path.relative_to(ROOT)): {"textual", "rich"} for path in (ROOT / "server").glob("*.py")},
}
# The app: the only modules that may import textual (and `python -m tui_chat`, the package).
APP = {"tui_chat/app.py", "tui_chat/chat_input.py", "tui_chat/chat_log.py", "tui_chat/render.py",
       "tui_chat/widgets.py", "tui_chat/leaving.py", "tui_chat/terminal.py", "tui_chat/__init__.py", "tui_chat/__main__.py"}
MODULES = sorted(str(path.relative_to(ROOT)) for folder in ("tui_chat", "server")
                 for path in (ROOT / folder).glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("relative", "forbidden"), sorted(HEADLESS.items()))
def test_headless_modules_do_not_import_ui_libraries(relative: str, forbidden: set[str]) -> None:
    """No import statement in a headless module names a forbidden package."""
    assert not imported_modules(ROOT / relative) & forbidden


def test_every_module_is_either_headless_or_part_of_the_app() -> None:
    """A new module is placed on one side or the other, so the layer rule covers it too."""
    assert set(MODULES) == set(HEADLESS) | APP
    assert not set(HEADLESS) & APP


@pytest.mark.parametrize("relative", MODULES)
def test_every_module_starts_with_a_one_line_docstring(relative: str) -> None:
    """Its first line is a whole sentence saying what lives there (details after a blank line)."""
    docstring = ast.get_docstring(ast.parse((ROOT / relative).read_text()), clean=False)
    assert docstring, f"{relative} has no docstring"
    first, *rest = docstring.split("\n")
    assert first.endswith(".") and (not rest or rest[0] == ""), f"{relative}: {first!r}"


def test_importing_the_server_and_protocol_loads_no_ui_library() -> None:
    """Even indirectly, the server, the protocol and the client's networking pull in no textual."""
    code = ("import sys, tui_chat_server, tui_chat_server.cli, tui_chat.protocol, tui_chat.client,"
            " tui_chat.cli, tui_chat.headless; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_the_package_installs_only_names_of_its_own() -> None:
    """Installed, tui-chat adds the top-level packages `tui_chat` and `tui_chat_server` (the
    sources in server/), and no package called plain `server` to clash with someone else's."""
    from importlib.metadata import packages_distributions

    ours = {name for name, dists in packages_distributions().items() if "tui-chat" in dists}
    assert ours == {"tui_chat", "tui_chat_server"}
