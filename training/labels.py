"""Labels: did the member take the action in the 90 days after the as-of date (ACTIONS.md)?

- a prevention action: the member's own matching claim line appears with a care date in
  the window;
- an offer: the product's holding starts in the window, or the member accepted an
  exposure to it in the window;
- the health formula upgrade: a members version raising the formula level starts in the
  window.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from nba.catalogue import Catalogue

HORIZON_DAYS = 90


def _in_window(column: str, as_of: dt.date, horizon: int) -> str:
    return f"{column} >= DATE '{as_of}' and {column} < DATE '{as_of}' + {horizon}"


def _claims_label(data: Path, spec: dict[str, list[str]], as_of: dt.date, horizon: int) -> str:
    column, values = next(iter(spec.items()))
    listed = ", ".join(f"'{v}'" for v in values)
    return f"""select distinct c.member_id from read_parquet('{data}/claims.parquet') c
        join read_parquet('{data}/beneficiaries.parquet') b using (beneficiary_id)
        where b.role = 'subscriber' and not c.is_reversal and c.{column} in ({listed})
          and {_in_window("c.care_date", as_of, horizon)}"""


def _holding_label(data: Path, action_id: str, product: str, as_of: dt.date, horizon: int) -> str:
    return f"""select member_id from read_parquet('{data}/holdings.parquet')
        where product = '{product}' and {_in_window("start_date", as_of, horizon)}
        union select member_id from read_parquet('{data}/interactions.parquet')
        where action_id = '{action_id}' and response = 'accepted'
          and {_in_window("exposed_at::date", as_of, horizon)}"""


def _upgrade_label(data: Path, as_of: dt.date, horizon: int) -> str:
    return f"""select member_id from (
          select member_id, valid_from, formula_level,
                 lag(formula_level) over (partition by member_id order by valid_from) previous
          from read_parquet('{data}/members.parquet'))
        where formula_level > previous and {_in_window("valid_from", as_of, horizon)}"""


def label_queries(data: Path, catalogue: Catalogue, as_of: dt.date, horizon: int) -> dict[str, str]:
    """One SQL query per action returning the member ids whose label is 1."""
    queries = {}
    for action in catalogue.actions:
        spec = dict(action.label)
        if "claims" in spec:
            queries[action.id] = _claims_label(data, spec["claims"], as_of, horizon)
        elif "holding" in spec:
            queries[action.id] = _holding_label(data, action.id, spec["holding"], as_of, horizon)
        elif spec.get("formula_upgrade"):
            queries[action.id] = _upgrade_label(data, as_of, horizon)
        else:  # pragma: no cover - the catalogue loader checks label kinds
            raise ValueError(f"action {action.id!r}: unknown label definition {spec!r}")
    return queries


def build_labels(
    data: Path, catalogue: Catalogue, as_of: dt.date, member_ids: pd.Series, horizon: int = HORIZON_DAYS
) -> pd.DataFrame:
    """0/1 label per member (rows, in ``member_ids`` order) and action (columns)."""
    con = duckdb.connect()
    out = pd.DataFrame(index=pd.Index(member_ids.to_numpy(), name="member_id"))
    for action_id, query in label_queries(Path(data), catalogue, as_of, horizon).items():
        positives = set(con.sql(query).fetchnumpy()["member_id"].tolist())
        out[action_id] = out.index.isin(positives).astype("int8")
    return out
