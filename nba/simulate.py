"""Campaign simulation: `nba simulate` drives a running service with the world's app traffic.

A product owner rehearses an experiment here before it goes live. Each simulated day,
``requests_per_day`` members who have an online account open the app: the simulation asks
``/recommend`` for each (channel ``app``, three items) and posts ``/feedback`` for what the
member does with every returned action. Responses follow the generator's ground truth
(``ground_truth/propensities.parquet``, the latest month, which features, training and serving
never read):

- ``p`` is the member's true probability of the action's event within 90 days and
  ``h = 1 - (1 - p) ** (1/3)`` the monthly hazard it implies;
- a card shown in the app works like one of the world's campaign exposures
  (docs/synthetic-world.md): the member accepts with probability ``1 - (1 - h) ** L``, ``L`` being
  the exposure lift (2.5 for prevention, 4 for offers);
- every acceptance starts with a click, and ``CLICKS_PER_ACCEPTANCE`` times as many members
  click (at most all of them);
- a member who does not click dismisses the card with probability ``DISMISS``.

The events posted are ``shown``, then ``clicked``, then ``accepted`` or ``dismissed``.

Determinism: which members open the app on day ``d`` is drawn from ``(seed, d)``, and a member's
response to an action from ``(seed, d, member, action)``, so nothing depends on the order in
which concurrent requests are answered. A member opens the app at most once a day, and all of a
day's feedback is posted before the next day starts, so the service's contact policy sees the
same history whatever the concurrency. The service stamps feedback with its own clock: the
simulated days pass in minutes, and the contact policy's 30-day windows span all of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np

from features.build import table_path
from features.synthetic.behaviour import EXPOSURE_LIFT
from nba import vocab
from nba.errors import ConfigError, DataError, NbaError

CLICKS_PER_ACCEPTANCE = 2.5
"""Members who click a card, per member who accepts it."""
DISMISS = 0.15
"""Probability that a member who does not click dismisses the card."""
ITEMS = 3
ACTION_INDEX = {a: i for i, a in enumerate(vocab.ACTION_IDS)}
COUNTED = ("requests", "shown", "clicked", "accepted", "dismissed")


class ServiceError(NbaError):
    """The service could not be reached, or refused the simulation's calls."""


@dataclass(frozen=True)
class Traffic:
    """Who may open the app and what each would truly do: members with an online account, active
    in the truth's latest month, and their true 90-day probabilities, one column per action."""

    members: np.ndarray
    truth: np.ndarray
    month: str

    def probability(self, member: int, action: str) -> float:
        row = int(np.searchsorted(self.members, member))
        return float(self.truth[row, ACTION_INDEX[action]])


def load_traffic(data: Path) -> Traffic:
    """App users of the world in ``data`` and their ground truth."""
    data = Path(data)
    truth_file = data / "ground_truth" / "propensities.parquet"
    if not truth_file.is_file():
        raise DataError(
            f"--data {data}: expected the generator's ground truth at {truth_file} (a world written by "
            "`nba generate`); found none"
        )
    columns = ", ".join(f't."{a}"' for a in vocab.ACTION_IDS)
    with duckdb.connect() as con:
        month = con.execute(f"SELECT max(month) FROM read_parquet('{truth_file}')").fetchone()
        if month is None or month[0] is None:
            raise DataError(f"{truth_file}: expected at least one month of ground truth; found none")
        rows = con.execute(
            f"""SELECT t.member_id, {columns}
            FROM read_parquet('{truth_file}') t
            JOIN read_parquet('{table_path(data, "members")}') m USING (member_id)
            WHERE t.month = ? AND m.valid_to IS NULL AND m.membership_end IS NULL
              AND m.online_account_since IS NOT NULL
            ORDER BY t.member_id""",
            [month[0]],
        ).fetchnumpy()
    members = np.asarray(rows["member_id"], dtype=np.int64)
    if members.size == 0:
        raise DataError(f"--data {data}: no member with an online account in the truth's month {month[0]}")
    truth = np.column_stack([np.asarray(rows[a], dtype=np.float64) for a in vocab.ACTION_IDS])
    return Traffic(members, truth, str(month[0]))


def response(probability: float, action: str, draws: np.ndarray) -> tuple[str, ...]:
    """The events after ``shown`` for a member whose true 90-day probability is ``probability``,
    from two uniform draws."""
    monthly = 1.0 - (1.0 - probability) ** (1.0 / 3.0)
    accept = 1.0 - (1.0 - monthly) ** EXPOSURE_LIFT[action]
    click = min(1.0, CLICKS_PER_ACCEPTANCE * accept)
    if draws[0] < accept:
        return ("clicked", "accepted")
    if draws[0] < click:
        return ("clicked",)
    if draws[1] < DISMISS:
        return ("dismissed",)
    return ()


def day_members(traffic: Traffic, seed: int, day: int, requests: int) -> np.ndarray:
    """The members who open the app on ``day`` (each at most once), in a fixed order."""
    rng = np.random.default_rng([seed, day])
    return np.sort(rng.choice(traffic.members, size=requests, replace=False))


