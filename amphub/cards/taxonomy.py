"""The model-card vocabulary from TAXONOMY.md, and its canonical spellings.

Matching ignores case, spaces, hyphens and underscores (``text generation`` =
``Text-Generation``). A few aliases cover Hugging Face's spellings (``fastai``,
``sklearn``, ``graph-ml``) and common short forms (``NLP``, ``CV``, ``RL``).
"""

from __future__ import annotations

import re

FRAMEWORKS: tuple[str, ...] = (
    "PyTorch", "TensorFlow", "Keras", "Caffe", "Theano", "CNTK", "MXNet", "PaddlePaddle",
    "Deeplearning4j", "ONNX", "JAX", "Transformers", "Diffusers", "Adapter Transformers",
    "AllenNLP", "Asteroid", "docTR", "ESPnet", "fast.ai", "Flair", "ML-Agents", "NeMo",
    "PaddleNLP", "PyAnnote", "PyCTCDecode", "Pythae", "RL-Baselines3-Zoo", "Sample Factory",
    "Sentence Transformers", "spaCy", "Scikit Learn", "SpeechBrain", "Stable-Baselines3",
    "TensorFlowTTS", "Timm", "Others",
)  # fmt: skip

TASK_TYPES: dict[str, tuple[str, ...]] = {
    "Multimodal": (
        "Feature Extraction", "Text-to-Image", "Image-to-Text", "Visual Question Answering",
        "Document Question Answering", "Graph Machine Learning", "Others",
    ),
    "Computer Vision": (
        "Depth Estimation", "Image Classification", "Object Detection", "Image Segmentation",
        "Image-to-Image", "Unconditional Image Generation", "Video Classification",
        "Zero-Shot Image Classification", "Others",
    ),
    "Natural Language Processing": (
        "Text Classification", "Token Classification", "Table Question Answering",
        "Question Answering", "Zero-Shot Classification", "Translation", "Summarization",
        "Conversational", "Text Generation", "Text2Text Generation", "Fill-Mask",
        "Sentence Similarity", "Others",
    ),
    "Audio": (
        "Text-to-Speech", "Automatic Speech Recognition", "Audio-to-Audio",
        "Audio Classification", "Voice Activity Detection", "Others",
    ),
    "Table": ("Tabular Classification", "Tabular Regression", "Others"),
    "Reinforcement Learning": ("Reinforcement Learning", "Robotics", "Others"),
}  # fmt: skip

_SEPARATORS = re.compile(r"[\s_-]+")


def match_key(value: str) -> str:
    """Return the form two spellings share when they name the same thing."""
    return _SEPARATORS.sub("", value).casefold()


_FRAMEWORK_ALIASES = {"fastai": "fast.ai", "sklearn": "Scikit Learn", "torch": "PyTorch",
                      "pyannoteaudio": "PyAnnote", "tf": "TensorFlow", "tfkeras": "Keras",
                      "paddle": "PaddlePaddle"}  # fmt: skip
_TYPE_ALIASES = {"nlp": "Natural Language Processing", "cv": "Computer Vision",
                 "rl": "Reinforcement Learning", "tabular": "Table"}  # fmt: skip
_ALGORITHM_ALIASES = {"graphml": "Graph Machine Learning"}


def _algorithm_index() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Map each algorithm's key to its spelling and every type it belongs to."""
    index: dict[str, tuple[str, tuple[str, ...]]] = {}
    for task_type, algorithms in TASK_TYPES.items():
        for algorithm in algorithms:
            _, types = index.get(match_key(algorithm), (algorithm, ()))
            index[match_key(algorithm)] = (algorithm, (*types, task_type))
    for alias, algorithm in _ALGORITHM_ALIASES.items():
        index[alias] = index[match_key(algorithm)]
    return index


_FRAMEWORK_INDEX = {match_key(name): name for name in FRAMEWORKS} | _FRAMEWORK_ALIASES
_TYPE_INDEX = {match_key(name): name for name in TASK_TYPES} | _TYPE_ALIASES
_ALGORITHM_INDEX = _algorithm_index()


def canonical_framework(value: str) -> str | None:
    """Return the taxonomy's spelling of a training framework.

    Args:
        value: A name as written, e.g. ``"pytorch"`` or ``"sentence-transformers"``.

    Returns:
        The canonical spelling, or None when the name is not in the taxonomy.
    """
    return _FRAMEWORK_INDEX.get(match_key(value))


def canonical_task_type(value: str) -> str | None:
    """Return the taxonomy's spelling of a task type, or None when unknown.

    Args:
        value: A type as written, e.g. ``"Natural language processing"``.
    """
    return _TYPE_INDEX.get(match_key(value))


def canonical_algorithm(value: str, task_type: str | None = None) -> tuple[str | None, str | None]:
    """Return ``(type, algorithm)`` in the taxonomy's spelling.

    Args:
        value: An algorithm as written, e.g. ``"text-generation"``.
        task_type: The type it was given with, if any.

    Returns:
        The algorithm's canonical spelling (None when unknown) and its type: ``task_type``
        when the algorithm belongs to it, otherwise the only type it belongs to, otherwise
        None (``"Others"`` belongs to every type). A caller that passed a type can tell a
        mismatch by the type coming back different.
    """
    algorithm, types = _ALGORITHM_INDEX.get(match_key(value), (None, ()))
    wanted = task_type and canonical_task_type(task_type)
    if wanted in types:
        return wanted, algorithm
    return (types[0] if len(types) == 1 else None), algorithm
