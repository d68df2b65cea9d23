"""The pages in a real browser: Debian's chromium, driven by Playwright, against a real hub.

One hub and one browser serve the whole module. The hub runs on an event loop of its own
thread, so that Playwright's synchronous API can drive the browser from the test itself;
each test opens a fresh browser context (its own cookies) and waits for conditions with
generous deadlines, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import Hub, git, push, start_hub, wait_for_card
from tests.samples import SEED

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # a deadline for conditions on a loaded machine, not a speed check

GPT2_README = SEED.replace(
    "Other model descriptions...",
    "# gpt2-大\n\n一个中文说明：这是一个小型 GPT-2 模型。\n\n"
    "```python\nfrom transformers import pipeline\ngenerator = pipeline('text-generation')\n```\n",
)
RESNET_README = """---
Training framework: [PyTorch, Timm]
Job type: {Type: Computer vision, Algorithm: Image Classification}
Other tag: [imagenet, vision]
Number of parameters: 25557032
Open-source protocol: apache-2.0
Performance information:
- Dataset: {Name: ImageNet-1k, Permission: Public, Link: https://image-net.org/}
  Performance metric: {top-1: 80.4, top-5: 95.1}
---
ResNet-50 for image classification.
"""
YOLO_README = """---
Training framework: [PyTorch]
Job type: {Type: Computer vision, Algorithm: Object Detection}
Other tag: [yolo, realtime]
Number of parameters: 3200000
---
A small YOLO detector.
"""
XSS_README = """---
Other tag: [xss]
---
# Harmless title

<script>window.__xss = "script"</script>
<img src="x" onerror="window.__xss = 'onerror'">
<svg onload="window.__xss = 'svg'"><script>window.__xss = 'svg-script'</script></svg>
<a href="javascript:window.__xss='raw-link'">raw link</a>
[md link](javascript:window.__xss='md-link')
[mixed case](JaVaScRiPt:window.__xss='case')
[entity](javascript&#58;window.__xss='entity')
<javascript:window.__xss='autolink'>
![image](javascript:window.__xss='image')
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
<iframe src="javascript:window.__xss='iframe'"></iframe>
<div style="background:url(javascript:alert(1))" onclick="window.__xss='click'">click me</div>

[a fine link](https://example.com/docs)
"""


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Site:
    """A hub served from its own thread's event loop, with the data the tests browse."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub: Hub = self.run(self._start())

    def run(self, coro: Any, timeout: float = 600) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> Hub:
        server, key = await start_hub(self.root / "data")
        return Hub(server, aiohttp.ClientSession(), key, self.root / "data")

    async def _stop(self) -> None:
        await self.hub.session.close()
        await self.hub.server.close()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    @property
    def base(self) -> str:
        return self.hub.base

    def key(self, user: str) -> str:
        return self.hub.admin_key if user == "admin" else self.hub.keys[user]

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.run(self.hub.call(method, path, **kwargs))

    async def push(self, space: str, model: str, files: dict[str, bytes], **how: str) -> str:
        """Commit files to a model (on `branch`, with `tag`) and push them."""
        work = self.root / "work" / f"{space}-{model}"
        message = how.pop("message", f"Add {', '.join(files)}")
        return await push(work, files, message, clone=self.hub.remote(space, model), **how)

    async def populate(self) -> None:
        hub = self.hub
        await git("lfs", "install", "--skip-repo")
        for name, creator in (("ada", True), ("bob", False), ("carol", False), ("dave", False)):
            await hub.user(name, creator=creator)
        await hub.space("nlp", name="NLP 团队")
        await hub.space("vision", owner="ada", name="视觉 Vision")
        await hub.call(
            "PUT", "/api/v1/spaces/vision/members/bob", user="ada", json={"role": "user"}
        )
        await hub.model("nlp", "gpt2", name="gpt2-大")
        await self.push(
            "nlp",
            "gpt2",
            {
                "README.md": GPT2_README.encode(),
                "config.json": b'{"n_layer": 12, "name": "\xe5\xa4\xa7"}\n',
                "model.safetensors": os.urandom(64 * 1024),
                "evil.pkl": pickle.dumps(Evil()),
                "tokenizer/vocab.txt": b"hello\nworld\n",
            },
            tag="v1",
        )
        await self.push("nlp", "gpt2", {"dev-notes.md": b"# Only on dev\n"}, branch="dev")
        await hub.model("nlp", "hidden", name="Hidden model")
        await hub.model("nlp", "xss", name="XSS <b>test</b>", visibility="public")
        await self.push("nlp", "xss", {"README.md": XSS_README.encode()})
        await hub.model("vision", "resnet-50", owner="ada", name="ResNet-50", visibility="public")
        await self.push("vision", "resnet-50", {"README.md": RESNET_README.encode()})
        await hub.model("vision", "yolo", owner="ada", name="YOLO 检测", visibility="internal")
        await self.push("vision", "yolo", {"README.md": YOLO_README.encode()})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web-site")
    home = root / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Tester\n\temail = tester@example.com\n"
        "[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        patch.setenv("GIT_TERMINAL_PROMPT", "0")
        site = Site(root)
        try:
            site.run(site.populate())
            yield site
        finally:
            site.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, site: Site, user: str, key: str | None = None) -> None:
    page.goto("/-/sign-in")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Key").fill(key or site.key(user))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top")).to_contain_text(user)


