"""The feature registry: every profile column declared once.

Each feature has a type, one data category (COMPLIANCE.md decides which purposes may use
it; ``calendar``, the as-of date's month, is not personal data and every purpose may use
it), French and English labels, and the phrase explanations use, with its unit and how to
format the value. The profile pipeline must produce exactly these columns (a test checks
both directions), models pick their features from here by purpose, and explanations turn
contributions into sentences with these phrases.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Final

import pyarrow as pa

from nba import vocab

ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # int, float, bool, str
    category: str  # one of vocab.DATA_CATEGORIES
    label_fr: str
    label_en: str
    phrase_fr: str
    phrase_en: str
    unit: str | None = None  # months, years, euros, count
    model: bool = True
    """False for attributes kept only for eligibility or fairness reporting (never a model input)."""
    rule: str = ""
    """How it is computed, in words (life moments: the detection rule)."""

    def format(self, value: object, language: str = "fr") -> str:
        """The value as a member reads it ("19", "1 250 €", "oui")."""
        if value is None:
            return "—"
        if self.type == "bool":
            return ("oui" if value else "non") if language == "fr" else ("yes" if value else "no")
        if self.unit == "euros" and isinstance(value, int | float):
            text = f"{value:,.0f}"
            return (text.replace(",", "\u202f") + " €") if language == "fr" else ("€" + text)
        if isinstance(value, float):
            return f"{value:.0f}"
        return str(value)

    def sentence(self, value: object, language: str = "fr") -> str:
        phrase = self.phrase_fr if language == "fr" else self.phrase_en
        reads = _FEW_MONTHS.get((language, value)) if self.unit == "months" else None
        if reads is not None:  # not "il y a 0 mois", not "1 months ago"
            phrase = phrase.replace(*reads)
        return phrase.format(value=self.format(value, language))


_FEW_MONTHS: Final[dict[tuple[str, object], tuple[str, str]]] = {
    ("fr", 0): ("{value} mois", "moins d'un mois"),
    ("en", 0): ("{value} months", "less than a month"),
    ("en", 1): ("{value} months", "{value} month"),
}
"""How a phrase's "{value} months" reads where the number alone would not do."""


def _f(name: str, type_: str, category: str, fr: str, en: str, pfr: str, pen: str, **kw: object) -> Feature:
    return Feature(name, type_, category, fr, en, pfr, pen, **kw)  # type: ignore[arg-type]


CARE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "hospital": ("hospitalisation", "hospital care"),
    "gp": ("médecin généraliste", "GP visits"),
    "specialist": ("spécialistes", "specialists"),
    "dental": ("dentaire", "dental care"),
    "pharmacy": ("pharmacie", "pharmacy"),
    "optical": ("optique", "optical care"),
    "hearing": ("audition", "hearing care"),
    "nursing_physio": ("soins infirmiers et kinésithérapie", "nursing and physiotherapy"),
    "laboratory": ("analyses de laboratoire", "laboratory tests"),
    "transport": ("transport médical", "medical transport"),
}
CARE_WINDOWS: Final = (3, 12, 24)
WINDOW_DAYS: Final = {3: 91, 12: 365, 24: 730}
STATUS_LABELS: Final = {
    "employee_group": ("salarié avec contrat collectif", "employee with group cover"),
    "self_employed": ("travailleur indépendant", "self-employed"),
    "civil_servant": ("fonctionnaire", "civil servant"),
    "student": ("étudiant", "student"),
    "unemployed": ("demandeur d'emploi", "job seeker"),
    "retired": ("retraité", "retired"),
}
PRODUCT_LABELS: Final = {
    "prevoyance": ("prévoyance", "income protection"),
    "retirement_savings": ("épargne retraite", "retirement savings"),
    "home_insurance": ("assurance habitation", "home insurance"),
    "auto_insurance": ("assurance auto", "car insurance"),
    "long_term_care": ("assurance dépendance", "long-term care cover"),
    "funeral_cover": ("assurance obsèques", "funeral cover"),
}

