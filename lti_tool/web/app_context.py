"""Accessors for what ``create_app`` put on the application (no globals at import time)."""

from __future__ import annotations

from flask import current_app

from lti_tool.lti import LtiTool
from lti_tool.settings import Settings
from lti_tool.store import KeyValueStore

from .security import LocalRateLimiter, SharedRateLimiter


def settings() -> Settings:
    return current_app.extensions["dataide_settings"]


def lti_tool() -> LtiTool:
    return current_app.extensions["dataide_lti"]


def store() -> KeyValueStore:
    return current_app.extensions["dataide_store"]


def rate_limiter() -> SharedRateLimiter | LocalRateLimiter:
    return current_app.extensions["dataide_rate_limiter"]
