"""Partial clone filters amphub serves: blob:none, blob:limit=<n> and tree:<depth>."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dulwich.errors import GitProtocolError

SERVED = "blob:none, blob:limit=<n> and tree:<depth>"
UNITS = {b"": 1, b"k": 1024, b"m": 1024**2, b"g": 1024**3}


@dataclass(frozen=True)
class ObjectFilter:
    """Which trees and blobs a filtered pack leaves out (wanted objects are always sent)."""

    blob_limit: int | None = None  # blobs of this size or more are left out
    tree_depth: int | None = None  # trees and blobs this deep or deeper are left out

    def keeps(self, depth: int) -> bool:
        """Whether a tree or blob `depth` levels below a commit's root tree is sent."""
        return self.tree_depth is None or depth < self.tree_depth

    def keeps_blob(self, depth: int, size: Callable[[], int]) -> bool:
        """Whether a blob at `depth` is sent; `size` is asked only when it decides."""
        if not self.keeps(depth) or self.blob_limit == 0:
            return False
        return self.blob_limit is None or size() < self.blob_limit


NO_FILTER = ObjectFilter()
BLOB_NONE = ObjectFilter(blob_limit=0)


def parse_filter(spec: bytes | None) -> ObjectFilter:
    """The filter a `filter <spec>` line asks for; one amphub does not serve is refused."""
    if spec is None:
        return NO_FILTER
    kind, _, value = spec.partition(b":")
    if spec == b"blob:none":
        return BLOB_NONE
    if kind == b"blob" and value.startswith(b"limit="):
        number = value.removeprefix(b"limit=").lower()
        unit = number[-1:] if number[-1:] in UNITS else b""
        digits = number.removesuffix(unit)
        if digits.isdigit():
            return ObjectFilter(blob_limit=int(digits) * UNITS[unit])
    if kind == b"tree" and value.isdigit():
        return ObjectFilter(tree_depth=int(value))
    raise GitProtocolError(f"filter {spec.decode(errors='replace')} is not served; {SERVED} are")
