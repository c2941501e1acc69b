"""Rich renderings of library results for the command line."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from features.synthetic.summary import WorldSummary


def world_summary(s: WorldSummary) -> Group:
    """The world next to the figures of CALIBRATION.md."""
    head = Table(title="Synthetic world", show_header=False)
    head.add_row("members (contracts)", f"{s.members:,}")
    head.add_row("people covered", f"{s.people:,}")
    head.add_row("person-years observed", f"{s.person_years:,.0f}")
    head.add_row("claim lines", f"{s.claims:,}")
    for kind, count in s.households_by_type.items():
        head.add_row(f"households: {kind}", f"{count:,}")
    spend = Table(title="Spend per person and year (€) vs CALIBRATION.md")
    for col in ("care category", "world", "France 2023", "ratio"):
        spend.add_column(col, justify="right" if col != "care category" else "left")
    for cat, value in sorted(s.spend_per_person.items(), key=lambda kv: -kv[1]):
        ref = s.calibration.get(cat)
        ratio = f"{value / ref:.2f}" if ref else ""
        reference = f"{ref:,.0f}" if ref else "—"
        spend.add_row(cat, f"{value:,.0f}", reference, ratio)
    spend.add_row("all", f"{sum(s.spend_per_person.values()):,.0f}", "3,660", "")
    payers = Table(title="Who pays (share of spend)")
    payers.add_column("payer")
    payers.add_column("world", justify="right")
    payers.add_column("France 2023", justify="right")
    france = ("80.1%", "12.4%", "7.5%")
    for (payer, value), share in zip(s.payer_shares.items(), france, strict=True):
        payers.add_row(payer, f"{value:.1%}", share)
    return Group(head, spend, payers, _behaviour(s), _consent(s), _events(s))


def _behaviour(s: WorldSummary) -> Table:
    t = Table(title="Prevention and demography vs public figures")
    t.add_column("measure")
    t.add_column("world", justify="right")
    t.add_column("France", justify="right")
    t.add_row("adults (30+) with no dental visit in a year", f"{s.no_dental_visit_share:.0%}", "~57%")
    refs = {
        "breast screening, women 50-74, 2 years": "~50% + 17% private",
        "colorectal screening, 50-74, 2 years": "~35%",
        "cervical screening, women 25-65, 3 years": "~56%",
        "flu vaccination, 65+, 1 year": "54%",
    }
    for label, value in s.prevention_rates.items():
        t.add_row(label, f"{value:.0%}", refs.get(label, ""))
    t.add_row("births per 1,000 people a year", f"{s.births_per_1000:.1f}", "9.8")
    if s.retirement_ages:
        mean = sum(s.retirement_ages) / len(s.retirement_ages)
        t.add_row("mean retirement age", f"{mean:.1f}", "62.75")
    return t


def _consent(s: WorldSummary) -> Table:
    t = Table(title="Consent in force at the extract date (share of members)")
    t.add_column("purpose: latest decision")
    t.add_column("share", justify="right")
    for k, v in s.consent_shares.items():
        t.add_row(k, f"{v:.1%}")
    return t


def _events(s: WorldSummary) -> Table:
    t = Table(title="Life events per year (ground truth)")
    t.add_column("event")
    t.add_column("per year", justify="right")
    for k, v in sorted(s.life_events_per_year.items(), key=lambda kv: -kv[1]):
        t.add_row(k, f"{v:,.0f}")
    return t


UNITS_FR = {"months": " mois", "years": " ans"}
CARD_SKIP = ("_3m", "_24m", "exposures_", "responses_", "_count_12m")


def profile_card(member_id: int, values: dict[str, object], as_of: object) -> Table:
    """One member's profile with the registry's French labels.

    Empty values and the finer windows (3 and 24 months, per-action contacts) are left out
    to keep it readable; the full profile is in the Parquet file and the online store.
    """
    from features.registry import FEATURES

    t = Table(title=f"Profil de l'adhérent {member_id} au {as_of}")
    for col in ("catégorie", "caractéristique", "valeur"):
        t.add_column(col, justify="right" if col == "valeur" else "left")
    for f in FEATURES:
        value = values.get(f.name)
        if value is None or value is False or value == 0 or any(k in f.name for k in CARD_SKIP):
            continue
        t.add_row(f.category, f.label_fr, f.format(value, "fr") + UNITS_FR.get(f.unit or "", ""))
    return t
