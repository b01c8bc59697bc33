"""Functional fixtures: the tool (Flask test client) and an Open edX platform (its own
LTI 1.3 consumer code, serving JWKS and tokens over loopback HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from lti_tool.db import get_db
from lti_tool.models import Context, Deployment, ResourceLink, User
from lti_tool.services.platforms import PlatformSpec, add_platform
from tests.functional.platform import LaunchUser, Platform


@dataclass
class Lms:
    """A platform registered with the tool, and a browser (test client) to launch with."""

    app: Flask
    platform: Platform
    client: FlaskClient

    def login(self, user: LaunchUser, **login_kwargs: Any) -> dict[str, str]:
        """Third-party login; returns the authentication request the tool redirected to."""
        response = self.client.get(
            "/lti/login", query_string=self.platform.login_params(user, **login_kwargs)
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        return {k: v[0] for k, v in query.items()}

    def launch(
        self, user: LaunchUser, login_kwargs: dict[str, Any] | None = None, **token_kwargs: Any
    ) -> Any:
        auth = self.login(user, **(login_kwargs or {}))
        return self.post_launch(self.platform.id_token_for(auth, **token_kwargs))

    def post_launch(self, form: dict[str, str]) -> Any:
        return self.client.post("/lti/launch", data=form)

    def counts(self) -> dict[str, int]:
        with get_db(self.app).session() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (User, Context, ResourceLink, Deployment)
            }


def register(app: Flask, platform: Platform, deployment_ids: tuple[str, ...] = ("1",)) -> None:
    with get_db(app).session() as session:
        add_platform(
            session,
            PlatformSpec(
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_login_url,
                auth_token_url=platform.auth_token_url,
                key_set_url=platform.keyset_url,
                deployment_ids=deployment_ids,
            ),
        )


def tool_public_key(app: Flask) -> str:
    from lti_tool.lti.keys import signing_key

    with get_db(app).session() as session:
        return signing_key(
            session, app.extensions["dataide_settings"].key_encryption_key
        ).public_pem


@pytest.fixture
def platform(app: Flask) -> Iterator[Platform]:
    with Platform(
        tool_base_url=app.extensions["dataide_settings"].base_url,
        tool_public_key_pem=tool_public_key(app),
    ) as p:
        yield p


@pytest.fixture
def lms(app: Flask, platform: Platform) -> Lms:
    register(app, platform)
    return Lms(app=app, platform=platform, client=app.test_client())


def page_code(response: Any) -> str | None:
    """The error code an error page shows, or None."""
    html = response.get_data(as_text=True)
    if "<code>" not in html:
        return None
    return html.split("<code>", 1)[1].split("</code>", 1)[0]
