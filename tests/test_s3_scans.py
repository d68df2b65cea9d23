"""Every scan and task test that runs on the test hub, again with the objects in a bucket.

The kill -9 tests start `amphub serve` with the data dir's store, so they are not
collected again here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, running_hub
from tests.test_tasks import *  # noqa: F403 - every test and fixture, again on S3

del test_scan_resumes_after_kill_9  # noqa: F821
del test_a_scan_restarted_after_kill_9_keeps_what_it_had_judged  # noqa: F821
del test_a_task_interrupted_three_times_fails  # noqa: F821


@pytest.fixture
async def hub(tmp_path: Path, s3_bucket: dict) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", **s3_bucket) as running:
        yield running
