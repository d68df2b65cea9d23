"""Checking the data dir against itself, and repairing what can be repaired without loss.

The database, the repositories and the LFS objects must agree: every model has a
repository and every repository a model, every object the database names is on disk with
its size (and, when asked, its hash), nothing half-written stays, and every repository is
whole. `amphub doctor` runs these checks on a live server's data dir; start-up runs the
model and repository part before the first request (`repair_at_start`).

On a live server, what a write has under way looks like debris: a new model's row before
its repository, a push's scratch files, an upload's object before its link. Only what has
been so for `scratch_age` seconds (an hour) is taken for debris; start-up, when no write
is under way, takes everything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from amphub import db
from amphub.clock import parse_rfc3339
from amphub.services.cards import refresh_card
from amphub.services.hub import Hub
from amphub.units import human_size

log = logging.getLogger("amphub")
SCRATCH_AGE = 3600.0


@dataclass
class Examination:
    """What was found: each as a sentence, either fixed or still wrong."""

    problems: list[str] = field(default_factory=list)
    fixable: list[str] = field(default_factory=list)  # found, left as it was (no repair)
    fixed: list[str] = field(default_factory=list)

    def found(self, sentence: str, *, repair: bool | None) -> None:
        """Record a finding; `repair` None when nothing can fix it here."""
        if repair is None:
            self.problems.append(sentence)
        elif repair:
            self.fixed.append(sentence)
        else:
            self.fixable.append(sentence)


async def examine(
    hub: Hub, *, repair: bool, verify_objects: bool = False, scratch_age: float = SCRATCH_AGE
) -> Examination:
    """Check the database, the models' repositories and the objects; repair if asked."""
    result = Examination()
    for problem in await hub.db.integrity_problems():
        result.found(f"the database is damaged: {problem}", repair=None)
    await check_models(hub, result, repair=repair, scratch_age=scratch_age, whole=True)
    await check_objects(hub, result, repair=repair, verify=verify_objects, scratch_age=scratch_age)
    return result


async def repair_at_start(hub: Hub) -> list[str]:
    """Finish what a crash cut short in models and repositories; what was done, also logged."""
    result = Examination()
    await check_models(hub, result, repair=True, scratch_age=0, whole=False)
    for sentence in result.fixed:
        log.warning("repair: %s", sentence)
    return result.fixed


async def check_models(
    hub: Hub, result: Examination, *, repair: bool, scratch_age: float, whole: bool
) -> None:
    """Rows and repositories agree, no write left debris, and (`whole`) every repository is."""
    now = hub.clock()
    rows = {(model.space_id, model.id): model for model in await db.list_models(hub.db)}
    settled = {
        key
        for key, model in rows.items()
        if (now - parse_rfc3339(model.created_at)).total_seconds() >= scratch_age
    }
    repos = hub.repos
    made: list[tuple[str, str]] = []

    def check_disk() -> None:
        on_disk = set(repos.models())
        for space_id, model_id in sorted(on_disk):
            path = repos.path(space_id, model_id)
            name = f"{space_id}/{model_id}"
            if (space_id, model_id) not in rows:
                if not repair:
                    result.found(f"repository {name} has no model", repair=False)
                    continue
                try:
                    moved = repos.move_aside(path)
                except FileNotFoundError:
                    continue  # deleted meanwhile: a deletion under way
                result.found(f"repository {name} had no model: moved to {moved}", repair=True)
                continue
            debris = repos.leftovers(path, scratch_age)
            if debris:
                if repair:
                    repos.remove_leftovers(path, scratch_age)
                result.found(
                    f"{_count(len(debris), 'file')} that interrupted writes left in {name}"
                    + (": removed" if repair else ""),
                    repair=repair,
                )
            if whole:
                for problem in repos.check(path):
                    result.found(
                        f"repository {name}: {problem}; restore it from a backup,"
                        " or push its branches again from a clone",
                        repair=None,
                    )
        for space_id, model_id in sorted(settled - on_disk):
            name = f"{space_id}/{model_id}"
            if not repair:
                result.found(f"model {name} has no repository", repair=False)
                continue
            model = rows[(space_id, model_id)]
            repos.create(repos.path(space_id, model_id), model.name, model.owner)
            made.append((space_id, model_id))
            result.found(
                f"model {name} had no repository (a creation cut short): made it with its"
                " first commit",
                repair=True,
            )

    await hub.run_blocking(check_disk)
    for space_id, model_id in made:
        await refresh_card(hub, space_id, model_id)


async def check_objects(
    hub: Hub, result: Examination, *, repair: bool, verify: bool, scratch_age: float
) -> None:
    """Every object the database names is stored whole; nothing else is, for long."""
    store = hub.objects
    rows = await db.stored_object_sizes(hub.db)
    files = [found async for found in store.stored()]
    on_disk = {oid for oid, _, _ in files}
    for oid in sorted(set(rows) - on_disk):
        size, models = rows[oid]
        result.found(
            f"object {oid} ({human_size(size)}, in {_count(models, 'model')}) is missing:"
            " push it again from a clone that has it (`git lfs push --all origin`)",
            repair=None,
        )
    for oid, size, age in files:
        if oid not in rows:
            if age >= scratch_age:
                if repair:
                    await store.remove(oid)
                result.found(
                    f"object {oid} is stored but no model has it" + (": removed" if repair else ""),
                    repair=repair,
                )
            continue
        if size != rows[oid][0]:
            reason = f"has {size} bytes, not {rows[oid][0]}"
        elif verify and not await store.intact(oid, size):
            reason = "does not hash to its oid"
        else:
            continue
        if repair:
            await store.quarantine(oid)
        result.found(
            f"object {oid} {reason}"
            + (": moved to the quarantine; push it again" if repair else ""),
            repair=repair,
        )
    scratch = await store.scratch(scratch_age)
    if scratch:
        if repair:
            await store.remove_scratch(scratch)
        result.found(
            f"{_count(len(scratch), 'half-received object')}" + (": removed" if repair else ""),
            repair=repair,
        )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" + ("" if number == 1 else "s")
