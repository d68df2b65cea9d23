"""What reads LFS content (HF downloads and uploads, Xet, scans, sync), again on S3.

The tests are those of their own modules (every HF download, Xet and sync test, and the
selected ones below), collected here a second time with a `hub` whose objects live in a
SeaweedFS bucket; the peer of the sync tests keeps the data dir's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from tests import test_hf_upload as hf_upload
from tests.conftest import Hub, running_hub
from tests.test_hf_download import *  # noqa: F403 - every test and fixture, again on S3
from tests.test_hf_xet import *  # noqa: F403
from tests.test_sync import *  # noqa: F403
from tests.test_tasks import (  # noqa: F401
    lfs_installed,
    test_scan_finds_a_harmful_pickle_and_shows_it_everywhere,
)


@pytest.fixture
async def hub(tmp_path: Path, s3_bucket: dict) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "data", **s3_bucket) as running:
        yield running


@pytest.mark.parametrize("transfer", ["xet", "lfs"])
async def test_hf_upload_folder_into_the_bucket(
    hub: Hub, tmp_path: Path, transfer: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", transfer == "lfs")
    await hub.space("team")
    api = HfApi(endpoint=hub.base, token=hub.admin_key)
    upload_folder = hf_upload.test_upload_folder_with_a_50_mb_weight_file_then_clone_with_git_lfs
    await upload_folder(hub, api, tmp_path, transfer)
