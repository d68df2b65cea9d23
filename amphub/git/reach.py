"""Which objects an upload-pack sends: a full clone's reachable objects, a fetch's missing ones."""

from __future__ import annotations

import heapq
import re
import zlib
from binascii import unhexlify
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from dulwich.pack import apply_delta

from amphub.git.object_filter import NO_FILTER, ObjectFilter
from amphub.git.packfile import Load, PackFile, loose_ids
from amphub.storage.git_objects import object_header

COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
TREE_MODE, GITLINK_MODE = b"40000", b"160000"
# A tree is a run of `<mode> <name>\0<20-byte id>` entries, so one match per entry.
TREE_ENTRY = re.compile(rb"(\d+) ([^\0]*)\0(.{20})", re.DOTALL)
# The ids a tree refers to (a submodule's commit is not in this repository).
TREE_REFERENCE = re.compile(rb"160000 [^\0]*\0.{20}|[^\0]*\0(.{20})", re.DOTALL)
REFERENCE_BATCH = 4096  # trees whose references are counted at once


# --- object texts -------------------------------------------------------------------


def commit_links(text: bytes) -> tuple[bytes, list[bytes]]:
    """The tree and parent ids of a commit's text."""
    if not text.startswith(b"tree "):
        raise ValueError("commit without a tree line")
    parents = []
    pos = 46
    while text.startswith(b"parent ", pos):
        parents.append(unhexlify(text[pos + 7 : pos + 47]))
        pos += 48
    return unhexlify(text[5:45]), parents


def commit_time(text: bytes) -> int:
    """The committer time of a commit's text; 0 if it has none that parses."""
    start = text.find(b"\ncommitter ") + 1
    line = text[start : text.find(b"\n", start)]
    try:
        return int(line.rsplit(b" ", 2)[1])
    except (IndexError, ValueError):  # only an ordering hint for the walk
        return 0


def tag_target(text: bytes) -> bytes:
    """The id of the object a tag's text points at."""
    if not text.startswith(b"object "):
        raise ValueError("tag without an object line")
    return unhexlify(text[7:47])


def add_tags(load: Load, send: set[bytes], tagged: Mapping[bytes, bytes]) -> None:
    """include-tag: add the tags whose peeled object is sent, with any tags they point at."""
    for peeled, tag in tagged.items():
        if peeled not in send:
            continue
        while tag not in send:
            kind, text = load(tag)
            if kind != TAG:
                break
            send.add(tag)
            tag = tag_target(text)


# --- which objects: a full clone ----------------------------------------------------


class AllObjects:
    """Every object id of a store, and the text of each commit, tree and tag."""

    def __init__(self, fallback: Load) -> None:
        self.ids: set[bytes] = set()
        self.texts: dict[int, dict[bytes, bytes]] = {TREE: {}, COMMIT: {}, TAG: {}}
        self.loose: dict[bytes, int] = {}  # loose object -> kind
        self._fallback = fallback

    def add(self, sha: bytes, kind: int, text: bytes) -> None:
        """Remember the text of a non-blob."""
        self.texts[kind][sha] = text

    def kind_of(self, sha: bytes) -> int | None:
        """The kind of a loose object or of a non-blob whose text is known."""
        kind = next((kind for kind, texts in self.texts.items() if sha in texts), None)
        return kind or self.loose.get(sha)

    def load(self, sha: bytes) -> tuple[int, bytes]:
        """Type and text of an object; blobs are read from the store."""
        for kind, texts in self.texts.items():
            text = texts.get(sha)
            if text is not None:
                return kind, text
        return self._fallback(sha)


def read_all_objects(packs: list[PackFile], objects_dir: Path, fallback: Load) -> AllObjects:
    """Read every pack once in offset order, and the loose objects."""
    objects = AllObjects(fallback)
    for sha in loose_ids(objects_dir):
        kind, text = fallback(sha)
        objects.loose[sha] = kind
        if kind != BLOB:
            objects.add(sha, kind, text)
    objects.ids.update(objects.loose)
    waiting: list[tuple[PackFile, int]] = []
    for pack in packs:
        objects.ids.update(pack.shas)
        waiting += _read_pack(pack, objects)
    while waiting:
        left = [item for item in waiting if not _resolve(item, packs, objects)]
        if len(left) == len(waiting):
            raise ValueError("a delta's base is in no pack")
        waiting = left
    return objects


