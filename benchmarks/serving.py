"""Benchmark the service: `/recommend` under load against the in-process floor.

Publishes a world (profiles, consent, champion models, keys) into a scratch folder, starts
`nba serve`, and drives `/recommend` from a separate process at concurrency 1, 8 and 32 for
``--seconds`` each: throughput, p50, p95, p99, errors, and the service's CPU time per request
(all its processes) beside the machine's load average, since on a shared machine throughput
alone says little. In the same run it measures the floor: one
request's profile read, scoring of every candidate action and explanation of the returned
ones, single-threaded, in process; floor throughput = cores / floor time. Goals (issue 5,
2 cores): at concurrency 8 throughput >= 0.7 x floor throughput, p99 <= 50 ms, no errors; at
concurrency 1 p50 <= 10 ms. Last, it drives `benchmarks.ceiling_service` at concurrency 8: BentoML
with the same configuration answering a recorded response and doing nothing else, the most any
service built on it reaches on this machine beside the load generator.

The load generator is wrk (Debian's package `wrk`) when it is installed: written in C, it
leaves the service nearly both cores; otherwise a Python one (asyncio + aiohttp), which takes
a good part of a core itself. The result says which one ran.

    .venv/bin/python -m benchmarks.serving                       # 20,000 members, 30 s per level
    .venv/bin/python -m benchmarks.serving --seconds 10 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from benchmarks.features import world

GOAL_RATIO, GOAL_P99_MS, GOAL_P50_MS = 0.7, 50.0, 10.0


def publish(data: Path, home: Path, months: int) -> tuple[dict[str, str], dict[str, str]]:
    """Train, promote and publish into ``home``; return the service's environment and keys.
    A ``home`` published before (it holds keys.json) is reused, from the database as it was
    published: each run appends some 20,000 audit records of 10 KB, and a database grown by
    earlier runs would slow the next one."""
    from features.publish import publish_profiles
    from serving.consent import ConsentStore
    from serving.db import open_engine
    from serving.keys import KeyStore
    from training.pipeline import train_all
    from training.promote import promote

    env = {
        "NBA_DATABASE_URL": f"sqlite:///{home}/nba.db",
        "NBA_MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
    }
    if (home / "keys.json").exists():
        print(f"reusing the world published in {home}", flush=True)
        copy_database(home / PUBLISHED, home / "nba.db")
        return env, json.loads((home / "keys.json").read_text())
    started = time.perf_counter()
    result = train_all(data, experiment="bench", tracking_uri=env["NBA_MLFLOW_TRACKING_URI"],
                       artifact_root=home / "mlruns", months=months)  # fmt: skip
    promote(env["NBA_MLFLOW_TRACKING_URI"], [a.action_id for a in result.actions])
    extract = json.loads((data / "extract.json").read_text())["extract_date"]
    publish_profiles(data, dt.date.fromisoformat(extract) + dt.timedelta(days=1), env["NBA_DATABASE_URL"])
    engine = open_engine(env["NBA_DATABASE_URL"])
    ConsentStore(engine).import_world(data)
    keys = {role: KeyStore(engine).create(role) for role in ("app", "compliance")}
    engine.dispose()
    copy_database(home / "nba.db", home / PUBLISHED)
    (home / "keys.json").write_text(json.dumps(keys))
    print(f"published {data.name} into {home} in {time.perf_counter() - started:.0f} s", flush=True)
    return env, keys


PUBLISHED = "published.db"
"""The database as published, before any run wrote to it."""


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, its WAL included (the backup API)."""
    import sqlite3

    for leftover in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        leftover.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")


def member_ids(env: dict[str, str], n: int = 5000) -> list[int]:
    from sqlalchemy import create_engine, text

    with create_engine(env["NBA_DATABASE_URL"]).connect() as conn:
        load = conn.execute(text("select max(load_id) from online_loads")).scalar_one()
        rows = conn.execute(text(f"select member_id from online_profiles_{load} order by member_id"))
        ids = [int(r[0]) for r in rows]
    random.Random(1).shuffle(ids)
    return ids[:n]