def test_sign_in_with_a_wrong_key_then_the_right_one_and_sign_out(page: Page, site: Site):
    page.goto("/-/tasks")  # needs a session: off to the sign-in page, and back after
    expect(page).to_have_url(re.compile(r"/-/sign-in\?next=%2F-%2Ftasks$"))
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Key").fill("amp_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong user name or key")
    page.get_by_label("Key").fill(site.key("bob"))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/-/tasks$"))
    expect(page.locator("header.top")).to_contain_text("bob")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("header.top").get_by_role("link", name="Sign in")).to_be_visible()


def test_anonymous_visitor_sees_public_models_only(page: Page):
    page.goto("/?sort=name")
    expect(page.locator(".card-title")).to_have_text(["ResNet-50", "XSS <b>test</b>"])


def test_find_a_model_by_filter_and_search_then_open_it(page: Page, site: Site):
    sign_in(page, site, "bob")
    page.goto("/?sort=name")
    expect(page.locator(".card-title")).to_have_count(3)  # two public models, yolo internal
    page.locator('[data-facet="task_type"]').get_by_role("link", name="Computer Vision").click()
    expect(page).to_have_url(re.compile(r"task_type=Computer\+Vision"))
    expect(page.locator(".card-title")).to_have_text(["ResNet-50", "YOLO 检测"])
    facet = page.locator('[data-facet="algorithm"]')
    expect(facet).to_contain_text("Object Detection1")
    page.get_by_role("searchbox").fill("yolo")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=yolo.*task_type=Computer\+Vision"))
    expect(page.locator(".card-title")).to_have_text(["YOLO 检测"])
    page.get_by_role("link", name="Expand All").click()
    expect(page).to_have_url(re.compile(r"expand=1"))
    expect(page.get_by_role("link", name="Collapse")).to_be_visible()
    page.get_by_role("link", name="YOLO 检测").click()
    expect(page).to_have_url(re.compile(r"/vision/yolo$"))
    expect(page.locator(".model-head h1")).to_contain_text("YOLO 检测")
    expect(page.locator(".badge.perm")).to_have_text("Read")


