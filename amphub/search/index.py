"""Model search in memory: a bitmap per filter value, the four sort orders, the search texts.

The database stays the record. This is an index of it, rebuilt from its rows at the first
search and then kept current by `amphub.db.cards`, which replays the models whose rows
changed (triggers log every write to models, cards and card_values, whoever makes it).
Model roles granted to users are indexed too (a model's members change through the log as
well); space roles, space creators and lifetimes come with each search (`Reachable`).

A set of models is a Python int with bit `slot` set for each model in it, so filters and
permissions combine with `&` and `|`, and a facet count is one `bit_count()`, all in C.
The semantics are those of the SQL in `amphub.db.cards` (`search_models_by_sql`): SQLite's
NOCASE (ASCII letters only) for the card filters, binary comparison everywhere else, and
each word of the query (`amphub.search.words`) a substring of the folded short fields or
the beginning of a word of the description (`amphub.search.described`); models whose id or
name holds every word come first.
"""

from __future__ import annotations

import asyncio
import functools
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from typing import NamedTuple, cast

from amphub.search.described import Described, Purged
from amphub.search.postings import (
    Field,
    Posting,
    bits_from,
    dense_from,
    flags_of,
    nocase,
    union,
)
from amphub.search.words import fold, split

SORTS = ("updated", "created", "name", "parameters")
# A search with fewer hits than one slot in this many handles them one by one; with more,
# it works on whole bitmaps and along the sort orders.
_FEW = 32


class CardFields(NamedTuple):
    """What search reads of a stored card."""

    task_type: str | None
    algorithm: str | None
    license: str | None
    parameters: int | None
    search_text: str
    values: tuple[tuple[str, str], ...]  # (field, value): frameworks, tags, datasets


class Entry(NamedTuple):
    """What search knows of one model: its row, its card once indexed, its members."""

    space_id: str
    model_id: str
    name: str
    visibility: str
    owner: str
    created_at: str
    updated_at: str
    card: CardFields | None
    members: tuple[tuple[str, str], ...] = ()  # (user, role) granted on the model


@dataclass(frozen=True)
class Reachable:
    """The models a caller may retrieve, as `policy.matrix.reach` and the roles work it out.

    `everything` (administrators) skips the rest; otherwise a model is in reach through
    its visibility, its owner (`user`, when `owned`), a role `user` holds on it (one of
    `model_roles`), or its space being one of `spaces` (created by the user, or a space
    role that covers every model). Models of `dead_spaces` (released, or past their grace
    period) are out of reach for everyone.
    """

    everything: bool = False
    visibilities: tuple[str, ...] = ()
    user: str | None = None
    owned: bool = False
    model_roles: tuple[str, ...] = ()
    spaces: frozenset[str] = frozenset()
    dead_spaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Criteria:
    """What the matching models must hold, beyond being in reach."""

    words: tuple[str, ...] = ()  # folded, as `amphub.search.words.query_words` gives them
    filters: tuple[tuple[str, str], ...] = ()
    min_parameters: int | None = None
    max_parameters: int | None = None


@dataclass(frozen=True)
class Found:
    """One page of a search (as model keys, in order), the number of matches and the facets."""

    keys: list[tuple[str, str]]
    total: int
    facets: dict[str, dict[str, int]]


# Model columns compare exactly; card columns as SQLite's NOCASE, like card_values' fields.
MODEL_FIELDS = ("space", "visibility", "owner")
CARD_COLUMNS = ("task_type", "algorithm", "license")


