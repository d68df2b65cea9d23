"""Cards from pushed READMEs, and search with filters and facets as different users."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import Hub, git
from tests.samples import SEED_WITH_CBT_CN as SEED


async def push_readme(hub: Hub, tmp_path: Path, space: str, model: str, text: str) -> str:
    work = tmp_path / f"{space}-{model}"
    if not work.exists():
        await git("clone", "-q", hub.remote(space, model), str(work))
    (work / "README.md").write_text(text, encoding="utf-8")
    await git("commit", "-q", "-am", "card", cwd=work)
    await git("push", "-q", cwd=work)
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    await wait_for_card(hub, space, model, head)
    return head


async def wait_for_card(hub: Hub, space: str, model: str, commit: str) -> dict:
    for _ in range(100):
        _, body = await hub.call("GET", f"/api/v1/models/{space}/{model}")
        if body.get("card_commit") == commit:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"card of {space}/{model} never reached {commit}")


async def search(hub: Hub, user: str = "admin", **params: str) -> dict:
    status, body = await hub.call("GET", "/api/v1/models?" + urlencode(params), user=user)
    assert status == 200, body
    return body


@pytest.fixture
async def seeded(hub: Hub, tmp_path: Path) -> Hub:
    await hub.space("team")
    await hub.model("team", "gpt2-big", name="gpt2-大")
    await hub.model("team", "resnet", name="ResNet-50")
    await push_readme(hub, tmp_path, "team", "gpt2-big", SEED)
    await push_readme(
        hub,
        tmp_path,
        "team",
        "resnet",
        "---\nlibrary_name: timm\npipeline_tag: image-classification\nlicense: apache-2.0\n"
        "tags: [vision]\ndatasets: [imagenet-1k]\n---\n# ResNet\n",
    )
    return hub


async def test_seed_example_card(seeded: Hub) -> None:
    _, model = await seeded.call("GET", "/api/v1/models/team/gpt2-big")
    card = model["card"]
    assert model["name"] == "gpt2-大"
    assert card["frameworks"] == ["PyTorch", "Transformers"]
    assert card["task_type"] == "Natural Language Processing"
    assert card["algorithm"] == "Text Generation"
    assert card["tags"] == ["exbert", "en"]
    assert card["parameters"] == 1_700_000_000
    assert card["license"] == "mit"
    assert [(p["dataset"]["name"], p["metrics"]) for p in card["performance"]] == [
        ("LAMBADA", {"PPL": 35.13, "ACC": 45.99}),
        ("CBT_CN", {"ACC": 87.65}),
    ]
    assert card["training_data"] == [
        {
            "name": "WebText",
            "permission": "Public",
            "link": "https://github.com/openai/gpt-2/blob/master/domains.txt",
        }
    ]
    assert card["warnings"] == []


@pytest.mark.parametrize("q", ["LAMBADA", "exbert", "mit", "WebText", "大", "gpt2-big", "CBT_CN"])
async def test_seed_example_is_found_by_text(seeded: Hub, q: str) -> None:
    body = await search(seeded, q=q)
    assert [m["id"] for m in body["models"]] == ["gpt2-big"]


async def test_filters_facets_and_sorting(seeded: Hub) -> None:
    body = await search(seeded, framework="PyTorch", task_type="Natural language processing")
    assert [m["id"] for m in body["models"]] == ["gpt2-big"]
    body = await search(seeded, framework="Timm")
    assert [m["id"] for m in body["models"]] == ["resnet"]
    assert [m["id"] for m in (await search(seeded, license="apache-2.0"))["models"]] == ["resnet"]
    assert [m["id"] for m in (await search(seeded, dataset="imagenet-1k"))["models"]] == ["resnet"]
    assert [m["id"] for m in (await search(seeded, tag="vision"))["models"]] == ["resnet"]
    assert [
        m["id"] for m in (await search(seeded, algorithm="Image Classification"))["models"]
    ] == ["resnet"]
    body = await search(seeded, parameters_min="1000000000")
    assert [m["id"] for m in body["models"]] == ["gpt2-big"]

    body = await search(seeded)
    assert body["total"] == 2
    assert body["facets"]["framework"] == {"PyTorch": 1, "Transformers": 1, "Timm": 1}
    assert body["facets"]["task_type"] == {"Natural Language Processing": 1, "Computer Vision": 1}
    assert body["facets"]["space"] == {"team": 2}
    names = [m["id"] for m in (await search(seeded, sort="name"))["models"]]
    assert names == ["gpt2-big", "resnet"]
    by_size = [m["id"] for m in (await search(seeded, sort="parameters"))["models"]]
    assert by_size == ["gpt2-big", "resnet"]
    page = await search(seeded, sort="name", per_page="1", page="2")
    assert [m["id"] for m in page["models"]] == ["resnet"] and page["total"] == 2
    status, _ = await seeded.call("GET", "/api/v1/models?sort=size")
    assert status == 400


async def test_search_obeys_permissions(seeded: Hub) -> None:
    await seeded.user("eve")
    assert (await search(seeded, user="eve"))["total"] == 0
    assert (await search(seeded, user="eve", q="LAMBADA"))["models"] == []
    await seeded.call("PUT", "/api/v1/models/team/resnet/members/eve", json={"role": "visitor"})
    body = await search(seeded, user="eve")
    assert [m["id"] for m in body["models"]] == ["resnet"]
    assert body["facets"]["framework"] == {"Timm": 1}
    assert body["models"][0]["permissions"] == ["retrieve", "view"]
    await seeded.call("PATCH", "/api/v1/models/team/gpt2-big", json={"visibility": "public"})
    anonymous = await search(seeded, user="", q="大")
    assert [m["id"] for m in anonymous["models"]] == ["gpt2-big"]


async def test_force_push_and_readme_deletion_reindex(seeded: Hub, tmp_path: Path) -> None:
    work = tmp_path / "team-gpt2-big"
    await git("rm", "-q", "README.md", cwd=work)
    await git("commit", "-q", "-m", "no readme", cwd=work)
    await git("push", "-q", cwd=work)
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    model = await wait_for_card(seeded, "team", "gpt2-big", head)
    assert model["card"]["frameworks"] == [] and model["card"]["parameters"] is None
    assert (await search(seeded, q="LAMBADA"))["models"] == []

    await git("reset", "-q", "--hard", "HEAD~1", cwd=work)
    await git("push", "-q", "--force", cwd=work)
    head = (await git("rev-parse", "HEAD", cwd=work)).stdout.strip()
    await wait_for_card(seeded, "team", "gpt2-big", head)
    assert [m["id"] for m in (await search(seeded, q="LAMBADA"))["models"]] == ["gpt2-big"]


async def test_bad_front_matter_never_fails_a_push(seeded: Hub, tmp_path: Path) -> None:
    text = "---\nTraining framework: [Torchy\nNumber of parameters: many\n---\nhello\n"
    await push_readme(seeded, tmp_path, "team", "resnet", text)
    _, model = await seeded.call("GET", "/api/v1/models/team/resnet")
    assert model["card"]["warnings"]


async def test_rename_is_searchable(seeded: Hub) -> None:
    await seeded.call("PATCH", "/api/v1/models/team/resnet", json={"name": "视觉模型"})
    assert [m["id"] for m in (await search(seeded, q="视觉"))["models"]] == ["resnet"]


async def test_admin_reindex_rebuilds_cards_from_repositories(seeded: Hub) -> None:
    import sqlite3
    import sys

    with sqlite3.connect(seeded.data_dir / "amphub.db") as conn:
        conn.execute("DELETE FROM cards")
        conn.execute("DELETE FROM card_values")
    assert (await search(seeded, framework="PyTorch"))["models"] == []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amphub",
        "admin",
        "reindex",
        "--data",
        str(seeded.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "indexed 2 models"
    assert [m["id"] for m in (await search(seeded, framework="PyTorch"))["models"]] == ["gpt2-big"]
    _, model = await seeded.call("GET", "/api/v1/models/team/gpt2-big")
    assert model["card"]["parameters"] == 1_700_000_000
