"""Training sets: profiles at monthly as-of dates, 90-day labels, eligible members only.

The split is by time. Test takes the latest as-of dates, validation the ones before, and
training the earlier ones; a gap keeps every training label window (90 days) closed before
the first validation date, and every validation window closed before the first test date,
so no member-period is seen on both sides.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.build import build_profiles
from nba.catalogue import Catalogue, frame_getter
from training.labels import HORIZON_DAYS, build_labels

PAYMENT_MARGIN_DAYS = 30
"""Claims are known when paid: leave a month after the label window before the extract date."""


@dataclass(frozen=True)
class SplitPlan:
    train: tuple[dt.date, ...]
    valid: tuple[dt.date, ...]
    test: tuple[dt.date, ...]

    @property
    def dates(self) -> tuple[dt.date, ...]:
        return self.train + self.valid + self.test

    def split_of(self, day: dt.date) -> str:
        for name in ("train", "valid", "test"):
            if day in getattr(self, name):
                return name
        raise KeyError(day)


def extract_date(data: Path) -> dt.date:
    return dt.date.fromisoformat(json.loads((Path(data) / "extract.json").read_text())["extract_date"])


def month_starts(last: dt.date, count: int) -> list[dt.date]:
    """``count`` first-of-month dates ending at ``last``'s month, oldest first."""
    out, year, month = [], last.year, last.month
    for _ in range(count):
        out.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def plan_split(extract: dt.date, months: int = 18, valid: int = 2, test: int = 2) -> SplitPlan:
    """As-of dates whose label windows are fully known at the extract date, split by time."""
    latest = extract - dt.timedelta(days=HORIZON_DAYS + PAYMENT_MARGIN_DAYS)
    dates = month_starts(latest, months)
    test_dates = dates[-test:]
    valid_dates = [d for d in dates if d + dt.timedelta(days=HORIZON_DAYS) <= test_dates[0]][-valid:]
    train_dates = [d for d in dates if d + dt.timedelta(days=HORIZON_DAYS) <= valid_dates[0]]
    if not train_dates:
        raise ValueError(
            f"a history of {months} months leaves no training as-of date before {valid_dates[0]}"
        )
    return SplitPlan(tuple(train_dates), tuple(valid_dates), tuple(test_dates))


def build_training_frame(data: Path, catalogue: Catalogue, plan: SplitPlan) -> pd.DataFrame:
    """One row per (member, as-of date): every feature, one label and one eligibility flag per action."""
    frames = []
    for day in plan.dates:
        profiles = build_profiles(Path(data), day).to_pandas(types_mapper=None)
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
        frame["split"] = plan.split_of(day)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
