"""Turn one simulated block into the Arrow tables of the data contract."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from features import tables as contract
from features.synthetic.records import NO_DAY, day_array, rank_within, timestamp_array
from features.synthetic.simulate import Simulation
from features.synthetic.state import DEPT_REGION
from nba import vocab

REVERSAL_SHARE = 0.003


def _table(spec: contract.Table, columns: dict[str, pa.Array | np.ndarray]) -> pa.Table:
    schema = contract.arrow_schema(spec)
    arrays = []
    for f in schema:
        col = columns[f.name]
        arrays.append(pa.array(col, type=f.type) if isinstance(col, np.ndarray) else col.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _nullable_codes(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Codes to names, with a negative code meaning null."""
    values = np.asarray(names, dtype=object)[np.maximum(codes, 0)]
    return pa.array(values, type=pa.string(), mask=codes < 0)


def _codes(names: tuple[str, ...] | tuple[object, ...], codes: np.ndarray) -> np.ndarray:
    return np.asarray(names, dtype=object)[codes]


def members_table(sim: Simulation) -> pa.Table:
    b, v = sim.b, sim.versions.columns()
    order = np.lexsort((v["valid_from"], v["member"]))
    v = {k: a[order] for k, a in v.items()}
    i = v["member"]
    return _table(contract.MEMBERS, {
        "member_id": b.member_id[i], "valid_from": day_array(v["valid_from"]),
        "valid_to": day_array(v["valid_to"]), "birth_date": day_array(b.birth[i, 0]),
        "sex": _codes(vocab.SEXES, b.sex[i, 0]),
        "region": _codes(vocab.REGION_NAMES, DEPT_REGION[v["dept"]]),
        "postcode": v["postcode"].astype(object), "status": _codes(vocab.STATUSES, v["status"]),
        "marital_status": _codes(vocab.MARITAL_STATUSES, v["marital"]),
        "contract_type": _codes(vocab.CONTRACT_TYPES, v["contract"]),
        "formula_level": v["formula"].astype(np.int64), "vulnerable": b.vulnerable[i],
        "online_account_since": day_array(v["online"]),
        "membership_start": day_array(b.join[i]), "membership_end": day_array(b.end[i]),
        "end_reason": _nullable_codes(vocab.MEMBER_END_REASONS, b.end_reason[i]),
    })  # fmt: skip


def beneficiaries_table(sim: Simulation) -> pa.Table:
    b = sim.b
    k = b.b_count
    order = np.argsort(b.b_id[:k], kind="stable")
    end_reason = b.b_end_reason[:k][order]
    return _table(contract.BENEFICIARIES, {
        "beneficiary_id": b.b_id[:k][order], "member_id": b.member_id[b.b_member[:k][order]],
        "role": _codes(vocab.BENEFICIARY_ROLES, b.b_role[:k][order]),
        "birth_date": day_array(b.b_birth[:k][order]), "sex": _codes(vocab.SEXES, b.b_sex[:k][order]),
        "start_date": day_array(b.b_start[:k][order]), "end_date": day_array(b.b_end[:k][order]),
        "end_reason": _nullable_codes(vocab.BENEFICIARY_END_REASONS, end_reason),
    })  # fmt: skip


def claims_table(sim: Simulation) -> pa.Table:
    b, rng, c = sim.b, sim.rng, sim.claims.rows.columns()
    if not c:
        return contract.arrow_schema(contract.CLAIMS).empty_table()
    # only care given while the person was covered reaches the insurer
    by_id = np.argsort(b.b_id[: b.b_count])
    rec = by_id[np.searchsorted(b.b_id[: b.b_count], c["bid"], sorter=by_id)]
    end = np.where(b.b_end[rec] == NO_DAY, np.iinfo(np.int32).max, b.b_end[rec])
    lag = np.where(c["category"] == 0, 10 + rng.poisson(12, c["day"].size), 1 + rng.poisson(5, c["day"].size))
    pay = c["day"] + lag
    keep = (c["day"] >= b.b_start[rec]) & (c["day"] < end) & (pay < sim.calendar.end)
    c = {k: a[keep] for k, a in c.items()}
    c["pay"], c["rev"] = pay[keep], np.zeros(keep.sum(), dtype=bool)
    rev = _reversals(c, rng, sim.calendar.end)
    c = {k: np.concatenate([c[k], rev[k]]) for k in c}
    order = np.lexsort((c["rev"], c["total"], c["act"], c["category"], c["bid"], c["day"], c["member"]))
    c = {k: a[order] for k, a in c.items()}
    mid = b.member_id[c["member"]]
    return _table(contract.CLAIMS, {
        "claim_id": mid * 1_000_000 + rank_within(mid), "member_id": mid, "beneficiary_id": c["bid"],
        "care_date": day_array(c["day"]), "payment_date": day_array(c["pay"]),
        "care_category": _codes(vocab.CARE_CATEGORIES, c["category"]),
        "act": _codes(vocab.ALL_ACTS, c["act"]), "total_cost": c["total"],
        "social_security_paid": c["ss"], "mutuelle_paid": c["mut"], "out_of_pocket": c["oop"],
        "is_reversal": c["rev"],
    })  # fmt: skip


