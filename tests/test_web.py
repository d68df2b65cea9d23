"""The pages over plain HTTP against a real hub: sessions, CSRF, headers, who sees what."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from yarl import URL

from amphub import db
from amphub.http import keys
from tests.conftest import GIB, Hub, git
from tests.samples import SEED

CSRF_REFUSED = "this form is out of date or came from another site; reload the page and try again"


class Browser:
    """An HTTP client that keeps cookies like a browser does, also for 127.0.0.1."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, str, CIMultiDictProxy[str]]:
        kwargs.setdefault("allow_redirects", False)
        async with self.session.request(method, self.hub.base + path, **kwargs) as resp:
            return resp.status, await resp.text(errors="replace"), resp.headers

    async def get(self, path: str) -> tuple[int, str, CIMultiDictProxy[str]]:
        return await self.request("GET", path)

    async def csrf(self, path: str = "/-/sign-in") -> str:
        status, page, _ = await self.get(path)
        assert status == 200, page
        return re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)

    async def sign_in(self, user: str, key: str) -> CIMultiDictProxy[str]:
        form = {"csrf": await self.csrf(), "name": user, "key": key, "next": "/"}
        status, page, headers = await self.request("POST", "/-/sign-in", data=form)
        assert status == 303, page
        return headers

    def cookie(self) -> str | None:
        found = [c.value for c in self.session.cookie_jar if c.key == "amphub_session"]
        return found[0] if found else None


@pytest.fixture
async def browser(hub: Hub):
    client = Browser(hub)
    yield client
    await client.close()


@pytest.fixture
async def models(hub: Hub) -> Hub:
    """A public, an internal and a private model, and a user who is no member of any."""
    await hub.user("bob")
    await hub.space("team")
    for model_id, visibility in (("open", "public"), ("inside", "internal"), ("secret", "private")):
        await hub.model("team", model_id, name=f"{model_id} 模型", visibility=visibility)
    return hub


def card_links(page: str) -> list[str]:
    return re.findall(r'<a class="card-title" href="/([^"]+)">', page)


async def test_anonymous_sees_public_models_only(models: Hub, browser: Browser):
    status, page, _ = await browser.get("/?sort=name")
    assert status == 200 and card_links(page) == ["team/open"]
    assert "open 模型" in page
    await browser.sign_in("bob", models.keys["bob"])
    assert card_links((await browser.get("/?sort=name"))[1]) == ["team/inside", "team/open"]
    admin = Browser(models)
    await admin.sign_in("admin", models.admin_key)
    assert card_links((await admin.get("/?sort=name"))[1]) == [
        "team/inside",
        "team/open",
        "team/secret",
    ]
    await admin.close()


@pytest.mark.parametrize(
    "path",
    [
        "/team/secret",
        "/team/secret/settings",
        "/team/secret/files/master",
        "/team/secret/blob/master/README.md",
        "/team/secret/raw/master/README.md",
        "/team/secret/commits/master",
        "/team/nothing",
        "/nowhere/secret",
    ],
)
async def test_a_model_one_may_not_view_is_not_found(models: Hub, browser: Browser, path: str):
    anonymous = await browser.get(path)
    await browser.sign_in("bob", models.keys["bob"])
    stranger = await browser.get(path)
    space, model = path.split("/")[1:3]
    for status, page, headers in (anonymous, stranger):
        assert status == 404, page
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert f"no model {space}/{model}" in page
        assert "secret 模型" not in page


async def test_pages_that_need_a_session_send_to_sign_in_and_back(models: Hub, browser: Browser):
    status, _, headers = await browser.get("/-/tasks?all=1")
    assert status == 303 and headers["Location"] == "/-/sign-in?next=%2F-%2Ftasks%3Fall%3D1"
    form = {"name": "bob", "key": models.keys["bob"]}
    for target, lands in (
        ("/-/tasks?all=1", "/-/tasks?all=1"),
        ("//evil.example/x", "/"),
        ("/\t/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\n/evil.example", "/"),
    ):
        # Signing in starts a new session, so every sign-in needs a fresh token.
        form["csrf"] = await browser.csrf("/")
        status, _, headers = await browser.request(
            "POST", "/-/sign-in", data={**form, "next": target}
        )
        assert status == 303 and headers["Location"] == lands
    status, page, _ = await browser.get("/team/open/settings")
    assert status == 403 and "you may not change the settings of model team/open" in page