# (name, category, fr label, en label, fr phrase, en phrase, detection rule)
MOMENTS: Final = (
    ("birth_or_adoption", "household", "naissance ou adoption", "birth or adoption",
     "Un enfant est arrivé dans votre foyer il y a {value} mois",
     "A child joined your household {value} months ago",
     "a child beneficiary added after the membership started (start_date)"),
    ("marriage", "household", "mariage ou PACS", "marriage or civil union",
     "Vous vous êtes marié ou pacsé il y a {value} mois",
     "You married or entered a civil union {value} months ago",
     "a members version whose marital_status becomes married or pacsed (valid_from)"),
    ("separation", "household", "séparation", "separation",
     "Votre situation familiale a changé il y a {value} mois",
     "Your family situation changed {value} months ago",
     "a spouse beneficiary ended with reason 'separation' (end_date)"),
    ("child_turned_18", "household", "enfant devenu majeur", "child turned 18",
     "Un de vos enfants a eu 18 ans il y a {value} mois",
     "One of your children turned 18 {value} months ago",
     "a covered child's 18th birthday"),
    ("child_left_contract", "household", "enfant sorti du contrat", "child left the contract",
     "Un de vos enfants a quitté votre contrat il y a {value} mois",
     "One of your children left your contract {value} months ago",
     "a child beneficiary ended with reason 'left_contract' (end_date)"),
    ("move", "household", "déménagement", "move",
     "Vous avez déménagé il y a {value} mois", "You moved {value} months ago",
     "a members version whose postcode differs from the previous version's (valid_from)"),
    ("retirement_within_3y", "contract", "retraite dans les 3 ans", "retirement within 3 years",
     "Votre départ à la retraite approche", "Your retirement is approaching",
     "not retired and aged 61 or more (the legal age of 64 is 3 years away or less): "
     "months since the 61st birthday"),
    ("recently_retired", "contract", "départ à la retraite", "retirement",
     "Vous êtes parti à la retraite il y a {value} mois", "You retired {value} months ago",
     "a members version whose status becomes 'retired' (valid_from)"),
    ("hospitalisation", "health_claims", "hospitalisation", "hospital stay",
     "Une hospitalisation a eu lieu dans votre foyer il y a {value} mois",
     "Someone in your household was in hospital {value} months ago",
     "a paid claim line hospital/stay for anyone on the contract (care_date)"),
    ("chronic_start", "health_claims", "début de traitement au long cours", "start of a long-term treatment",
     "Un traitement au long cours a commencé il y a {value} mois",
     "A long-term treatment started {value} months ago",
     "a person's first paid pharmacy/chronic_treatment line, after at least 6 months of observed "
     "coverage without one (care_date)"),
    ("spouse_death", "household", "décès du conjoint", "loss of a spouse",
     "Vous avez traversé un deuil il y a {value} mois", "You went through a bereavement {value} months ago",
     "a spouse beneficiary ended with reason 'death' (end_date)"),
    ("new_member_or_first_job", "contract", "adhésion ou premier emploi", "new member or first job",
     "Vous nous avez rejoints ou avez commencé à travailler il y a {value} mois",
     "You joined us or started work {value} months ago",
     "the membership started inside the claims history, or a members version whose status goes "
     "from student to a working status (valid_from)"),
    ("age_step", "demographic", "passage de dizaine (40, 50, 60, 70 ans)", "age step (40, 50, 60, 70)",
     "Vous avez franchi un cap d'âge il y a {value} mois", "You reached an age milestone {value} months ago",
     "the latest of the 40th, 50th, 60th and 70th birthdays"),
)  # fmt: skip

