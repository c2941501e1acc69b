"""The closed vocabularies shared by features, training and serving.

Declared once here and imported everywhere: purposes, channels, consent
decisions, care categories and acts, products, member statuses, regions.
See ``shared/design/COMPLIANCE.md`` and ``ACTIONS.md`` for their meaning.
"""

from __future__ import annotations

from typing import Final

# --- consent (COMPLIANCE.md) -------------------------------------------------

PURPOSES: Final = ("prevention", "offers", "offers_health_data")
"""Every action belongs to exactly one purpose."""

CONSENT_BASED_PURPOSES: Final = ("prevention", "offers_health_data")
"""Purposes that need an explicit grant in force (GDPR art. 9(2)(a))."""

CHANNELS: Final = ("all", "app", "push", "email", "sms", "phone", "advisor")
"""``all`` is used by purpose-level consent events; the rest are contact channels."""

CONTACT_CHANNELS: Final = CHANNELS[1:]
OPT_IN_CHANNELS: Final = ("push", "email", "sms", "phone")
"""Channels that need an explicit opt-in; ``app`` and ``advisor`` follow the purpose rule."""

CONSENT_DECISIONS: Final = ("granted", "denied", "withdrawn", "objected", "no_other_offers")
CONSENT_SOURCES: Final = ("app", "web", "advisor", "mail")
NOTICE_VERSIONS: Final = ("2021-03", "2023-01", "2024-06", "2025-09")
"""Privacy notice versions the member may have been shown, oldest first."""

COMMERCIAL_PURPOSES: Final = ("offers", "offers_health_data")
"""Purposes of commercial offers: only for adults not flagged vulnerable, stopped by ``no_other_offers``."""

# --- reason codes (COMPLIANCE.md): why an action was suppressed -----------------

NO_CONSENT: Final = "NO_CONSENT"
WITHDRAWN: Final = "WITHDRAWN"
OBJECTED: Final = "OBJECTED"
NO_OTHER_OFFERS: Final = "NO_OTHER_OFFERS"
CHANNEL_NOT_PERMITTED: Final = "CHANNEL_NOT_PERMITTED"
HEALTH_DATA_NOT_CONSENTED: Final = "HEALTH_DATA_NOT_CONSENTED"
NOT_ELIGIBLE: Final = "NOT_ELIGIBLE"
ALREADY_HOLDS: Final = "ALREADY_HOLDS"
CONTACT_POLICY: Final = "CONTACT_POLICY"
MINOR: Final = "MINOR"
VULNERABLE: Final = "VULNERABLE"
CONSENT_UNAVAILABLE: Final = "CONSENT_UNAVAILABLE"
REASON_CODES: Final = (
    NO_CONSENT,
    WITHDRAWN,
    OBJECTED,
    NO_OTHER_OFFERS,
    CHANNEL_NOT_PERMITTED,
    HEALTH_DATA_NOT_CONSENTED,
    NOT_ELIGIBLE,
    ALREADY_HOLDS,
    CONTACT_POLICY,
    MINOR,
    VULNERABLE,
    CONSENT_UNAVAILABLE,
)
"""Every reason code an internal caller may see; member-facing text never shows one."""

# --- serving ---------------------------------------------------------------------

FEEDBACK_EVENTS: Final = ("shown", "clicked", "accepted", "dismissed")
"""What a caller reports about an action a recommendation returned."""

ROLES: Final = ("app", "compliance", "admin")
"""Roles of API keys (COMPLIANCE.md: explanations are for the compliance role only)."""

# --- data categories of features (COMPLIANCE.md) -----------------------------

DATA_CATEGORIES: Final = ("demographic", "household", "contract", "engagement", "health_claims", "calendar")
"""``calendar`` is not data about the member: the as-of date's place in the year, the same for
everyone on that date, which seasonal actions (the autumn flu campaign) need. No purpose's rule
restricts it, so every purpose allows it."""

PURPOSE_ALLOWED_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "prevention": DATA_CATEGORIES,
    "offers": ("demographic", "household", "contract", "engagement", "calendar"),
    "offers_health_data": DATA_CATEGORIES,
}

# --- care (CALIBRATION.md) ----------------------------------------------------

