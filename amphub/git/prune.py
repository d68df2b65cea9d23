"""Pruning: what deleted or rewound branches left behind leaves the disk after a while.

A push that deletes or rewinds a ref marks its repository (`RepoStore.mark_rewritten`).
Once the mark is `prune_days` old, the objects that some branch or tag reaches are
written to one new pack, as a full clone's pack is (copied still compressed), and the
old packs and loose objects are removed. The repository's lock is held throughout, so no
push is half done; reads never see fewer objects than the refs need.
"""

from __future__ import annotations

import logging
from binascii import hexlify
from contextlib import AbstractAsyncContextManager, AbstractContextManager, ExitStack
from pathlib import Path

from dulwich.objects import ObjectID
from dulwich.repo import Repo

from amphub import db
from amphub.git.packfile import PackFile, raw_loader, write_clone_pack
from amphub.git.reach import read_all_objects, unreachable
from amphub.services.background import every
from amphub.services.hub import Hub
from amphub.services.locks import one_node_at_a_time

log = logging.getLogger("amphub")
SWEEP_SECONDS = 3600
PUSHABLE = (b"refs/heads/", b"refs/tags/")
Lock = AbstractContextManager[object]


def prune_unreachable(path: Path) -> int:
    """Keep only the objects a branch or tag reaches; how many objects were dropped."""
    with Repo(str(path)) as repo:
        store = repo.object_store
        wants = {
            bytes.fromhex(sha.decode())
            for ref, sha in repo.get_refs().items()
            if ref.startswith(PUSHABLE)
        }
        old_files = list(Path(store.pack_dir).glob("pack-*"))
        with ExitStack() as stack:
            packs = [stack.enter_context(PackFile(pack, indexed=True)) for pack in store.packs]
            objects = read_all_objects(packs, Path(store.path), raw_loader(store))
            dead = unreachable(objects, wants)
            if not dead:
                return 0
            file, commit, abort = store.add_pack()

            def write(data: bytes) -> None:
                file.write(data)

            try:
                write_clone_pack(write, packs, objects.load, objects.ids - dead)
            except BaseException:
                abort()
                raise
            commit()
        for old in old_files:  # the new pack holds fewer objects: it has another name
            old.unlink(missing_ok=True)
        for sha in objects.loose:
            store.delete_loose_object(ObjectID(hexlify(sha)))
    return len(dead)


async def prune_left_behind(hub: Hub) -> None:
    """Prune every repository whose mark is older than the `prune_days` setting."""
    due = hub.clock().timestamp() - hub.config.prune_days * 86400
    for model in await db.list_models(hub.db):
        path = hub.repos.path(model.space_id, model.id)
        marked = hub.repos.rewritten_at(path)
        if marked is None or marked > due:
            continue
        lock = hub.repos.lock(path)

        def prune(path: Path = path, lock: Lock = lock, marked: float = marked) -> int:
            with lock:
                dropped = prune_unreachable(path)
                hub.repos.clear_rewritten(path, marked)
                return dropped

        async with hub.locks.hold(("repository", model.space_id, model.id)):
            dropped = await hub.run_blocking(prune)
        log.info("pruned %d objects from %s/%s", dropped, model.space_id, model.id)


def pruning(hub: Hub) -> AbstractAsyncContextManager[None]:
    """Prune at start and then every hour."""
    sweep = one_node_at_a_time(hub.locks, "repositories", lambda: prune_left_behind(hub))
    return every(SWEEP_SECONDS, sweep, "pruning repositories")
