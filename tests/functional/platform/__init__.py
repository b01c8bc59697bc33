"""An Open edX-like LTI 1.3 *platform* for functional tests of the tool.

Launches are built by Open edX's own consumer (``lti_consumer.lti_1p3.consumer`` from the
``lti-consumer-xblock`` package), not by hand-written JWTs. Importing this package is cheap;
Django is configured (from ``django_settings``) the first time a ``Platform`` needs the consumer.

Typical use::

    with Platform(tool_base_url=tool_url) as platform:
        user = LaunchUser.learner()
        login = platform.login_params(user)          # what the LMS sends to /lti/login
        ...                                           # tool redirects to platform.auth_login_url
        form = platform.id_token_for(auth_request)   # {"id_token", "state"} to POST to /lti/launch
        ...                                           # the tool posts scores with a /token token
        platform.scores[(1, user.sub)]["scoreGiven"]  # line item 1 = platform.ags_lineitem_url

AGS 2.0 and NRPS 2.0 are served through lti1p3platform (``services``, state in ``gradebook``).
"""

from .core import Platform
from .gradebook import NOT_GRADABLE, TYPE_ID, Faults, Gradebook
from .keys import cached_rsa_private_key_pem, public_key_pem, sign_rs256
from .launch import (
    DEEP_LINKING_REQUEST,
    DEEP_LINKING_SETTINGS_CLAIM,
    DEFAULT_CONTEXT,
    DEFAULT_COURSE_ID,
    DEFAULT_RESOURCE_LINK_ID,
    RESOURCE_LINK_REQUEST,
    AuthRequestError,
    DeepLinkingResult,
)
from .users import (
    OPENEDX_INSTRUCTOR_ROLES,
    OPENEDX_LEARNER_ROLES,
    ROLE_ADMINISTRATOR,
    ROLE_CONTENT_DEVELOPER,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    ROLE_TEACHING_ASSISTANT,
    LaunchUser,
)

__all__ = [
    "DEEP_LINKING_REQUEST",
    "DEEP_LINKING_SETTINGS_CLAIM",
    "DEFAULT_CONTEXT",
    "DEFAULT_COURSE_ID",
    "DEFAULT_RESOURCE_LINK_ID",
    "NOT_GRADABLE",
    "OPENEDX_INSTRUCTOR_ROLES",
    "OPENEDX_LEARNER_ROLES",
    "RESOURCE_LINK_REQUEST",
    "ROLE_ADMINISTRATOR",
    "ROLE_CONTENT_DEVELOPER",
    "ROLE_INSTRUCTOR",
    "ROLE_LEARNER",
    "ROLE_TEACHING_ASSISTANT",
    "TYPE_ID",
    "AuthRequestError",
    "DeepLinkingResult",
    "Faults",
    "Gradebook",
    "LaunchUser",
    "Platform",
    "cached_rsa_private_key_pem",
    "public_key_pem",
    "sign_rs256",
]
