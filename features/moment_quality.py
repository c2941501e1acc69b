"""Score life-moment detectors against the generator's ground-truth events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from features.build import connect, history_start, load_sources
from features.moments import detect

GROUND_TRUTH: dict[str, tuple[str, ...]] = {
    "birth_or_adoption": ("birth", "adoption"),
    "marriage": ("marriage",),
    "separation": ("separation",),
    "child_turned_18": ("child_turns_18",),
    "child_left_contract": ("child_leaves_contract",),
    "move": ("move",),
    "recently_retired": ("retirement",),
    "hospitalisation": ("hospitalisation",),
    "chronic_start": ("chronic_start",),
    "spouse_death": ("spouse_death",),
    "new_member_or_first_job": ("new_member", "first_job"),
}
TOLERANCE_DAYS = 31


@dataclass(frozen=True)
class DetectorScore:
    moment: str
    detected: int
    true_events: int
    precision: float
    recall: float


def score_detectors(data: Path, start: dt.date, end: dt.date) -> list[DetectorScore]:
    """Precision and recall of each detector for events dated in [start, end).

    A detection matches a true event of the same member within TOLERANCE_DAYS; events at the
    edges of the history (claims not yet paid at the extract date) are left out by the caller
    through ``start`` and ``end``.
    """
    data = Path(data)
    with connect("duckdb") as con:
        src = load_sources(con, data)
        as_of = end + dt.timedelta(days=1)
        detected: pa.Table = detect(src, as_of, history_start(src, as_of)).to_pyarrow()
    db = duckdb.connect()
    db.register("detected", detected)
    db.execute(f"create view truth as select * from read_parquet('{data}/ground_truth/life_events.parquet')")
    return [_score(db, moment, events, start, end) for moment, events in GROUND_TRUTH.items()]


def _score(db: duckdb.DuckDBPyConnection, moment: str, events: tuple[str, ...], start: dt.date,
           end: dt.date) -> DetectorScore:  # fmt: skip
    names = ", ".join(f"'{e}'" for e in events)
    window = f"between date '{start}' and date '{end}'"
    row = db.execute(
        f"""with d as (select distinct member_id, date from detected where moment = '{moment}'
                        and date {window}),
                 t as (select distinct member_id, event_date date from truth where event in ({names})
                        and event_date {window})
            select (select count(*) from d), (select count(*) from t),
              (select count(*) from d where exists (select 1 from t where t.member_id = d.member_id
                 and abs(datediff('day', t.date, d.date)) <= {TOLERANCE_DAYS})),
              (select count(*) from t where exists (select 1 from d where t.member_id = d.member_id
                 and abs(datediff('day', t.date, d.date)) <= {TOLERANCE_DAYS}))"""
    ).fetchone()
    assert row is not None
    n_detected, n_true, hits_d, hits_t = row
    return DetectorScore(moment, n_detected, n_true, hits_d / max(n_detected, 1), hits_t / max(n_true, 1))