def test_model_details_show_card_url_and_commands(context: BrowserContext, site: Site):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base)
    page = context.new_page()
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2")
    expect(page.locator(".model-head h1")).to_contain_text("gpt2-大")
    expect(page.locator(".facts")).to_contain_text("1.7B")
    expect(page.locator(".readme")).to_contain_text("一个中文说明")
    expect(page.locator(".readme pre code span").first).to_be_visible()  # highlighted fence
    perf = page.locator("table.perf")
    expect(perf.locator("thead th")).to_have_text(["Dataset", "PPL", "ACC"])
    expect(perf.locator("tbody tr").first.locator("td")).to_have_text(["LAMBADA", "35.13", "45.99"])
    webtext = page.get_by_role("link", name="WebText")
    expect(webtext).to_have_attribute(
        "href", "https://github.com/openai/gpt-2/blob/master/domains.txt"
    )
    url = f"{site.base}/nlp/gpt2.git"
    expect(page.locator("#clone-url")).to_have_text(url)
    page.locator("#clone-url + button.copy").click()
    expect(page.locator("#clone-url + button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url
    operate = page.locator(".operate")
    expect(operate).to_contain_text("git lfs install")
    expect(operate).to_contain_text(f"git clone {url}")
    expect(operate).to_contain_text("git push origin master")
    expect(operate).to_contain_text(f"url={url}\nusername=admin")


def test_use_this_model_panel_sizes_and_copy_names(page: Page, site: Site):
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2")
    expect(page.locator('[data-field="size"]')).to_contain_text("64.0 KiB LFS")
    expect(page.locator('[data-field="size"]')).to_contain_text("git")
    panel = page.locator(".use-model")
    transformers = panel.get_by_role("tabpanel", name="Transformers")
    expect(transformers).to_contain_text(f'os.environ["HF_ENDPOINT"] = "{site.base}"')
    expect(transformers).to_contain_text('AutoModel.from_pretrained("nlp/gpt2")')
    expect(panel.get_by_role("tabpanel", name="git + git-lfs")).to_be_hidden()
    panel.get_by_role("tab", name="hf download").click()
    expect(transformers).to_be_hidden()
    expect(panel.get_by_role("tabpanel", name="hf download")).to_contain_text(
        f"HF_ENDPOINT={site.base} hf download nlp/gpt2"
    )
    panel.get_by_role("tab", name="hf download").press("ArrowRight")
    expect(panel.get_by_role("tab", name="git + git-lfs")).to_be_focused()
    expect(panel.get_by_role("tabpanel", name="git + git-lfs")).to_contain_text(
        f"git clone {site.base}/nlp/gpt2.git"
    )
    panel.get_by_role("tab", name="huggingface_hub").click()
    expect(panel.get_by_role("tabpanel", name="huggingface_hub")).to_contain_text(
        f'snapshot_download("nlp/gpt2", endpoint="{site.base}")'
    )
    names = page.locator("button.copy").evaluate_all(
        "(all) => all.map((b) => b.getAttribute('aria-label') || b.textContent)"
    )
    assert len(names) == len(set(names)) >= 4, names
    expect(page.get_by_role("button", name="Copy the clone URL")).to_be_visible()


def test_switch_branch_view_a_file_download_and_read_history(page: Page, site: Site):
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2/files/master")
    rows = page.locator("table.files tbody tr")
    expect(rows.first).to_contain_text("tokenizer/")
    lfs_row = rows.filter(has_text="model.safetensors")
    expect(lfs_row.locator(".badge.lfs")).to_have_text("LFS")
    expect(lfs_row).to_contain_text("64.0 KiB")
    expect(rows.filter(has_text="dev-notes.md")).to_have_count(0)

    page.locator("#rev-select").select_option("dev")
    expect(page).to_have_url(re.compile(r"/nlp/gpt2/files/dev$"))
    expect(rows.filter(has_text="dev-notes.md")).to_have_count(1)
    page.locator("#rev-select").select_option("v1")
    expect(page).to_have_url(re.compile(r"/nlp/gpt2/files/v1$"))

    page.get_by_role("link", name="config.json", exact=True).click()
    expect(page).to_have_url(re.compile(r"/nlp/gpt2/blob/v1/config.json$"))
    expect(page.locator(".hl")).to_contain_text('"n_layer": 12')
    expect(page.locator(".hl")).to_contain_text("大")
    expect(page.locator(".hl span.mi")).to_have_text("12")  # a number, highlighted as one

    page.goto("/nlp/gpt2/files/master")
    with page.expect_download() as download:
        rows.filter(has_text="model.safetensors").get_by_role("link", name="Download").click()
    saved = download.value.path()
    assert saved is not None and Path(saved).stat().st_size == 64 * 1024
    assert download.value.suggested_filename == "model.safetensors"

    page.get_by_role("link", name="Commits").first.click()
    expect(page).to_have_url(re.compile(r"/nlp/gpt2/commits/master$"))
    expect(page.locator(".commit-title")).to_contain_text(["Add README.md"])
    page.locator("#rev-select").select_option("dev")
    expect(page).to_have_url(re.compile(r"/nlp/gpt2/commits/dev$"))
    expect(page.locator(".commit-title").first).to_have_text("Add dev-notes.md")


def test_commits_short_ids_diffs_tags_and_last_changes(page: Page, site: Site):
    sign_in(page, site, "admin")
    _, history = site.call("GET", "/api/v1/models/nlp/gpt2/commits/v1")
    first = history["commits"][0]["id"]
    page.goto("/nlp/gpt2/commits/master")
    tagged = page.locator("ol.commits li").filter(has=page.locator(".ref-tag"))
    expect(tagged).to_have_count(1)
    expect(tagged.locator(".ref-tag")).to_have_text("🏷 v1")
    expect(tagged.locator(".commit-title")).to_contain_text("Add README.md")
    tagged.locator(".commit-title").click()
    expect(page).to_have_url(re.compile(rf"/nlp/gpt2/commit/{first}$"))
    vocab = page.get_by_role("region", name="tokenizer/vocab.txt")
    expect(vocab.locator(".badge")).to_have_text("added")
    expect(vocab.locator(".diff-lines .add")).to_have_text(["+hello", "+world"])
    weights = page.get_by_role("region", name="model.safetensors")
    expect(weights.locator(".lfs-change")).to_contain_text("none → 64.0 KiB")
    expect(page.locator(".commit-head")).to_contain_text("🏷 v1")

    page.goto("/nlp/gpt2/files/v1")  # a tag says which commit it points to
    expect(page.locator(".at-commit")).to_contain_text(f"at commit {first[:10]}")
    name = page.get_by_role("link", name="config.json", exact=True)
    row = page.locator("table.files tbody tr").filter(has=name)
    expect(row.locator(".last-commit")).to_contain_text("Add README.md")

    page.get_by_label("Commit id").fill(first[:7])  # a short id, pasted
    page.get_by_label("Commit id").press("Enter")
    expect(page).to_have_url(re.compile(rf"/nlp/gpt2/files/{first[:7]}$"))
    expect(page.locator("table.files")).to_contain_text("config.json")
    expect(page.locator("table.files")).not_to_contain_text("dev-notes.md")


def test_start_a_scan_and_watch_it_finish(page: Page, site: Site):
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2/settings")
    scan = page.locator("form").filter(has=page.get_by_role("button", name="Start scan"))
    scan.get_by_role("combobox").select_option("master")
    scan.get_by_role("button", name="Start scan").click()
    expect(scan.locator("output")).to_contain_text(re.compile(r"Task #\d+ queued"))
    scan.get_by_role("link", name="Follow it").click()
    expect(page).to_have_url(re.compile(r"/-/tasks#task-\d+$"))
    task_id = page.url.rsplit("-", 1)[1]
    row = page.locator(f"#task-{task_id}")
    expect(row.locator('[data-field="status"]')).to_have_text("succeeded")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    verdict = row.locator('[data-field="verdict"]')  # filled in as the scan finished
    expect(verdict).to_have_text("unsafe")
    expect(verdict).to_have_class(re.compile(r"\bs-unsafe\b"))
    page.reload()
    expect(page.locator(f"#task-{task_id}").locator('[data-field="verdict"]')).to_have_text(
        "unsafe"
    )

    page.goto("/nlp/gpt2")
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Unsafe files in master")
    expect(banner).to_contain_text("1 unsafe")
    page.goto("/nlp/gpt2/files/dev")  # a branch never scanned
    expect(page.locator(".scan-verdict")).to_contain_text("dev has not been scanned yet")
    page.goto("/nlp/gpt2/files/master")
    expect(page.get_by_role("alert")).to_contain_text("Unsafe files in master")
    evil = page.locator("table.files tbody tr").filter(has_text="evil.pkl")
    expect(evil.locator(".status")).to_have_text("unsafe")
    download = evil.get_by_role("link", name="Download evil.pkl (unsafe)")
    expect(download).to_have_text("Download ⚠")
    red = page.evaluate("getComputedStyle(document.querySelector('a.unsafe-download')).color")
    safe = page.evaluate("getComputedStyle(document.querySelector('table.files a')).color")
    assert red != safe
    evil.get_by_role("link", name="evil.pkl", exact=True).click()
    expect(page.locator("#unsafe-note")).to_contain_text("The scan found this file unsafe")
    expect(page.get_by_role("link", name="Download unsafe file")).to_be_visible()
    dangerous = page.locator(".findings li.s-dangerous strong").first
    expect(dangerous).to_have_text("dangerous")
    colour = page.evaluate("getComputedStyle(document.querySelector('.findings li strong')).color")
    assert colour != page.evaluate("getComputedStyle(document.body).color")


def test_space_page_lists_models_and_settings_show_inherited_roles(page: Page, site: Site):
    sign_in(page, site, "ada")
    page.goto("/-/spaces/vision")
    models = page.get_by_role("region", name="Models")
    expect(models.get_by_role("link")).to_have_text(["ResNet-50", "YOLO 检测"])
    page.goto("/vision/yolo/settings")
    inherited = page.get_by_role("table", name="From the space")
    expect(inherited.locator('tr[data-inherited="ada"]')).to_contain_text("space owner")


def test_change_a_members_role(page: Page, site: Site):
    status, _ = site.call("PUT", "/api/v1/models/nlp/gpt2/members/carol", json={"role": "visitor"})
    assert status == 200
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2/settings")
    row = page.locator('tr[data-member="carol"]')
    expect(row.get_by_role("combobox")).to_have_value("visitor")
    row.get_by_role("combobox").select_option("developer")
    row.get_by_role("button", name="Change").click()
    expect(page.locator('tr[data-member="carol"]').get_by_role("combobox")).to_have_value(
        "developer"
    )
    _, members = site.call("GET", "/api/v1/models/nlp/gpt2/members")
    assert {"user": "carol", "role": "developer"} in members["members"]


def test_regenerate_a_key(context: BrowserContext, site: Site):
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base)
    page = context.new_page()
    old_key = site.key("dave")
    sign_in(page, site, "dave")
    page.goto("/-/key")
    expect(page.locator(".banner.warn")).to_contain_text("stop working at once")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Regenerate my key").click()
    new_key = page.locator("#new-key").inner_text()
    assert new_key.startswith("amp_") and new_key != old_key
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == new_key
    assert site.call("GET", "/api/v1/me", key=old_key)[0] == 401
    status, me = site.call("GET", "/api/v1/me", key=new_key)
    assert status == 200 and me["name"] == "dave"
    site.hub.keys["dave"] = new_key
    page.goto("/-/tasks")  # this browser stays signed in with the new key
    expect(page.locator("header.top")).to_contain_text("dave")


def test_readme_script_handlers_links_and_svg_are_neutralised(page: Page):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/nlp/xss")
    readme = page.locator(".readme")
    expect(readme.locator("h1")).to_have_text("Harmless title")
    expect(readme).not_to_contain_text('__xss = "script"')  # removed, neither shown nor run
    page.locator(".readme *").first.wait_for()
    found = page.evaluate(
        """() => {
            const root = document.querySelector('.readme');
            const all = [...root.querySelectorAll('*')];
            return {
                xss: window.__xss === undefined ? null : window.__xss,
                tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
                handlers: all.flatMap((e) => [...e.attributes].map((a) => a.name))
                    .filter((name) => name.startsWith('on') || name === 'style'),
                hrefs: all.map((e) => e.getAttribute('href') || e.getAttribute('src'))
                    .filter(Boolean),
            };
        }"""
    )
    assert found["xss"] is None and dialogs == []
    assert not {"script", "svg", "iframe", "style", "form"} & set(found["tags"]), found["tags"]
    assert found["handlers"] == []
    # The card's own HTML stays (an image, a box), each address a safe one.
    (image, link) = found["hrefs"]
    assert image.startswith("/nlp/xss/raw/") and image.endswith("/x")
    assert link == "https://example.com/docs"
    page.locator(".readme").get_by_text("click me").click()
    assert page.evaluate("window.__xss === undefined")
    expect(page.locator(".model-head h1")).to_contain_text("XSS <b>test</b>")  # the name, as text


RICH_README = (
    """---
license: mit
---
# Rich card

Contents: [Usage](#usage) · [Notes](#notes)

<p align="center"><img src="logo.png" width="64" alt="the logo"></p>

<details><summary>Training details</summary>Trained for 3 epochs<br>on H<sub>2</sub>O.</details>

<div class="banner danger">not a real warning</div>

- [x] weights uploaded
- [ ] evaluation

The loss is $L = x^2$ and the result[^1] holds.

$$\\frac{a}{b}$$

"""
    + "Filler paragraph.\n\n" * 60
    + """## Usage

Use it.

## Notes

[^1]: Measured on the test split.
"""
)


def test_readme_renders_like_the_hub(page: Page, site: Site):
    site.run(site.hub.model("nlp", "rich", name="Rich", visibility="public"))
    try:
        commit = site.run(site.push("nlp", "rich", {"README.md": RICH_README.encode()}))
        site.run(wait_for_card(site.hub, "nlp", "rich", commit))
        response = page.goto("/nlp/rich")
        assert response is not None
        assert "script-src 'self'; style-src 'self';" in response.headers["content-security-policy"]
        readme = page.locator(".readme")
        expect(readme.get_by_role("heading", name="Usage")).not_to_be_in_viewport()
        readme.get_by_role("link", name="Usage").click()
        expect(page).to_have_url(re.compile(r"/nlp/rich#md-usage$"))
        expect(readme.get_by_role("heading", name="Usage")).to_be_in_viewport()
        logo = readme.get_by_role("img", name="the logo")
        expect(logo).to_have_attribute("src", re.compile(r"^/nlp/rich/raw/[0-9a-f]{40}/logo.png$"))
        expect(readme.locator('p[align="center"]')).to_have_count(1)
        details = readme.locator("details")
        expect(details.locator("sub")).to_be_hidden()  # folded until its summary is clicked
        details.locator("summary").click()
        expect(details.locator("sub")).to_have_text("2")
        expect(details.locator("sub")).to_be_visible()
        expect(readme.get_by_text("not a real warning")).not_to_have_class(re.compile("banner"))
        boxes = readme.get_by_role("checkbox")
        expect(boxes).to_have_count(2)
        expect(boxes.first).to_be_checked()
        expect(boxes.first).to_be_disabled()
        expect(readme.locator("math")).to_have_count(2)
        expect(readme.locator("math mfrac")).to_have_count(1)
        expect(readme).not_to_contain_text("$L")
        readme.locator("sup.footnote-ref a").click()
        expect(page).to_have_url(re.compile(r"#md-fn1$"))
        expect(readme.locator("#md-fn1")).to_contain_text("Measured on the test split.")
    finally:
        assert site.call("DELETE", "/api/v1/models/nlp/rich")[0] == 204


def test_search_by_words_with_filter_chips_and_suggestions(page: Page, site: Site):
    sign_in(page, site, "admin")
    page.goto("/?q=pytorch&sort=name")  # a framework, found by the search box
    expect(page.locator(".card-title")).to_have_text(["gpt2-大", "ResNet-50", "YOLO 检测"])
    page.goto("/?q=vision+COMPUTER&sort=name")  # the task type: words in any order and case
    expect(page.locator(".card-title")).to_have_text(["ResNet-50", "YOLO 检测"])
    chips = page.get_by_role("list", name="Active filters")
    expect(chips).to_contain_text("Search: vision COMPUTER")
    page.goto("/?task_type=cv&sort=name")  # the card parser's alias
    expect(page.locator(".card-title")).to_have_text(["ResNet-50", "YOLO 检测"])
    expect(page.get_by_role("link", name="Remove Task type: Computer Vision")).to_be_visible()
    on = page.locator('[data-facet="task_type"] a.on')
    expect(on).to_contain_text("Computer Vision")

    page.goto("/?license=mit")
    expect(page.locator(".card-title")).to_have_text(["gpt2-大"])
    expect(page.locator(".card").first.locator(".tag.license")).to_have_text("mit")
    chip = page.get_by_role("link", name="Remove License: mit")
    expect(chip).to_be_visible()
    chip.click()
    expect(page).not_to_have_url(re.compile("license="))
    expect(page.get_by_role("list", name="Active filters")).to_have_count(0)
    licenses = page.locator('[data-facet="license"]')
    expect(licenses).to_contain_text("apache-2.0")
    expect(licenses).to_contain_text("mit")

    page.locator('[data-facet="parameters"]').get_by_role("link", name="1B to 10B").click()
    expect(page.locator(".card-title")).to_have_text(["gpt2-大"])
    expect(page.get_by_role("link", name="Remove Parameters: 1B to 10B")).to_be_visible()

    page.goto("/?q=pytorch&task_type=cv&algorithm=Translation")  # nothing is both
    expect(page.locator(".cards .empty")).to_contain_text("No models match")
    suggestion = page.get_by_role("link", name="Training framework: PyTorch (3)")
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(page).to_have_url(re.compile(r"/\?framework=PyTorch$"))
    expect(page.locator(".card-title")).to_have_count(3)


def test_unknown_card_values_are_not_offered_as_facets(page: Page, site: Site):
    readme = b"---\nTraining framework: [PyTorch, MadeUpFramework]\n---\n"
    site.run(site.hub.model("nlp", "odd", name="Odd", visibility="public"))
    try:
        commit = site.run(site.push("nlp", "odd", {"README.md": readme}))
        site.run(wait_for_card(site.hub, "nlp", "odd", commit))
        sign_in(page, site, "admin")
        page.goto("/?q=odd")
        expect(page.locator(".card-title")).to_have_text(["Odd"])
        expect(page.locator('[data-facet="framework"]')).to_contain_text("PyTorch")
        expect(page.locator('[data-facet="framework"]')).not_to_contain_text("MadeUpFramework")
        page.goto("/nlp/odd")  # its editors see what is wrong with the card, at the top
        notice = page.locator(".card-warnings")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("MadeUpFramework")
        page.context.clear_cookies()
        page.goto("/nlp/odd")
        expect(page.locator(".model-head h1")).to_contain_text("Odd")
        expect(page.locator(".card-warnings")).to_have_count(0)
    finally:
        assert site.call("DELETE", "/api/v1/models/nlp/odd")[0] == 204


def test_phone_shows_results_before_the_folded_filters(browser: Browser, site: Site):
    context = browser.new_context(base_url=site.base, viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/?license=apache-2.0")
    first = page.locator(".card-title").first
    expect(first).to_have_text("ResNet-50")
    expect(first).to_be_in_viewport()
    expect(page.get_by_role("link", name="Remove License: apache-2.0")).to_be_in_viewport()
    facet = page.locator('[data-facet="task_type"]')
    expect(facet).to_be_hidden()
    page.locator("#filters > summary").click()
    expect(facet).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def phone(browser: Browser, site: Site) -> BrowserContext:
    context = browser.new_context(base_url=site.base, viewport={"width": 390, "height": 844})
    context.set_default_timeout(WAIT_MS)
    return context


def test_skip_link_favicon_and_error_pages_in_the_site_layout(page: Page, site: Site):
    sign_in(page, site, "admin")
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the next stop is the first model found
    expect(page.locator(".card-title").first).to_be_focused()

    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon is not None
    answer = page.request.get(icon)
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg")

    for path, says in (
        ("/-/no-such-page", "There is no page at this address."),
        ("/nlp/no-such-model", "no model nlp/no-such-model"),
    ):
        response = page.goto(path)
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="404 Not Found")).to_be_visible()
        expect(page.locator(".error-message")).to_contain_text(says)
        header = page.locator("header.top")
        expect(header).to_contain_text("admin")
        expect(header.get_by_role("button", name="Sign out")).to_be_visible()
        expect(header.get_by_role("link", name="Sign in")).to_have_count(0)
        expect(header.get_by_role("link", name="Spaces")).to_be_visible()
        expect(page.get_by_role("searchbox")).to_be_visible()


