"""A model card in the Hub's words: cardData, library_name, pipeline_tag and tags.

Pure functions over a README's front matter and amphub's card (its JSON form). The
README's own front matter comes first, as the Hub returns it; then each Hugging Face key
it lacks is filled from amphub's fields, and each amphub field it lacks from the card,
which amphub.cards already filled from the Hugging Face keys (TAXONOMY.md). A client
that reads either vocabulary finds the same card.
"""

from __future__ import annotations

import re
from typing import Any

from amphub.cards import safe_yaml
from amphub.cards.card import FRONT_MATTER_LIMIT
from amphub.cards.taxonomy import match_key

# The fences amphub.cards reads: "---" (one space may come first) and "---" alone.
_FRONT_MATTER = re.compile(r"\ufeff? ?---\r?\n(.*?\n)---\r?(?:\n|\Z)", re.DOTALL)
# Frameworks that the Hub shows as tags, beside the library that uses them.
_BASE_FRAMEWORKS = frozenset({"PyTorch", "TensorFlow", "JAX", "ONNX", "Others"})
_HUB_NAMES = {
    "fast.ai": "fastai",
    "Scikit Learn": "sklearn",
    "PyAnnote": "pyannote-audio",
    "Graph Machine Learning": "graph-ml",
}


def front_matter(readme: bytes) -> dict[str, Any]:
    """The README's YAML front matter as a mapping; {} when there is none or it is bad."""
    found = _FRONT_MATTER.match(readme[: FRONT_MATTER_LIMIT * 4].decode(errors="replace"))
    if not found or len(found.group(1)) > FRONT_MATTER_LIMIT:
        return {}
    try:
        value = safe_yaml.load(found.group(1), lambda _: None)
    except safe_yaml.Rejected:
        return {}
    return value if isinstance(value, dict) else {}


def hub_name(name: str) -> str:
    """The Hub's spelling of a framework or algorithm: `Text Generation` → `text-generation`."""
    return _HUB_NAMES.get(name) or re.sub(r"[\s_]+", "-", name.strip()).lower()


def library_name(card: dict[str, Any]) -> str | None:
    """The library of the card's frameworks: the first that is not a base framework."""
    frameworks = [f for f in card.get("frameworks", []) if f != "Others"]
    libraries = [f for f in frameworks if f not in _BASE_FRAMEWORKS] or frameworks
    return hub_name(libraries[0]) if libraries else None


def pipeline_tag(card: dict[str, Any]) -> str | None:
    """The Hub's pipeline tag for the card's algorithm."""
    algorithm = card.get("algorithm")
    return hub_name(algorithm) if algorithm and algorithm != "Others" else None


def model_tags(card: dict[str, Any]) -> list[str]:
    """The tags the Hub shows for a model: frameworks, task, the card's tags, license, data."""
    tags = [hub_name(f) for f in card.get("frameworks", []) if f != "Others"]
    tags += [t for t in (pipeline_tag(card),) if t]
    tags += card.get("tags", [])
    if card.get("license"):
        tags.append(f"license:{card['license']}")
    tags += [f"dataset:{d['name']}" for d in card.get("training_data", [])]
    return list(dict.fromkeys(tags))


def _model_index(card: dict[str, Any], model_name: str) -> list[dict[str, Any]] | None:
    results = [
        {
            "task": {"type": pipeline_tag(card) or "other"},
            "dataset": {"name": p["dataset"]["name"], "type": p["dataset"]["name"]},
            "metrics": [{"type": k, "name": k, "value": v} for k, v in p["metrics"].items()],
        }
        for p in card.get("performance", [])
    ]
    return [{"name": model_name, "results": results}] if results else None


def _dataset(dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "Dataset": {
            "Name": dataset["name"],
            "Permission": dataset["permission"],
            "Link": dataset["link"],
        }
    }


def _amphub_fields(card: dict[str, Any]) -> dict[str, Any]:
    job = {"Type": card.get("task_type"), "Algorithm": card.get("algorithm")}
    performance = [
        {**_dataset(p["dataset"]), "Performance metric": p["metrics"]}
        for p in card.get("performance", [])
    ]
    return {
        "Training framework": card.get("frameworks"),
        "Job type": job,
        "Industry": card.get("industry"),
        "Other tag": card.get("tags"),
        "Number of parameters": card.get("parameters"),
        "Open-source protocol": card.get("license"),
        "Performance information": performance,
        "Training data": [_dataset(d) for d in card.get("training_data", [])],
    }


def _hub_fields(card: dict[str, Any], model_name: str) -> dict[str, Any]:
    return {
        "library_name": library_name(card),
        "pipeline_tag": pipeline_tag(card),
        "tags": card.get("tags"),
        "license": card.get("license"),
        "datasets": [d["name"] for d in card.get("training_data", [])],
        "model-index": _model_index(card, model_name),
    }


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return value is None or value == "" or value == []


def card_data(raw: dict[str, Any], card: dict[str, Any], model_name: str) -> dict[str, Any]:
    """cardData: the front matter as written, with both vocabularies filled from the card."""
    data = {key: value for key, value in raw.items() if isinstance(key, str)}
    given = {match_key(key) for key, value in data.items() if not _empty(value)}
    for key, value in {**_hub_fields(card, model_name), **_amphub_fields(card)}.items():
        if match_key(key) not in given and not _empty(value):
            data = {k: v for k, v in data.items() if match_key(k) != match_key(key)}
            data[key] = value
    return data