PREVENTION: Final = (
    ("dental", "dernière visite chez le dentiste", "last dental visit",
     "Votre dernière visite chez le dentiste remonte à {value} mois",
     "Your last dental visit was {value} months ago", "subscriber's latest dental line"),
    ("eye_exam", "dernier examen de la vue", "last eye exam",
     "Votre dernier examen de la vue remonte à {value} mois",
     "Your last eye exam was {value} months ago",
     "subscriber's latest optical or ophthalmologist line"),
    ("mammography", "dernière mammographie", "last mammogram",
     "Votre dernier dépistage remonte à {value} mois", "Your last screening was {value} months ago",
     "subscriber's latest screening/mammography line"),
    ("colorectal_test", "dernier test de dépistage colorectal", "last colorectal screening test",
     "Votre dernier test de dépistage remonte à {value} mois",
     "Your last screening test was {value} months ago", "subscriber's latest screening/colorectal_test"),
    ("cervical_smear", "dernier frottis", "last cervical smear",
     "Votre dernier frottis remonte à {value} mois", "Your last smear test was {value} months ago",
     "subscriber's latest screening/cervical_smear line"),
    ("gynecologist", "dernière consultation gynécologique", "last gynaecology visit",
     "Votre dernière consultation gynécologique remonte à {value} mois",
     "Your last gynaecology visit was {value} months ago",
     "subscriber's latest specialist/gynecologist line"),
    ("flu_vaccine", "dernier vaccin contre la grippe", "last flu vaccine",
     "Votre dernier vaccin contre la grippe remonte à {value} mois",
     "Your last flu jab was {value} months ago", "subscriber's latest vaccination/flu line"),
    ("hearing_test", "dernier bilan auditif", "last hearing check",
     "Votre dernier bilan auditif remonte à {value} mois",
     "Your last hearing check was {value} months ago", "subscriber's latest hearing line"),
    ("prevention_checkup", "dernier bilan prévention", "last prevention check-up",
     "Votre dernier bilan prévention remonte à {value} mois",
     "Your last prevention check-up was {value} months ago",
     "subscriber's latest prevention/prevention_checkup line"),
)  # fmt: skip


def _base() -> list[Feature]:
    return [
        _f("age", "int", "demographic", "âge", "age", "Vous avez {value} ans", "You are {value}",
           unit="years", rule="whole years on the day before the as-of date"),
        _f("sex_female", "bool", "demographic", "femme", "female", "—", "—", model=False,
           rule="eligibility for screenings only; never a model feature (COMPLIANCE.md)"),
        _f("vulnerable", "bool", "demographic", "personne vulnérable", "vulnerable", "—", "—", model=False,
           rule="flagged vulnerable by the insurer: never solicited with offers (COMPLIANCE.md); "
                "never a model feature"),
        _f("region", "str", "demographic", "région", "region", "Vous habitez en {value}",
           "You live in {value}", model=False, rule="fairness reporting only"),
        _f("n_adults", "int", "household", "adultes au contrat", "adults on the contract",
           "Votre contrat couvre {value} adulte(s)", "Your contract covers {value} adult(s)", unit="count"),
        _f("n_children", "int", "household", "enfants au contrat", "children on the contract",
           "Votre contrat couvre {value} enfant(s)", "Your contract covers {value} child(ren)", unit="count"),
        _f("youngest_child_age", "int", "household", "âge du plus jeune enfant", "youngest child's age",
           "Votre plus jeune enfant a {value} ans", "Your youngest child is {value}", unit="years"),
        _f("eldest_child_age", "int", "household", "âge de l'aîné", "eldest child's age",
           "Votre aîné a {value} ans", "Your eldest child is {value}", unit="years"),
        _f("has_spouse", "bool", "household", "conjoint au contrat", "spouse on the contract",
           "Votre conjoint est couvert par votre contrat", "Your spouse is covered by your contract"),
        _f("married", "bool", "household", "marié ou pacsé", "married or in a civil union",
           "Vous êtes marié ou pacsé", "You are married or in a civil union"),
        _f("widowed", "bool", "household", "veuf ou veuve", "widowed", "—", "—"),
        _f("separated", "bool", "household", "séparé", "separated", "—", "—"),
        _f("formula_level", "int", "contract", "niveau de formule", "health formula level",
           "Votre formule santé est de niveau {value} sur 4", "Your health formula is level {value} of 4"),
        _f("collective_contract", "bool", "contract", "contrat collectif", "group contract",
           "Vous êtes couvert par un contrat d'entreprise", "You are covered through your employer"),
        _f("tenure_months", "int", "contract", "ancienneté", "membership length",
           "Vous êtes adhérent depuis {value} mois", "You have been a member for {value} months",
           unit="months"),
        _f("month_of_year", "int", "calendar", "mois de l'année", "month of the year", "—", "—",
           rule="the as-of date's month, 1 to 12, the same for every member (not personal data): "
                "seasonal actions such as the autumn flu campaign follow the calendar"),
        _f("years_to_retirement_age", "int", "demographic", "années avant 64 ans", "years until 64",
           "Il vous reste {value} ans avant l'âge légal de la retraite",
           "You are {value} years from the legal retirement age", unit="years",
           rule="64 minus age, for members not retired; empty once retired"),
        _f("online_account", "bool", "engagement", "espace en ligne", "online account",
           "Vous avez un espace adhérent en ligne", "You have an online member account"),
        _f("months_since_online_account", "int", "engagement", "ancienneté de l'espace en ligne",
           "online account age", "Vous avez ouvert votre espace en ligne il y a {value} mois",
           "You opened your online account {value} months ago", unit="months"),
        _f("app_exposures_3m", "int", "engagement", "messages vus dans l'application (3 mois)",
           "in-app messages seen (3 months)", "Vous avez consulté l'application récemment",
           "You used the app recently", unit="count"),
        _f("exposures_12m", "int", "engagement", "sollicitations (12 mois)", "contacts (12 months)",
           "Nous vous avons contacté {value} fois cette année", "We contacted you {value} times this year",
           unit="count"),
        _f("dismissed_12m", "int", "engagement", "propositions écartées (12 mois)",
           "suggestions dismissed (12 months)", "—", "—", unit="count"),
        _f("months_since_last_contact", "int", "engagement", "dernier contact", "last contact",
           "Notre dernier échange remonte à {value} mois", "Our last contact was {value} months ago",
           unit="months"),
    ]  # fmt: skip


