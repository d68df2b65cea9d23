"""The first section of a v0/v1 upload-pack request: wants, shallow lines, deepen and filter.

amphub reads this section itself and hands dulwich's negotiation only the want lines,
so that dulwich's own shallow and filter handling (which rebuilds every object and
writes each side-band piece by copying the rest of the pack) never runs.
"""

from __future__ import annotations

from binascii import unhexlify
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dulwich.errors import GitProtocolError
from dulwich.protocol import CAPABILITY_DEEPEN_RELATIVE, pkt_line


@dataclass
class UploadRequest:
    """What the first section of a request asked for; ids binary."""

    wants: list[bytes] = field(default_factory=list)
    capabilities: set[bytes] = field(default_factory=set)
    client_shallow: set[bytes] = field(default_factory=set)
    depth: int | None = None
    since: int | None = None
    not_refs: list[bytes] = field(default_factory=list)
    filter_spec: bytes | None = None
    # The head as dulwich's negotiation reads it: the want lines, then all past the section.
    negotiation: bytes = b""

    @property
    def deepens(self) -> bool:
        """Whether the client asked for a shallow history (new, deeper or shallower)."""
        return self.depth is not None or self.since is not None or bool(self.not_refs)

    @property
    def relative(self) -> bool:
        """Whether `depth` counts from the client's shallow commits (`git fetch --deepen`)."""
        return CAPABILITY_DEEPEN_RELATIVE in self.capabilities


def read_request_head(recv: Callable[[int], bytes]) -> bytes:
    """The request's bytes up to its first flush-pkt (or less if it is malformed)."""
    data = bytearray()
    pos = 0
    while True:
        while len(data) < pos + 4:
            chunk = recv(65536)
            if not chunk:
                return bytes(data)
            data += chunk
        try:
            size = int(data[pos : pos + 4], 16)
        except ValueError:
            return bytes(data)
        if size < 4:
            return bytes(data)
        pos += size


def request_lines(head: bytes) -> Iterator[tuple[bytes, int]]:
    """The pkt-line payloads of a request's first section, each with where it ends."""
    pos = 0
    while pos + 4 <= len(head):
        try:
            size = int(head[pos : pos + 4], 16)
        except ValueError:
            return
        if size < 4:
            return
        yield head[pos + 4 : pos + size], pos + size
        pos += size


def parse_request(head: bytes) -> UploadRequest:
    """Read the first section; a line amphub does not know is a GitProtocolError."""
    request = UploadRequest()
    wants = []
    end = 0
    for index, (raw, line_end) in enumerate(request_lines(head)):
        end = line_end
        line = raw.rstrip(b"\n")
        command, _, value = line.partition(b" ")
        if command == b"want":
            sha, _, caps = value.partition(b" ")
            if index == 0:
                request.capabilities = set(caps.split())
            request.wants.append(binary_id(sha))
            wants.append(pkt_line(raw))
        elif not take_history_line(request, command, value):
            raise GitProtocolError(f"unexpected line in an upload-pack request: {line!r}")
    if request.depth is not None and (request.since is not None or request.not_refs):
        raise GitProtocolError("deepen cannot be used with deepen-since or deepen-not")
    request.negotiation = b"".join(wants) + head[end:]
    return request


def take_history_line(request: UploadRequest, command: bytes, value: bytes) -> bool:
    """Note a shallow, deepen or filter line (the same in v0/v1 and v2); False for others."""
    if command == b"shallow":
        request.client_shallow.add(binary_id(value))
    elif command == b"deepen":
        request.depth = number(value)
    elif command == b"deepen-since":
        request.since = number(value)
    elif command == b"deepen-not":
        request.not_refs.append(value)
    elif command == b"filter":
        request.filter_spec = value
    else:
        return False
    return True


def binary_id(value: bytes) -> bytes:
    """The binary id of a hex object id on a request line."""
    try:
        sha = unhexlify(value)
    except ValueError:
        sha = b""
    if len(sha) != 20:
        raise GitProtocolError(f"not an object id: {value!r}")
    return sha


def number(value: bytes) -> int:
    """A number on a request line."""
    if not value.isdigit():
        raise GitProtocolError(f"not a number: {value!r}")
    return int(value)
