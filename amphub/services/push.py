"""What happens after refs move: the push is recorded and master's card read again.

Every way of moving refs (git push, a Hugging Face commit, a new branch or tag) ends in
`PushTarget.record`, on the thread that moved them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from amphub import db
from amphub.services.cards import refresh_card
from amphub.services.hub import Hub
from amphub.storage.repo_files import is_ancestor
from amphub.storage.repos import DEFAULT_BRANCH

log = logging.getLogger("amphub.push")

ZERO = b"0" * 40  # the old or new side of a ref update where the ref does not exist


@dataclass(frozen=True)
class RefUpdate:
    """One ref command of a push."""

    ref: bytes
    old: bytes
    new: bytes


async def after_push(
    hub: Hub,
    space_id: str,
    model_id: str,
    user: str,
    updated: list[RefUpdate],
    options: Sequence[str] = (),
) -> None:
    """Record a push that moved refs, and re-read the card if master moved.

    `options` are the push's `git push -o` values: logged; none changes what happens yet.
    """
    if options:
        log.info("push to %s/%s by %s with options %s", space_id, model_id, user, list(options))
    database = hub.db
    now = database.now()
    pushes = [
        db.Push(space_id, model_id, user, u.ref.decode(), u.old.decode(), u.new.decode(), now)
        for u in updated
    ]
    await db.record_pushes(database, pushes)
    if any(u.ref == DEFAULT_BRANCH for u in updated):
        hub.background.spawn(refresh_card(hub, space_id, model_id), f"index {space_id}/{model_id}")


def leaves_commits_behind(path: Path, update: RefUpdate) -> bool:
    """Whether a ref update may leave objects that no branch or tag reaches (blocks)."""
    if update.old == ZERO:
        return False
    if update.new == ZERO or not update.ref.startswith(b"refs/heads/"):
        return True
    return not is_ancestor(path, update.old.decode(), update.new.decode())


@dataclass(frozen=True)
class PushTarget:
    """Where a push goes and who makes it: what its record needs."""

    hub: Hub
    loop: asyncio.AbstractEventLoop
    space_id: str
    model_id: str
    user: str

    def record(self, updated: list[RefUpdate], options: Sequence[str] = ()) -> None:
        """On the git thread that moved the refs: run `after_push` and wait for it.

        Every way of moving refs (git push, a Hugging Face commit, branch or tag) ends here.
        Made from that thread, the record follows the refs, not the request: aiohttp
        cancels the handler of a client that hangs up (git does once it has read the
        report, which is sent after this), and a shutdown cancels the handlers left.
        """
        if updated:
            path = self.hub.repos.path(self.space_id, self.model_id)
            if any(leaves_commits_behind(path, update) for update in updated):
                self.hub.repos.mark_rewritten(path, self.hub.clock().timestamp())
            after = after_push(self.hub, self.space_id, self.model_id, self.user, updated, options)
            asyncio.run_coroutine_threadsafe(after, self.loop).result()

    def moving(self, move: Callable[[], RefUpdate]) -> Callable[[], RefUpdate]:
        """`move` (git work that moves one ref or raises), then its record, on one thread."""

        def move_and_record() -> RefUpdate:
            update = move()
            self.record([update])
            return update

        return move_and_record


def push_target(hub: Hub, user: str, space_id: str, model_id: str) -> PushTarget:
    """The target of a push by `user`; called on the event loop, which records it."""
    return PushTarget(hub, asyncio.get_running_loop(), space_id, model_id, user)
