"""Training sets: profiles at monthly as-of dates, 90-day labels, eligible members only.

The split is by time, and within the latest training dates by member:

- test takes the latest as-of dates, every member;
- training takes every as-of date whose label window (90 days) closes before the first test
  date, so nothing of a test window is seen in training;
- validation takes a fixed share of members, chosen by a hash of their id, at the latest
  training dates. Those members' own rows at these dates, and at the dates whose windows
  reach into the first of them, are left out of training, so no member-period is on both
  sides.

Validating on held-out members rather than on whole dates lets training use the most recent
as-of dates, whose profiles read the longest claims history, as the test's do: on the
20,000-member world this lifted the share of the oracle's gain of the screenings, the eye
exam and most offers by 0.02 to 0.07 (measured in session 3; every offer reached 0.9). The
validation dates span half a year so that seasonal actions (the flu vaccine) have positives to
stop on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.build import build_profiles, table_path
from nba.catalogue import Catalogue, frame_getter
from nba.errors import ConfigError
from training.labels import HORIZON_DAYS, build_labels

PAYMENT_MARGIN_DAYS = 30
"""Claims are known when paid: leave a month after the label window before the extract date."""
VALID_SHARE = 0.2
"""Share of members held out for validation at the latest training dates."""
VALID_DATES = 6
"""How many of the latest training dates the held-out members validate on."""
AS_OF_DATES = 36
"""Monthly as-of dates by default (`nba train`, `nba evaluate`). On the 20,000-member world of
48 months, 36 dates rather than 24 lifted the offers below 0.95 of the oracle's gain by 0.02
to 0.05 (car insurance 0.88 to 0.90, retirement savings 0.91 to 0.97; prévoyance went from
0.99 to 0.96) and moved prevention by at most 0.03 (measured in session 6): offers have a
few hundred positives a date, and more dates are more positives."""
MIN_HISTORY_MONTHS = 6
"""The earliest as-of date must come at least this many months after the claims history starts:
before that, profiles see next to no care, and every gap reads "never"."""
HORIZON = dt.timedelta(days=HORIZON_DAYS)


def held_out(member_ids: np.ndarray, share: float = VALID_SHARE) -> np.ndarray:
    """Whether each member validates: Knuth's multiplicative hash of the id, so the choice is the
    same on every run, every engine and every as-of date."""
    hashed = (np.asarray(member_ids, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    return hashed < np.uint64(int(share * 2**32))


@dataclass(frozen=True)
class SplitPlan:
    train: tuple[dt.date, ...]
    """As-of dates of the training rows (the held-out members' rows at the latest ones validate)."""
    valid: tuple[dt.date, ...]
    """The latest training dates, where the held-out members' rows validate."""
    test: tuple[dt.date, ...]
    valid_share: float = VALID_SHARE

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return self.train + self.test

    def split_of(self, day: dt.date, member_ids: np.ndarray) -> np.ndarray:
        """'train', 'valid', 'test' or '' (left out) for each member's row at ``day``."""
        if day in self.test:
            return np.full(len(member_ids), "test", dtype=object)
        if day not in self.train:
            raise KeyError(day)
        held = held_out(member_ids, self.valid_share)
        if day in self.valid:
            return np.where(held, "valid", "train").astype(object)
        # a held-out member's window that reaches into the validation dates is seen by neither side
        reaches = day + HORIZON > self.valid[0]
        return np.where(held & reaches, "", "train").astype(object)


def extract_date(data: Path) -> dt.date:
    return dt.date.fromisoformat(json.loads((Path(data) / "extract.json").read_text())["extract_date"])


def month_starts(last: dt.date, count: int) -> list[dt.date]:
    """``count`` first-of-month dates ending at ``last``'s month, oldest first."""
    out, year, month = [], last.year, last.month
    for _ in range(count):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def plan_split(
    extract: dt.date,
    months: int = AS_OF_DATES,
    valid: int = VALID_DATES,
    test: int = 2,
    valid_share: float = VALID_SHARE,
) -> SplitPlan:
    """As-of dates whose label windows are fully known at the extract date, split by time (and,
    at the latest training dates, by member)."""
    latest = extract - dt.timedelta(days=HORIZON_DAYS + PAYMENT_MARGIN_DAYS)
    dates = month_starts(latest, months)
    test_dates = dates[-test:]
    train_dates = [d for d in dates if d + HORIZON <= test_dates[0]]
    if len(train_dates) < 2:
        raise ValueError(f"a history of {months} months leaves fewer than two training as-of dates")
    # at least one date of training rows for every member, whatever ``valid`` asks
    valid_dates = train_dates[-min(valid, len(train_dates) - 1) :]
    return SplitPlan(tuple(train_dates), tuple(valid_dates), tuple(test_dates), valid_share)


def claims_start(data: Path) -> dt.date | None:
    """The first care date of the claims table (where the history starts), or None without claims."""
    found = duckdb.execute(f"select min(care_date) from read_parquet('{table_path(Path(data), 'claims')}')")
    row = found.fetchone()
    return row[0] if row and row[0] is not None else None


def plan_for(data: Path, months: int = AS_OF_DATES) -> SplitPlan:
    """The split of `nba train` and `nba evaluate` on a folder: refuses as-of dates that reach back
    to where the claims history starts, naming how many dates the history allows."""
    plan = plan_split(extract_date(data), months=months)
    start = claims_start(data)
    if start is None:
        return plan
    earliest = dt.date(start.year, start.month, 1)
    for _ in range(MIN_HISTORY_MONTHS):
        earliest = (earliest + dt.timedelta(days=32)).replace(day=1)
    if plan.train[0] < earliest:
        allowed = sum(1 for d in month_starts(plan.test[-1], months) if d >= earliest)
        raise ConfigError(
            f"--months: expected at most {allowed} monthly as-of dates for this extract, whose claims "
            f"start on {start.isoformat()} (the earliest date must be {MIN_HISTORY_MONTHS} months later, "
            f"{earliest.isoformat()}); got {months}, which reaches back to {plan.train[0].isoformat()}"
        )
    return plan


def build_training_frame(data: Path, catalogue: Catalogue, plan: SplitPlan) -> pd.DataFrame:
    """One row per (member, as-of date): every feature, one label and one eligibility flag per action."""
    frames = []
    for day in plan.dates:
        profiles = build_profiles(Path(data), day).to_pandas(types_mapper=None)
        split = plan.split_of(day, profiles["member_id"].to_numpy())
        profiles = profiles[split != ""].reset_index(drop=True)
        labels = build_labels(Path(data), catalogue, day, profiles["member_id"])
        get = frame_getter(profiles)
        eligible = pd.DataFrame(
            {f"eligible_{a.id}": a.is_eligible(get) for a in catalogue.actions}, index=profiles.index
        )
        relevant = pd.DataFrame(
            {f"relevant_{a.id}": a.is_relevant(get) for a in catalogue.actions}, index=profiles.index
        )
        labelled = labels.add_prefix("label_").reset_index(drop=True)
        frame = pd.concat([profiles, labelled.set_index(profiles.index), eligible, relevant], axis=1)
        frame["split"] = split[split != ""]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
