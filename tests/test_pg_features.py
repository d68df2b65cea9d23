"""API, roles, git, search, tasks, deployments and Xet tests again, on PostgreSQL.

The tests are those of their own modules, collected here a second time with a `hub`
whose metadata lives in a new database of the session's PostgreSQL server. (Modules whose
fixtures share names cannot be collected together; the HF download tests, for one, are
in test_pg_hf.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, running_hub
from tests.test_deploy import *  # noqa: F403 - every test and fixture, again
from tests.test_git import *  # noqa: F403
from tests.test_hf_xet import *  # noqa: F403
from tests.test_peers_api import *  # noqa: F403
from tests.test_roles import *  # noqa: F403
from tests.test_search import *  # noqa: F403
from tests.test_spaces_models_api import *  # noqa: F403
from tests.test_tasks import *  # noqa: F403
from tests.test_users_api import *  # noqa: F403


@pytest.fixture
def database(fresh_database: str) -> str:
    """The database of the tests that start `amphub serve` processes themselves."""
    return fresh_database


@pytest.fixture
async def hub(tmp_path: Path, fresh_database: str) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", database=fresh_database) as running:
        yield running
