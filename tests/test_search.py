"""Cards from pushed READMEs, and search with filters and facets as different users."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import Hub, git, push_readme, wait_for_card, write_from_outside
from tests.samples import SEED_WITH_CBT_CN as SEED


async def search(hub: Hub, user: str = "admin", **params: str) -> dict:
    status, body = await hub.call("GET", "/api/v1/models?" + urlencode(params), user=user)
    assert status == 200, body
    return body


@pytest.fixture
async def seeded(hub: Hub, tmp_path: Path) -> Hub:
    await hub.space_and_model("team", "gpt2-big", name="gpt2-大")
    await hub.model("team", "resnet", name="ResNet-50")
    await push_readme(hub, tmp_path, "team", "gpt2-big", SEED)
    await push_readme(
        hub,
        tmp_path,
        "team",
        "resnet",
        "---\nlibrary_name: timm\npipeline_tag: image-classification\nlicense: apache-2.0\n"
        "tags: [vision]\ndatasets: [imagenet-1k]\n---\n# ResNet\nTells cats from dogs.\n",
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


async def ids_for(hub: Hub, **params: str) -> list[str]:
    return [m["id"] for m in (await search(hub, **params))["models"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("pytorch", ["gpt2-big"]),  # a framework
        ("text generation", ["gpt2-big"]),  # task type and algorithm, several words
        ("GENERATION text", ["gpt2-big"]),  # any order, any case
        ("Gënerätion", ["gpt2-big"]),  # accents folded
        ("Computer Vision", ["resnet"]),
        ("vision", ["resnet"]),
        ("team", ["gpt2-big", "resnet"]),  # the space
        ("resne", ["resnet"]),  # the last word as it is typed
        ("imagenet apache", ["resnet"]),
        ("timm image", ["resnet"]),
        ("cats dogs", ["resnet"]),  # the README's description
        ("tell", ["resnet"]),  # the beginning of one of its words
        ("ells", []),  # but not the middle of one
        ("pytorch vision", []),  # every word must match
    ],
)
async def test_search_matches_words_across_fields(seeded: Hub, q: str, expected: list) -> None:
    assert sorted(await ids_for(seeded, q=q)) == expected


async def test_search_reads_the_whole_description(seeded: Hub, tmp_path: Path) -> None:
    await seeded.model("team", "long-card", name="Long card")
    filler = "This paragraph says nothing in particular about the model. " * 200  # ~12 KB
    await push_readme(
        seeded,
        tmp_path,
        "team",
        "long-card",
        f"---\nlicense: mit\n---\n# Long card\n{filler}\nFine-tuned on Ünïcode Quokkas.\n",
    )
    assert await ids_for(seeded, q="quokkas") == ["long-card"]  # 12 KB in
    assert await ids_for(seeded, q="unicode QUOKK") == ["long-card"]  # accents, case, prefix
    assert await ids_for(seeded, q="quokk ünïc") == ["long-card"]  # any word a prefix
    assert await ids_for(seeded, q="okkas") == []  # a description word's middle is not a match
    # Name and id matches rank first: "resnet" is ResNet's name, and a word of this card.
    await push_readme(
        seeded,
        tmp_path,
        "team",
        "long-card",
        f"---\nlicense: mit\n---\n{filler}\nCompared with ResNet-50.\n",
    )
    assert await ids_for(seeded, q="resnet", sort="name") == ["resnet", "long-card"]


async def test_search_finds_words_inside_cjk_sentences(seeded: Hub, tmp_path: Path) -> None:
    """Chinese and Japanese have no spaces: a word is found anywhere in a sentence."""
    await seeded.model("team", "asr", name="ASR")
    await push_readme(
        seeded,
        tmp_path,
        "team",
        "asr",
        "---\nlicense: mit\n---\n这是一个语音识别模型。音声認識モデルです。\n",
    )
    for q in ("语音识别", "识别", "识", "型", "语音识别模型", "语音识", "音声認識", "ASR 识别"):
        assert await ids_for(seeded, q=q) == ["asr"], q
    assert await ids_for(seeded, q="识别语音") == []  # its pairs must all be there (别语 is not)


async def test_search_ranks_name_and_id_matches_first(seeded: Hub, tmp_path: Path) -> None:
    await seeded.model("team", "aaa-distilled", name="A distilled model")
    await push_readme(
        seeded,
        tmp_path,
        "team",
        "aaa-distilled",
        "---\nlicense: mit\n---\nDistilled from ResNet.\n",
    )
    assert await ids_for(seeded, q="resnet", sort="name") == ["resnet", "aaa-distilled"]
    assert await ids_for(seeded, q="resnet", sort="name", page="2", per_page="1") == [
        "aaa-distilled"
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("task_type", "cv", ["resnet"]),
        ("task_type", "computer-vision", ["resnet"]),
        ("task_type", "NLP", ["gpt2-big"]),
        ("framework", "torch", ["gpt2-big"]),
        ("framework", "timm", ["resnet"]),
        ("algorithm", "text-generation", ["gpt2-big"]),
        ("algorithm", "image_classification", ["resnet"]),
    ],
)
async def test_filters_accept_the_card_aliases(
    seeded: Hub, name: str, value: str, expected: list
) -> None:
    assert await ids_for(seeded, **{name: value}) == expected


async def test_license_is_a_facet(seeded: Hub) -> None:
    assert (await search(seeded))["facets"]["license"] == {"apache-2.0": 1, "mit": 1}


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
    import os
    import sys

    await write_from_outside(
        seeded.database_target, ("DELETE FROM cards", ()), ("DELETE FROM card_values", ())
    )
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
        env=dict(os.environ, AMPHUB_DATABASE=str(seeded.database_target))
        if isinstance(seeded.database_target, str)
        else None,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "indexed 2 models"
    assert [m["id"] for m in (await search(seeded, framework="PyTorch"))["models"]] == ["gpt2-big"]
    _, model = await seeded.call("GET", "/api/v1/models/team/gpt2-big")
    assert model["card"]["parameters"] == 1_700_000_000


# ---------------------------------------------------------------- the index in memory
#
# Searches are answered from an index in memory (amphub/search_index.py), kept current
# through a change log that triggers fill. Whatever is written, by the server or by another
# process, the next search must answer exactly as the plain SQL form of the search does.

VOCABULARY = ["PyTorch", "pytorch", "PYTORCH", "Timm", "ONNX", "Jax", "中文", "Ünïcode", "bert"]
TASKS = [None, "Natural Language Processing", "natural language processing", "Computer Vision"]
ALGORITHMS = [None, "Text Generation", "text generation", "Image Classification"]
LICENSES = [None, "mit", "MIT", "apache-2.0"]
TEXTS = ["", "", "", "", "be", "bert", "BERT", "pyt", "中文", "ün", "m1", "mit", "nothing", "a",
         "bert m1", "M1 pyt", "alpha", "a be", "中文 模型", "mit, squad", "dis", "distil",
         "distilled", "istil", "Gënérâtion", "gen tok", "of", "ton", "token", "语音识别", "识",
         "型", "语音识", "别模", "音声認識", "한국어"]  # fmt: skip
DESCRIPTIONS = ["", "Distilled from BERT, of the tokens.", "Génération de texte; token-wise",
                "中文 模型 for ONNX", "ofTen generates", "这是一个语音识别模型。",
                "音声認識モデルです", "한국어 음성 인식 모델"]  # fmt: skip


def random_row(rng, model_id: str, name: str):
    from amphub import db
    from amphub.search.words import searchable

    values = {("framework", rng.choice(VOCABULARY)) for _ in range(rng.randint(0, 3))}
    values |= {("tag", rng.choice(VOCABULARY).lower()) for _ in range(rng.randint(0, 2))}
    values |= {("dataset", rng.choice(["squad", "SQuAD", "c4"])) for _ in range(rng.randint(0, 1))}
    license = rng.choice(LICENSES)
    parts = [model_id, name, *(v for _, v in sorted(values)), license or ""]
    return db.CardRow(
        commit_id=f"{rng.getrandbits(160):040x}",
        card_json=f'{{"n": {rng.randint(0, 9)}}}',
        task_type=rng.choice(TASKS),
        algorithm=rng.choice(ALGORITHMS),
        license=license,
        parameters=rng.choice([None, 0, 10, 10, 1_700_000_000, 7]),
        search_text=searchable(parts, rng.choice(DESCRIPTIONS)),
        values=tuple(sorted(values)),
    )


def random_query(rng, people: dict, spaces: list[str]):
    from amphub.services.search import ModelSearch, model_query

    actor = people[rng.choice(sorted(people))]
    filters = {}
    for name, choices in (
        ("space", [*spaces, "nowhere"]),
        ("framework", VOCABULARY),
        ("task_type", [t for t in TASKS if t] + ["NATURAL LANGUAGE PROCESSING"]),
        ("algorithm", [a for a in ALGORITHMS if a]),
        ("tag", ["bert", "BERT", "中文"]),
        ("license", ["MIT", "apache-2.0"]),
        ("dataset", ["squad", "C4"]),
    ):
        if rng.random() < 0.08:
            filters[name] = rng.choice(choices)
    search = ModelSearch(
        text=rng.choice(TEXTS),
        filters=filters,
        min_parameters=rng.choice([None, None, None, None, 0, 10]),
        max_parameters=rng.choice([None, None, None, None, 10, 2_000_000_000]),
    )
    return model_query(actor, search, live_after="2026-01-10T00:00:00Z")


async def same_as_sql(database, index, rng, people, spaces, searches: int) -> None:
    from amphub import db

    for _ in range(searches):
        query = random_query(rng, people, spaces)
        sort = rng.choice(list(db.SORTS))
        per_page, offset = rng.choice([(5, 0), (5, 5), (100, 0), (3, 40)])
        found = await db.search_models(database, index, query, sort, per_page, offset)
        page = await db.search_models_by_sql(database, query, sort, per_page, offset)
        facets = await db.facet_counts_by_sql(database, query)
        assert found.models == page, (query, sort, offset)
        assert found.facets == facets, query
        assert found.total == sum(facets["space"].values()), query


async def random_change(
    database, rng, people: dict, spaces: list[str], serial: list[int], grow: bool = False
):
    from amphub import db

    audit = db.Audit("admin", "test")
    models = await db.list_models(database)
    model = rng.choice(models) if models else None
    user = rng.choice([name for name in people if name])
    kind = rng.randrange(9)
    if kind == 0 or model is None or (grow and rng.random() < 0.6):
        serial[0] += 1
        space = rng.choice(spaces)
        model_id = f"m{serial[0]}-{rng.choice(['a', 'B', 'c'])}"
        name = rng.choice(["Alpha", "alpha", "beta", "中文 模型", "Zeta"])
        owner = rng.choice([name for name in people if name])
        visibility = rng.choice(["private", "internal", "public"])
        await db.insert_model(database, space, model_id, name, visibility, owner)
        if rng.random() < 0.8:
            await db.store_card(database, space, model_id, random_row(rng, model_id, name))
    elif kind == 1:
        row = random_row(rng, model.id, "x")
        await db.store_card(database, model.space_id, model.id, row)
        stored = await database.conn.execute_fetchall(
            "SELECT field, value FROM card_values WHERE space_id = ? AND model_id = ?",
            (model.space_id, model.id),
        )
        assert {(name, value) for name, value in stored} == set(row.values)
    elif kind == 2:
        await db.update_model(
            database,
            model.space_id,
            model.id,
            audit,
            name=rng.choice([None, "alpha", "ALPHA", "omega"]),
            visibility=rng.choice([None, "private", "internal", "public"]),
        )
    elif kind == 3:
        await db.delete_model_row(database, model.space_id, model.id, audit)
    elif kind == 4:
        role = rng.choice(["visitor", "user", "developer", "maintainer"])
        await db.set_model_member(database, model.space_id, model.id, user, role, audit)
    elif kind == 5:
        await db.delete_model_member(database, model.space_id, model.id, user, audit)
    elif kind == 6:
        role = rng.choice(["user", "maintainer"])
        await db.set_space_member(database, rng.choice(spaces), user, role, audit)
    elif kind == 7:
        await db.delete_space_member(database, rng.choice(spaces), user, audit)
    else:
        at = rng.choice(["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"])
        push = db.Push(model.space_id, model.id, user, "refs/heads/master", "0", "1", at)
        await db.record_pushes(database, [push])


# Rebuilt after every change; replayed, stale slots purged as soon as there are 3 of them.
@pytest.mark.parametrize(("replay_limit", "purge_from"), [(1, 256), (2000, 3)])
async def test_index_answers_as_the_sql_does(
    tmp_path: Path, replay_limit: int, purge_from: int
) -> None:
    """Random hubs, searches and changes: the index and the SQL form always agree."""
    from random import Random

    from amphub import db
    from amphub.policy.matrix import Actor
    from tests.conftest import FakeClock

    rng = Random(5)
    clock = FakeClock()  # a few distinct times, so that sorts must break ties by id
    async with db.opened(tmp_path / "amphub.db", clock) as database:
        people = {"admin": Actor("admin", admin=True), "": Actor()}
        for name in ("admin", "ann", "bob", "cid"):
            await database.write(
                "INSERT INTO users (name, key_hash, admin, created_at) VALUES (?, ?, ?, 't')",
                (name, name, name == "admin"),
            )
            people.setdefault(name, Actor(name))
        spaces = ["live", "expired", "released", "lasting"]
        for space, creator, expires in zip(
            spaces,
            ["ann", "bob", "admin", "cid"],
            ["2026-02-01T00:00:00Z", "2026-01-09T00:00:00Z", None, None],
            strict=True,
        ):
            await db.insert_space(database, space, space, 1, "monthly", expires, creator)
        await db.mark_space_released(database, "released", db.Audit("admin", "test"))
        index = db.SearchIndex(replay_limit=replay_limit, purge_from=purge_from)
        serial = [0]
        for _ in range(120):
            await random_change(database, rng, people, spaces, serial, grow=True)
            if rng.random() < 0.3:
                clock.advance(hours=1)
        await same_as_sql(database, index, rng, people, spaces, 60)
        for _ in range(40):
            for _ in range(rng.randint(1, 4)):
                await random_change(database, rng, people, spaces, serial)
                clock.advance(minutes=rng.choice([0, 0, 30]))
            await same_as_sql(database, index, rng, people, spaces, 5)


async def test_searches_while_the_index_is_built_answer_from_sql(tmp_path: Path) -> None:
    """The first build runs in a worker thread; a search meanwhile does not wait for it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from random import Random

    from amphub import db
    from amphub.policy.matrix import Actor
    from amphub.services.search import ModelSearch, model_query

    async with db.opened(tmp_path / "amphub.db") as database:
        await database.write(
            "INSERT INTO users (name, key_hash, admin, created_at) VALUES ('admin', 'k', 1, 't')",
            (),
        )
        await db.insert_space(database, "voice", "voice", 1, "pay_as_you_go", None, "admin")
        for model_id in ("asr", "bert"):
            await db.insert_model(database, "voice", model_id, model_id, "private", "admin")
        row = random_row(Random(1), "asr", "asr")
        await db.store_card(database, "voice", "asr", row)
        # The build waits for the one worker thread, which waits for the test.
        loop, held = asyncio.get_running_loop(), threading.Event()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        busy = loop.run_in_executor(None, held.wait)
        index = db.SearchIndex()
        warming = asyncio.create_task(db.warm_search_index(database, index))
        query = model_query(Actor("admin", admin=True), ModelSearch(text="asr"), "2026")
        try:
            while not index.building:
                await asyncio.sleep(0)
            found = await asyncio.wait_for(
                db.search_models(database, index, query, "name", 10, 0), timeout=10
            )
        finally:
            held.set()
        await asyncio.gather(busy, warming)
        assert [model.id for model, _ in found.models] == ["asr"]
        assert (found.total, found.facets["space"]) == (1, {"voice": 1})
        assert found == await db.search_models(database, index, query, "name", 10, 0)


