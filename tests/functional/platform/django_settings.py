"""Minimal Django settings that let Open edX's LTI 1.3 consumer code run outside the LMS.

Contract: this module only holds UPPER_CASE settings; ``_django.ensure_django()`` copies them
into ``django.conf.settings.configure()`` (it never sets ``DJANGO_SETTINGS_MODULE``, because the
dotted name of this package depends on how pytest imports it).

Why each setting exists:

* ``PLATFORM_NAME``: ``LtiConsumer1p3.get_lti_launch_message`` reads it to build the
  ``tool_platform`` claim (``guid`` is a uuid5 of this name).
* ``CACHES``: the consumer stores launch data between the login initiation and the OIDC
  authentication request in edx-django-utils' ``TieredCache`` (request cache + Django cache).
  The platform's HTTP server answers in other threads, so the shared tier must be a
  process-wide cache; the local-memory backend is exactly that.
* ``OPENEDX_TELEMETRY``: the consumer's methods are wrapped in edx-django-utils'
  ``function_trace``, which by default tries New Relic and logs a warning on every process
  when it is absent; an empty list means "no telemetry backend".
* ``LOGGING_CONFIG = None``: leave logging configuration to the test runner.
* ``LTI_BASE`` / ``LTI_API_BASE``: read by ``lti_consumer.utils`` URL helpers only; the harness
  passes its own issuer, but setting them keeps any helper from touching ``LMS_ROOT_URL``.
"""

SECRET_KEY = "lti-platform-harness-not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
PLATFORM_NAME = "Open edX Test Platform"
LTI_BASE = "http://127.0.0.1"
LTI_API_BASE = "http://127.0.0.1"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "lti-platform-harness",
    }
}
LOGGING_CONFIG = None
OPENEDX_TELEMETRY: list[str] = []
