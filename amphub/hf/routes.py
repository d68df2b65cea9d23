"""Every path of the Hugging Face Hub API that amphub serves; a repo id is `{space}/{model}`."""

from __future__ import annotations

from aiohttp import web

from amphub.hf import commit, download, info, listing, manage, upload, xet


def add_routes(app: web.Application) -> None:
    """The Hub's download, model, listing and upload paths, and whoami."""
    # The space and model segments exclude '/' and '%'; a revision is one segment in which
    # a '/' of a branch name arrives as %2F and is decoded only after matching. File paths
    # are only ever looked up inside a git tree, never on disk.
    repo = "/{space:[A-Za-z0-9._-]+}/{model:[A-Za-z0-9._-]+}"
    api = "/api/models" + repo
    rev = "{rev:[^/]+}"
    app.router.add_get(repo + f"/resolve/{rev}/" + "{path:.+}", download.get_resolve)
    app.router.add_get("/api/models", info.get_models)
    app.router.add_get(api, info.get_model_info)
    app.router.add_get(api + f"/revision/{rev}", info.get_model_info)
    app.router.add_get(api + f"/tree/{rev}" + "{path:(/.*)?}", listing.get_tree)
    app.router.add_post(api + f"/paths-info/{rev}", listing.post_paths_info)
    app.router.add_get(api + "/refs", listing.get_refs)
    app.router.add_get(api + f"/commits/{rev}", listing.get_commits)
    app.router.add_post(api + f"/preupload/{rev}", upload.post_preupload)
    app.router.add_post(api + f"/commit/{rev}", commit.post_commit)
    app.router.add_post(api + "/branch/{branch:[^/]+}", upload.post_branch)
    app.router.add_delete(api + "/branch/{branch:[^/]+}", upload.delete_branch)
    app.router.add_post(api + f"/tag/{rev}", upload.post_tag)
    app.router.add_delete(api + f"/tag/{rev}", upload.delete_tag)
    app.router.add_put(api + "/settings", manage.put_settings)
    app.router.add_get(api + "/xet-write-token/" + rev, xet.get_xet_token)
    app.router.add_get(api + "/xet-read-token/" + rev, xet.get_xet_read_token)
    # The Xet storage (CAS) paths that hf_xet uses under the casUrl a write token names.
    app.router.add_get(api + "/xet/v1/chunks/{prefix}/{hash}", xet.get_chunk)
    app.router.add_post(api + "/xet/v1/xorbs/default/{hash}", xet.post_xorb)
    app.router.add_post(api + "/xet/v1/shards", xet.post_shard)
    app.router.add_post("/api/repos/create", upload.post_create_repo)
    app.router.add_delete("/api/repos/delete", manage.delete_repo)
    app.router.add_post("/api/validate-yaml", upload.post_validate_yaml)
    app.router.add_get("/api/whoami-v2", info.get_whoami)
