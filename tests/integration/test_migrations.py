"""Migrations upgrade, downgrade, upgrade again and match the models, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from lti_tool.migrations import alembic_config
from lti_tool.models import Base
from tests.conftest import postgres_url, reset_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    url = postgres_url()
    reset_postgres(url)
    return url


def test_upgrade_downgrade_upgrade_and_check(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    engine = create_engine(database_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    # Raises when the models differ from the migrations (a forgotten migration).
    command.check(config)
    engine.dispose()
