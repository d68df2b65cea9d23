"""The LFS, sync, mirror and HF download tests again, on PostgreSQL (local object store).

Collected a second time with a `hub` whose metadata lives in a new database of the
session's PostgreSQL server: uploads' reservations and claims, links, locks and the
transfer paths on the other engine. The S3 store's own runs stay on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Hub, StoredBytes, running_hub
from tests.test_hf_download import *  # noqa: F403 - every test and fixture, again
from tests.test_lfs import *  # noqa: F403
from tests.test_mirror import *  # noqa: F403
from tests.test_sync import *  # noqa: F403


@pytest.fixture
def storage() -> dict[str, Any]:
    return {}


@pytest.fixture
def database(fresh_database: str) -> str:
    return fresh_database


@pytest.fixture
async def hub(tmp_path: Path, fresh_database: str, stored_bytes: StoredBytes) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", database=fresh_database) as running:
        running.stored = stored_bytes
        yield running
