"""Request and response bodies of the HTTP API: pydantic models that forbid unknown fields.

Their field descriptions are what the OpenAPI page (``/docs``) shows.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from nba import vocab


def one_of(values: tuple[str, ...]) -> Any:
    """``Literal`` of a vocabulary tuple, so the schema lists the allowed values."""
    return Literal[values]


if TYPE_CHECKING:  # the checker sees strings; pydantic sees the vocabularies' Literals
    Purpose: TypeAlias = str
    Channel: TypeAlias = str
    ContactChannel: TypeAlias = str
    Decision: TypeAlias = str
    Source: TypeAlias = str
    Notice: TypeAlias = str
    ActionId: TypeAlias = str
    FeedbackEvent: TypeAlias = str
else:
    Purpose = one_of(vocab.PURPOSES)
    Channel = one_of(vocab.CHANNELS)
    ContactChannel = one_of(vocab.CONTACT_CHANNELS)
    Decision = one_of(vocab.CONSENT_DECISIONS)
    Source = one_of(vocab.CONSENT_SOURCES)
    Notice = one_of(vocab.NOTICE_VERSIONS)
    ActionId = one_of(vocab.ACTION_IDS)
    FeedbackEvent = one_of(vocab.FEEDBACK_EVENTS)
Language = Literal["fr", "en"]
RequestId = Field(pattern=r"^[0-9a-f]{32}$", description="The request_id a /recommend response carried.")
MemberId = Field(ge=1, le=2**53 - 1, description="The member's identifier.")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(Body):
    member_id: StrictInt = MemberId
    channel: ContactChannel = Field(description="Where the actions will be shown (app, push, email...).")
    max_items: StrictInt = Field(
        default=3, ge=1, le=len(vocab.ACTION_IDS), description="Most actions to return."
    )
    language: Language = Field(default="fr", description="Language of titles and explanations.")


class Factor(BaseModel):
    feature: str = Field(description="Registry name of the feature.")
    label: str = Field(description="The feature's label in the requested language.")
    value: Any = Field(description="The member's own value of the feature.")
    contribution: float = Field(description="Its TreeSHAP contribution on the calibrated logit scale.")


class Explanation(BaseModel):
    text: str = Field(description="Plain-language reasons, for the member.")
    factors: list[Factor] = Field(description="The two or three strongest positive contributions.")


class Arbitration(BaseModel):
    propensity: float = Field(description="Calibrated probability from the model.")
    value: float = Field(description="Business value of the action (catalogue).")
    lever: float = Field(description="Configured lever (NBA_LEVERS).")
    priority: float = Field(description="propensity × value × lever, the ranking key.")


class Item(BaseModel):
    action_id: str = Field(description="Catalogue id of the action.")
    kind: Literal["prevention", "offer"] = Field(description="Prevention action or commercial offer.")
    purpose: str = Field(description="The purpose (COMPLIANCE.md) the action belongs to.")
    rank: int = Field(description="1 for the first action to show.")
    score: float = Field(description="Calibrated propensity.")
    title: str = Field(description="Member-facing title.")
    explanation: Explanation
    arbitration: Arbitration = Field(description="Breakdown of the ranking key, for internal callers.")


class Suppressed(BaseModel):
    action_id: str
    reason: str = Field(
        description="Reason code (COMPLIANCE.md); internal callers only, never shown to members."
    )


class RecommendResponse(BaseModel):
    request_id: str = Field(description="Identifies the decision: use it for /feedback and /explain.")
    member_id: int
    items: list[Item] = Field(description="Ranked actions, best first.")
    suppressed: list[Suppressed] = Field(
        description="Every other action with its reason; never shown to members."
    )
    model_versions: dict[str, str] = Field(description="Registered model version used per scored action.")
    variant: Literal["champion", "challenger", "control"] = Field(
        description="The member's experiment group: which models served them; control gets no offers."
    )
    notice: str = Field(description="That the suggestions are automated, and how to object.")


class ConsentRequest(Body):
    member_id: StrictInt = MemberId
    purpose: Purpose = Field(description="The purpose the decision is about.")
    channel: Channel = Field(default="all", description="A contact channel, or 'all'.")
    decision: Decision = Field(description="granted, denied, withdrawn, objected or no_other_offers.")
    notice_version: Notice = Field(description="The privacy notice version the member was shown.")
    source: Source = Field(description="Where the decision was captured.")
    actor: str = Field(min_length=1, max_length=64, description="Who recorded it: 'member' or an advisor id.")
    effective_from: dt.datetime | None = Field(
        default=None, description="When it takes effect (UTC); now if absent; never in the past."
    )
    expires_at: dt.datetime | None = Field(default=None, description="When a grant lapses (UTC), if ever.")


class ConsentResponse(BaseModel):
    event_id: int
    member_id: int
    purpose: str
    channel: str
    decision: str
    notice_version: str
    source: str
    actor: str
    captured_at: dt.datetime = Field(description="Set by the server (UTC).")
    effective_from: dt.datetime
    expires_at: dt.datetime | None


class FeedbackRequest(Body):
    request_id: str = RequestId
    action_id: ActionId = Field(description="An action the request returned.")
    event: FeedbackEvent = Field(description="What the member did with it.")


class FeedbackResponse(BaseModel):
    recorded: bool


class ExplainRequest(Body):
    request_id: str = RequestId


class ExperimentRequest(Body):
    challenger_share: float = Field(
        ge=0, le=1, description="Share of members served by the challenger models."
    )
    control_share: float = Field(ge=0, le=1, description="Share of members in the control group (no offers).")
    salt: str = Field(
        default="nba-variant", min_length=1, max_length=64, description="Salt of the member hash."
    )


class ExperimentResponse(BaseModel):
    challenger_share: float
    control_share: float
    salt: str


class ErrorDetail(BaseModel):
    field: str = Field(description="The field at fault ('' for the body itself).")
    message: str
    received: Any = None


class ErrorResponse(BaseModel):
    error: str = Field(description="invalid_request, unauthorized, forbidden, not_found, unavailable...")
    message: str
    detail: list[ErrorDetail] = Field(default_factory=list)
