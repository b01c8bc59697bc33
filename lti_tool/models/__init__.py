"""SQLAlchemy 2.0 typed models: persistence only."""

from .base import Base, utcnow
from .content import ContentVersion
from .identity import Context, CoordinatorGrant, ResourceLink, User
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
    "Base",
    "ContentVersion",
    "Context",
    "CoordinatorGrant",
    "Deployment",
    "KeyValueEntry",
    "Organization",
    "Registration",
    "RegistrationInvitation",
    "ResourceLink",
    "ToolKey",
    "User",
    "utcnow",
]
