"""Every scan and task test that runs on the test hub, again with the objects in a bucket.

The kill -9 tests start `amphub serve` with the data dir's store, so they are not
collected again here.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, SeaweedFS, push, running_hub, wait_task
from tests.test_tasks import *  # noqa: F403 - every test and fixture, again on S3

del test_scan_resumes_after_kill_9  # noqa: F821
del test_a_scan_restarted_after_kill_9_keeps_what_it_had_judged  # noqa: F821
del test_a_task_interrupted_three_times_fails  # noqa: F821


@pytest.fixture
async def hub(tmp_path: Path, s3_bucket: dict) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", **s3_bucket) as running:
        yield running


async def test_a_scan_reads_an_object_from_the_bucket_once(
    hub: Hub, model_repo, tmp_path: Path, seaweedfs: SeaweedFS
):
    """Its bytes are hashed as they are copied for the scanner, not read again to check them."""
    data = pickle.dumps({"weights": os.urandom(3 * 1024 * 1024)}, protocol=4)
    await push(tmp_path / "w-m1", {"weights.pkl": data}, clone=hub.remote("team", "m1"))
    sent = "SeaweedFS_s3_bucket_traffic_sent_bytes_total"  # bodies only
    before = seaweedfs.counted(sent)
    done = await wait_task(hub, (await scan(hub))["id"])  # noqa: F405
    assert done["result"]["files"]["weights.pkl"]["status"] == "safe"
    assert seaweedfs.counted(sent) - before == len(data)
