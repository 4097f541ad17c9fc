"""How the log keeps what was said: it follows the newest line only while you are at the
end, and its scrollback drops whole messages from the top, never the newest."""

from __future__ import annotations

from tests.apptools import SIZE, log_text, make_app, online, until


async def test_the_log_follows_at_the_bottom_and_stays_put_when_scrolled_up(url, join) -> None:
    """New lines scroll the view only when it is already at the end."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        for number in range(60):
            await bob.send(type="say", text=f"line {number}", cid=f"a{number}")
        await until(pilot, lambda: "line 59" in log_text(app))
        await pilot.pause(0.1)
        log = app.query_one("ChatLog")
        assert log.scroll_y == log.max_scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause(0.1)
        held = log.scroll_y
        assert held < log.max_scroll_y
        for number in range(60, 70):
            await bob.send(type="say", text=f"line {number}", cid=f"b{number}")
        await until(pilot, lambda: "line 69" in log_text(app))
        await pilot.pause(0.1)
        assert log.scroll_y == held
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause(0.1)
        await bob.send(type="say", text="line 70", cid="c70")
        await until(pilot, lambda: "line 70" in log_text(app))
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y


async def test_scrollback_is_bounded(url, join) -> None:
    """The log keeps at most --scrollback lines."""
    app = make_app(url, "alice", scrollback=50)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        for number in range(120):
            await bob.send(type="say", text=f"n{number}", cid=f"k{number}")
        await until(pilot, lambda: "n119" in log_text(app))
        assert len(app.query_one("ChatLog").lines) == 50


async def test_a_message_longer_than_the_scrollback_is_kept_whole(url, join) -> None:
    """With a scrollback shorter than a message, the newest message still shows from its
    first row; the next line trims it away whole (the log keeps whole messages)."""
    app = make_app(url, "alice", scrollback=3)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say("\n".join(f"part{number}" for number in range(6)))
        await until(pilot, lambda: "part5" in log_text(app))
        rows = log_text(app).splitlines()
        assert len(rows) == 6 and rows[0].endswith("bob part0"), rows
        await bob.say("short")
        await until(pilot, lambda: "short" in log_text(app))
        rows = log_text(app).splitlines()
        assert len(rows) == 1 and rows[0].endswith(" bob short"), rows


async def test_the_scrollback_drops_a_wrapped_message_whole(url, join) -> None:
    """Trimming the log takes a wrapped message's rows together: no row it wrapped onto is
    left at the top without the row that names its sender."""
    app = make_app(url, "alice", scrollback=4)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say(" ".join(f"w{number}" for number in range(40)))
        await until(pilot, lambda: "w39" in log_text(app))
        wrapped = len(log_text(app).splitlines())
        assert wrapped > 2, "the message should wrap onto several rows"
        await bob.say("one")
        await bob.say("two")
        await until(pilot, lambda: "two" in log_text(app))
        rows = log_text(app).splitlines()
        assert [row.split()[-2:] for row in rows] == [["bob", "one"], ["bob", "two"]], rows
