"""huggingface_hub managing a real amphub repository: refs, deletion, visibility."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.conftest import Hub, git
from tests.test_hf_download import hf, hf_home  # noqa: F401  (hf_home: autouse)


@pytest.fixture
async def api(hub: Hub) -> HfApi:
    await hub.space("team")
    await hub.user("dev")
    return HfApi(endpoint=hub.base, token=hub.admin_key)


async def test_list_repo_refs_names_the_default_branch_main(hub, api):
    await hf(api.create_repo, "team/m")
    sha = (await hf(api.model_info, "team/m")).sha
    refs = await hf(api.list_repo_refs, "team/m")
    assert [(b.name, b.ref, b.target_commit) for b in refs.branches] == [
        ("main", "refs/heads/main", sha),
        ("master", "refs/heads/master", sha),
    ]


async def test_delete_branch_and_tag(hub, api):
    await hf(api.create_repo, "team/m")
    await hf(api.create_branch, "team/m", branch="feature/x")
    await hf(api.create_tag, "team/m", tag="v1")
    await hf(api.delete_branch, "team/m", branch="feature/x")
    await hf(api.delete_tag, "team/m", tag="v1")
    refs = await hf(api.list_repo_refs, "team/m")
    assert ([b.name for b in refs.branches], refs.tags) == (["main", "master"], [])
    remote = (await git("ls-remote", hub.remote("team", "m"))).stdout
    assert "feature/x" not in remote and "v1" not in remote
    with pytest.raises(RevisionNotFoundError, match="no branch gone"):
        await hf(api.delete_branch, "team/m", branch="gone")
    with pytest.raises(RevisionNotFoundError, match="no tag gone"):
        await hf(api.delete_tag, "team/m", tag="gone")
    for default in ("master", "main"):
        with pytest.raises(HfHubHTTPError) as refused:
            await hf(api.delete_branch, "team/m", branch=default)
        assert refused.value.response.status_code == 400
        assert "default branch and cannot be deleted" in str(refused.value)
    await hf(api.create_branch, "team/m", branch="keep")
    reader = HfApi(endpoint=hub.base, token=hub.keys["dev"])
    await hub.call("PUT", "/api/v1/models/team/m/members/dev", json={"role": "user"})
    with pytest.raises(HfHubHTTPError) as forbidden:
        await hf(reader.delete_branch, "team/m", branch="keep")
    assert forbidden.value.response.status_code == 403


async def test_update_repo_settings_changes_visibility_for_those_allowed(hub, api):
    await hf(api.create_repo, "team/m", private=True)
    await hf(api.update_repo_settings, "team/m", private=False)
    assert (await hub.call("GET", "/api/v1/models/team/m"))[1]["visibility"] == "public"
    await hf(api.update_repo_settings, "team/m", visibility="private")
    assert (await hub.call("GET", "/api/v1/models/team/m"))[1]["visibility"] == "private"
    with pytest.raises(HfHubHTTPError) as gated:
        await hf(api.update_repo_settings, "team/m", gated="auto")
    assert gated.value.response.status_code == 501
    await hub.call("PUT", "/api/v1/models/team/m/members/dev", json={"role": "developer"})
    developer = HfApi(endpoint=hub.base, token=hub.keys["dev"])
    with pytest.raises(HfHubHTTPError) as forbidden:
        await hf(developer.update_repo_settings, "team/m", private=False)
    assert forbidden.value.response.status_code == 403
    assert (await hub.call("GET", "/api/v1/models/team/m"))[1]["visibility"] == "private"


async def test_delete_repo_for_those_allowed(hub, api):
    await hf(api.create_repo, "team/m")
    await hub.call("PUT", "/api/v1/models/team/m/members/dev", json={"role": "developer"})
    developer = HfApi(endpoint=hub.base, token=hub.keys["dev"])
    with pytest.raises(HfHubHTTPError) as forbidden:
        await hf(developer.delete_repo, "team/m")
    assert forbidden.value.response.status_code == 403
    await hf(api.delete_repo, "team/m")
    assert (await hub.call("GET", "/api/v1/models/team/m"))[0] == 404
    with pytest.raises(RepositoryNotFoundError):
        await hf(api.delete_repo, "team/m")
    await hf(api.delete_repo, "team/m", missing_ok=True)