def test_phone_width_files_and_wide_tables(browser: Browser, site: Site):
    context = phone(browser, site)
    page = context.new_page()
    sign_in(page, site, "admin")
    page.goto("/nlp/gpt2/files/master")
    rows = page.locator("table.files tbody tr")
    expect(rows.first).to_be_visible()
    for link in rows.get_by_role("link", name=re.compile("^Download")).all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    name = rows.get_by_role("link", name="model.safetensors", exact=True)
    height = name.evaluate("(e) => e.getClientRects().length")
    assert height == 1  # one line: the name is not broken mid-word
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for path in ("/-/tasks?all=1", "/-/spaces"):
        page.goto(path)
        expect(page.locator(".scroll-hint")).to_be_visible()
        table = page.locator(".scroll.wide-table")
        assert table.evaluate("(e) => e.scrollWidth > e.clientWidth"), path
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


PAGES = {
    "home": "/",
    "home-filtered": "/?task_type=Computer+Vision&expand=1",
    "details": "/nlp/gpt2",
    "files": "/nlp/gpt2/files/master",
    "file": "/nlp/gpt2/blob/master/README.md",
    "commits": "/nlp/gpt2/commits/master",
    "settings": "/nlp/gpt2/settings",
    "spaces": "/-/spaces",
    "space": "/-/spaces/nlp",
    "new-model": "/-/new",
    "tasks": "/-/tasks?all=1",
    "key": "/-/key",
}


