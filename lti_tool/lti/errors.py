"""Errors of the LTI boundary. Each has a stable ``code`` the web layer turns into a page
in the person's language; ``detail`` is English for logs and never shown raw."""

from __future__ import annotations


class LtiError(Exception):
    """A request from a platform or a browser that the tool refuses (a 4xx)."""

    status = 400

    def __init__(self, code: str, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status


class PlatformUnreachable(LtiError):
    """The platform's JWKS, OpenID configuration or token endpoint failed."""

    status = 502


class PendingDeployment(LtiError):
    """A valid launch from a deployment an administrator has not approved yet."""

    status = 403

    def __init__(self, issuer: str, client_id: str, deployment_id: str) -> None:
        super().__init__(
            "deployment_pending", f"deployment {deployment_id!r} of {issuer} / {client_id}"
        )
        self.issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id


class RosterRefused(LtiError):
    """The platform refused the membership (NRPS) request: 401 or 403.

    Open edX answers 403 for courses above its enrolment limit; the roster is then
    built from launches.
    """

    status = 502

    def __init__(self, detail: str = "") -> None:
        super().__init__("nrps_refused", detail)