def _read_pack(pack: PackFile, objects: AllObjects) -> list[tuple[PackFile, int]]:
    """Kinds of one pack's objects and texts of its non-blobs; deltas on unknown bases wait."""
    data, offsets, shas, kinds = pack.data, pack.offsets, pack.shas, pack.kinds
    positions, texts = pack.positions, objects.texts
    waiting = []
    for i, sha in enumerate(shas):
        type_num, _, start, base = object_header(data, offsets[i])
        if isinstance(base, int):  # OFS_DELTA
            base_pos = positions[base]
            kind = kinds[base_pos]
            if not kind:
                waiting.append((pack, i))
                continue
            if kind != BLOB:
                delta = zlib.decompress(data[start : offsets[i + 1]])
                texts[kind][sha] = b"".join(apply_delta(texts[kind][shas[base_pos]], delta))
        elif isinstance(base, bytes):  # REF_DELTA
            pack.ref_bases.add(base)
            waiting.append((pack, i))
            continue
        else:
            kind = type_num
            if kind != BLOB:
                texts[kind][sha] = zlib.decompress(data[start : offsets[i + 1]])
        kinds[i] = kind
    return waiting


def _resolve(item: tuple[PackFile, int], packs: list[PackFile], objects: AllObjects) -> bool:
    """Resolve a delta whose base was not known during the first read; False if it still is not."""
    pack, i = item
    _, _, start, base = object_header(pack.data, pack.offsets[i])
    if isinstance(base, int):  # OFS_DELTA
        base_pos = pack.position(base)
        kind, base_sha = pack.kinds[base_pos], pack.shas[base_pos]
    elif base is not None:  # REF_DELTA
        kind, base_sha = _kind_in_packs(base, packs, objects), base
    else:
        raise ValueError("only deltas wait for their base")
    if not kind:
        return False
    pack.kinds[i] = kind
    if kind != BLOB:
        delta = zlib.decompress(pack.data[start : pack.offsets[i + 1]])
        base_text = objects.texts[kind][base_sha]
        objects.add(pack.shas[i], kind, b"".join(apply_delta(base_text, delta)))
    return True


def _kind_in_packs(sha: bytes, packs: list[PackFile], objects: AllObjects) -> int:
    """The kind of an object as far as the read has found it; 0 if not yet."""
    kind = objects.kind_of(sha)
    if kind:
        return kind
    for pack in packs:
        offset = pack.locate(sha)
        if offset is not None and pack.kinds[pack.position(offset)]:
            return pack.kinds[pack.position(offset)]
    return 0


def unreachable(objects: AllObjects, wants: set[bytes]) -> set[bytes]:
    """The objects that no wanted object leads to.

    Counting references works because git's objects form a DAG: what nothing refers to
    and nobody wants is garbage, and so is what only garbage refers to. Counting is a
    few bulk operations; walking from the wants would parse each tree in Python.
    """
    counts = reference_counts(objects)
    dead: set[bytes] = set()
    todo = list(objects.ids - counts.keys() - wants)
    while todo:
        sha = todo.pop()
        dead.add(sha)
        for ref in references(objects, sha):
            counts[ref] -= 1
            if not counts[ref] and ref in objects.ids and ref not in wants:
                todo.append(ref)
    return dead


def reference_counts(objects: AllObjects) -> Counter[bytes]:
    """How many commits, trees and tags refer to each object."""
    counts: Counter[bytes] = Counter()
    trees = list(objects.texts[TREE].values())
    for start in range(0, len(trees), REFERENCE_BATCH):
        counts.update(TREE_REFERENCE.findall(b"".join(trees[start : start + REFERENCE_BATCH])))
    counts.pop(b"", None)  # the submodule entries
    hexes = [text[5:45] for text in objects.texts[COMMIT].values()]
    for text in objects.texts[COMMIT].values():
        pos = 46
        while text.startswith(b"parent ", pos):
            hexes.append(text[pos + 7 : pos + 47])
            pos += 48
    hexes += (text[7:47] for text in objects.texts[TAG].values())
    raw = unhexlify(b"".join(hexes))
    counts.update([raw[i : i + 20] for i in range(0, len(raw), 20)])
    return counts