def floor(env: dict[str, str], members_file: Path) -> dict[str, float]:
    """The floor, measured in a child process with one OpenMP thread, as the service runs."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.serving", "--floor-child", str(members_file)],
        env=os.environ | env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def floor_child(env: dict[str, str], members: list[int], repeat: int = 2000) -> dict[str, float]:
    """Profile read + scoring of every candidate + explanation of the returned ones, one thread."""
    from features.store import OnlineStore
    from nba.catalogue import default_catalogue
    from serving.models import feature_vector, load_models

    catalogue = default_catalogue()
    models = load_models(env["NBA_MLFLOW_TRACKING_URI"], catalogue)
    store = OnlineStore.from_url(env["NBA_DATABASE_URL"])
    value = {a.id: a.value for a in catalogue.actions}
    times = []
    for member in (members * (repeat // len(members) + 1))[:repeat]:
        started = time.perf_counter()
        profile = store.get(member)
        assert profile is not None
        vector = feature_vector(profile.values)
        scores = {a: m.score(vector) for a, m in models.champion.items()}
        top = sorted(scores, key=lambda a: -scores[a] * value[a])[:3]
        for action_id in top:
            models.champion[action_id].contributions(vector)
        times.append(time.perf_counter() - started)
    store.close()
    mean = statistics.fmean(times)
    cores = os.cpu_count() or 1
    return {"floor_ms": round(mean * 1000, 3), "cores": cores, "floor_throughput": round(cores / mean, 1)}


async def drive(url: str, key: str, members: list[int], concurrency: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    deadline = time.perf_counter() + seconds
    rng = random.Random(concurrency)

    async def user(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            body = json.dumps({"member_id": rng.choice(members), "channel": "app", "max_items": 3})
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/recommend", data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError as exc:
                status = type(exc).__name__  # type: ignore[assignment]
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(user(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0
        )

    throughput = round(len(latencies) / elapsed, 1)
    return {"concurrency": concurrency, "requests": len(latencies), "throughput": throughput,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "errors": errors}  # fmt: skip


WRK_SCRIPT = """
local members = {%(members)s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local n = 0
function init(args)
  math.randomseed(%(seed)d + n)
  n = n + 1
end
function request()
  local body = '{"member_id": ' .. members[math.random(#members)] .. ', "channel": "app", "max_items": 3}'
  return wrk.format(nil, "/recommend", nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def drive_wrk(url: str, key: str, members: list[int], concurrency: int, seconds: float) -> dict[str, Any]:
    """The same load as :func:`drive`, from wrk: one thread, ``concurrency`` connections."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    script = WRK_SCRIPT % {"members": ",".join(map(str, members)), "key": key, "seed": concurrency}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        done = subprocess.run(
            [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
             "-s", lua.name, url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    ok = raw["requests"] - raw["status"]  # wrk counts non-2xx/3xx answers among its requests
    throughput = round(ok / (raw["duration_us"] / 1e6), 1)
    return {"concurrency": concurrency, "requests": ok, "throughput": throughput,
            "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "errors": errors}  # fmt: skip


def service_processes(port: int, service: str = "serving.service:NextBestAction") -> list[Any]:
    """The `bentoml serve` process of ``service`` listening on ``port`` and its workers."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if service in line and f"--port {port}" in line:
            return [process, *process.children(recursive=True)]
    return []


def cpu_seconds(processes: list[Any]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except Exception:  # a worker that exited (psutil.NoSuchProcess) counts no more
            continue
        total += times.user + times.system
    return total


def one_response(port: int, key: str, member: int) -> str:
    """One real `/recommend` answer, for the ceiling service to send back."""
    import httpx

    body = {"member_id": member, "channel": "app", "max_items": 3}
    answer = httpx.post(f"http://127.0.0.1:{port}/recommend", json=body,
                        headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    answer.raise_for_status()
    return answer.text


def measure_ceiling(home: Path, workers: int, seconds: float) -> dict[str, Any]:
    """`benchmarks.ceiling_service` (BentoML answering ``home``/response.json) driven at
    concurrency 8, as the real service is."""
    from nba.demo import free_port, wait_ready

    port = free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", "benchmarks.ceiling_service:Ceiling", "--port", str(port)]
    env = os.environ | {"NBA_WORKERS": str(workers), "NBA_CEILING_BODY": str(home / "response.json")}
    log = home / "ceiling.log"
    with log.open("w") as out:
        root = Path(__file__).resolve().parent.parent
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                   start_new_session=True)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        processes = service_processes(port, "benchmarks.ceiling_service:Ceiling")
        cpu_before = cpu_seconds(processes)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.serving", "--seconds", str(seconds),
             "--load-child", f"http://127.0.0.1:{port}", "no-key", str(home / "members.json"), "8"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        level = dict(json.loads(done.stdout.strip().splitlines()[-1]))
        served = level["requests"] + sum(level["errors"].values())
        used = cpu_seconds(processes) - cpu_before
        level["service_cpu_ms_per_request"] = round(1000 * used / served, 3) if served else None
        return level
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def budget(reference: dict[str, Any], ceiling: dict[str, Any]) -> dict[str, Any]:
    """What the throughput goal leaves BentoML per request, against what it uses doing nothing.

    At ``GOAL_RATIO`` x the floor throughput the cores have floor_ms / GOAL_RATIO of CPU per
    request; the request's own work takes floor_ms of it, and the rest is all the framework,
    HTTP and the load generator may use."""
    per_request = reference["floor_ms"] / GOAL_RATIO
    left = per_request - reference["floor_ms"]
    used = ceiling.get("service_cpu_ms_per_request")
    text = (f"at x{GOAL_RATIO} of the floor the {reference['cores']} cores give {per_request:.2f} ms of CPU "
            f"per request; the request's own work takes {reference['floor_ms']:.2f} ms, leaving "
            f"{left:.2f} ms for the framework; BentoML answering a fixed body uses {used} ms")  # fmt: skip
    return {"cpu_ms_per_request_at_goal": round(per_request, 3), "left_for_framework_ms": round(left, 3),
            "framework_cpu_ms": used, "text": text}  # fmt: skip


def load_child(url: str, key: str, members_file: Path, concurrency: int, seconds: float) -> None:
    members = json.loads(members_file.read_text())
    if driver() == "wrk":
        print(json.dumps(drive_wrk(url, key, members, concurrency, seconds)))
    else:
        print(json.dumps(asyncio.run(drive(url, key, members, concurrency, seconds))))


def driver() -> str:
    """wrk when installed, else the Python load generator; NBA_BENCH_DRIVER=aiohttp forces the latter."""
    wanted = os.environ.get("NBA_BENCH_DRIVER", "wrk")
    if wanted not in ("wrk", "aiohttp"):
        raise SystemExit(f"NBA_BENCH_DRIVER must be 'wrk' or 'aiohttp'; got {wanted!r}")
    return "wrk" if wanted == "wrk" and shutil.which("wrk") else "aiohttp"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--months", type=int, default=12, help="training months (see nba train)")
    parser.add_argument("--home", type=Path, help="keep the published world here and reuse it next time")
    parser.add_argument("--load-child", nargs=4, metavar=("URL", "KEY", "MEMBERS", "CONCURRENCY"))
    parser.add_argument("--floor-child", type=Path, metavar="MEMBERS")
    args = parser.parse_args()
    if args.floor_child:
        env = {k: os.environ[k] for k in ("NBA_DATABASE_URL", "NBA_MLFLOW_TRACKING_URI")}
        print(json.dumps(floor_child(env, json.loads(args.floor_child.read_text()))))
        return
    if args.load_child:
        url, key, members_file, concurrency = args.load_child
        load_child(url, key, Path(members_file), int(concurrency), args.seconds)
        return
    from nba.demo import free_port, running_service

    data = world(args.members, args.world)
    with tempfile.TemporaryDirectory(prefix="nba-bench-serving-") as tmp:
        home = args.home or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        env, keys = publish(data, home, args.months)
        members = member_ids(env)
        (home / "members.json").write_text(json.dumps(members))
        reference = floor(env, home / "members.json")
        reference["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(f"load generator: {driver()}", flush=True)
        print(f"floor: {reference['floor_ms']:.2f} ms per request in process -> "
              f"{reference['floor_throughput']:.0f} requests/s on {reference['cores']} cores",
              flush=True)  # fmt: skip
        port = free_port()
        levels = []
        with running_service(port, home / "serve.log", env=env, workers=args.workers):
            processes = service_processes(port)
            for concurrency in (int(c) for c in args.levels.split(",")):
                cpu_before = cpu_seconds(processes)
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.serving", "--seconds", str(args.seconds),
                     "--load-child", f"http://127.0.0.1:{port}", keys["app"], str(home / "members.json"),
                     str(concurrency)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                level = json.loads(done.stdout.strip().splitlines()[-1])
                level["ratio_to_floor"] = round(level["throughput"] / reference["floor_throughput"], 3)
                served = level["requests"] + sum(level["errors"].values())
                used = cpu_seconds(processes) - cpu_before
                level["service_cpu_ms_per_request"] = round(1000 * used / served, 3) if served else None
                level["load_average_1m"] = round(os.getloadavg()[0], 2)
                levels.append(level)
                print(f"concurrency {concurrency:>2}: {level['throughput']:7.1f} req/s "
                      f"(x{level['ratio_to_floor']:.2f} of the floor), p50 {level['p50_ms']} ms, "
                      f"p95 {level['p95_ms']} ms, p99 {level['p99_ms']} ms, errors {level['errors'] or 0}; "
                      f"service CPU {level['service_cpu_ms_per_request']} ms per request, "
                      f"load average {level['load_average_1m']}",
                      flush=True)  # fmt: skip
            (home / "response.json").write_text(one_response(port, keys["app"], members[0]))
        ceiling = measure_ceiling(home, args.workers, args.seconds)
        ceiling["ratio_to_floor"] = round(ceiling["throughput"] / reference["floor_throughput"], 3)
        print(f"ceiling, concurrency 8: {ceiling['throughput']:7.1f} req/s from BentoML answering a fixed "
              f"body with the same configuration (x{ceiling['ratio_to_floor']:.2f} of the floor), "
              f"p50 {ceiling['p50_ms']} ms, p99 {ceiling['p99_ms']} ms; service CPU "
              f"{ceiling['service_cpu_ms_per_request']} ms per request", flush=True)  # fmt: skip
        ceiling["budget"] = budget(reference, ceiling)
        print(ceiling["budget"]["text"], flush=True)
    by = {lv["concurrency"]: lv for lv in levels}
    if 8 in by:
        ceiling["service_share"] = round(by[8]["throughput"] / ceiling["throughput"], 3)
        print(f"the service reaches x{ceiling['service_share']:.2f} of that ceiling at concurrency 8; "
              f"the goal (x{GOAL_RATIO} of the floor) is {GOAL_RATIO / ceiling['ratio_to_floor']:.2f} "
              "times the ceiling", flush=True)  # fmt: skip
    goals = {}
    if 8 in by:
        goals["c8_ratio>=0.7"] = by[8]["ratio_to_floor"] >= GOAL_RATIO
        goals["c8_p99<=50ms"] = by[8]["p99_ms"] <= GOAL_P99_MS
        goals["c8_no_errors"] = not by[8]["errors"]
    if 1 in by:
        goals["c1_p50<=10ms"] = by[1]["p50_ms"] <= GOAL_P50_MS
    print("goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in goals.items()))
    path = write_result("serving", {"members": args.members, "workers": args.workers, "seconds": args.seconds,
                                    "load_generator": driver(),
                                    "floor": reference, "levels": levels, "ceiling": ceiling,
                                    "goals": goals})  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