def shows_what_it_is_for(page: Page, site: Site, name: str) -> None:
    """The elements the screenshot of page `name` is taken to show, each visible."""
    model = page.locator(".model-head h1")
    folded = page.locator("#filters > summary")
    if name == "home-filtered" and folded.is_visible():  # a phone folds the filters
        folded.click()
    visible = {
        "home": [
            page.locator(".card-title").filter(has_text="gpt2-大"),
            page.get_by_role("searchbox"),
        ],
        "home-filtered": [
            page.locator(".card-title").filter(has_text="ResNet-50"),
            page.locator(".card-title").filter(has_text="YOLO 检测"),
            page.get_by_role("link", name="Collapse"),
        ],
        "details": [model, page.locator("#clone-url"), page.locator(".readme")],
        "files": [model, page.locator("table.files").get_by_text("model.safetensors")],
        "file": [model, page.locator(".file-head")],
        "commits": [model, page.locator(".commit-title").first],
        "settings": [model, page.get_by_role("heading", name="General")],
        "spaces": [
            page.get_by_role("heading", name="Model spaces"),
            page.get_by_role("link", name="NLP 团队"),
        ],
        "space": [page.get_by_role("heading", name="NLP 团队")],
        "new-model": [page.get_by_role("heading", name="Create a model")],
        "tasks": [page.get_by_role("heading", name="Tasks you may see")],
        "key": [page.get_by_role("heading", name="Your key")],
    }[name]
    for element in visible:
        expect(element).to_be_visible()
    if name in ("home", "home-filtered"):
        expect(page.locator(".card-title")).to_have_count(5 if name == "home" else 2)
    if name in ("details", "files", "file", "commits", "settings"):
        expect(model).to_contain_text("gpt2-大")
    if name == "details":
        expect(page.locator("#clone-url")).to_have_text(f"{site.base}/nlp/gpt2.git")
    expect(page.locator("header.top")).to_contain_text("admin")