class SearchState:
    """The index proper; changed only between awaits, so every search sees it whole."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str] | None] = []  # by slot; None for a free slot
        self.slot_of: dict[tuple[str, str], int] = {}
        self.free: list[int] = []
        self.names: list[str] = []
        self.titles: list[str] = []  # the model id and name, folded: matches rank first
        self.created: list[str] = []
        self.updated: list[str] = []
        self.parameters: list[int | None] = []
        self.texts: list[str] = []  # short fields; "" without a card: no text search matches it
        self.described = Described()  # the descriptions' words
        self.held: list[tuple[Posting, ...]] = []  # every posting a slot is in
        self.every = Posting("")
        self.columns = {name: Field(folds=False) for name in MODEL_FIELDS}
        self.columns.update({name: Field(folds=True) for name in CARD_COLUMNS})
        self.values: dict[str, Field] = {}  # card_values by field
        self.members: dict[str, Field] = {}  # model roles by role, each by user
        self.orders: dict[str, list[int]] = {sort: [] for sort in SORTS}

    @property
    def size(self) -> int:
        """How many slots there are, free ones included."""
        return len(self.keys)

    @classmethod
    def built(cls, entries: Iterable[Entry]) -> SearchState:
        """An index of these models, built in bulk: sets first, bitmaps at the end."""
        state = cls()
        state.described.sorted = False
        for entry in entries:
            state._fill(state._slot(entry), entry, size=None)
        state.described.finish(state.size)
        dense = dense_from(state.size)
        for posting in state._all_postings():
            if len(posting) >= dense:
                posting.densify(state.size)
        used = sorted(state.slot_of.values(), key=state.key_of())
        for sort in SORTS:
            state.orders[sort] = state._sorted(sort, list(used))
        return state

    def put(self, entry: Entry) -> None:
        """Index a model anew (added, or its row or card changed)."""
        self.drop((entry.space_id, entry.model_id))
        slot = self._slot(entry)
        self._fill(slot, entry, size=self.size)
        for sort, order in self.orders.items():
            order.insert(self._position(sort, order, slot), slot)

    def drop(self, key: tuple[str, str]) -> None:
        """Forget a model, if indexed."""
        slot = self.slot_of.pop(key, None)
        if slot is None:
            return
        for sort, order in self.orders.items():
            at = self._position(sort, order, slot)
            assert order[at] == slot, "a sort order lost track of a model"
            del order[at]
        self.every.discard(slot)
        stale = self.described.retire(slot)  # a purge frees it (`Described`)
        for posting in self.held[slot]:
            posting.discard(slot)
            if not len(posting):
                self._forget(posting)
        self.keys[slot] = None
        self.names[slot] = self.titles[slot] = self.texts[slot] = ""
        self.created[slot] = self.updated[slot] = ""
        self.parameters[slot] = None
        self.held[slot] = ()
        if not stale:
            self.free.append(slot)

    def adopt(self, purged: Purged) -> None:
        """Take a purge of the description words (see `Described`): its slots are free."""
        self.free.extend(self.described.adopt(purged))

    def _slot(self, entry: Entry) -> int:
        # The space's id as its posting holds it: one string for all its models.
        key = (self.columns["space"].posting(entry.space_id).value, entry.model_id)
        if self.free:
            slot = self.free.pop()
            self.keys[slot] = key
        else:
            slot = self.size
            self.keys.append(key)
            for column in (self.names, self.titles, self.created, self.updated, self.texts):
                column.append("")
            self.parameters.append(None)
            self.held.append(())
        self.slot_of[key] = slot
        return slot

    def _fill(self, slot: int, entry: Entry, size: int | None) -> None:
        """Record a model in its slot; `size` None while building in bulk (sets only)."""
        space_id, model_id, name, visibility, owner, created, updated, card, members = entry
        self.names[slot] = name
        self.titles[slot] = fold(f"{model_id}\n{name}")
        self.created[slot] = created
        self.updated[slot] = created if updated == created else updated  # one string, not two
        columns = self.columns
        held = [
            columns["space"].posting(space_id),
            columns["visibility"].posting(visibility),
            columns["owner"].posting(owner),
        ]
        if card is not None:
            task_type, algorithm, license, parameters, search_text, values = card
            self.parameters[slot] = parameters
            self.texts[slot], words = split(search_text)
            self.described.add(slot, words, size)
            for column, value in (("task_type", task_type), ("algorithm", algorithm)):
                if value is not None:
                    held.append(columns[column].posting(value))
            if license is not None:
                held.append(columns["license"].posting(license))
            fields = self.values
            for field_name, value in values:
                field = fields.get(field_name)
                if field is None:
                    field = fields[field_name] = Field(folds=True)
                held.append(field.posting(value))
        for user, role in members:
            field = self.members.get(role)
            if field is None:
                field = self.members[role] = Field(folds=False)
            held.append(field.posting(user))
        if size is None:
            self.every.few.add(slot)  # type: ignore[union-attr]  # all sets until built
            for posting in held:
                posting.few.add(slot)  # type: ignore[union-attr]
        else:
            self.every.add(slot, size)
            for posting in held:
                posting.add(slot, size)
        self.held[slot] = tuple(held)

    def _forget(self, posting: Posting) -> None:
        # Postings know no field (no cycles: a replaced index is freed at once); few fields.
        for field in self._fields():
            if field.postings.get(posting.value) is posting:
                field.forget(posting.value)
                return

    def _fields(self) -> Iterable[Field]:
        return (*self.columns.values(), *self.values.values(), *self.members.values())

    def _all_postings(self) -> Iterable[Posting]:
        yield self.every
        for field in self._fields():
            yield from field.postings.values()

    # ------------------------------------------------------------ sort orders

    def key_of(self) -> Callable[[int], tuple[str, str]]:
        """`keys.__getitem__` for slots in use, whose key is never None."""
        return cast(Callable[[int], tuple[str, str]], self.keys.__getitem__)

    def _sorted(self, sort: str, slots: list[int]) -> list[int]:
        """Slots (already in key order) in a sort's order; Python's sort is stable."""
        if sort in ("updated", "created"):
            column = self.updated if sort == "updated" else self.created
            # Newest first; a reverse sort is stable too, so ties stay in key order.
            slots.sort(key=column.__getitem__, reverse=True)
            return slots
        if sort == "name":
            names = self.names
            slots.sort(key=lambda slot: nocase(names[slot]))
            return slots
        parameters = self.parameters
        slots.sort(key=lambda s: (parameters[s] is None, -(parameters[s] or 0)))
        return slots

    def _precedes(self, sort: str, a: int, b: int) -> bool:
        """Whether slot `a` comes before slot `b` in a sort (the ORDER BY of db.SORTS)."""
        if sort in ("updated", "created"):
            column = self.updated if sort == "updated" else self.created
            if column[a] != column[b]:
                return column[a] > column[b]
        elif sort == "name":
            name_a, name_b = nocase(self.names[a]), nocase(self.names[b])
            if name_a != name_b:
                return name_a < name_b
        else:
            size_a, size_b = self.parameters[a], self.parameters[b]
            if size_a != size_b:
                return size_b is None or (size_a is not None and size_a > size_b)
        key_of = self.key_of()
        return key_of(a) < key_of(b)

    def _position(self, sort: str, order: list[int], slot: int) -> int:
        """Where `slot` stands, or would stand, in a sort order."""
        low, high = 0, len(order)
        while low < high:
            middle = (low + high) // 2
            if self._precedes(sort, order[middle], slot):
                low = middle + 1
            else:
                high = middle
        return low

    # ------------------------------------------------------------ searching

    def reach(self, reachable: Reachable) -> int:
        """The bitmap of the models in reach."""
        size, columns = self.size, self.columns
        if reachable.everything:
            bits = self.every.as_bits(size)
        else:
            bits = 0
            for visibility in reachable.visibilities:
                bits |= union(columns["visibility"].matching(visibility), size)
            for space_id in reachable.spaces:
                bits |= union(columns["space"].matching(space_id), size)
            user = reachable.user
            if user is not None:
                if reachable.owned:
                    bits |= union(columns["owner"].matching(user), size)
                for role in reachable.model_roles:
                    field = self.members.get(role)
                    bits |= union(field.matching(user), size) if field is not None else 0
        for space_id in reachable.dead_spaces:
            bits &= ~union(columns["space"].matching(space_id), size)
        return bits

    def matching(self, bits: int, criteria: Criteria) -> int:
        """The models of `bits` that meet the criteria."""
        for name, value in criteria.filters:
            field = self.columns.get(name) if name in ("space", *CARD_COLUMNS) else None
            field = field or self.values.get(name)  # any other name is a card_values field
            bits &= union(field.matching(value), self.size) if field is not None else 0
        low, high = criteria.min_parameters, criteria.max_parameters
        if not bits or (low is None and high is None and not criteria.words):
            return bits
        # The rest is tested model by model, on the models left.
        slots = self.slots(bits, flags_of(bits, self.size))
        if low is not None or high is not None:
            parameters = self.parameters

            def within(slot: int) -> bool:
                size = parameters[slot]
                return (
                    size is not None
                    and (low is None or size >= low)
                    and (high is None or size <= high)
                )

            slots = list(filter(within, slots))
        for word in criteria.words:
            described = self.described.flags(word, self.size)
            found = map(
                operator.or_,
                map(operator.contains, map(self.texts.__getitem__, slots), repeat(word)),
                map(described.__getitem__, slots),
            )
            slots = list(compress(slots, found))
        return bits_from(slots, self.size)

    def titled(self, hits: int, flags: bytes, words: tuple[str, ...]) -> int:
        """The hits whose id or name holds every word."""
        slots = self.slots(hits, flags)
        for word in words:
            found = map(operator.contains, map(self.titles.__getitem__, slots), repeat(word))
            slots = list(compress(slots, found))
        return bits_from(slots, self.size)

    def slots(self, bits: int, flags: bytes) -> list[int]:
        """The slots of a bitmap, in order; `flags` is the same set as one byte per slot."""
        if bits.bit_count() * _FEW > self.size:
            return list(compress(range(self.size), flags))
        found, at = [], flags.find(1)
        while at >= 0:
            found.append(at)
            at = flags.find(1, at + 1)
        return found

    def facets(self, hits: int, flags: bytes) -> dict[str, dict[str, int]]:
        """Counts per value of the facet fields among the hits, values in binary order."""
        counts: Callable[[Posting], int]
        if hits.bit_count() * _FEW > self.size:  # many hits: a bitmap & per value
            counts = functools.partial(Posting.count_in, hits=hits, hit_flags=flags)
        else:  # few hits: every value each of them holds
            held = Counter(chain.from_iterable(map(self.held.__getitem__, self.slots(hits, flags))))
            counts = held.__getitem__
        fields = {
            "space": self.columns["space"],
            "framework": self.values.get("framework"),
            "task_type": self.columns["task_type"],
            "algorithm": self.columns["algorithm"],
            "license": self.columns["license"],
        }
        facets: dict[str, dict[str, int]] = {}
        for name, field in fields.items():
            postings = field.postings if field is not None else {}
            found = ((value, counts(postings[value])) for value in sorted(postings))
            facets[name] = {value: count for value, count in found if count}
        return facets

    def page(
        self, hits: int, flags: bytes, sort: str, limit: int, offset: int, first: int = 0
    ) -> list[tuple[str, str]]:
        """The keys of one page of hits in a sort's order, the hits of `first` before the rest."""
        if not first or first == hits:
            return self._page(hits, flags, sort, limit, offset)
        rest = hits & ~first
        ahead = first.bit_count()
        keys = []
        if offset < ahead:
            keys = self._page(first, flags_of(first, self.size), sort, limit, offset)
        if len(keys) < limit and rest:
            after = max(0, offset - ahead)
            keys += self._page(rest, flags_of(rest, self.size), sort, limit - len(keys), after)
        return keys

    def _page(
        self, hits: int, flags: bytes, sort: str, limit: int, offset: int
    ) -> list[tuple[str, str]]:
        key_of = self.key_of()
        chosen: Iterable[int]
        if hits.bit_count() * _FEW > self.size:  # many hits: the first ones along the order
            order = self.orders[sort]
            chosen = islice(compress(order, map(flags.__getitem__, order)), offset, offset + limit)
        else:  # few hits: sorted on their own
            slots = sorted(self.slots(hits, flags), key=key_of)
            chosen = self._sorted(sort, slots)[offset : offset + limit]
        return [key_of(slot) for slot in chosen]