def _status_and_products() -> list[Feature]:
    out = [
        _f(f"status_{s}", "bool", "demographic", f"statut : {fr}", f"status: {en}",
           f"Vous êtes {fr}", f"You are {'a ' if s != 'retired' else ''}{en}")
        for s, (fr, en) in STATUS_LABELS.items()
    ]  # fmt: skip
    for p, (fr, en) in PRODUCT_LABELS.items():
        out.append(_f(f"holds_{p}", "bool", "contract", f"détient {fr}", f"holds {en}",
                      f"Vous avez déjà une {fr}", f"You already have {en}"))  # fmt: skip
        out.append(_f(f"months_since_{p}_start", "int", "contract", f"ancienneté {fr}",
                      f"{en} held for", f"Vous avez souscrit votre {fr} il y a {{value}} mois",
                      f"You took out {en} {{value}} months ago", unit="months"))  # fmt: skip
    return out


def _care() -> list[Feature]:
    out: list[Feature] = []
    for c, (fr, en) in CARE_LABELS.items():
        for w in CARE_WINDOWS:
            out += [
                _f(f"{c}_count_{w}m", "int", "health_claims", f"actes {fr} ({w} mois)",
                   f"{en} claims ({w} months)", f"{{value}} soins en {fr} sur {w} mois",
                   f"{{value}} {en} claims in {w} months", unit="count"),
                _f(f"{c}_spend_{w}m", "float", "health_claims", f"dépenses {fr} ({w} mois)",
                   f"{en} spend ({w} months)", f"{{value}} de dépenses en {fr} sur {w} mois",
                   f"{{value}} spent on {en} in {w} months", unit="euros"),
                _f(f"{c}_out_of_pocket_{w}m", "float", "health_claims",
                   f"reste à charge {fr} ({w} mois)", f"{en} out-of-pocket ({w} months)",
                   f"{{value}} restés à votre charge en {fr} sur {w} mois",
                   f"{{value}} left for you to pay on {en} in {w} months", unit="euros"),
            ]  # fmt: skip
        out.append(_f(f"months_since_{c}_claim", "int", "health_claims", f"dernier soin {fr} du foyer",
                      f"household's last {en}",
                      f"Le dernier soin en {fr} de votre foyer remonte à {{value}} mois",
                      f"Your household's last {en} claim was {{value}} months ago", unit="months",
                      rule="latest paid line of the category for anyone on the contract"))  # fmt: skip
    return out