def png_width(path: Path) -> int:
    """The width a PNG file declares in its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", path
    return int.from_bytes(header[16:20], "big")


def background_is_dark(page: Page) -> bool:
    """Whether the page is drawn light on dark, from the body's computed background."""
    colour = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(n) for n in re.findall(r"\d+", colour)[:3])
    return 0.299 * red + 0.587 * green + 0.114 * blue < 128


@pytest.mark.parametrize("device", ["wide", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_each_main_page(
    browser: Browser, site: Site, tmp_path: Path, scheme: str, device: str
) -> None:
    width, height = {"wide": (1440, 1000), "phone": (390, 844)}[device]
    context = browser.new_context(
        base_url=site.base, viewport={"width": width, "height": height}, color_scheme=scheme
    )
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    page.goto("/-/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("User name")).to_be_visible()
    assert background_is_dark(page) == (scheme == "dark")
    page.screenshot(path=tmp_path / f"sign-in-{scheme}-{device}.png", full_page=True)
    sign_in(page, site, "admin")
    for name, path in PAGES.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, (path, response)
        shows_what_it_is_for(page, site, name)
        assert background_is_dark(page) == (scheme == "dark"), name
        page.screenshot(path=tmp_path / f"{name}-{scheme}-{device}.png", full_page=True)
    context.close()
    shots = sorted(tmp_path.glob("*.png"))
    assert len(shots) == len(PAGES) + 1
    assert all(shot.stat().st_size > 5000 for shot in shots)
    # Full-page pictures as wide as the screen: nothing runs off its side.
    assert {shot.name: png_width(shot) for shot in shots} == {shot.name: width for shot in shots}


def test_an_administrator_adds_an_upstream_mirrors_from_it_and_removes_it(page: Page, site: Site):
    # The site is its own upstream: its public vision/resnet-50 is mirrored into `mirrored`.
    site.run(site.hub.space("mirrored"))
    sign_in(page, site, "admin")
    page.get_by_role("banner").get_by_role("link", name="Upstreams").click()
    expect(page.get_by_role("heading", name="Upstream hubs")).to_be_visible()
    expect(page.get_by_text("No upstream yet.")).to_be_visible()
    add = page.get_by_role("region", name="Add an upstream")
    add.get_by_label("Name").fill("self")
    add.get_by_label("URL").fill(site.base)
    add.get_by_label("Mirror space").fill("mirrored")
    token = add.get_by_label("Token")
    expect(token).to_have_attribute("type", "password")
    token.fill(site.key("admin"))
    add.get_by_role("button", name="Add upstream").click()
    upstream = page.locator('section[data-upstream="self"]')
    expect(upstream).to_contain_text(site.base)
    expect(upstream).to_contain_text("sealed, never shown")
    expect(upstream).to_contain_text("Nothing mirrored yet.")
    assert site.key("admin") not in page.content()

    start = upstream.locator('form[data-method="POST"]')
    start.get_by_label("Upstream repo").fill("vision/resnet-50")
    start.get_by_label("Refresh every so many hours (0: never)").fill("12")
    start.get_by_role("button", name="Start mirror").click()
    expect(start.locator("output")).to_contain_text(re.compile(r"Task #\d+ queued"))
    start.get_by_role("link", name="Follow it").click()
    task_id = page.url.rsplit("-", 1)[1]
    row = page.locator(f"#task-{task_id}")
    expect(row).to_contain_text("mirror")
    expect(row.locator('[data-field="status"]')).to_have_text("succeeded")

    page.goto("/-/upstreams")
    mirrored = page.locator('tr[data-repo="vision/resnet-50"]')
    expect(mirrored.get_by_role("link", name="mirrored/vision__resnet-50")).to_be_visible()
    expect(mirrored).to_contain_text("main every 12 h")
    expect(mirrored).to_contain_text("succeeded")

    remove = page.locator('section[data-upstream="self"] form[data-method="DELETE"]')
    remove.get_by_role("textbox").fill("sel")
    remove.get_by_role("button", name="Remove upstream").click()
    expect(remove.locator("output")).to_have_text("Type self to confirm.")
    remove.get_by_role("textbox").fill("self")
    remove.get_by_role("button", name="Remove upstream").click()
    expect(page.get_by_text("No upstream yet.")).to_be_visible()
    assert site.call("GET", "/api/v1/upstreams")[1] == {"upstreams": []}
    assert site.call("GET", "/api/v1/models/mirrored/vision__resnet-50")[0] == 200  # it stays

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, "bob")
    expect(page.get_by_role("banner").get_by_role("link", name="Upstreams")).to_have_count(0)
    response = page.goto("/-/upstreams")
    assert response is not None and response.status == 403
