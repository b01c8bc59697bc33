"""Launch users and LTI role vocabulary for the platform harness.

Contract for ``LaunchUser.roles``: each entry is either

* an Open edX role name (a key of ``lti_consumer.lti_1p3.constants.LTI_1P3_ROLE_MAP``, such as
  ``"student"``, ``"staff"`` or ``"instructor"``), which the consumer itself expands into LTI role
  URIs exactly as Open edX does. At most one such name is allowed, because Open edX launches
  carry exactly one platform role; or
* any other string (normally a full LTI role URI), which is added to the roles claim verbatim.

``OPENEDX_LEARNER_ROLES`` / ``OPENEDX_INSTRUCTOR_ROLES`` document what the consumer produces for
``"student"`` and ``"instructor"`` (set order; the consumer builds the list from a ``set``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIS = "http://purl.imsglobal.org/vocab/lis/v2"
ROLE_LEARNER = f"{LIS}/membership#Learner"
ROLE_INSTRUCTOR = f"{LIS}/membership#Instructor"
ROLE_ADMINISTRATOR = f"{LIS}/membership#Administrator"
ROLE_TEACHING_ASSISTANT = f"{LIS}/membership/Instructor#TeachingAssistant"
ROLE_CONTENT_DEVELOPER = f"{LIS}/membership#ContentDeveloper"
ROLE_SYSTEM_NONE = f"{LIS}/system/person#None"
ROLE_INSTITUTION_NONE = f"{LIS}/institution/person#None"

OPENEDX_LEARNER_ROLES = frozenset({ROLE_SYSTEM_NONE, ROLE_INSTITUTION_NONE, ROLE_LEARNER})
OPENEDX_INSTRUCTOR_ROLES = frozenset(
    {ROLE_SYSTEM_NONE, ROLE_INSTITUTION_NONE, ROLE_ADMINISTRATOR, ROLE_INSTRUCTOR}
)


@dataclass
class LaunchUser:
    """A person launching the tool from the platform.

    ``sub`` becomes both the ``login_hint`` of the login initiation and the ``sub`` claim, as
    with Open edX's ``external_user_id``. Optional fields that are ``None`` are not sent.
    ``name``/``email``/``preferred_username`` go through the consumer's ``set_user_data``;
    ``given_name``/``family_name``/``locale`` have no consumer API and are added to the same
    user claims (so they also reach deep linking requests).
    """

    sub: str
    roles: list[str] = field(default_factory=lambda: ["student"])
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    locale: str | None = None
    preferred_username: str | None = None

    @classmethod
    def learner(cls, sub: str = "learner-1", **fields: Any) -> LaunchUser:
        """A course learner (Open edX ``student`` role) with a full profile by default."""
        defaults: dict[str, Any] = {
            "roles": ["student"],
            "name": "Ada Learner",
            "given_name": "Ada",
            "family_name": "Learner",
            "email": f"{sub}@example.org",
            "locale": "en",
        }
        defaults.update(fields)
        return cls(sub=sub, **defaults)

    @classmethod
    def instructor(cls, sub: str = "instructor-1", **fields: Any) -> LaunchUser:
        """A course instructor (Open edX ``instructor`` role) with a full profile by default."""
        defaults: dict[str, Any] = {
            "roles": ["instructor"],
            "name": "Grace Teacher",
            "given_name": "Grace",
            "family_name": "Teacher",
            "email": f"{sub}@example.org",
            "locale": "en",
        }
        defaults.update(fields)
        return cls(sub=sub, **defaults)