def references(objects: AllObjects, sha: bytes) -> list[bytes]:
    """What one object refers to."""
    kind = objects.kind_of(sha)
    if kind is None or kind == BLOB:
        return []
    text = objects.texts[kind][sha]
    if kind == TREE:
        return [ref for ref in TREE_REFERENCE.findall(text) if ref]
    if kind == TAG:
        return [tag_target(text)]
    tree, parents = commit_links(text)
    return [tree, *parents]


# --- which objects may be wanted ----------------------------------------------------


def unreached_wants(
    load: Load,
    kind_of: Callable[[bytes], int | None],
    tips: list[bytes],
    wants: set[bytes],
    reachable: Callable[[], set[bytes]],
) -> set[bytes]:
    """The wants that no tip (an object a ref points at) reaches, or that do not exist.

    Commits are looked for by walking from the tips, newest first; trees and blobs (the
    lazy fetches of a partial clone) are checked against every object `reachable` lists.
    """
    kinds = {sha: kind_of(sha) for sha in wants - set(tips)}
    commits = {sha for sha, kind in kinds.items() if kind == COMMIT}
    others = {sha for sha, kind in kinds.items() if kind in (TREE, BLOB, TAG)}
    if commits:
        commits -= _commits_found(load, tips, commits)
    if others:
        others -= reachable()
    return {sha for sha, kind in kinds.items() if kind is None} | commits | others


def _commits_found(load: Load, tips: list[bytes], looked_for: set[bytes]) -> set[bytes]:
    """Which of `looked_for` the tips reach; the walk stops once all are found."""
    tip_commits, _ = peel(load, tips, set())
    found: set[bytes] = set()
    seen = set(tip_commits)
    queue: list[tuple[int, bytes, bytes]] = []
    for sha in seen:
        text = load(sha)[1]
        heapq.heappush(queue, (-commit_time(text), sha, text))
    while queue and found != looked_for:
        _, sha, text = heapq.heappop(queue)
        if sha in looked_for:
            found.add(sha)
        for parent in commit_links(text)[1]:
            if parent not in seen:
                seen.add(parent)
                parent_text = load(parent)[1]
                heapq.heappush(queue, (-commit_time(parent_text), parent, parent_text))
    return found


# --- which objects: a fetch ---------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    """Where the history of a shallow fetch ends (see `amphub.git.shallow`)."""

    boundary: set[bytes] = field(default_factory=set)  # sent, their parents not
    unshallow: set[bytes] = field(default_factory=set)  # client's shallow commits now deeper
    client: set[bytes] = field(default_factory=set)  # the client's shallow commits

    def new_shallow(self) -> set[bytes]:
        """The `shallow` lines of the answer: boundary commits the client does not know."""
        return self.boundary - self.client


NO_CUT = Cut()


@dataclass(frozen=True)
class FetchWalk:
    """What the commit walk of a fetch found."""

    missing: list[bytes]  # commits the client lacks, newest first
    edge: set[bytes]  # commits it has that missing ones have as parents
    tags: set[bytes]  # wanted tags
    others: list[bytes]  # wanted trees and blobs


def walk_fetch(load: Load, wants: set[bytes], haves: list[bytes], cut: Cut = NO_CUT) -> FetchWalk:
    """The commits a client with `haves` lacks to have `wants`, within a shallow fetch's cut."""
    tags: set[bytes] = set()
    want_commits, others = peel(load, wants, tags)
    # An unshallowed commit's parents are new to the client, as git's upload-pack has it.
    want_commits += [p for sha in cut.unshallow for p in commit_links(load(sha)[1])[1]]
    have_commits, _ = peel(load, haves, set())
    missing, edge = missing_commits(load, want_commits, have_commits, cut)
    return FetchWalk(missing, edge, tags, others)


