"""Model cards: README.md front matter → a card for display, filters and search.

``parse_card`` is the entry point; see ``card`` for the rules, ``safe_yaml`` for how
the front matter is read safely and ``taxonomy`` for the vocabulary.
"""

from amphub.cards.card import Card, Dataset, Performance, parse_card
from amphub.cards.taxonomy import (
    FRAMEWORKS,
    TASK_TYPES,
    canonical_algorithm,
    canonical_framework,
    canonical_task_type,
)

__all__ = [
    "FRAMEWORKS",
    "TASK_TYPES",
    "Card",
    "Dataset",
    "Performance",
    "canonical_algorithm",
    "canonical_framework",
    "canonical_task_type",
    "parse_card",
]
