import pytest

from lti_tool.domain.launch import LEARNER, MENTOR
from lti_tool.lti.roles import map_roles, primary_role

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
S = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([M + "Instructor"], MENTOR),
        ([M + "TeachingAssistant"], MENTOR),
        ([M + "Administrator"], MENTOR),
        ([M + "ContentDeveloper"], MENTOR),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
            MENTOR,
        ),
        (["Instructor"], MENTOR),
        ([M + "Instructor", INST + "Staff", INST + "Other"], MENTOR),
        ([M + "Learner"], LEARNER),
        (["Learner"], LEARNER),
        ([M + "Mentor"], LEARNER),
        ([M + "Learner", INST + "Student", M + "Mentor"], LEARNER),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#Learner"], LEARNER),
        (["urn:example:unknown-role"], LEARNER),
        ([], LEARNER),
        ([""], LEARNER),
        # Institution and system roles never grant more than learner...
        ([INST + "Instructor"], LEARNER),
        ([INST + "Administrator", S + "Administrator"], LEARNER),
        # ...and context roles win over them.
        ([INST + "Administrator", M + "Learner"], LEARNER),
        ([INST + "Student", M + "Instructor"], MENTOR),
        ([None, 3, {"a": 1}], LEARNER),
    ],
)
def test_role_table(roles: list[object], expected: str) -> None:
    assert map_roles(roles) == frozenset({expected})


def test_primary_role_orders_coordinator_first() -> None:
    assert primary_role({"learner", "coordinator"}) == "coordinator"
    assert primary_role({"mentor", "learner"}) == "mentor"
    assert primary_role(set()) == "learner"
