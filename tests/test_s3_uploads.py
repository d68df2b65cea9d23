"""Every huggingface_hub upload test (Xet and LFS), again with the objects in a bucket.

A module of its own: test_hf_upload's autouse `transfer` parameter would double every
other test collected beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, running_hub
from tests.test_hf_upload import *  # noqa: F403 - every test and fixture, again on S3


@pytest.fixture
async def hub(tmp_path: Path, s3_bucket: dict) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", **s3_bucket) as running:
        yield running
