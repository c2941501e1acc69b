"""NBA_THREADS bounds how many requests one worker computes at once, and bad values are named."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from nba.errors import ConfigError
from nba.settings import get_settings
from serving.app import Threads
from serving.auth import service_options


def test_a_worker_computes_at_most_nba_threads_requests_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBA_THREADS", "2")
    get_settings(fresh=True)
    running, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i * i

    async def main() -> list[int]:
        threads, results = Threads(), [0] * 8

        async def one(i: int) -> None:
            results[i] = await threads.run(work, i)

        async with anyio.create_task_group() as group:
            for i in range(8):
                group.start_soon(one, i)
        return results

    try:
        assert anyio.run(main) == [i * i for i in range(8)]
    finally:
        monkeypatch.delenv("NBA_THREADS")
        get_settings(fresh=True)
    assert peak[0] == 2  # eight requests in flight, two computing at a time


@pytest.mark.parametrize(
    ("name", "value"), [("NBA_THREADS", "many"), ("NBA_THREADS", "0"), ("NBA_WORKERS", "-1")]
)
def test_bad_worker_settings_are_refused_naming_the_variable_and_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ConfigError) as caught:
            service_options()
    finally:
        monkeypatch.delenv(name)
        get_settings(fresh=True)
    assert name in str(caught.value) and repr(value) in str(caught.value)


def test_the_service_options_carry_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBA_WORKERS", "3")
    monkeypatch.setenv("NBA_THREADS", "1")
    try:
        options = service_options()
    finally:
        monkeypatch.delenv("NBA_WORKERS")
        monkeypatch.delenv("NBA_THREADS")
        get_settings(fresh=True)
    assert (options["workers"], options["threads"]) == (3, 1)