# ---------------------------------------------------------------- every write reaches search


async def ids(hub: Hub, user: str = "admin", **params: str) -> list[str]:
    return [m["id"] for m in (await search(hub, user=user, per_page="100", **params))["models"]]


async def test_search_follows_models_created_and_deleted(hub: Hub) -> None:
    await hub.space("team")
    assert (await search(hub))["total"] == 0  # the first search builds the index
    await hub.model("team", "first")
    await hub.model("team", "second", name="Another")
    body = await search(hub, sort="name")
    assert [m["id"] for m in body["models"]] == ["second", "first"]
    assert (body["total"], body["facets"]["space"]) == (2, {"team": 2})
    assert await ids(hub, q="another") == ["second"]
    status, _ = await hub.call("DELETE", "/api/v1/models/team/second")
    assert status == 204
    body = await search(hub)
    assert [m["id"] for m in body["models"]] == ["first"]
    assert (body["total"], body["facets"]["space"]) == (1, {"team": 1})
    assert await ids(hub, q="another") == []


async def test_search_follows_roles_and_visibility(seeded: Hub) -> None:
    hub = seeded
    await hub.user("eve")
    assert await ids(hub, "eve") == []
    model_member = "/api/v1/models/team/resnet/members/eve"
    await hub.call("PUT", model_member, json={"role": "visitor"})
    assert await ids(hub, "eve") == ["resnet"]
    assert (await search(hub, user="eve"))["facets"]["task_type"] == {"Computer Vision": 1}
    assert (await hub.call("DELETE", model_member))[0] == 204
    assert await ids(hub, "eve") == []

    space_member = "/api/v1/spaces/team/members/eve"
    status, body = await hub.call("PUT", space_member, json={"role": "maintainer"})
    assert status == 200, body
    assert sorted(await ids(hub, "eve")) == ["gpt2-big", "resnet"]
    everything = ["delete", "edit", "read_files", "retrieve", "view", "write_files"]
    assert [m["permissions"] for m in (await search(hub, user="eve"))["models"]] == [everything] * 2
    await hub.call("PUT", space_member, json={"role": "user"})  # may use the space only
    assert await ids(hub, "eve") == []
    assert (await hub.call("DELETE", space_member))[0] == 204

    gpt2 = "/api/v1/models/team/gpt2-big"
    await hub.call("PATCH", gpt2, json={"visibility": "internal"})
    assert await ids(hub, "eve") == ["gpt2-big"]
    assert await ids(hub, "") == []  # internal: signed-in users only
    await hub.call("PATCH", gpt2, json={"visibility": "public"})
    assert await ids(hub, "", framework="pytorch") == ["gpt2-big"]
    await hub.call("PATCH", gpt2, json={"visibility": "private"})
    assert await ids(hub, "eve") == [] and await ids(hub, "") == []


