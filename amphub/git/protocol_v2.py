"""git protocol v2 for upload-pack over smart HTTP: capabilities, ls-refs, fetch, object-info.

A v2 request is one command with its arguments; the fetch reuses amphub's v0 handler for
what it sends (the checked wants, the shallow cut, the filter, the pack). receive-pack
stays v0/v1, as in git itself.

What is advertised is what C git's upload-pack advertises with its default settings
(serve.c, upload-pack.c): `server-option` (the options are accepted and go nowhere) and
`fetch=shallow wait-for-done filter`. git advertises `sideband-all` only with
uploadpack.advertiseSidebandAll and `packfile-uris` only with
uploadpack.blobPackfileUri; amphub serves neither and refuses them as git then does.
"""

from __future__ import annotations

from binascii import hexlify, unhexlify
from collections.abc import Callable, Iterator
from pathlib import Path

from dulwich.errors import GitProtocolError
from dulwich.objects import ObjectID
from dulwich.protocol import (
    CAPABILITY_INCLUDE_TAG,
    CAPABILITY_NO_PROGRESS,
    CAPABILITY_OFS_DELTA,
    CAPABILITY_SIDE_BAND_64K,
    CAPABILITY_THIN_PACK,
    ReceivableProtocol,
    pkt_line,
)
from dulwich.refs import Ref
from dulwich.repo import Repo

from amphub.git.backend import REPO_ARGS, one_repo_backend
from amphub.git.object_filter import parse_filter
from amphub.git.reach import NO_CUT
from amphub.git.upload import AmphubUploadPackHandler
from amphub.git.upload_request import UploadRequest, binary_id, take_history_line
from amphub.storage.git_objects import object_size
from amphub.storage.repos import prepare_repo

DELIM = b"0001"
ADVERTISEMENT = (
    b"version 2\n",
    b"agent=amphub\n",
    b"ls-refs=unborn\n",
    b"fetch=shallow wait-for-done filter\n",
    b"server-option\n",
    b"object-format=sha1\n",
    b"object-info\n",
)
# v2 fetch arguments that are v0 capabilities of the same name.
FLAG_ARGUMENTS = {
    b"thin-pack": CAPABILITY_THIN_PACK,
    b"ofs-delta": CAPABILITY_OFS_DELTA,
    b"include-tag": CAPABILITY_INCLUDE_TAG,
    b"no-progress": CAPABILITY_NO_PROGRESS,
    b"deepen-relative": b"deepen-relative",
}


def wants_v2(protocol_header: str) -> bool:
    """Whether a `Git-Protocol` header asks for version 2."""
    return "version=2" in protocol_header.split(":")


def advertise(write: Callable[[bytes], None]) -> None:
    """The capability advertisement of `info/refs` in v2."""
    write(b"".join(pkt_line(line) for line in ADVERTISEMENT) + pkt_line(None))


def pkt_lines(body: bytes) -> Iterator[bytes | None]:
    """The payloads of a request; None for a flush-pkt or delim-pkt."""
    pos = 0
    while pos + 4 <= len(body):
        try:
            size = int(body[pos : pos + 4], 16)
        except ValueError:
            raise GitProtocolError("malformed pkt-line") from None
        if size < 4:
            yield None
            pos += 4
            continue
        yield body[pos + 4 : pos + size].rstrip(b"\n")
        pos += size


def serve(path: Path, body: bytes, write: Callable[[bytes], None]) -> None:
    """Answer one v2 command read from `body`."""
    lines = pkt_lines(body)
    command = next(lines, None) or b""
    if not command.startswith(b"command="):
        raise GitProtocolError("a v2 request begins with command=")
    for line in lines:  # capabilities (agent, object-format, server-option ...), ignored
        if line is None:
            break
    arguments = []
    for line in lines:
        if line is None:
            break
        arguments.append(line)
    prepare_repo(path)
    with Repo(str(path)) as repo:
        if command == b"command=ls-refs":
            write(ls_refs(repo, arguments))
        elif command == b"command=fetch":
            fetch(repo, arguments, write)
        elif command == b"command=object-info":
            write(object_info(repo, arguments))
        else:
            raise GitProtocolError(f"unknown command {command.decode(errors='replace')}")


def ls_refs(repo: Repo, arguments: list[bytes]) -> bytes:
    """The refs under the asked prefixes, with symref targets and peeled tags if asked."""
    prefixes = [a.removeprefix(b"ref-prefix ") for a in arguments if a.startswith(b"ref-prefix ")]
    symrefs = b"symrefs" in arguments
    peel = b"peel" in arguments
    out = []
    if not prefixes or any(b"HEAD".startswith(p) for p in prefixes):
        names, sha = repo.refs.follow(Ref(b"HEAD"))
        target = b" symref-target:" + names[-1] if symrefs and len(names) > 1 else b""
        if sha is not None:
            out.append(pkt_line(sha + b" HEAD" + target + b"\n"))
        elif b"unborn" in arguments and target:
            out.append(pkt_line(b"unborn HEAD" + target + b"\n"))
    for ref, sha in sorted(_refs_under(repo, prefixes).items()):
        line = sha + b" " + ref
        if peel:
            peeled = repo.get_peeled(ref)
            if peeled != sha:
                line += b" peeled:" + peeled
        out.append(pkt_line(line + b"\n"))
    return b"".join(out) + pkt_line(None)


