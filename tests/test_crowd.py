"""A crowd: 200 clients in one room, each receiving every message, in order."""

from __future__ import annotations

import asyncio
import json

from tests.helpers import JsonClient, PlainClient

CROWD = 200
MESSAGES = 50


async def test_every_member_of_a_crowd_receives_every_message_in_order(start_server) -> None:
    """200 clients (both dialects) each get all 50 messages from 5 senders, in id order."""
    server = await start_server(backlog=0)
    url = server.url + "/crowd"
    json_clients = [await JsonClient.connect(url, f"j{n}") for n in range(CROWD // 2)]
    plain_clients = [await PlainClient.connect(url, f"p{n}") for n in range(CROWD // 2)]
    senders = json_clients[:5]

    async def json_collect(client: JsonClient) -> list[tuple[int, str]]:
        got = []
        while len(got) < MESSAGES:
            event = json.loads(await asyncio.wait_for(client.connection.recv(), 30))
            if event["type"] == "message":
                got.append((event["id"], event["text"]))
        return got

    async def plain_collect(client: PlainClient) -> list[str]:
        got = []
        while len(got) < MESSAGES:
            line = await asyncio.wait_for(client.connection.recv(), 30)
            if not line.startswith("[Server]"):
                got.append(line)
        return got

    collectors = [asyncio.create_task(json_collect(c)) for c in json_clients]
    collectors += [asyncio.create_task(plain_collect(c)) for c in plain_clients]

    async def send(sender: JsonClient, index: int) -> None:
        for number in range(MESSAGES // len(senders)):
            await sender.send(type="say", text=f"s{index}-{number}", cid=f"{index}-{number}")
            await asyncio.sleep(0)

    await asyncio.gather(*(send(sender, index) for index, sender in enumerate(senders)))
    results = await asyncio.gather(*collectors)

    json_results = results[: len(json_clients)]
    reference = json_results[0]
    ids = [message_id for message_id, _ in reference]
    assert ids == sorted(ids) and len(set(ids)) == MESSAGES
    assert all(result == reference for result in json_results), "every JSON client, same order"
    for index in range(len(senders)):  # each sender's own messages stay in sending order
        mine = [text for _, text in reference if text.startswith(f"s{index}-")]
        assert mine == [f"s{index}-{n}" for n in range(MESSAGES // len(senders))]
    expected_lines = [f"[j{text[1]}]: {text}" for _, text in reference]
    assert all(result == expected_lines for result in results[len(json_clients):])
    await asyncio.gather(*(client.close() for client in json_clients + plain_clients))