async def test_search_follows_pushes(seeded: Hub, tmp_path: Path) -> None:
    hub = seeded
    assert (await search(hub))["facets"]["framework"] == {
        "PyTorch": 1,
        "Transformers": 1,
        "Timm": 1,
    }
    text = "---\nTraining framework: [Timm]\nNumber of parameters: 10\n---\n"
    await push_readme(hub, tmp_path, "team", "resnet", text)
    assert await ids(hub, sort="parameters") == ["gpt2-big", "resnet"]
    text = "---\nTraining framework: [Keras]\nNumber of parameters: 5\n---\nsmall\n"
    await push_readme(hub, tmp_path, "team", "gpt2-big", text)
    assert await ids(hub, sort="parameters") == ["resnet", "gpt2-big"]
    models = (await search(hub, sort="updated"))["models"]
    assert models[0]["id"] == "gpt2-big"  # pushed last (or in the same second: id order)
    assert models[0]["updated_at"] >= models[1]["updated_at"]
    body = await search(hub)
    assert body["facets"]["framework"] == {"Keras": 1, "Timm": 1}
    assert await ids(hub, framework="PyTorch") == []
    assert await ids(hub, q="LAMBADA") == []
    assert await ids(hub, parameters_max="5") == ["gpt2-big"]


async def test_search_follows_space_release(seeded: Hub) -> None:
    hub = seeded
    await hub.user("eve")
    await hub.call("PUT", "/api/v1/models/team/resnet/members/eve", json={"role": "user"})
    assert (await search(hub))["total"] == 2 and await ids(hub, "eve") == ["resnet"]
    status, body = await hub.call(
        "POST", "/api/v1/spaces/team/unsubscribe", json={"confirm": "team"}
    )
    assert status == 200, body
    body = await search(hub)
    assert (body["models"], body["total"], body["facets"]["space"]) == ([], 0, {})
    assert await ids(hub, "eve") == []


