"""Every page path; registered by create_app like the API, git and LFS routes."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from amphub.http import keys
from amphub.http.headers import SIGN_IN_PATH, STATIC_PREFIX
from amphub.web import account, files, models, spaces, tasks, upstreams
from amphub.web.view import error_page


def add_routes(app: web.Application) -> None:
    """The pages. Site pages live under /-/, which no space id can be."""
    # Space ids, model ids and revisions hold no '/', so these segment regexes keep path
    # separators out; a file path may hold them, and is only looked up inside a git tree.
    model = "/{space:[a-z0-9][a-z0-9-]{1,62}}/{model:[A-Za-z0-9._-]+}"
    rev = "{rev:[A-Za-z0-9._-]+}"
    app[keys.ERROR_PAGE] = error_page
    app.router.add_get("/", models.get_home)
    app.router.add_get(SIGN_IN_PATH, account.get_sign_in)
    app.router.add_post(SIGN_IN_PATH, account.post_sign_in)
    app.router.add_post("/-/sign-out", account.post_sign_out)
    app.router.add_get("/-/key", account.get_key)
    app.router.add_post("/-/key", account.post_key)
    app.router.add_get("/-/tasks", tasks.get_tasks_page)
    app.router.add_get("/-/spaces", spaces.get_spaces_page)
    app.router.add_get("/-/spaces/{space:[a-z0-9-]+}", spaces.get_space_page)
    app.router.add_get("/-/new", spaces.get_new_model)
    app.router.add_get("/-/upstreams", upstreams.get_upstreams_page)
    app.router.add_static(STATIC_PREFIX, str(resources.files("amphub.web") / "static"))
    app.router.add_get(model, models.get_model_page)
    app.router.add_get(model + "/settings", models.get_settings)
    app.router.add_get(model + "/files", files.get_switch)
    app.router.add_get(model + "/commits", files.get_switch)
    app.router.add_get(model + f"/files/{rev}" + "{path:(/.*)?}", files.get_files)
    app.router.add_get(model + f"/blob/{rev}/" + "{path:.+}", files.get_blob_page)
    app.router.add_get(model + f"/raw/{rev}/" + "{path:.+}", files.get_raw)
    app.router.add_get(model + f"/commits/{rev}", files.get_commits_page)
    app.router.add_get(model + f"/commit/{rev}", files.get_commit_page)
