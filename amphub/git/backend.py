"""The dulwich server backend of one request: the one repository it opened, on disk."""

from __future__ import annotations

from dulwich.repo import Repo
from dulwich.server import BackendRepo, DictBackend

# What a handler's `args` name: the only repository of `one_repo_backend`.
REPO_ARGS = ["."]


def one_repo_backend(repo: Repo) -> DictBackend:
    """A backend that serves `repo` under the name in `REPO_ARGS`."""
    repos: dict[str, BackendRepo] = {REPO_ARGS[0]: repo}
    return DictBackend(repos)


def disk_repo(repo: BackendRepo) -> Repo:
    """A handler's repository as the `Repo` on disk it is; dulwich types it as any."""
    if not isinstance(repo, Repo):
        raise TypeError(f"{repo!r} is not a repository on disk")
    return repo