CARE_ACTS: Final[dict[str, tuple[str, ...]]] = {
    "hospital": ("stay", "day_hospital"),
    "gp": ("consultation",),
    "specialist": ("ophthalmologist", "cardiologist", "dermatologist", "gynecologist", "other"),
    "dental": ("checkup", "care", "prosthesis"),
    "pharmacy": ("dispensing", "chronic_treatment"),
    "optical": ("glasses", "lenses"),
    "hearing": ("hearing_test", "hearing_aid"),
    "nursing_physio": ("nursing", "physiotherapy"),
    "laboratory": ("blood_test", "other"),
    "transport": ("ambulance", "medical_taxi"),
    "screening": ("mammography", "colorectal_test", "cervical_smear"),
    "vaccination": ("flu", "other"),
    "maternity": ("delivery", "prenatal"),
    "teleconsultation": ("teleconsultation",),
    "prevention": ("prevention_checkup",),
    "home_support": ("post_hospital_support",),
}
"""Care categories (a closed list) and, for each, its closed list of acts."""

CARE_CATEGORIES: Final = tuple(CARE_ACTS)
ALL_ACTS: Final = tuple(sorted({act for acts in CARE_ACTS.values() for act in acts}))

# --- people and contracts -----------------------------------------------------

SEXES: Final = ("F", "M")
BENEFICIARY_ROLES: Final = ("subscriber", "spouse", "child")
BENEFICIARY_END_REASONS: Final = ("left_contract", "death", "separation", "member_left")
MEMBER_END_REASONS: Final = ("death", "termination")
STATUSES: Final = (
    "employee_group",
    "self_employed",
    "civil_servant",
    "student",
    "unemployed",
    "retired",
)
CONTRACT_TYPES: Final = ("individual", "collective")
MARITAL_STATUSES: Final = ("single", "married", "pacsed", "separated", "widowed")
FORMULA_LEVELS: Final = (1, 2, 3, 4)

PRODUCTS: Final = (
    "prevoyance",
    "retirement_savings",
    "home_insurance",
    "auto_insurance",
    "long_term_care",
    "funeral_cover",
)
"""Products other than complementary health, held over time (``holdings``)."""

REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "Auvergne-Rhône-Alpes": ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74"),
    "Bourgogne-Franche-Comté": ("21", "25", "39", "58", "70", "71", "89", "90"),
    "Bretagne": ("22", "29", "35", "56"),
    "Centre-Val de Loire": ("18", "28", "36", "37", "41", "45"),
    "Corse": ("2A", "2B"),
    "Grand Est": ("08", "10", "51", "52", "54", "55", "57", "67", "68", "88"),
    "Hauts-de-France": ("02", "59", "60", "62", "80"),
    "Île-de-France": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "Normandie": ("14", "27", "50", "61", "76"),
    "Nouvelle-Aquitaine": (
        "16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86", "87",
    ),
    "Occitanie": ("09", "11", "12", "30", "31", "32", "34", "46", "48", "65", "66", "81", "82"),
    "Pays de la Loire": ("44", "49", "53", "72", "85"),
    "Provence-Alpes-Côte d'Azur": ("04", "05", "06", "13", "83", "84"),
    "Outre-mer": ("971", "972", "973", "974", "976"),
}  # fmt: skip
"""Regions and their départements (postcodes start with the département)."""

REGION_NAMES: Final = tuple(REGIONS)

# --- interactions ---------------------------------------------------------------

RESPONSES: Final = ("none", "clicked", "accepted", "dismissed")
INTERACTION_CHANNELS: Final = CONTACT_CHANNELS

# --- life moments (ground truth and detectors) ------------------------------------

LIFE_EVENTS: Final = (
    "birth",
    "adoption",
    "marriage",
    "separation",
    "child_turns_18",
    "child_leaves_contract",
    "move",
    "retirement",
    "hospitalisation",
    "chronic_start",
    "spouse_death",
    "death",
    "new_member",
    "first_job",
)

# --- actions (ACTIONS.md); the full catalogue with texts and rules is data ---------

ACTION_PURPOSES: Final[dict[str, str]] = {
    "dental_checkup": "prevention",
    "eye_exam": "prevention",
    "breast_screening": "prevention",
    "colorectal_screening": "prevention",
    "cervical_screening": "prevention",
    "flu_vaccination": "prevention",
    "hearing_check": "prevention",
    "prevention_checkup": "prevention",
    "post_hospital_support": "prevention",
    "prevoyance": "offers",
    "retirement_savings": "offers",
    "home_insurance": "offers",
    "auto_insurance": "offers",
    "long_term_care": "offers",
    "funeral_cover": "offers",
    "health_formula_upgrade": "offers_health_data",
}
"""Each action id and the one purpose it belongs to."""

ACTION_IDS: Final = tuple(ACTION_PURPOSES)
PREVENTION_ACTIONS: Final = tuple(a for a, p in ACTION_PURPOSES.items() if p == "prevention")
OFFER_ACTIONS: Final = tuple(a for a, p in ACTION_PURPOSES.items() if p != "prevention")
