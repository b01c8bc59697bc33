"""The one normalised launch object that crosses the LTI boundary.

``lti_tool.lti`` builds it from a validated id_token; claim URLs and library objects never
leave that package. Services and views read only this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

RESOURCE_LINK = "resource_link"
DEEP_LINKING = "deep_linking"

LEARNER = "learner"
MENTOR = "mentor"
COORDINATOR = "coordinator"

SUPPORTED_LOCALES = ("fr-CA", "en")
DEFAULT_LOCALE = "fr-CA"


def normalize_locale(raw: str | None) -> str | None:
    """``fr*`` -> ``fr-CA``, ``en*`` -> ``en``, anything else -> None."""
    if not raw or not isinstance(raw, str):
        return None
    lang = raw.strip().replace("_", "-").lower()
    if lang == "fr" or lang.startswith("fr-"):
        return "fr-CA"
    if lang == "en" or lang.startswith("en-"):
        return "en"
    return None


@dataclass(frozen=True)
class AgsEndpoint:
    """Assignment and Grade Services endpoint of the launch."""

    scopes: tuple[str, ...] = ()
    lineitems_url: str | None = None
    lineitem_url: str | None = None


@dataclass(frozen=True)
class DeepLinkingSettings:
    """What the platform accepts in a Deep Linking response."""

    return_url: str
    accept_types: tuple[str, ...] = ()
    accept_multiple: bool = False
    accept_presentation_document_targets: tuple[str, ...] = ()
    auto_create: bool = False
    title: str | None = None
    text: str | None = None
    #: Opaque value the response must echo.
    data: str | None = None


@dataclass(frozen=True)
class LaunchContext:
    """Who launched, from where, with which tool roles. Frozen; JSON round-trips."""

    launch_id: str
    message_type: str
    issuer: str
    client_id: str
    deployment_id: str
    sub: str
    roles: frozenset[str]
    locale: str
    registration_pk: int
    deployment_pk: int
    lti_roles: tuple[str, ...] = ()
    organization_pk: int | None = None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    context_id: str | None = None
    context_label: str | None = None
    context_title: str | None = None
    resource_link_id: str | None = None
    resource_link_title: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    ags: AgsEndpoint | None = None
    nrps_url: str | None = None
    deep_linking: DeepLinkingSettings | None = None
    #: Where the platform wants the person sent back (launch_presentation.return_url).
    return_url: str | None = None
    #: Filled by the launch service once rows exist.
    user_pk: int | None = None
    context_pk: int | None = None
    resource_link_pk: int | None = None

    @property
    def is_mentor(self) -> bool:
        return MENTOR in self.roles

    @property
    def is_coordinator(self) -> bool:
        return COORDINATOR in self.roles

    @property
    def display_name(self) -> str | None:
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.name or full or None

    def with_changes(self, **changes: Any) -> LaunchContext:
        return replace(self, **changes)

    def to_json(self) -> str:
        # Field by field: dataclasses.asdict deep-copies recursively, which showed up
        # on every launch.
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["roles"] = sorted(self.roles)
        data["lti_roles"] = list(self.lti_roles)
        data["custom"] = dict(self.custom)
        if self.ags is not None:
            data["ags"] = {f.name: getattr(self.ags, f.name) for f in fields(self.ags)}
        if self.deep_linking is not None:
            dl = self.deep_linking
            data["deep_linking"] = {f.name: getattr(dl, f.name) for f in fields(dl)}
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> LaunchContext:
        data = json.loads(raw)
        data["roles"] = frozenset(data["roles"])
        data["lti_roles"] = tuple(data.get("lti_roles", ()))
        if data.get("ags"):
            ags = data["ags"]
            data["ags"] = AgsEndpoint(
                scopes=tuple(ags.get("scopes", ())),
                lineitems_url=ags.get("lineitems_url"),
                lineitem_url=ags.get("lineitem_url"),
            )
        if data.get("deep_linking"):
            dl = dict(data["deep_linking"])
            for key in ("accept_types", "accept_presentation_document_targets"):
                dl[key] = tuple(dl.get(key, ()))
            data["deep_linking"] = DeepLinkingSettings(**dl)
        return cls(**data)
