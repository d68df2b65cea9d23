"""A bare aiohttp server that stores LFS uploads with amphub's own durable write, and nothing else.

bench/lfs_transfer.py runs it beside amphub, with the same client, to measure what this
machine allows one Python process that does only the disk work amphub must do for each
small object (folders prepared at the batch call, then objects stored in groups as amphub
stores them: temporary files, a flush, renames, a flush) and none of the rest (no key
check, no permission check, no link in the database, no quota): the ceiling for amphub's
small-object rate here.

    python bench/bare_lfs_server.py PORT DATA_DIR
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amphub.services.hub import BLOCKING_THREADS  # noqa: E402 - after the path is set
from amphub.storage.local_objects import LocalObjectStore  # noqa: E402
from amphub.storage.small_writes import SmallWrites  # noqa: E402

LFS_JSON = "application/vnd.git-lfs+json"


def make_app(store: LocalObjectStore) -> web.Application:
    small_writes = SmallWrites(store)

    async def batch(request: web.Request) -> web.Response:
        body = await request.json()
        sizes = {item["oid"]: item["size"] for item in body["objects"]}
        await store.prepare_folders(sizes)
        base = f"http://{request.host}/objects"
        answer = [
            {"oid": oid, "size": size, "actions": {"upload": {"href": f"{base}/{oid}"}}}
            for oid, size in sizes.items()
        ]
        return web.json_response({"objects": answer}, content_type=LFS_JSON)

    async def put(request: web.Request) -> web.Response:
        oid = request.match_info["oid"]
        data = await request.read()
        await small_writes.put(oid, data)
        return web.Response()

    app = web.Application()
    app.router.add_post("/{space}/{model}/info/lfs/objects/batch", batch)
    app.router.add_put("/objects/{oid}", put)
    return app


def main() -> None:
    port, data = int(sys.argv[1]), Path(sys.argv[2])
    (data / "objects").mkdir(parents=True, exist_ok=True)
    (data / "tmp").mkdir(exist_ok=True)
    threads = ThreadPoolExecutor(BLOCKING_THREADS)

    async def blocking(work):
        return await asyncio.get_running_loop().run_in_executor(threads, work)

    store = LocalObjectStore(data / "objects", data / "tmp", blocking)
    web.run_app(make_app(store), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