def member_draws(seed: int, day: int, member: int, action: str) -> np.ndarray:
    return np.random.default_rng([seed, day, member, ACTION_INDEX[action]]).random(2)


@dataclass
class SimulationResult:
    days: int
    requests_per_day: int
    seed: int
    truth_month: str
    by_variant: dict[str, Counter[str]] = field(default_factory=dict)
    by_action: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """(variant, action) -> shown, clicked, accepted, dismissed."""
    unanswered: Counter[int] = field(default_factory=Counter)
    """Requests answered 404 (member unknown) or 503 (no decision possible), by status."""

    def count(self, variant: str, what: str, n: int = 1) -> None:
        self.by_variant.setdefault(variant, Counter())[what] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days, "requests_per_day": self.requests_per_day, "seed": self.seed,
            "truth_month": self.truth_month,
            "unanswered": {str(k): v for k, v in sorted(self.unanswered.items())},
            "variants": {v: {k: c.get(k, 0) for k in COUNTED} for v, c in sorted(self.by_variant.items())},
            "actions": {f"{v}/{a}": dict(sorted(c.items())) for (v, a), c in sorted(self.by_action.items())},
        }  # fmt: skip


class Client:
    """The service's HTTP API with an app key; errors become ``ServiceError`` naming the call."""

    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )  # fmt: skip

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the service at {self.url}{path}: {exc!r}") from None
        if response.status_code in (401, 403):
            raise ServiceError(
                f"the service refused the key on {path} ({response.status_code}): the simulation needs a key "
                "with the app role (--key or NBA_API_KEY; `nba keys create --role app`)"
            )
        return response

    async def close(self) -> None:
        await self.http.aclose()


async def visit(
    client: Client, traffic: Traffic, result: SimulationResult, seed: int, day: int, member: int
) -> None:
    """One member opens the app: a recommendation, then the member's feedback on each card."""
    body = {"member_id": member, "channel": "app", "max_items": ITEMS}
    answer = await client.post("/recommend", body)
    if answer.status_code in (404, 503):
        # a member who left since the profiles were published; a decision the service could not make
        result.unanswered[answer.status_code] += 1
        return
    if answer.status_code != 200:
        raise ServiceError(
            f"/recommend for member {member} answered {answer.status_code}: {answer.text[:300]}"
        )
    decision = answer.json()
    variant = str(decision["variant"])
    result.count(variant, "requests")
    for item in decision["items"]:
        action = str(item["action_id"])
        events = (
            "shown",
            *response(traffic.probability(member, action), action, member_draws(seed, day, member, action)),
        )
        for event in events:
            sent = await client.post(
                "/feedback", {"request_id": decision["request_id"], "action_id": action, "event": event}
            )
            if not sent.is_success:
                raise ServiceError(
                    f"/feedback {event} for {action} answered {sent.status_code}: {sent.text[:300]}"
                )
            result.count(variant, event)
            result.by_action.setdefault((variant, action), Counter())[event] += 1


async def _run(
    url: str,
    key: str,
    traffic: Traffic,
    days: int,
    requests_per_day: int,
    seed: int,
    concurrency: int,
    on_day: Callable[[int], None] | None,
) -> SimulationResult:
    result = SimulationResult(days, requests_per_day, seed, traffic.month)
    client = Client(url, key)
    limit = asyncio.Semaphore(concurrency)

    async def one(day: int, member: int) -> None:
        async with limit:
            await visit(client, traffic, result, seed, day, member)

    try:
        for day in range(days):
            members = day_members(traffic, seed, day, requests_per_day)
            await asyncio.gather(*(one(day, int(m)) for m in members))
            if on_day:
                on_day(day + 1)
    finally:
        await client.close()
    return result


def simulate(
    url: str,
    key: str,
    data: Path,
    days: int,
    requests_per_day: int,
    seed: int = 0,
    concurrency: int = 8,
    on_day: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run the campaign simulation against the service at ``url``; see the module docstring."""
    if days < 1:
        raise ConfigError(f"--days must be at least 1; got {days}")
    if requests_per_day < 1:
        raise ConfigError(f"--requests-per-day must be at least 1; got {requests_per_day}")
    if not 1 <= concurrency <= 64:
        raise ConfigError(f"--concurrency must be from 1 to 64; got {concurrency}")
    if not key:
        raise ConfigError("--key: expected an API key with the app role (or NBA_API_KEY); got none")
    traffic = load_traffic(data)
    if requests_per_day > traffic.members.size:
        raise ConfigError(
            f"--requests-per-day must be at most {traffic.members.size:,}, the members of {data} with an "
            f"online account (each opens the app at most once a day); got {requests_per_day:,}"
        )
    return asyncio.run(_run(url, key, traffic, days, requests_per_day, seed, concurrency, on_day))


def write_summary(result: SimulationResult, out: Path) -> None:
    """The result as JSON, written to a temporary file renamed into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result.as_dict(), f, indent=2)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
