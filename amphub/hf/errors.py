"""The Hub's errors: amphub.http.errors renders their codes as X-Error-Code for huggingface_hub."""

from __future__ import annotations

from amphub.errors import Forbidden, NotFound, Unauthorized


class RepoNotFound(NotFound):
    """No such repository, or one the caller may not see (RepositoryNotFoundError)."""

    code = "RepoNotFound"


class HiddenRepo(Unauthorized):
    """A repository an anonymous caller may not see: 401 as the Hub answers, still RepoNotFound."""

    code = "RepoNotFound"


class RevisionNotFound(NotFound):
    """No branch, tag or commit by that name (RevisionNotFoundError)."""

    code = "RevisionNotFound"


class EntryNotFound(NotFound):
    """No file or folder at that path in the revision (RemoteEntryNotFoundError)."""

    code = "EntryNotFound"


class GatedRepo(Forbidden):
    """The caller may see the repository but not download its files (GatedRepoError)."""

    code = "GatedRepo"