async def test_search_follows_space_lifetime(tmp_path: Path) -> None:
    from datetime import timedelta

    import aiohttp

    from tests.conftest import FakeClock, start_hub

    clock = FakeClock()
    server, key = await start_hub(tmp_path / "data", clock)
    try:
        async with aiohttp.ClientSession() as session:
            hub = Hub(server, session, key, tmp_path / "data")
            space = await hub.space("team")  # monthly: expires a month from now
            await hub.model("team", "m1")
            assert await ids(hub) == ["m1"]
            expires = datetime_of(space["expires_at"])
            clock.now = expires + timedelta(days=6)  # in its grace period: still found
            assert await ids(hub) == ["m1"]
            clock.now = expires + timedelta(days=8)  # past it: neither read nor searched
            assert await ids(hub) == []
            status, body = await hub.call("POST", "/api/v1/spaces/team/renew", json={})
            assert status == 200, body
            assert await ids(hub) == ["m1"]
    finally:
        await server.close()


def datetime_of(text: str):
    from amphub.clock import parse_rfc3339

    return parse_rfc3339(text)


async def test_search_sees_what_other_processes_write(seeded: Hub) -> None:

    await seeded.user("eve")
    assert await ids(seeded, "", q="resnet") == []
    assert await ids(seeded, framework="Keras") == []
    assert await ids(seeded, "eve") == []
    # Another connection, as `amphub admin` or a restore would make; triggers log it.
    await write_from_outside(
        seeded.database_target,
        ("UPDATE models SET visibility = 'public' WHERE id = 'resnet'", ()),
        (
            "INSERT INTO card_values (space_id, model_id, field, value)"
            " VALUES ('team', 'gpt2-big', 'framework', 'Keras')",
            (),
        ),
        (
            "INSERT INTO model_members (space_id, model_id, user, role)"
            " VALUES ('team', 'gpt2-big', 'eve', 'visitor')",
            (),
        ),
    )
    assert sorted(await ids(seeded, "eve")) == ["gpt2-big", "resnet"]
    assert await ids(seeded, "", q="resnet") == ["resnet"]
    assert await ids(seeded, framework="keras") == ["gpt2-big"]
    assert (await search(seeded))["facets"]["framework"]["Keras"] == 1
