"""exp / iat / nbf / iss / aud checks of the id_token, with clock skew."""

from __future__ import annotations

from typing import Any

import pytest

from lti_tool.lti.errors import LtiError
from lti_tool.lti.launch import check_registered_claims

NOW = 1_800_000_000.0
GOOD = {"iss": "https://lms", "aud": "tool", "iat": NOW - 5, "exp": NOW + 300}


def check(**changes: Any) -> None:
    body = {**GOOD, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    check_registered_claims(body, issuer="https://lms", client_id="tool", leeway=30, now=NOW)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"exp": NOW - 31}, "token_expired"),
        ({"iat": NOW + 31}, "token_not_yet_valid"),
        ({"nbf": NOW + 31}, "token_not_yet_valid"),
        ({"exp": None}, "invalid_timestamps"),
        ({"iat": None}, "invalid_timestamps"),
        ({"iat": "yesterday"}, "invalid_timestamps"),
        ({"exp": True}, "invalid_timestamps"),
        ({"iss": "https://other"}, "wrong_issuer"),
        ({"aud": "other"}, "wrong_audience"),
        ({"aud": ["other", "tool"]}, "wrong_audience"),
        ({"aud": ["other", "tool"], "azp": "other"}, "wrong_audience"),
    ],
)
def test_refusals(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(LtiError) as info:
        check(**changes)
    assert info.value.code == code


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"exp": NOW - 29},
        {"iat": NOW + 29},
        {"nbf": NOW + 29},
        {"aud": ["other", "tool"], "azp": "tool"},
        {"aud": ["tool"]},
    ],
)
def test_accepted_within_leeway(changes: dict[str, Any]) -> None:
    check(**changes)
