"""What reads LFS content (HF downloads and uploads, Xet, scans, sync), again on S3.

The tests are those of their own modules (every HF download, Xet and sync test; uploads
and scans are in test_s3_uploads and test_s3_scans), collected here a second time with a
`hub` whose objects live in a SeaweedFS bucket; the peer of the sync tests keeps the data
dir's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, running_hub
from tests.test_hf_download import *  # noqa: F403 - every test and fixture, again on S3
from tests.test_hf_xet import *  # noqa: F403
from tests.test_sync import *  # noqa: F403


@pytest.fixture
async def hub(tmp_path: Path, s3_bucket: dict) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", **s3_bucket) as running:
        yield running