def _prevention_and_health() -> list[Feature]:
    out = [
        _f(f"months_since_{n}", "int", "health_claims", fr, en, pfr, pen,
           unit="months", rule=rule)
        for n, fr, en, pfr, pen, rule in PREVENTION
    ]  # fmt: skip
    out += [
        _f("dental_visits_24m", "int", "health_claims", "visites dentaires (24 mois)",
           "dental visits (24 months)", "{value} visite(s) chez le dentiste en 2 ans",
           "{value} dental visit(s) in 2 years", unit="count"),
        _f("flu_vaccinated_this_season", "bool", "health_claims", "vacciné cette saison",
           "vaccinated this season", "—", "—", rule="a flu line since the last 1 September"),
        _f("hospital_stays_12m", "int", "health_claims", "hospitalisations (12 mois)",
           "hospital stays (12 months)", "—", "—", unit="count"),
        _f("chronic_treatment", "bool", "health_claims", "traitement au long cours",
           "long-term treatment", "—", "—",
           rule="the subscriber had a chronic_treatment line in the last 3 months"),
        _f("household_chronic", "int", "health_claims", "traitements au long cours dans le foyer",
           "long-term treatments in the household", "—", "—", unit="count"),
    ]  # fmt: skip
    return out


def _moments() -> list[Feature]:
    return [
        _f(f"months_since_{name}", "int", cat, fr, en, pfr, pen, unit="months", rule=rule)
        for name, cat, fr, en, pfr, pen, rule in MOMENTS
    ]


def _engagement_per_action() -> list[Feature]:
    out = []
    for a in vocab.ACTION_IDS:
        out.append(_f(f"exposures_{a}_24m", "int", "engagement", f"sollicitations {a} (24 mois)",
                      f"{a} contacts (24 months)", "—", "—", unit="count"))  # fmt: skip
        out.append(_f(f"responses_{a}_24m", "int", "engagement", f"réponses {a} (24 mois)",
                      f"{a} responses (24 months)", "Vous vous êtes intéressé à ce sujet récemment",
                      "You showed interest in this recently", unit="count",
                      rule="clicked or accepted, responded before the as-of date"))  # fmt: skip
    return out


FEATURES: Final[tuple[Feature, ...]] = (
    *_base(),
    *_status_and_products(),
    *_care(),
    *_prevention_and_health(),
    *_moments(),
    *_engagement_per_action(),
)
BY_NAME: Final[dict[str, Feature]] = {f.name: f for f in FEATURES}
KEY_COLUMNS: Final = ("member_id", "as_of")


def profile_schema() -> pa.Schema:
    """Columns of a profile file: the keys, then every feature in registry order."""
    fields = [pa.field("member_id", pa.int64(), nullable=False), pa.field("as_of", pa.date32())]
    fields += [pa.field(f.name, ARROW[f.type]) for f in FEATURES]
    return pa.schema(fields)


def feature_set_version() -> str:
    """A short hash of the registry: changes whenever a feature's definition changes."""
    payload = json.dumps([asdict(f) for f in FEATURES], sort_keys=True, ensure_ascii=False)
    return "fs-" + hashlib.sha256(payload.encode()).hexdigest()[:10]


def allowed_features(purpose: str) -> tuple[str, ...]:
    """Model features a purpose may use (COMPLIANCE.md)."""
    if purpose not in vocab.PURPOSE_ALLOWED_CATEGORIES:
        raise ValueError(f"purpose must be one of {list(vocab.PURPOSES)}; got {purpose!r}")
    allowed = vocab.PURPOSE_ALLOWED_CATEGORIES[purpose]
    return tuple(f.name for f in FEATURES if f.model and f.category in allowed)