def _reversals(c: dict[str, np.ndarray], rng: np.random.Generator, end: int) -> dict[str, np.ndarray]:
    """A few paid lines are cancelled later by a line with the opposite amounts."""
    pick = rng.random(c["day"].size) < REVERSAL_SHARE
    pay = c["pay"][pick] + rng.integers(3, 60, int(pick.sum()))
    pick[np.flatnonzero(pick)[pay >= end]] = False
    rev = {k: a[pick].copy() for k, a in c.items()}
    rev["pay"] = (c["pay"][pick] + rng.integers(3, 60, int(pick.sum()))).clip(max=end - 1)
    for k in ("total", "ss", "mut", "oop"):
        rev[k] = -rev[k]
    rev["rev"] = np.ones(int(pick.sum()), dtype=bool)
    return rev


def holdings_table(sim: Simulation) -> pa.Table:
    h, b = sim.holdings.columns(), sim.b
    if not h:
        return contract.arrow_schema(contract.HOLDINGS).empty_table()
    order = np.lexsort((h["product"], h["start"], h["member"]))
    h = {k: a[order] for k, a in h.items()}
    mid = b.member_id[h["member"]]
    return _table(contract.HOLDINGS, {
        "holding_id": mid * 100 + rank_within(mid), "member_id": mid,
        "product": _codes(vocab.PRODUCTS, h["product"]), "start_date": day_array(h["start"]),
        "end_date": day_array(h["end"]),
    })  # fmt: skip


def consent_table(sim: Simulation) -> pa.Table:
    e, b = sim.consent.rows.columns(), sim.b
    order = np.lexsort((e["channel"], e["purpose"], e["captured"], e["member"]))
    e = {k: a[order] for k, a in e.items()}
    mid = b.member_id[e["member"]]
    actor = np.where(e["advisor"] > 0, np.char.add("advisor:A", e["advisor"].astype(str)), "member")
    return _table(contract.CONSENT_EVENTS, {
        "event_id": mid * 1000 + rank_within(mid), "member_id": mid,
        "purpose": _codes(vocab.PURPOSES, e["purpose"]), "channel": _codes(vocab.CHANNELS, e["channel"]),
        "decision": _codes(vocab.CONSENT_DECISIONS, e["decision"]),
        "notice_version": _codes(vocab.NOTICE_VERSIONS, e["notice"]),
        "source": _codes(vocab.CONSENT_SOURCES, e["source"]), "actor": actor.astype(object),
        "captured_at": timestamp_array(e["captured"]), "effective_from": timestamp_array(e["effective"]),
        "expires_at": timestamp_array(e["expires"]),
    })  # fmt: skip


def interactions_table(sim: Simulation) -> pa.Table:
    x, b = sim.interactions.columns(), sim.b
    if not x:
        return contract.arrow_schema(contract.INTERACTIONS).empty_table()
    order = np.lexsort((x["action"], x["exposed"], x["member"]))
    x = {k: a[order] for k, a in x.items()}
    mid = b.member_id[x["member"]]
    action = _codes(vocab.ACTION_IDS, x["action"])
    campaign = np.char.add(np.char.add("C", x["campaign"].astype(str)), "-")
    return _table(contract.INTERACTIONS, {
        "interaction_id": mid * 10_000 + rank_within(mid), "member_id": mid, "action_id": action,
        "campaign_id": np.char.add(campaign, action.astype(str)).astype(object),
        "channel": _codes(vocab.INTERACTION_CHANNELS, x["channel"]),
        "exposed_at": timestamp_array(x["exposed"]), "exposure_probability": x["prob"],
        "response": _codes(vocab.RESPONSES, x["response"]),
        "responded_at": timestamp_array(x["responded"]),
    })  # fmt: skip


def truth_tables(sim: Simulation) -> dict[str, pa.Table]:
    b, t, ev = sim.b, sim.truth.columns(), sim.events.columns()
    order = np.lexsort((t["month"], t["member"]))
    prop = pa.table({
        "member_id": b.member_id[t["member"][order]], "month": day_array(t["month"][order]),
        **{a: pa.array(t[a][order], type=pa.float32()) for a in vocab.ACTION_IDS},
    })  # fmt: skip
    keep = ev["day"] < sim.calendar.end
    ev = {k: a[keep] for k, a in ev.items()}
    order = np.lexsort((ev["bid"], ev["event"], ev["day"], ev["member"]))
    ev = {k: a[order] for k, a in ev.items()}
    events = _table(contract.GT_EVENTS, {
        "member_id": b.member_id[ev["member"]], "beneficiary_id": ev["bid"],
        "event": _codes(vocab.LIFE_EVENTS, ev["event"]), "event_date": day_array(ev["day"]),
    })  # fmt: skip
    return {"propensities": prop, "life_events": events}


def block_tables(sim: Simulation) -> dict[str, pa.Table]:
    """Every table of one simulated block, keyed by file name (ground truth under 'gt/')."""
    out = {
        "members": members_table(sim),
        "beneficiaries": beneficiaries_table(sim),
        "claims": claims_table(sim),
        "holdings": holdings_table(sim),
        "consent_events": consent_table(sim),
        "interactions": interactions_table(sim),
    }
    out.update({f"ground_truth/{k}": v for k, v in truth_tables(sim).items()})
    return out