def _refs_under(repo: Repo, prefixes: list[bytes]) -> dict[Ref, ObjectID]:
    """The refs that begin with one of `prefixes` (all when none).

    Only the folders of the prefixes are listed: `refs/heads/` reads no tag.
    """
    folders = {p[: p.rindex(b"/")] for p in prefixes if p.startswith(b"refs/")}
    if not prefixes or any(b"refs/".startswith(p) for p in prefixes):
        folders = {b"refs"}
    found: dict[Ref, ObjectID] = {}
    for folder in folders:
        for key in repo.refs.subkeys(Ref(folder)):
            ref = Ref(folder + b"/" + key)
            if not prefixes or ref.startswith(tuple(prefixes)):
                found[ref] = repo.refs[ref]
    return found


def object_info(repo: Repo, arguments: list[bytes]) -> bytes:
    """The sizes of objects a ref reaches, read from their headers."""
    oids = [binary_id(a.removeprefix(b"oid ")) for a in arguments if a.startswith(b"oid ")]
    handler = _handler(repo, ReceivableProtocol(lambda size: b"", lambda data: None))
    refs = _refs(repo)
    asked = {Ref(b"want/%d" % i): ObjectID(hexlify(sha)) for i, sha in enumerate(oids)}
    allowed = set(refs.values()) | set(handler.reachable(refs, asked).values())
    out = [pkt_line(b"size\n")] if b"size" in arguments else []
    for sha in asked.values():
        if sha not in allowed:
            raise GitProtocolError(f"object-info: not our object {sha.decode()}")
        if out:
            out.append(pkt_line(sha + b" %d\n" % object_size(repo, sha)))
    return b"".join(out) + pkt_line(None)


def _handler(repo: Repo, proto: ReceivableProtocol) -> AmphubUploadPackHandler:
    return AmphubUploadPackHandler(one_repo_backend(repo), REPO_ARGS, proto, stateless_rpc=True)


def _refs(repo: Repo) -> dict[Ref, ObjectID]:
    """The refs whose objects are stored, as upload-pack serves them."""
    return {ref: sha for ref, sha in repo.get_refs().items() if sha in repo.object_store}


def fetch(repo: Repo, arguments: list[bytes], write: Callable[[bytes], None]) -> None:
    """A v2 fetch: acknowledgments until the client is done, then shallow-info and the pack."""
    request = UploadRequest(capabilities={CAPABILITY_SIDE_BAND_64K})
    haves: list[bytes] = []
    want_refs: list[Ref] = []
    done = wait_for_done = False
    for line in arguments:
        name, _, value = line.partition(b" ")
        if name == b"want":
            request.wants.append(binary_id(value))
        elif name == b"want-ref":
            want_refs.append(Ref(value))
        elif name == b"have":
            haves.append(binary_id(value))
        elif name == b"done":
            done = True
        elif name == b"wait-for-done":
            wait_for_done = True
        elif name in FLAG_ARGUMENTS:
            request.capabilities.add(FLAG_ARGUMENTS[name])
        elif take_history_line(request, name, value):
            pass
        else:  # sideband-all and packfile-uris too: not advertised
            raise GitProtocolError(f"unknown fetch argument {name.decode(errors='replace')}")
    if not request.wants and not want_refs and not wait_for_done:
        return  # nothing wanted: git's upload-pack answers nothing
    keep = parse_filter(request.filter_spec)
    proto = ReceivableProtocol(lambda size: b"", write)
    handler = _handler(repo, proto)
    handler.set_client_capabilities(list(request.capabilities))
    handler.request = request
    refs = _refs(repo)
    wanted_refs = {}
    for ref in want_refs:
        if ref not in refs:
            raise GitProtocolError(f"unknown ref {ref.decode(errors='replace')}")
        wanted_refs[ref] = refs[ref]
        request.wants.append(unhexlify(refs[ref]))
    asked = {Ref(b"want/%d" % i): ObjectID(hexlify(sha)) for i, sha in enumerate(request.wants)}
    allowed = {sha for sha in refs.values()} | set(handler.reachable(refs, asked).values())
    for sha in asked.values():
        if sha not in allowed:
            raise GitProtocolError(f"upload-pack: not our ref {sha.decode()}")
    common = [ObjectID(hexlify(sha)) for sha in haves]
    common = [sha for sha in common if sha in repo.object_store]
    if not done:
        lines = [b"ACK " + sha + b"\n" for sha in common] or [b"NAK\n"]
        proto.write(pkt_line(b"acknowledgments\n") + b"".join(pkt_line(x) for x in lines))
        if not common or wait_for_done:  # the pack waits for `done`
            proto.write(pkt_line(None))
            return
        proto.write(pkt_line(b"ready\n") + DELIM)
    cut = handler.cut(refs) if request.deepens else NO_CUT
    if request.deepens:
        proto.write(pkt_line(b"shallow-info\n"))
        handler.write_shallow_lines(cut)
        proto.write(DELIM)
    if wanted_refs:
        proto.write(pkt_line(b"wanted-refs\n"))
        for ref, sha in wanted_refs.items():
            proto.write(pkt_line(sha + b" " + ref + b"\n"))
        proto.write(DELIM)
    proto.write(pkt_line(b"packfile\n"))
    handler.send_pack(refs, [ObjectID(hexlify(w)) for w in request.wants], common, cut, keep)
