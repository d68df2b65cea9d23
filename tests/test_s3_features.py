"""What reads LFS content (HF downloads and uploads, Xet, scans, sync), again on S3.

The tests are those of their own modules, collected here a second time with a `hub`
whose objects live in a SeaweedFS bucket; the peer of the sync tests keeps the data dir's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from tests import test_hf_upload as hf_upload
from tests.conftest import Hub, running_hub
from tests.test_hf_download import (  # noqa: F401 - fixtures and tests collected here again
    hf_home,
    pushed,
    test_hf_hub_download_fills_the_cache_as_from_the_hub,
    test_snapshot_download_at_branch_tag_and_commit_with_patterns,
)
from tests.test_hf_xet import (  # noqa: F401
    test_a_later_upload_reuses_chunks_the_client_sent_before,
)
from tests.test_sync import (  # noqa: F401
    test_sync_a_branch_a_tag_and_a_commit_then_clone_from_the_peer,
    zones,
)
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
