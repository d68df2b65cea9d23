"""The naming rules for users, spaces and models, each with the sentence that explains it."""

from __future__ import annotations

import re
import secrets
import unicodedata

from amphub.errors import InvalidName

SPACE_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,38}")

SPACE_RULE = (
    "a space id is 2 to 63 characters of lowercase letters a-z, digits and '-',"
    " starting with a letter or digit"
)
MODEL_RULE = (
    "a model id is 1 to 96 characters of ASCII letters, digits, '.', '_' and '-',"
    " starting with a letter or digit and not ending in '.git'"
)
USER_RULE = (
    "a user name is 1 to 39 characters of lowercase letters a-z, digits, '.', '_' and '-',"
    " starting with a letter or digit"
)
# The first path segment of routes that are not a model's: a space by that name would share
# its models' paths with them.
RESERVED_SPACE_IDS = frozenset({"api"})
PEER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
PEER_RULE = (
    "a zone or deploy target name is 1 to 63 characters of lowercase letters a-z, digits,"
    " '.', '_' and '-', starting with a letter or digit"
)
DISPLAY_NAME_MAX = 200


def check_space_id(space_id: str) -> str:
    """Return the id if it follows the space rule, else raise InvalidName."""
    if not SPACE_ID.fullmatch(space_id):
        raise InvalidName(f"invalid space id {space_id!r}: {SPACE_RULE}")
    return space_id


def check_new_space_id(space_id: str) -> str:
    """Return the id if a new space may take it, else raise InvalidName."""
    if check_space_id(space_id) in RESERVED_SPACE_IDS:
        raise InvalidName(f"the space id {space_id!r} is reserved: amphub's paths begin with it")
    return space_id


def check_model_id(model_id: str) -> str:
    """Return the id if it follows the model rule, else raise InvalidName."""
    if not MODEL_ID.fullmatch(model_id) or model_id.lower().endswith(".git"):
        raise InvalidName(f"invalid model id {model_id!r}: {MODEL_RULE}")
    return model_id


def check_user_name(name: str) -> str:
    """Return the name if it follows the user rule, else raise InvalidName."""
    if not USER_NAME.fullmatch(name):
        raise InvalidName(f"invalid user name {name!r}: {USER_RULE}")
    return name


def check_peer_name(name: str) -> str:
    """Return the name if it follows the zone and deploy target rule, else raise InvalidName."""
    if not PEER_NAME.fullmatch(name):
        raise InvalidName(f"invalid name {name!r}: {PEER_RULE}")
    return name


def check_display_name(name: str) -> str:
    """Any Unicode text with something visible in it, at most 200 characters, no controls."""
    name = name.strip()
    if not name or len(name) > DISPLAY_NAME_MAX:
        raise InvalidName(f"a display name is 1 to {DISPLAY_NAME_MAX} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidName("a display name may not contain control characters")
    return name


def space_id_from_name(name: str, *, random_tail: bool = False) -> str:
    """A space id made from a display name; a random tail is added when asked or needed."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:50].strip("-")
    if len(slug) < 2 or slug in RESERVED_SPACE_IDS:
        slug, random_tail = "space", True
    return f"{slug}-{secrets.token_hex(3)}" if random_tail else slug
