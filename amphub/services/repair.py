"""Start-up repair: finish what a crash cut short, before the first request is served.

A push killed half-way leaves scratch files, lock files and packs without an index; a
model's creation or deletion killed half-way leaves a row without a repository or a
repository without a row. None of it was acknowledged, and all of it would make the
client's retry fail (dulwich refuses to take a stale lock) or count against the quota.
It runs before this process serves, so every scratch file it finds is a dead process's:
true while one process writes the data dir.
"""

from __future__ import annotations

import logging

from amphub import db
from amphub.services.cards import refresh_card
from amphub.services.hub import Hub

log = logging.getLogger("amphub")


async def repair_at_start(hub: Hub) -> list[str]:
    """Repair repositories and models; a sentence for each thing done, also logged."""
    rows = {(model.space_id, model.id): model for model in await db.list_models(hub.db)}
    repos = hub.repos
    done: list[str] = []

    def repair_disk() -> list[tuple[str, str]]:
        on_disk = set(repos.models())
        for space_id, model_id in sorted(on_disk):
            path = repos.path(space_id, model_id)
            if (space_id, model_id) not in rows:
                moved = repos.move_aside(path)
                done.append(
                    f"repository {space_id}/{model_id} had no model (a deletion cut short):"
                    f" moved to {moved}"
                )
                continue
            removed = repos.remove_leftovers(path)
            if removed:
                done.append(
                    f"removed {removed} files that interrupted writes left in {space_id}/{model_id}"
                )
        missing = sorted(set(rows) - on_disk)
        for space_id, model_id in missing:
            model = rows[(space_id, model_id)]
            repos.create(repos.path(space_id, model_id), model.name, model.owner)
            done.append(
                f"model {space_id}/{model_id} had no repository (a creation cut short):"
                " made it, with its first commit"
            )
        return missing

    made = await hub.run_blocking(repair_disk)
    for space_id, model_id in made:
        await refresh_card(hub, space_id, model_id)
    for sentence in done:
        log.warning("repair: %s", sentence)
    return done
