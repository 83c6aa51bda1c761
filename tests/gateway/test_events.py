"""GET /api/v1/events: one hub per gateway, one Watch on the cache for every open page.

The hub alone (with a feed written here) in front of a real aiohttp server, then
the real gateway and cache processes with 200 streams open at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from services.cache.ownership.membership import preferred
from services.gateway.events import QUEUE_LIMIT, Event, EventHub, Publish
from tests.gateway.stack import TOKEN, gateway_stack, refusing_address
from tests.ownership.cluster import ADMIN_TOKEN, Cluster, put
from tests.support.polling import eventually
from tests.support.processes import running_http

# Generous: the machine is shared.
WAIT = 60.0
STREAMS = 200


class ScriptedFeed:
    """Publishes what the test tells it to; counts its runs."""

    def __init__(self) -> None:
        self.publish: Publish | None = None
        self.runs = 0
        self.running = asyncio.Event()
        self.stopped = asyncio.Event()

    async def run(self, publish: Publish) -> None:
        self.publish, self.runs = publish, self.runs + 1
        self.stopped.clear()
        self.running.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.running.clear()
            self.stopped.set()


async def next_event(response: aiohttp.ClientResponse, kind: str) -> Any:
    """The data of the next event named `kind` on an open stream."""
    name = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == kind:
            return json.loads(line.removeprefix("data: "))
        elif not line:
            name = None
    raise AssertionError(f"the stream ended before a {kind!r} event")


async def events_of(response: aiohttp.ClientResponse) -> list[tuple[str, Any]]:
    """Every event until the stream ends."""
    found: list[tuple[str, Any]] = []
    await _collect(response, found)
    return found


async def _collect(stream: aiohttp.ClientResponse, seen: list[tuple[str, Any]]) -> None:
    """Append (name, data) of each event to `seen`, until the stream ends."""
    name = ""
    async for raw in stream.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            seen.append((name, json.loads(line.removeprefix("data: "))))


@pytest.fixture
async def hub_server() -> AsyncIterator[tuple[EventHub, ScriptedFeed, str]]:
    feed = ScriptedFeed()
    hub = EventHub(feed)
    app = web.Application()
    app.router.add_get("/events", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield hub, feed, f"http://127.0.0.1:{port}/events"
    finally:
        await hub.close()
        await runner.cleanup()


async def test_the_feed_runs_while_a_page_listens_and_newcomers_get_the_state(
    hub_server: tuple[EventHub, ScriptedFeed, str],
) -> None:
    hub, feed, url = hub_server
    assert feed.runs == 0  # nobody listens: nothing is watched
    async with aiohttp.ClientSession() as session:
        first = await session.get(url)
        assert first.headers["Content-Type"] == "text/event-stream"
        await asyncio.wait_for(feed.running.wait(), WAIT)
        assert feed.publish is not None
        feed.publish(Event("snapshot", {"sectors": [{"symbol": "XLK", "changePercent": 1.0}]}))
        feed.publish(Event("sector", {"symbol": "XLK", "sector": {"changePercent": 2.0}}))
        feed.publish(Event("metrics", {"hits": 1}))
        feed.publish(Event("metrics", {"hits": 2}))
        assert (await next_event(first, "metrics")) == {"hits": 1}
        # A newcomer is sent the latest of each, the sector update after its snapshot.
        second = await session.get(url)
        await eventually(lambda: hub.listeners == 2, WAIT, "two listeners")
        await hub.close()
        kinds = [(name, data) for name, data in await events_of(second)]
        assert kinds == [
            ("snapshot", {"sectors": [{"symbol": "XLK", "changePercent": 1.0}]}),
            ("sector", {"symbol": "XLK", "sector": {"changePercent": 2.0}}),
            ("metrics", {"hits": 2}),
        ]
        await asyncio.wait_for(feed.stopped.wait(), WAIT)
        assert feed.runs == 1
        first.close()
        second.close()


async def test_a_page_too_far_behind_is_dropped_and_the_feed_stops_with_the_last(
    hub_server: tuple[EventHub, ScriptedFeed, str],
) -> None:
    hub, feed, url = hub_server
    async with aiohttp.ClientSession() as session:
        stalled = await session.get(url)
        await asyncio.wait_for(feed.running.wait(), WAIT)
        assert feed.publish is not None
        # No await in between: the page cannot read, its queue overflows.
        for i in range(QUEUE_LIMIT + 1):
            feed.publish(Event("metrics", {"hits": i}))
        assert hub.listeners == 0
        events = await events_of(stalled)  # the stream ends: EventSource would reconnect
        assert len(events) < QUEUE_LIMIT + 1
        await asyncio.wait_for(feed.stopped.wait(), WAIT)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.e2e
async def test_200_open_event_streams_share_one_watch(tmp_path: Path) -> None:
    with gateway_stack(tmp_path) as stack:
        cache_metrics = f"http://127.0.0.1:{stack.backends['cache'].metrics_port}/metrics"
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WAIT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def watches() -> float:
                """Open Watch streams on the cache (its cache_watch_subscribers gauge)."""
                async with session.get(cache_metrics) as reply:
                    samples = _samples(await reply.text())
                return samples.get(("cache_watch_subscribers", ()), -1.0)

            streams = [await session.get(f"{stack.url}/api/v1/events") for _ in range(STREAMS)]
            assert {s.status for s in streams} == {200}
            await asyncio.wait_for(
                asyncio.gather(*(next_event(s, "metrics") for s in streams)), WAIT
            )
            assert await watches() == 1

            # A sector written over REST reaches every page, from that one Watch.
            sector = {"symbol": "XLK", "price": 250.5, "changePercent": 4.25}
            value = {"sector": sector, "storedAt": time.time(), "freshFor": 900}
            async with session.put(
                f"{stack.url}/api/v1/cache/keys/sectors:XLK",
                json={"value": value, "ttlSeconds": 600},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as reply:
                assert reply.status == 200, await reply.text()
            pushed = await asyncio.wait_for(
                asyncio.gather(*(next_event(s, "sector") for s in streams)), WAIT
            )
            assert {(p["symbol"], p["sector"]["changePercent"]) for p in pushed} == {("XLK", 4.25)}
            assert await watches() == 1
            for stream in streams:
                stream.close()
            # The last page gone, the gateway lets go of the Watch.
            await eventually(
                lambda: _none(watches), WAIT, "the Watch ends after the last page", every=0.2
            )


async def _none(count: Callable[[], Awaitable[float]]) -> bool:
    return await count() == 0


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_sector_batch_is_pushed_as_the_sector_then_the_rebuilt_snapshot(
    tmp_path: Path,
) -> None:
    with gateway_stack(tmp_path, market_data=True, sector=True) as stack:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WAIT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            stream = await session.get(f"{stack.url}/api/v1/events")
            seen: list[tuple[str, Any]] = []
            reader = asyncio.create_task(_collect(stream, seen))

            def last(kind: str) -> Any:
                return next((data for name, data in reversed(seen) if name == kind), None)

            def xle(snapshot: Any) -> Any:
                return next((s for s in snapshot["sectors"] if s["symbol"] == "XLE"), None)

            try:
                first = await eventually(lambda: last("snapshot"), WAIT, "a first snapshot")
                assert len(first["sectors"]) == 11
                batch = {"sectors": [{"symbol": "XLE", "price": 91.25, "changePercent": 7.5}]}
                async with session.post(
                    f"{stack.url}/api/v1/sectors/batch",
                    json=batch,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as reply:
                    assert reply.status == 200, await reply.text()
                # The batch writes sectors:XLE, then drops the snapshot: the gateway has
                # the sector service build the next one, which holds the new figures.
                pushed = await eventually(
                    lambda: (s := last("sector")) and s["symbol"] == "XLE" and s, WAIT, "XLE"
                )
                assert pushed["sector"]["changePercent"] == 7.5
                snapshot = await eventually(
                    lambda: (s := last("snapshot")) and xle(s)["changePercent"] == 7.5 and s,
                    WAIT,
                    f"a snapshot with the new XLE; seen {[n for n, _ in seen]}; "
                    f"gateway log {stack.gateway.log()[-2000:]}",
                )
                assert xle(snapshot)["price"] == 91.25
            finally:
                reader.cancel()
                stream.close()


def _nodes_splitting_the_watched_prefixes() -> tuple[str, str]:
    """Two node ids: the first owns `snapshots`, the second `sectors` (rendezvous)."""
    names = [f"node-{i}" for i in range(50)]
    for first in names:
        for second in names:
            pair = (first, second)
            if first == second:
                continue  # one node twice: it would own both, and the second would leak
            if preferred("snapshots", pair) == first and preferred("sectors", pair) == second:
                return pair
    raise AssertionError("no pair of node ids splits the prefixes")


@pytest.mark.e2e
@pytest.mark.slow
async def test_the_watch_follows_each_prefix_to_its_owner(tmp_path: Path) -> None:
    near, far = _nodes_splitting_the_watched_prefixes()
    cluster = Cluster(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path)
    try:
        await cluster.start(near, far)
        await cluster.wait_members([near, far])
        for prefix, owner in (("snapshots", near), ("sectors", far)):
            await put(cluster.stub(near), f"{prefix}:seed", 1)
            assert (await cluster.settled_owner(prefix, [near, far])).node_id == owner
        with (
            refusing_address() as nowhere,
            running_http(
                "gateway",
                {
                    "GATEWAY_LISTEN": "127.0.0.1:0",
                    "CACHE_ADDR": cluster.nodes[near].grpc_address,
                    "MARKET_DATA_ADDR": nowhere,
                    "SECTOR_ADDR": nowhere,
                    "ADMIN_TOKEN": ADMIN_TOKEN,
                },
                tmp_path / "gateway",
            ) as gateway,
        ):
            timeout = aiohttp.ClientTimeout(total=None, sock_read=WAIT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                stream = await session.get(f"{gateway.http_url}/api/v1/events")
                await asyncio.wait_for(next_event(stream, "metrics"), WAIT)
                # `sectors` is refused where the gateway points, then watched at its owner.
                await eventually(
                    lambda: (
                        [cluster.metric(n, "cache_watch_subscribers") for n in (near, far)]
                        == [1, 1]
                    ),
                    WAIT,
                    "one Watch at each owner",
                    every=0.2,
                )
                auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                sector = {"sector": {"symbol": "XLK", "price": 250.5, "changePercent": 1.5}}
                snapshot = {"snapshot": {"sectors": [{"symbol": "XLB", "changePercent": -2.0}]}}
                writes = (
                    ("sectors:XLK", sector, "sector"),
                    ("snapshots:latest", snapshot, "snapshot"),
                )
                for key, value, kind in writes:
                    async with session.put(
                        f"{gateway.http_url}/api/v1/cache/keys/{key}",
                        json={"value": value},
                        headers=auth,
                    ) as reply:
                        assert reply.status == 200, await reply.text()
                    pushed = await asyncio.wait_for(next_event(stream, kind), WAIT)
                    if kind == "sector":
                        assert pushed["sector"]["changePercent"] == 1.5
                    else:
                        assert pushed["sectors"][0]["changePercent"] == -2.0
                stream.close()
    finally:
        await cluster.close()


@pytest.mark.e2e
async def test_sigterm_ends_the_open_streams_cleanly(tmp_path: Path) -> None:
    with gateway_stack(tmp_path) as stack:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WAIT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            streams = [await session.get(f"{stack.url}/api/v1/events") for _ in range(3)]
            await asyncio.wait_for(
                asyncio.gather(*(next_event(s, "metrics") for s in streams)), WAIT
            )
            ending = asyncio.gather(*(events_of(s) for s in streams))
            # The gateway ends each stream whole (no cut connection) and then exits.
            assert await asyncio.to_thread(stack.gateway.terminate, WAIT) == 0
            await asyncio.wait_for(ending, WAIT)
