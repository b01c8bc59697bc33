"""Lazy, idempotent Django bootstrap for Open edX's LTI consumer code.

Contract:

* ``ensure_django()`` configures Django from ``django_settings`` (unless the process already has
  settings, through ``settings.configure`` or ``DJANGO_SETTINGS_MODULE``) and runs
  ``django.setup()`` exactly once per process. It is thread-safe and cheap after the first call.
* ``import_lti_consumer()`` calls ``ensure_django()`` and then imports the ``lti_consumer``
  package, silencing only the two import-time deprecation warnings listed below, so the harness
  runs under ``pytest -W error``.
* If settings already exist but lack what the consumer reads (``PLATFORM_NAME``), a
  ``RuntimeError`` says so instead of failing deep inside a launch.
"""

from __future__ import annotations

import os
import threading
import warnings

from . import django_settings

_lock = threading.Lock()
_ready = threading.Event()


def _settings_from_module() -> dict[str, object]:
    """Return the UPPER_CASE names of ``django_settings`` as a dict."""
    return {name: getattr(django_settings, name) for name in dir(django_settings) if name.isupper()}


def ensure_django() -> None:
    """Configure Django (once) and run ``django.setup()`` (once)."""
    if _ready.is_set():
        return
    with _lock:
        if _ready.is_set():
            return
        import django
        from django.apps import apps
        from django.conf import settings

        # Respect a host project that already configured Django: configuring twice raises, and
        # overriding its settings would change behaviour the host relies on.
        if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
            settings.configure(**_settings_from_module())
        if not hasattr(settings, "PLATFORM_NAME"):
            raise RuntimeError(
                "Django is configured without PLATFORM_NAME, which LtiConsumer1p3 needs for the "
                "tool_platform claim; add it to the project's Django settings."
            )
        if not apps.ready:
            django.setup()
        _ready.set()


def import_lti_consumer() -> None:
    """Import ``lti_consumer`` with Django ready, tolerating two known import-time warnings."""
    ensure_django()
    with warnings.catch_warnings():
        # lti_consumer/__init__.py imports the whole XBlock, which pulls in WebOb; WebOb's
        # compat module imports the stdlib ``cgi`` module, deprecated since Python 3.11.
        warnings.filterwarnings(
            "ignore", message=r"'cgi' is deprecated", category=DeprecationWarning
        )
        # openedx-filters (also imported by the XBlock) warns once that it will drop 3.11.
        warnings.filterwarnings(
            "ignore", message=r"Python 3\.11 support is deprecated", category=DeprecationWarning
        )
        import lti_consumer  # noqa: F401
