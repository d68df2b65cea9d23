"""Pushing one ref of a local repository to another amphub over smart HTTP.

Blocking (dulwich's HTTP client): run it with `run_blocking`. Only objects the peer's
advertised refs do not already reach are sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Set
from pathlib import Path

import urllib3
from dulwich.client import HttpGitClient, HTTPUnauthorized
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import ObjectID
from dulwich.pack import UnpackedObject
from dulwich.refs import Ref
from dulwich.repo import Repo

PUSH_TIMEOUT = 300


class PushRefused(Exception):
    """The peer refused the push; the message says why in the peer's words."""


class PushInterrupted(Exception):
    """The connection failed; trying again may work."""


def push_ref(path: Path, url: str, user: str, key: str, repo: str, ref: str, sha: str) -> int:
    """Set `ref` on the peer's `repo` to `sha`, sending what it lacks; the objects sent."""
    client = HttpGitClient(url.rstrip("/") + "/", username=user, password=key, timeout=PUSH_TIMEOUT)
    sent = 0

    def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
        return {**refs, Ref(ref.encode()): ObjectID(sha.encode())}

    with Repo(str(path)) as local:

        def generate(
            have: Set[ObjectID],
            want: Set[ObjectID],
            ofs_delta: bool = False,
            progress: Callable[[bytes], None] | None = None,
        ) -> tuple[int, Iterator[UnpackedObject]]:
            nonlocal sent
            known = {sha for sha in have if sha in local.object_store}
            count, records = local.generate_pack_data(known, set(want), ofs_delta=ofs_delta)
            sent = count
            return count, records

        try:
            result = client.send_pack(f"{repo}.git", update_refs, generate)
        except HTTPUnauthorized:
            raise PushRefused("the peer did not accept the zone's user name and key") from None
        except HangupException as exc:
            raise PushInterrupted(f"the peer hung up: {exc}") from None
        except NotGitRepository:
            # A model whose creation (by another sync) has its row but not yet its repository.
            raise PushInterrupted("the peer has no repository for the model yet") from None
        except GitProtocolError as exc:
            raise PushRefused(str(exc)) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise PushInterrupted(f"{type(exc).__name__}: {exc}") from None
    refused = {name.decode(): why for name, why in (result.ref_status or {}).items() if why}
    if refused and not _holds(client, repo, ref, sha):
        raise PushRefused("; ".join(f"{name}: {why}" for name, why in refused.items()))
    return sent


def _holds(client: HttpGitClient, repo: str, ref: str, sha: str) -> bool:
    """Whether the peer's ref points at `sha` already (another push of it won the race)."""
    try:
        refs = client.get_refs(f"{repo}.git")
    except (GitProtocolError, OSError, urllib3.exceptions.HTTPError):
        return False
    return refs.refs.get(Ref(ref.encode())) == ObjectID(sha.encode())
