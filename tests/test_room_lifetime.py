"""Rooms come and go: an empty room is forgotten, and goes on from its history when joined again."""

from __future__ import annotations

from tests.helpers import JsonClient, PlainClient, eventually


async def test_a_room_nobody_is_in_is_forgotten(start_server, tmp_path) -> None:
    """Room names come and go freely: once a room is empty and what was said in it is
    stored, no table in the server is keyed by its name (its history stays in the database);
    before, each kept about 115 bytes, forever."""
    server = await start_server(db=str(tmp_path / "h.db"))
    names = [f"room-{number}" for number in range(30)]
    for number, name in enumerate(names):
        client = await JsonClient.connect(f"{server.url}/{name}", "a")
        if number % 3 == 0:
            await client.say("x")
        await client.close()
    await eventually(lambda: not server.hub.rooms)
    keyed = [table for table in _reachable(server) if isinstance(table, dict)
             and any(name in table for name in names)]
    assert keyed == []


def _reachable(root: object) -> list[object]:
    """The objects `root` refers to, directly or not, short of modules, classes and code."""
    import gc
    import types

    skipped = (type, types.ModuleType, types.FunctionType, types.CodeType)
    seen, found, todo = {id(root)}, [], [root]
    while todo:
        for referent in gc.get_referents(todo.pop()):
            if id(referent) not in seen and not isinstance(referent, skipped):
                seen.add(id(referent))
                found.append(referent)
                todo.append(referent)
    return found


async def test_a_room_left_while_its_message_is_stored_goes_on_from_its_history(
        start_server, tmp_path) -> None:
    """A raw client that says a line and hangs up at once leaves its room empty before the
    line is committed; whoever joins next gets that line exactly once, and the room's ids go
    on from it."""
    server = await start_server(db=str(tmp_path / "h.db"))
    for round_ in range(20):
        raw = await PlainClient.connect(server.url + "/brief", f"raw{round_}")
        await raw.send(f"line {round_}")
        await raw.connection.close()
        await eventually(lambda: not server.hub.rooms)
        alice = await JsonClient.connect(server.url + "/brief", "alice")
        texts = [message["text"] for message in alice.welcome["history"]]
        try:
            while True:
                event = await alice.recv(timeout=0.2)
                if event["type"] == "message":
                    texts.append(event["text"])
        except TimeoutError:
            pass
        assert texts.count(f"line {round_}") == 1, texts
        said = await alice.say(f"reply {round_}")
        assert said["id"] == 2 * round_ + 2
        await alice.close()