async def test_wrong_key_is_shown_on_the_form_without_a_session(models: Hub, browser: Browser):
    form = {"csrf": await browser.csrf(), "name": "bob", "key": "amp_wrong", "next": "/"}
    status, page, headers = await browser.request("POST", "/-/sign-in", data=form)
    assert status == 200 and "authentication failed: wrong user name or key" in page
    assert "WWW-Authenticate" not in headers
    assert (await browser.get("/-/key"))[0] == 303


async def test_a_transfer_token_cannot_sign_in(models: Hub, browser: Browser):
    oid = "ab" * 32
    status, answer = await models.call(
        "POST",
        "/team/open.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": oid, "size": 3}]},
        headers={"Accept": "application/vnd.git-lfs+json"},
    )
    assert status == 200, answer
    token = json.loads(answer)["objects"][0]["actions"]["upload"]["header"]["Authorization"]
    token = token.removeprefix("Bearer ")
    form = {"csrf": await browser.csrf(), "name": "admin", "key": token, "next": "/"}
    status, page, _ = await browser.request("POST", "/-/sign-in", data=form)
    assert status == 200 and "authentication failed: wrong user name or key" in page
    assert (await browser.get("/-/key"))[0] == 303  # no session was opened


async def test_no_new_space_is_called_api_and_cookies_never_open_git_or_lfs(
    hub: Hub, browser: Browser
):
    space = {"name": "Api", "quota": 10 * GIB, "billing_mode": "monthly"}
    status, answer = await hub.call("POST", "/api/v1/spaces", json={**space, "id": "api"})
    assert status == 400 and "reserved" in answer["error"]["message"]
    status, answer = await hub.call("POST", "/api/v1/spaces", json=space)
    assert status == 201 and answer["id"] != "api"
    # A hub from before the rule may have one: a cookie still opens no git or LFS route in it.
    await db.insert_space(
        hub.server.app[keys.HUB].db, "api", "Api", 10 * GIB, "monthly", None, "admin"
    )
    await hub.model("api", "m")
    await browser.sign_in("admin", hub.admin_key)
    for path in ("/api/m.git/info/refs?service=git-upload-pack", "/api/m.git/info/lfs/locks"):
        status, _, headers = await browser.get(path)
        assert status == 401 and "Authenticate" in str(headers)
    assert (await browser.get("/api/v1/me"))[0] == 200  # the JSON API takes the cookie


