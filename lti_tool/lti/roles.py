"""The one table that maps LTI roles to the tool's roles.

Context (membership) roles win over institution roles: when a launch carries any context
role, only context roles count. Instructor, TeachingAssistant, context Administrator and
ContentDeveloper make a *mentor/editor*; everything else, including LIS Mentor (an
observer), unknown roles, ``[]`` and ``[""]``, makes a *learner* (least privilege).
Institution and system roles never grant more than learner. *Coordinator* is never taken
from the LMS: it is a tool-side grant (``lti-tool coordinators add``).

Roles vocabulary: https://www.imsglobal.org/spec/lti/v1p3#role-vocabularies
"""

from __future__ import annotations

from collections.abc import Iterable

from lti_tool.domain.launch import COORDINATOR, LEARNER, MENTOR

_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_MEMBERSHIP_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/"

#: Context role (principal name) -> tool role. Names not listed map to learner.
CONTEXT_ROLE_TABLE: dict[str, str] = {
    "Instructor": MENTOR,
    "TeachingAssistant": MENTOR,
    "Administrator": MENTOR,
    "ContentDeveloper": MENTOR,
    "Learner": LEARNER,
    "Mentor": LEARNER,
    "Manager": LEARNER,
    "Member": LEARNER,
    "Officer": LEARNER,
}

#: Sub-roles of these principal roles keep the principal's mapping
#: (``membership/Instructor#TeachingAssistant`` is a mentor).
_SUB_ROLE_PRINCIPALS = {"Instructor", "Administrator", "ContentDeveloper"}


def _context_role_name(role: str) -> str | None:
    """Principal context role name of a role URI or short name, or None if not a context role."""
    role = role.strip()
    if role.startswith(_MEMBERSHIP):
        return role[len(_MEMBERSHIP) :]
    if role.startswith(_MEMBERSHIP_SUB):
        principal = role[len(_MEMBERSHIP_SUB) :].partition("#")[0]
        if principal in _SUB_ROLE_PRINCIPALS:
            return principal
        # Sub-roles of Learner, Mentor and others grant no more than learner.
        return "Learner" if principal else None
    # LTI 1.3 deprecates short names but certification still sends them ("Instructor").
    if role in CONTEXT_ROLE_TABLE:
        return role
    return None


def map_roles(lti_roles: Iterable[object]) -> frozenset[str]:
    """Tool roles for the launch's ``roles`` claim (never empty; coordinator never included)."""
    names = [n for r in lti_roles if isinstance(r, str) and (n := _context_role_name(r))]
    if any(CONTEXT_ROLE_TABLE.get(name) == MENTOR for name in names):
        return frozenset({MENTOR})
    return frozenset({LEARNER})


def primary_role(roles: Iterable[str]) -> str:
    """The role a page names first: coordinator, then mentor, then learner."""
    roles = set(roles)
    for role in (COORDINATOR, MENTOR, LEARNER):
        if role in roles:
            return role
    return LEARNER
