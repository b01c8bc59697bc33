"""SQLAlchemy 2.0 typed models: persistence only."""

from .base import Base, utcnow
from .content import ContentVersion
from .identity import Context, CoordinatorGrant, ResourceLink, User
from .learning import (
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_NOT_GRADABLE,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SUPERSEDED,
    OUTBOX_TERMINAL,
    Attempt,
    GradeOutboxRow,
    LineItem,
    Placement,
)
from .lti import (
    DEPLOYMENT_ACTIVE,
    DEPLOYMENT_PENDING,
    KEY_CURRENT,
    KEY_PREVIOUS,
    KEY_RETIRED,
    Deployment,
    Organization,
    Registration,
    RegistrationInvitation,
    ToolKey,
)
from .store import KeyValueEntry

__all__ = [
    "DEPLOYMENT_ACTIVE",
    "DEPLOYMENT_PENDING",
    "KEY_CURRENT",
    "KEY_PREVIOUS",
    "KEY_RETIRED",
    "OUTBOX_DELIVERED",
    "OUTBOX_FAILED",
    "OUTBOX_NOT_GRADABLE",
    "OUTBOX_PENDING",
    "OUTBOX_SENDING",
    "OUTBOX_SUPERSEDED",
    "OUTBOX_TERMINAL",
    "Attempt",
    "Base",
    "ContentVersion",
    "Context",
    "CoordinatorGrant",
    "Deployment",
    "GradeOutboxRow",
    "KeyValueEntry",
    "LineItem",
    "Organization",
    "Placement",
    "Registration",
    "RegistrationInvitation",
    "ResourceLink",
    "ToolKey",
    "User",
    "utcnow",
]
