"""Connections shared between the service's worker processes."""

from __future__ import annotations

import inspect
import logging

log = logging.getLogger("nba.serving")

ACCEPT_PAUSE_SECONDS = 0.001


def share_connections_between_workers() -> None:
    """Let every worker take its share of the connections a client opens at once.

    Workers share one listening socket (BentoML hands the same one to each), and asyncio
    accepts every waiting connection each time the socket wakes it: the first worker to wake
    takes all the connections a client opens together and keeps them while they live, and the
    other workers stand idle (BentoML issue #5426; measured here: wrk's 8 connections all on
    one of two workers in most runs, 430 requests/s against 800 when they are split). Here a
    worker accepts one connection, then leaves the socket to the others for a millisecond.
    """
    from asyncio import selector_events

    loop_class = selector_events.BaseSelectorEventLoop
    accept = loop_class._accept_connection  # type: ignore[attr-defined]
    if getattr(accept, "shares", False):
        return
    expected = ["self", "protocol_factory", "sock", "sslcontext", "server", "backlog"]
    if list(inspect.signature(accept).parameters)[:6] != expected:  # another Python: leave it be
        log.warning("asyncio's accept has changed; connections are not shared between workers")
        return

    def accept_one(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, *args):
        accept(self, protocol_factory, sock, sslcontext, server, 1, *args)
        fd = sock.fileno()
        if fd < 0 or not self._remove_reader(fd):
            return

        def resume() -> None:
            if server is None or server.is_serving():
                self._add_reader(fd, self._accept_connection, protocol_factory, sock, sslcontext, server,
                                 backlog, *args)  # fmt: skip

        self.call_later(ACCEPT_PAUSE_SECONDS, resume)

    accept_one.shares = True  # type: ignore[attr-defined]
    loop_class._accept_connection = accept_one  # type: ignore[attr-defined]