class SearchIndex:
    """The index of one database, and how far into its change log it has read."""

    def __init__(self, replay_limit: int = 2000, purge_from: int = 256) -> None:
        self._state = SearchState()
        self.applied: int | None = None  # the last change replayed; None before the first build
        self.building = False  # while a worker thread builds it anew from every model
        self.updating = asyncio.Lock()  # one catch-up at a time
        # Past this many changed models, a rebuild is quicker than replaying them one by one.
        self.replay_limit = replay_limit
        # Stale slots wait for a purge until there are this many (and one in 16).
        self.purge_from = purge_from

    def replace(self, state: SearchState, applied: int) -> None:
        """Swap in an index built in bulk."""
        self._state, self.applied = state, applied

    def apply(self, changed: list[tuple[str, str]], entries: list[Entry], applied: int) -> None:
        """Replay changed models: each is re-indexed from its entry, or dropped without one."""
        state = self._state
        for entry in entries:
            state.put(entry)
        fresh = {(entry.space_id, entry.model_id) for entry in entries}
        for key in changed:
            if key not in fresh:
                state.drop(key)
        self.applied = applied

    def purge_due(self) -> bool:
        """Whether enough slots are stale to purge them (`purged` then `adopt`)."""
        return self._state.described.purge_due(self._state.size, self.purge_from)

    def purged(self) -> Purged:
        """The description words without the stale slots (meant for a worker thread)."""
        return self._state.described.purged()

    def adopt(self, purged: Purged) -> None:
        """Take a purge, made while nothing changed the index."""
        self._state.adopt(purged)

    def __len__(self) -> int:
        return len(self._state.slot_of)

    def search(
        self, reachable: Reachable, criteria: Criteria, sort: str, limit: int, offset: int
    ) -> Found:
        """One page of the matching models in reach, their number and the facets."""
        state = self._state
        hits = state.matching(state.reach(reachable), criteria)
        flags = flags_of(hits, state.size)
        first = state.titled(hits, flags, criteria.words) if criteria.words and hits else 0
        return Found(
            keys=state.page(hits, flags, sort, limit, offset, first),
            total=hits.bit_count(),
            facets=state.facets(hits, flags),
        )


def build(entries: Iterable[Entry]) -> SearchState:
    """An index of these models, built in bulk (meant for a worker thread)."""
    return SearchState.built(entries)
