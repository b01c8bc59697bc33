"""Deep Linking responses (https://www.imsglobal.org/spec/lti-dl/v2p0), signed with the
tool's current key through pylti1p3's DeepLink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem
from sqlalchemy.orm import Session

from lti_tool.domain.launch import LaunchContext
from lti_tool.models import Registration

from .errors import LtiError
from .toolconf import DbRegistration


@dataclass(frozen=True)
class LineItemSpec:
    """The gradebook column a gradable item asks the platform to create."""

    score_maximum: float
    label: str
    resource_id: str
    tag: str


@dataclass(frozen=True)
class ResourceLinkItem:
    """One ``ltiResourceLink`` content item."""

    title: str
    url: str
    custom: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    line_item: LineItemSpec | None = None


class _ToolDeepLink(DeepLink):
    def get_message_jwt(self, resources: Sequence[DeepLinkResource]) -> dict[str, object]:
        message = super().get_message_jwt(resources)
        # `data` is echoed only when the platform sent it (spec: "if present").
        if message.get("https://purl.imsglobal.org/spec/lti-dl/claim/data") is None:
            message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data", None)
        return message


def _resource(item: ResourceLinkItem) -> DeepLinkResource:
    resource = DeepLinkResource().set_url(item.url).set_title(item.title)
    if item.custom:
        resource.set_custom_params(dict(item.custom))
    if item.line_item:
        li = item.line_item
        resource.set_lineitem(
            LineItem()
            .set_score_maximum(li.score_maximum)
            .set_label(li.label)
            .set_resource_id(li.resource_id)
            .set_tag(li.tag)
        )
    return resource


def sign_deep_linking_response(
    session: Session, kek: str, launch: LaunchContext, items: Sequence[ResourceLinkItem]
) -> tuple[str, str]:
    """Return (return URL, signed ``LtiDeepLinkingResponse`` JWT).

    Raises :class:`LtiError` when the launch is not a deep-linking one or the platform
    does not accept what is sent.
    """
    settings = launch.deep_linking
    if settings is None:
        raise LtiError("not_deep_linking", "this launch cannot return content", status=400)
    if len(items) > 1 and not settings.accept_multiple:
        raise LtiError("deep_linking_single", "the platform accepts only one item")
    row = session.get(Registration, launch.registration_pk)
    if row is None:
        raise LtiError("unknown_registration", "registration removed since the launch")
    dl_settings: dict[str, Any] = {
        "deep_link_return_url": settings.return_url,
        "accept_types": list(settings.accept_types),
        "accept_presentation_document_targets": list(settings.accept_presentation_document_targets),
    }
    if settings.data is not None:
        dl_settings["data"] = settings.data
    deep_link = _ToolDeepLink(
        DbRegistration(row, session, kek),
        launch.deployment_id,
        dl_settings,  # type: ignore[arg-type]
    )
    return settings.return_url, deep_link.get_response_jwt([_resource(i) for i in items])