async def test_session_cookie_is_httponly_samesite_and_signed(models: Hub, browser: Browser):
    headers = await browser.sign_in("bob", models.keys["bob"])
    cookie = next(c for c in headers.getall("Set-Cookie") if c.startswith("amphub_session="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    status, page, _ = await browser.get("/-/key")
    assert status == 200 and "Signed in as <strong>bob</strong>" in page

    payload, signature = browser.cookie().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    browser.session.cookie_jar.clear()
    browser.session.cookie_jar.update_cookies(
        {"amphub_session": f"{forged}.{signature}"}, response_url=URL(models.base)
    )
    assert (await browser.get("/-/key"))[0] == 303


async def test_a_new_key_ends_the_sessions_of_the_old_one(models: Hub, browser: Browser):
    await browser.sign_in("bob", models.keys["bob"])
    assert (await browser.get("/-/key"))[0] == 200
    status, answer = await models.call("POST", "/api/v1/me/key", user="bob")
    assert status == 200
    assert (await browser.get("/-/key"))[0] == 303
    await browser.sign_in("bob", answer["key"])
    assert (await browser.get("/-/key"))[0] == 200


async def test_every_post_needs_the_csrf_token(models: Hub, browser: Browser):
    cases = [
        ("/-/sign-in", {"name": "bob", "key": models.keys["bob"]}),
        ("/-/sign-out", {}),
        ("/-/key", {"understood": "on"}),
    ]
    for path, form in cases:  # no session cookie at all
        status, page, _ = await browser.request("POST", path, data=form)
        assert status == 403 and CSRF_REFUSED in page, (path, page)
    await browser.sign_in("bob", models.keys["bob"])
    token = await browser.csrf("/")
    for path, form in cases:
        for sent in ({}, {"csrf": "wrong"}, {"csrf": token + "x"}):
            status, page, _ = await browser.request("POST", path, data={**form, **sent})
            assert status == 403 and CSRF_REFUSED in page, (path, sent)
    assert (await models.call("GET", "/api/v1/me", user="bob"))[0] == 200  # key unchanged
    status, page, _ = await browser.request("POST", "/-/key", data={"csrf": token})
    assert status == 200 and 'id="new-key"' in page


async def test_api_calls_with_the_session_cookie(models: Hub, browser: Browser):
    await browser.sign_in("admin", models.admin_key)
    status, body, _ = await browser.get("/api/v1/me")
    assert status == 200 and '"name": "admin"' in body
    scans = "/api/v1/models/team/open/scans"
    status, body, _ = await browser.request("POST", scans, json={"ref": "master"})
    assert status == 403 and '"code": "csrf_refused"' in body
    token = await browser.csrf("/")
    headers = {"X-CSRF-Token": token}
    status, body, _ = await browser.request("POST", scans, json={"ref": "master"}, headers=headers)
    assert status == 201 and '"kind": "scan"' in body
    # A key in the Authorization header needs no token: scripts are not browsers.
    assert (await models.call("POST", scans, json={"ref": "master"}))[0] == 201


async def test_pages_send_a_strict_content_security_policy(models: Hub, browser: Browser):
    await browser.sign_in("admin", models.admin_key)
    for path in ("/", "/-/sign-in", "/team/open", "/team/open/settings", "/-/spaces", "/nope/x"):
        status, page, headers = await browser.get(path)
        assert status in (200, 303, 404), path
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == [], path  # no inline script
        assert " style=" not in page and " onclick=" not in page, path


async def test_downloads_are_attachments_in_a_sandbox(hub: Hub, tmp_path: Path, browser: Browser):
    await git("lfs", "install", "--skip-repo")
    await hub.space_and_model("team", "m1", visibility="public")
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1"), str(work))
    (work / "页面.html").write_text("<script>alert(1)</script>")
    (work / "weights.bin").write_bytes(b"\0\1" * 1000)
    await git("add", ".", cwd=work)
    await git("commit", "-q", "-m", "files", cwd=work)
    await git("push", "-q", cwd=work)
    async with browser.session.get(hub.base + "/team/m1/raw/master/weights.bin") as resp:
        assert resp.status == 200 and await resp.read() == b"\0\1" * 1000  # the LFS content
        assert resp.headers["Content-Disposition"].startswith("attachment;")
    status, body, headers = await browser.get("/team/m1/raw/master/%E9%A1%B5%E9%9D%A2.html")
    assert status == 200 and body == "<script>alert(1)</script>"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"__.html\"; filename*=UTF-8''%E9%A1%B5%E9%9D%A2.html"
    )
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, page, _ = await browser.get("/team/m1/blob/master/%E9%A1%B5%E9%9D%A2.html")
    assert status == 200 and "alert" in page and "<script>alert" not in page


async def test_commits_api_and_page(hub: Hub, tmp_path: Path, browser: Browser):
    await hub.space_and_model("team", "m1", visibility="public")
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1"), str(work))
    (work / "README.md").write_text(SEED)
    await git("commit", "-q", "-am", "Card\n\nWith a body.", cwd=work)
    await git("push", "-q", cwd=work)
    status, first = await hub.call("GET", "/api/v1/models/team/m1/commits/master?per_page=1")
    assert status == 200 and first["next_page"] == 2
    (commit,) = first["commits"]
    assert commit["message"] == "Card\n\nWith a body.\n"
    assert commit["author"] == "Tester <tester@example.com>" and len(commit["parents"]) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", commit["committed_at"])
    status, second = await hub.call(
        "GET", "/api/v1/models/team/m1/commits/master?page=2&per_page=1"
    )
    assert status == 200 and second["next_page"] is None
    assert [c["parents"] for c in second["commits"]] == [[]]  # the model's first commit
    assert second["commits"][0]["id"] == commit["parents"][0]
    status, body = await hub.call("GET", "/api/v1/models/team/m1/commits/nope")
    assert status == 404 and body["error"]["message"] == "no branch, tag or commit nope"
    status, body = await hub.call("GET", "/api/v1/models/team/m1/commits/master?per_page=0")
    assert status == 400
    status, page, _ = await browser.get("/team/m1/commits/master")
    assert status == 200 and page.count('class="commit-title"') == 2 and "With a body." in page
    text = "".join(f"line {i}\n" for i in range(10))
    (work / "notes.txt").write_text(text)
    await git("add", "notes.txt", cwd=work)
    await git("commit", "-q", "-m", "Notes", cwd=work)
    await git("mv", "notes.txt", "docs.txt", cwd=work)
    (work / "docs.txt").write_text(text + "more\n")
    await git("commit", "-q", "-am", "Rename the notes", cwd=work)
    await git("push", "-q", cwd=work)
    status, found = await hub.call("GET", "/api/v1/models/team/m1/commit/master")
    assert status == 200 and found["files"] == [
        {
            "path": "docs.txt",
            "kind": "renamed",
            "binary": False,
            "old_path": "notes.txt",
            "diff": ["@@ -8,3 +8,4 @@", " line 7", " line 8", " line 9", "+more"],
        }
    ]
    status, page, _ = await browser.get("/team/m1/commit/master")
    assert status == 200 and 'renamed from <span class="mono">notes.txt</span> →' in page
    status, history = await hub.call("GET", "/api/v1/models/team/m1/commits/master?path=docs.txt")
    assert [c["message"] for c in history["commits"]] == ["Rename the notes\n", "Notes\n"]
    status, page, _ = await browser.get("/team/m1/blob/master/docs.txt")
    assert status == 200 and 'href="/team/m1/commits/master?path=docs.txt">History</a>' in page
    status, page, _ = await browser.get("/team/m1/commits/master?path=docs.txt")
    assert status == 200 and page.count('class="commit-title"') == 2


async def test_git_and_api_errors_keep_their_shapes(hub: Hub, browser: Browser):
    status, body, headers = await browser.get("/team/m1.git/info/refs?service=git-upload-pack")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert headers["Content-Type"].startswith("text/plain")
    status, body, headers = await browser.get("/api/v1/spaces")
    assert status == 401 and '"code": "unauthorized"' in body
    status, body, headers = await browser.get("/-/no-such-page")
    assert status == 404 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>404 Not Found</h1>" in body


async def test_clone_url_in_a_browser_goes_to_the_model_page(models: Hub, browser: Browser):
    status, _, headers = await browser.get("/team/open.git")
    assert status == 303 and headers["Location"] == "/team/open"
    status, page, _ = await browser.get("/team/open")
    assert status == 200 and f"git clone {models.base}/team/open.git" in page


async def test_a_big_folder_is_listed_a_page_at_a_time(hub: Hub, tmp_path: Path, browser: Browser):
    await hub.space_and_model("team", "m1", visibility="public")
    work = tmp_path / "w"
    await git("clone", "-q", hub.remote("team", "m1"), str(work))
    (work / "data").mkdir()
    for i in range(501):
        (work / "data" / f"part-{i:03d}.txt").write_text(f"{i}\n")
    (work / "data" / "sub").mkdir()
    (work / "data" / "sub" / "x.txt").write_text("x\n")
    await git("add", ".", cwd=work)
    await git("commit", "-q", "-m", "many", cwd=work)
    await git("push", "-q", cwd=work)
    status, first, _ = await browser.get("/team/m1/files/master/data")
    assert status == 200 and first.count('<td class="name">') == 500
    assert "502 entries" in first and "1 / 2" in first
    assert first.index("sub/</a>") < first.index("part-000.txt")  # folders first
    status, second, _ = await browser.get("/team/m1/files/master/data?page=2")
    assert status == 200 and second.count('<td class="name">') == 2
    assert "part-499.txt" in second and "part-500.txt" in second
    status, page, _ = await browser.get("/team/m1/blob/master/data/part-500.txt")
    assert status == 200 and "500" in page
    status, tree = await hub.call("GET", "/api/v1/models/team/m1/tree/master/data")
    assert status == 200 and len(tree["entries"]) == 502  # the API answers whole folders