def fetch_objects(
    load: Load,
    walk: FetchWalk,
    tagged: Mapping[bytes, bytes],
    keep: ObjectFilter = NO_FILTER,
    size: Callable[[bytes], int] = lambda sha: 0,
) -> tuple[set[bytes], set[bytes]]:
    """What the client lacks, and objects it is known to have (bases for thin deltas).

    Objects the filter `keep` leaves out are not sent, except those wanted by name.
    """
    send = set(walk.missing) | walk.tags
    has: set[bytes] = set()
    bases = [commit_links(load(c)[1])[0] for c in walk.edge]
    roots = [commit_links(load(c)[1])[0] for c in walk.missing] if keep.keeps(0) else []
    kinds = {sha: load(sha)[0] for sha in walk.others}
    for root in roots:
        diff_tree(load, root, bases, send, has, keep, size)
    for sha, kind in kinds.items():
        if kind == TREE:
            diff_tree(load, sha, [], send, has, keep, size)
        else:
            send.add(sha)
    add_tags(load, send, tagged)
    return send, has


def peel(load: Load, shas: Iterable[bytes], tags: set[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The commits and other objects that `shas` are or point at; tags go to `tags`."""
    commits: list[bytes] = []
    others: list[bytes] = []
    for sha in shas:
        kind, text = load(sha)
        while kind == TAG:
            tags.add(sha)
            sha = tag_target(text)
            kind, text = load(sha)
        (commits if kind == COMMIT else others).append(sha)
    return commits, others


def missing_commits(
    load: Load, wants: list[bytes], haves: list[bytes], cut: Cut = NO_CUT
) -> tuple[list[bytes], set[bytes]]:
    """Commits reachable from wants and not from haves, and the have-side parents they have.

    Walks newest first, as `git rev-list wants --not haves` does, and stops once every
    commit left to visit is reachable from a have: a few commits for a small fetch. A
    shallow fetch's boundary commits are sent without their parents, and the client's
    shallow commits say nothing of their parents, which it lacks.
    """
    seen: dict[bytes, bool] = {}  # commit -> reachable from a have
    queue: list[tuple[int, bytes]] = []
    texts: dict[bytes, bytes] = {}

    def push(sha: bytes, uninteresting: bool) -> None:
        if sha in seen:
            seen[sha] = seen[sha] or uninteresting
            return
        seen[sha] = uninteresting
        texts[sha] = load(sha)[1]
        heapq.heappush(queue, (-commit_time(texts[sha]), sha))

    def parents(sha: bytes) -> list[bytes]:
        if sha in (cut.client if seen[sha] else cut.boundary):
            return []
        return commit_links(texts[sha])[1]

    for sha in haves:
        push(sha, True)
    for sha in wants:
        push(sha, False)
    missing = []
    while any(not seen[sha] for _, sha in queue):
        _, sha = heapq.heappop(queue)
        uninteresting = seen[sha]
        if not uninteresting:
            missing.append(sha)
        for parent in parents(sha):
            push(parent, uninteresting)
    edge = {p for c in missing for p in parents(c) if seen[p]}
    return missing, edge


def diff_tree(
    load: Load,
    root: bytes,
    bases: list[bytes],
    send: set[bytes],
    has: set[bytes],
    keep: ObjectFilter = NO_FILTER,
    size: Callable[[bytes], int] = lambda sha: 0,
) -> None:
    """Add what of `root` the client lacks to `send`, comparing with trees it has by path.

    `root` is sent; what it holds only where the filter `keep` lets it through (`size`
    gives a blob's size).
    """
    stack = [(root, bases, 0)]
    while stack:
        tree, base_trees, depth = stack.pop()
        if tree in send or tree in has:
            continue
        send.add(tree)
        known: dict[bytes, list[bytes]] = {}
        for base in base_trees:
            for mode, name, sha in TREE_ENTRY.findall(load(base)[1]):
                has.add(sha)
                if mode == TREE_MODE:
                    known.setdefault(name, []).append(sha)
        below = depth + 1
        for mode, name, sha in TREE_ENTRY.findall(load(tree)[1]):
            if mode == GITLINK_MODE or sha in send or sha in has:
                continue
            if mode == TREE_MODE:
                if keep.keeps(below):
                    stack.append((sha, known.get(name, []), below))
            elif keep.keeps_blob(below, partial(size, sha)):
                send.add(sha)
