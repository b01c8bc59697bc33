"""Placements: what a resource link serves, from the Deep Linking custom keys.

The keys ``dataide_item``, ``dataide_pin`` and ``dataide_dl`` live in LMS courses for
years: never rename them. A launch with an unknown resource link but these keys (a course
copy) creates the placement; after that the placement row wins (a mentor may have moved
its pin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_tool.content.versions import parse_reference
from lti_tool.domain.launch import LaunchContext
from lti_tool.models import Placement, utcnow

from .published import PublishedContent, PublishedVersion

ITEM_KEY = "dataide_item"
PIN_KEY = "dataide_pin"
DL_KEY = "dataide_dl"
_ITEM_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class PlacementError(Exception):
    """A placement that cannot be served; ``code`` names the page shown."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PlacementView:
    pk: int
    resource_link_pk: int
    item_id: str
    kind: str
    pin: str
    dl_id: str | None


def _view(row: Placement) -> PlacementView:
    return PlacementView(row.id, row.resource_link_pk, row.item_id, row.kind, row.pin, row.dl_id)


def placement_for_launch(
    session: Session, published: PublishedContent, launch: LaunchContext
) -> PlacementView | None:
    """The placement of the launch's resource link, created from its custom keys.

    Returns None for a launch that carries no ``dataide_item`` (the program overview).
    Raises :class:`PlacementError` for keys that name nothing published. Commits when
    it creates the placement.
    """
    custom = {k.lower(): v for k, v in launch.custom.items()}
    item_id = str(custom.get(ITEM_KEY, "")).strip()
    if launch.resource_link_pk is None or not item_id:
        # Placed links always carry their keys (the LMS stores them with the link, a
        # course copy copies them): a launch without them is no placement, and costs no
        # query (most launches of an unplaced link, the program overview).
        return None
    row = session.scalars(
        select(Placement).where(Placement.resource_link_pk == launch.resource_link_pk)
    ).first()
    if row is not None:
        return _view(row)
    pin = str(custom.get(PIN_KEY, "")).strip()
    if not _ITEM_ID.match(item_id):
        raise PlacementError("item_unknown", f"dataide_item={item_id!r}")
    versions = published.versions(session, item_id)
    if not versions:
        raise PlacementError("item_unknown", f"{item_id} has no published version")
    if not pin:
        pin = str(versions[0].major)
    if parse_reference(f"{item_id}@{pin}") is None:
        raise PlacementError("pin_invalid", f"dataide_pin={pin!r}")
    dl_id = str(custom.get(DL_KEY, "")).strip()[:64] or None
    try:
        with session.begin_nested():
            row = Placement(
                resource_link_pk=launch.resource_link_pk,
                item_id=item_id,
                kind=versions[0].kind,
                pin=pin,
                dl_id=dl_id,
            )
            session.add(row)
    except IntegrityError:  # the same first launch twice at once
        row = session.scalars(
            select(Placement).where(Placement.resource_link_pk == launch.resource_link_pk)
        ).one()
    session.commit()
    return _view(row)


def resolve_version(
    session: Session, published: PublishedContent, placement: PlacementView
) -> PublishedVersion:
    """The published version the placement's pin serves now.

    Raises :class:`PlacementError` ``item_not_published`` when nothing matches.
    """
    version = published.resolve(session, placement.item_id, placement.pin)
    if version is None:
        raise PlacementError(
            "item_not_published", f"{placement.item_id}@{placement.pin} matches no version"
        )
    return version


def move_placement(
    session: Session, published: PublishedContent, placement_pk: int, pin: str
) -> PlacementView:
    """Point a placement at another pin (a mentor moving to a newer version). Commits.

    Raises :class:`PlacementError` when the pin matches nothing published.
    """
    row = session.get(Placement, placement_pk)
    if row is None:
        raise PlacementError("item_unknown", f"placement {placement_pk}")
    if parse_reference(f"{row.item_id}@{pin}") is None:
        raise PlacementError("pin_invalid", pin)
    if published.resolve(session, row.item_id, pin) is None:
        raise PlacementError("item_not_published", f"{row.item_id}@{pin}")
    row.pin = pin
    row.updated_at = utcnow()
    session.commit()
    return _view(row)
