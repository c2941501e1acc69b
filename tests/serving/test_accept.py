"""Workers share connections a client opens at once (serving.sockets, BentoML issue #5426)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from serving import service, sockets


def test_a_worker_accepts_one_connection_then_leaves_the_socket_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert service.NextBestAction is not None  # importing the service shares connections
    monkeypatch.setattr(sockets, "ACCEPT_PAUSE_SECONDS", 1.0)
    accepted: list[asyncio.BaseProtocol] = []

    def protocol() -> asyncio.Protocol:
        accepted.append(asyncio.Protocol())
        return accepted[-1]

    listening = socket.create_server(("127.0.0.1", 0))
    listening.setblocking(False)
    loop = asyncio.new_event_loop()
    clients = []
    try:
        server = loop.run_until_complete(loop.create_server(protocol, sock=listening))
        # three connections waiting together, as a client opening its pool makes them
        clients = [socket.create_connection(listening.getsockname()) for _ in range(3)]
        loop.run_until_complete(asyncio.sleep(0.1))
        assert len(accepted) == 1  # stock asyncio accepts all three at once
        with pytest.raises(KeyError):  # and this worker no longer watches the socket
            loop._selector.get_key(listening.fileno())  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while len(accepted) < 3 and time.monotonic() < deadline:
            loop.run_until_complete(asyncio.sleep(0.1))
        assert len(accepted) == 3  # it comes back for the others after the pause
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.run_until_complete(asyncio.sleep(1.2))  # a pause ending after close re-arms nothing
    finally:
        for client in clients:
            client.close()
        loop.close()
