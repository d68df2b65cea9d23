"""Cards and search at scale: README parsing rate, then search latency over 100,000 models.

Goals (issue: cards and search): parse_card reads more than 2,000 READMEs/s; a free-text
search with two filters and facets answers in p95 < 50 ms over 100,000 models, both as the
administrator and as a user who may retrieve 1 % of them.

Each README's description has 0.7-3 KB of prose drawn from a 40,000-word vocabulary, all
of it searched (the index holds each description's distinct words). Searches are answered
from an index in memory (amphub/search/); the first one comes while the server builds it at
the start (on SQLite the SQL form answers it meanwhile). After the timings through HTTP,
the bench builds one more index directly and prints how long that took and the memory it
holds, checks its answers against the plain SQL form of the same searches
(amphub.db.search_models_by_sql, facet_counts_by_sql: SQLite's, so on SQLite only), and
times a search made right after a card was stored (the index replays the change first).

Run: python bench/search.py [--models 100000] [--readmes 10000] [--runs 200] [--seed 1]
     [--data DIR]  (build the hub in DIR and keep it, e.g. for EXPLAIN QUERY PLAN)
     [--database sqlite|postgresql|URL]  (the metadata on PostgreSQL: see bench/common.py)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import secrets
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from random import Random
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer
from common import DATABASE_HELP, databases

from amphub import db
from amphub.cards import Card, parse_card
from amphub.clock import rfc3339
from amphub.config import Config
from amphub.policy.matrix import Actor
from amphub.server.app import bootstrap, create_app
from amphub.services import accounts
from amphub.services.cards import card_row
from amphub.services.search import ModelSearch, model_query

# ---------------------------------------------------------------- the vocabulary

NLP, CV, MM = "Natural Language Processing", "Computer Vision", "Multimodal"
AUDIO, TABLE, RL = "Audio", "Table", "Reinforcement Learning"

# Per task type: weight among models, model families, algorithms (weighted), frameworks
# (weighted, the first one or two picked), tags, datasets and metric names.
DOMAINS: dict[str, dict] = {
    NLP: {
        "weight": 40,
        "families": ["bert-base-uncased", "roberta-large", "gpt2", "llama-2-7b", "qwen-7b-chat",
                     "t5-small", "chatglm3-6b", "baichuan2-13b", "mistral-7b-instruct",
                     "deberta-v3-base", "bart-large-cnn", "xlm-roberta-base", "distilbert",
                     "ernie-3.0-base-zh", "opus-mt-en-zh", "bloom-560m", "falcon-7b"],
        "algorithms": [("Text Generation", 30), ("Text Classification", 15), ("Fill-Mask", 10),
                       ("Token Classification", 8), ("Question Answering", 8),
                       ("Summarization", 5), ("Translation", 6), ("Conversational", 6),
                       ("Text2Text Generation", 4), ("Sentence Similarity", 5),
                       ("Zero-Shot Classification", 2), ("Table Question Answering", 1)],
        "frameworks": [("PyTorch", 55), ("TensorFlow", 10), ("JAX", 4), ("PaddlePaddle", 8),
                       ("Transformers", 10), ("ONNX", 3), ("Sentence Transformers", 3),
                       ("spaCy", 2), ("Flair", 1), ("AllenNLP", 1), ("PaddleNLP", 2),
                       ("NeMo", 1)],
        "extra_framework": "Transformers",
        "tags": ["bert", "gpt", "llama", "exbert", "en", "zh", "multilingual", "chinese",
                 "text-generation-inference", "conversational", "lora", "peft", "instruct",
                 "chat", "roberta", "t5", "ner", "sentiment-analysis", "question-answering",
                 "causal-lm", "finance", "legal", "medical", "code", "rlhf", "sft"],
        "datasets": ["wikipedia", "bookcorpus", "c4", "squad", "squad_v2", "glue", "mnli",
                     "sst2", "conll2003", "xsum", "cnn_dailymail", "LAMBADA", "WebText",
                     "the_pile", "openwebtext", "CLUE", "CMRC2018", "DuReader", "wmt16",
                     "alpaca", "ShareGPT", "WuDaoCorpora", "MMLU", "C-Eval", "GSM8K",
                     "HumanEval"],
        "metrics": ["accuracy", "f1", "exact_match", "bleu", "rouge1", "rougeL", "PPL", "ACC"],
    },
    CV: {
        "weight": 25,
        "families": ["resnet-50", "vit-base-patch16-224", "yolov8n", "detr-resnet-50",
                     "segformer-b0", "convnext-tiny", "swin-base", "efficientnet-b0",
                     "mask2former-swin", "dpt-large", "videomae-base", "mobilenet-v3",
                     "ddpm-cifar10", "owlvit-base", "clip-vit-zero-shot"],
        "algorithms": [("Image Classification", 35), ("Object Detection", 20),
                       ("Image Segmentation", 15), ("Depth Estimation", 5),
                       ("Image-to-Image", 5), ("Unconditional Image Generation", 5),
                       ("Video Classification", 5), ("Zero-Shot Image Classification", 5),
                       ("Others", 5)],
        "frameworks": [("PyTorch", 60), ("TensorFlow", 10), ("Timm", 12), ("Keras", 5),
                       ("MXNet", 2), ("PaddlePaddle", 5), ("ONNX", 4), ("Caffe", 1),
                       ("fast.ai", 1)],
        "extra_framework": "Timm",
        "tags": ["vision", "image-classification", "resnet", "vit", "yolo", "detr",
                 "segmentation", "object-detection", "imagenet", "timm", "convnext", "edge",
                 "mobile", "medical-imaging", "remote-sensing", "autonomous-driving"],
        "datasets": ["imagenet-1k", "imagenet-21k", "coco", "ade20k", "cityscapes", "cifar10",
                     "cifar100", "Places365", "kinetics-400", "nyu_depth_v2", "pascal-voc",
                     "objects365", "LVIS"],
        "metrics": ["top-1", "top-5", "mAP", "mIoU", "AP50", "accuracy", "abs_rel"],
    },
    MM: {
        "weight": 12,
        "families": ["clip-vit-b32", "blip-image-captioning", "stable-diffusion-v1-5",
                     "llava-1.5-7b", "layoutlmv3-base", "donut-base", "qwen-vl-chat",
                     "sdxl-base-1.0", "graphormer-base", "chinese-clip-vit"],
        "algorithms": [("Text-to-Image", 30), ("Image-to-Text", 20), ("Feature Extraction", 15),
                       ("Visual Question Answering", 15), ("Document Question Answering", 10),
                       ("Graph Machine Learning", 5), ("Others", 5)],
        "frameworks": [("PyTorch", 50), ("Diffusers", 25), ("Transformers", 15), ("JAX", 5),
                       ("ONNX", 5)],
        "extra_framework": "Transformers",
        "tags": ["clip", "stable-diffusion", "text-to-image", "diffusers", "blip", "llava",
                 "multimodal", "vqa", "ocr", "document-ai", "art", "lora", "anime", "chinese"],
        "datasets": ["laion-2b", "laion-5b", "conceptual_captions", "vqav2", "docvqa",
                     "textvqa", "mscoco_captions", "flickr30k", "ogbg-molhiv", "Wukong"],
        "metrics": ["FID", "CLIP score", "CIDEr", "accuracy", "ANLS", "recall@1"],
    },
    AUDIO: {
        "weight": 10,
        "families": ["whisper-small", "wav2vec2-base-960h", "hubert-large", "fastspeech2",
                     "speecht5-tts", "ecapa-voxceleb", "conformer-aishell", "vits-ljspeech",
                     "pyannote-vad", "encodec-24khz"],
        "algorithms": [("Automatic Speech Recognition", 45), ("Text-to-Speech", 20),
                       ("Audio Classification", 15), ("Voice Activity Detection", 8),
                       ("Audio-to-Audio", 8), ("Others", 4)],
        "frameworks": [("PyTorch", 45), ("ESPnet", 12), ("SpeechBrain", 12), ("NeMo", 8),
                       ("TensorFlowTTS", 5), ("PyAnnote", 5), ("Asteroid", 3),
                       ("PyCTCDecode", 2), ("PaddlePaddle", 5), ("Transformers", 3)],
        "extra_framework": "Transformers",
        "tags": ["audio", "speech", "asr", "tts", "whisper", "wav2vec2", "hubert",
                 "speaker-verification", "vad", "zh", "en", "multilingual", "streaming"],
        "datasets": ["librispeech_asr", "common_voice", "AISHELL-1", "AISHELL-3", "ljspeech",
                     "vctk", "AudioSet", "voxceleb", "WenetSpeech", "gigaspeech"],
        "metrics": ["wer", "cer", "MOS", "EER", "accuracy", "DER"],
    },
    TABLE: {
        "weight": 5,
        "families": ["xgboost-credit-risk", "tabnet-housing", "lightgbm-churn",
                     "catboost-fraud", "sklearn-titanic"],
        "algorithms": [("Tabular Classification", 60), ("Tabular Regression", 35),
                       ("Others", 5)],
        "frameworks": [("Scikit Learn", 50), ("PyTorch", 20), ("Keras", 10),
                       ("TensorFlow", 10), ("Others", 10)],
        "extra_framework": "ONNX",
        "tags": ["tabular", "xgboost", "lightgbm", "sklearn", "finance", "credit", "churn",
                 "fraud-detection", "regression"],
        "datasets": ["titanic", "adult-census", "california-housing", "credit-card-fraud",
                     "telco-churn", "higgs"],
        "metrics": ["accuracy", "auc", "rmse", "f1", "r2"],
    },
    RL: {
        "weight": 8,
        "families": ["ppo-LunarLander-v2", "dqn-SpaceInvaders", "sac-HalfCheetah",
                     "a2c-CartPole", "ppo-Huggy", "td3-Walker2d", "impala-procgen"],
        "algorithms": [("Reinforcement Learning", 80), ("Robotics", 15), ("Others", 5)],
        "frameworks": [("Stable-Baselines3", 40), ("PyTorch", 25), ("ML-Agents", 10),
                       ("Sample Factory", 8), ("RL-Baselines3-Zoo", 10), ("TensorFlow", 7)],
        "extra_framework": "RL-Baselines3-Zoo",
        "tags": ["reinforcement-learning", "deep-reinforcement-learning", "ppo", "dqn", "sac",
                 "atari", "mujoco", "gym", "robotics", "unity", "custom-implementation"],
        "datasets": ["atari", "mujoco", "gym", "procgen", "d4rl", "minigrid"],
        "metrics": ["mean_reward", "success_rate", "episode_length"],
    },
}  # fmt: skip
COMMON_TAGS = ["safetensors", "pytorch", "onnx", "int8", "4-bit", "quantized", "gguf",
               "fine-tuned", "distillation", "region:us", "autotrain_compatible",
               "endpoints_compatible", "benchmark", "research", "production"]  # fmt: skip
LICENSES = [("apache-2.0", 30), ("mit", 20), ("cc-by-4.0", 8), ("cc-by-nc-4.0", 6),
            ("openrail", 5), ("creativeml-openrail-m", 4), ("llama2", 5), ("bsd-3-clause", 4),
            ("gpl-3.0", 3), ("other", 5), ("afl-3.0", 2), ("Apache License 2.0", 3),
            ("agpl-3.0", 2), ("unlicense", 1), ("cc-by-sa-4.0", 2)]  # fmt: skip
INDUSTRIES = [
    "Intelligent assistant",
    "Finance",
    "Healthcare",
    "E-commerce",
    "Education",
    "Manufacturing",
    "Autonomous driving",
    "Security",
    "Media",
    "Telecom",
]
CHINESE_INDUSTRIES = ["金融", "医疗", "智能客服", "电商", "教育", "智能制造", "政务", "安防"]
CHINESE_TAGS = ["中文", "对话", "大模型", "文本生成", "问答", "情感分析", "语音识别", "图像分类",
                "多模态", "知识蒸馏", "指令微调"]  # fmt: skip
CHINESE_DATASETS = ["中文维基百科", "悟道", "百度百科", "人民日报语料", "中文对话数据集",
                    "CLUE", "DuReader", "AISHELL-1", "Wukong"]  # fmt: skip
PERMISSIONS = ["Public", "Public", "Internal", "Restricted", "公开"]
# Spellings people write; the parser must bring each to the taxonomy's.
TYPE_SPELLINGS = {NLP: ["Natural language processing", "NLP", "natural-language-processing"],
                  CV: ["Computer vision", "CV", "computer_vision"],
                  MM: ["Multimodal", "multimodal"], AUDIO: ["Audio", "audio"],
                  TABLE: ["Table", "tabular"],
                  RL: ["Reinforcement Learning", "RL", "reinforcement-learning"]}  # fmt: skip
FRAMEWORK_SPELLINGS = {"PyTorch": ["PyTorch", "pytorch", "torch", "Pytorch"],
                       "TensorFlow": ["TensorFlow", "tensorflow", "tf"],
                       "Scikit Learn": ["Scikit Learn", "sklearn", "scikit-learn"],
                       "PaddlePaddle": ["PaddlePaddle", "paddle"],
                       "Sentence Transformers": ["sentence-transformers"]}  # fmt: skip
UNKNOWN_FRAMEWORKS = ["MindSpore", "OneFlow", "peft", "llama.cpp"]

ENGLISH = [
    "This model is a fine-tuned version of {family} on the {dataset} dataset.",
    "It was trained with mixed precision on 8 A100 GPUs for {n} epochs.",
    "The model is intended for research on {task} and should be evaluated before use.",
    "We release the weights under the {license} license; see LICENSE for details.",
    "Inputs longer than {n}k tokens are truncated; outputs may contain biases from {dataset}.",
    "Compared with the base checkpoint, accuracy improves by {n}.{n} points on average.",
    "The tokenizer is shared with {family}, so existing pipelines can load it unchanged.",
]
CHINESE = [
    "本模型基于{family}在{dataset}数据集上微调得到，适用于{task}任务。",
    "训练使用了{n}张GPU，共训练{n}个轮次，采用混合精度。",
    "模型仅供研究使用，请在实际部署前进行充分评估。",
    "我们在{dataset}上进行了评测，结果见下表。",
    "本模型以{license}协议开源，欢迎在遵守协议的前提下使用。",
    "输入文本超过{n}千字时会被截断，输出可能包含训练数据中的偏见。",
]


# Prose with a realistic vocabulary for the descriptions' "Model details": made-up words,
# drawn with Zipf's law (the word of rank r about 1/r as often as the first).
SYLLABLES = ["ba", "ker", "to", "lin", "mo", "res", "qua", "vi", "den", "sol", "tra", "ex",
             "pan", "gor", "li", "um", "stra", "ne", "fi", "cor"]  # fmt: skip
LEXICON = [a + b for a in SYLLABLES for b in SYLLABLES]
LEXICON += [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]
LEXICON += [a + b + c + d for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES
            for d in SYLLABLES[:4]]  # fmt: skip
LEXICON = list(dict.fromkeys(LEXICON))  # about 40,000 words
Random(7).shuffle(LEXICON)
ZIPF = list(accumulate(1 / rank for rank in range(1, len(LEXICON) + 1)))


def prose(rng: Random, count: int) -> str:
    """`count` words of made-up prose, in sentences."""
    words = rng.choices(LEXICON, cum_weights=ZIPF, k=count)
    return " ".join(" ".join(words[at : at + 12]).capitalize() + "." for at in range(0, count, 12))


def pick(rng: Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def hf_slug(name: str) -> str:
    return name.lower().replace(" ", "-")


def yaml_list(rng: Random, key: str, items: list[str]) -> list[str]:
    """A list in block or flow style, as people write both."""
    if rng.random() < 0.3:
        return [f"{key}: [{', '.join(items)}]"]
    return [f"{key}:", *(f"- {item}" for item in items)]


def sentences(rng: Random, pool: list[str], count: int, **words: object) -> str:
    joiner = "" if pool is CHINESE else " "
    chosen = rng.sample(pool, min(count, len(pool)))
    return joiner.join(line.format(n=rng.randint(2, 64), **words) for line in chosen)


def body(rng: Random, family: str, task: str, datasets: list[str], license: str, zh: bool):
    """Markdown after the front matter: title, prose, usage, results, limitations."""
    pool = CHINESE if zh else ENGLISH
    words = {"family": family, "task": task, "license": license, "dataset": datasets[0]}
    parts = [f"# {family}", sentences(rng, pool, rng.randint(2, 6), **words)]
    if rng.random() < 0.7:
        parts.append("## 使用方法" if zh else "## How to use")
        parts.append(
            "```python\nfrom transformers import AutoModel, AutoTokenizer\n"
            f'model = AutoModel.from_pretrained("{family}")\n'
            f"# {'示例' if zh else 'example'}: run on a batch\n```"
        )
    if rng.random() < 0.6:
        parts.append("## 评测结果" if zh else "## Evaluation results")
        rows = [f"| {d} | {rng.uniform(20, 99):.2f} |" for d in datasets]
        parts.append("| Dataset | Score |\n|---|---|\n" + "\n".join(rows))
        parts.append(sentences(rng, pool, rng.randint(1, 3), **words))
    headings = (
        ["## 训练过程", "## 局限性", "## 引用"]
        if zh
        else ["## Training procedure", "## Limitations and bias", "## Citation"]
    )
    for heading in rng.sample(headings, rng.randint(1, 3)):
        parts.append(heading)
        parts.append(sentences(rng, pool, rng.randint(2, 8), **words))
    parts += ["## Model details", prose(rng, rng.randint(100, 450))]  # 0.7-3 KB
    return "\n\n".join(parts) + "\n"


def parameter_text(rng: Random) -> str:
    count = rng.choice([22, 66, 110, 125, 340, 560, 1300, 1700, 6000, 7000, 13000, 70000])
    count *= 1_000_000
    style = rng.random()
    if style < 0.5:
        return str(count)
    if style < 0.7:
        return f"{count:,}"
    if style < 0.95:
        return f"{count / 1e9:g}B" if count >= 1e9 else f"{count // 1_000_000}M"
    return "about 7 billion"  # a warning, the rest of the card still fills


def dataset_block(rng: Random, indent: str, name: str) -> list[str]:
    link = f"https://huggingface.co/datasets/{name}" if rng.random() < 0.6 else ""
    if rng.random() < 0.02:
        link = f"ftp://data.example.org/{name}"  # warned and dropped
    return [
        f"{indent}Dataset:",
        f"{indent}  Name: {name}",
        f"{indent}  Permission: {rng.choice(PERMISSIONS)}",
        f"{indent}  Link: {link}".rstrip(),
    ]


def amphub_readme(rng: Random, task: str, family: str, zh: bool) -> str:
    domain = DOMAINS[task]
    frameworks = [pick(rng, domain["frameworks"])]
    if rng.random() < 0.5:
        frameworks.append(domain["extra_framework"])
    if rng.random() < 0.02:
        frameworks.append(rng.choice(UNKNOWN_FRAMEWORKS))
    frameworks = [rng.choice(FRAMEWORK_SPELLINGS.get(f, [f])) for f in dict.fromkeys(frameworks)]
    algorithm = pick(rng, domain["algorithms"])
    tags = rng.sample(domain["tags"], rng.randint(1, 5))
    tags += rng.sample(COMMON_TAGS, rng.randint(0, 2))
    if zh:
        tags += rng.sample(CHINESE_TAGS, rng.randint(1, 3))
    license = pick(rng, LICENSES)
    pool = domain["datasets"] + (CHINESE_DATASETS if zh else [])
    evaluated = rng.sample(pool, rng.randint(1, 3))
    trained = rng.sample(pool, rng.randint(1, 2))
    lines = ["---"]
    if rng.random() < 0.7:
        lines += yaml_list(rng, "Training framework", frameworks)
    else:
        lines.append(f"Training framework: {', '.join(frameworks)}")
    style = rng.random()
    if style < 0.8:
        kind = rng.choice(TYPE_SPELLINGS[task])
        lines += ["Job type:", f"  Type: {kind}", f"  Algorithm: {algorithm}"]
    elif algorithm != "Others":
        lines.append(f"Job type: {hf_slug(algorithm) if style < 0.9 else algorithm}")
    else:
        lines.append(f"Job type: {task}")
    industry = rng.choice(CHINESE_INDUSTRIES if zh else INDUSTRIES)
    lines.append(f"Industry: {industry}")
    lines += yaml_list(rng, "Other tag", [f'"{t}"' if ":" in t else t for t in tags])
    if rng.random() < 0.9:
        lines.append(f"Number of parameters: {parameter_text(rng)}")
    lines.append(f"Open-source protocol: {license}")
    lines.append("Performance information:")
    for name in evaluated:
        block = dataset_block(rng, "  ", name)
        lines += ["- " + block[0].lstrip(), *block[1:], "  Performance metric:"]
        for metric in rng.sample(domain["metrics"], min(len(domain["metrics"]), 2)):
            value = f"{rng.uniform(10, 99):.2f}"
            lines.append(f"    {metric}: {value + '%' if rng.random() < 0.1 else value}")
    lines.append("Training data:")
    for name in trained:
        block = dataset_block(rng, "  ", name)
        lines += ["- " + block[0].lstrip(), *block[1:]]
    lines.append("---")
    return "\n".join(lines) + "\n" + body(rng, family, algorithm, evaluated, license, zh)


HF_LIBRARIES = {NLP: ["transformers", "transformers", "pytorch", "sentence-transformers",
                      "peft", "paddlenlp", "spacy", "flair"],
                CV: ["timm", "transformers", "pytorch", "keras", "fastai"],
                MM: ["diffusers", "transformers", "pytorch", "open_clip"],
                AUDIO: ["espnet", "speechbrain", "transformers", "nemo", "pyannote-audio"],
                TABLE: ["sklearn", "keras"],
                RL: ["stable-baselines3", "ml-agents", "sample-factory"]}  # fmt: skip


def hugging_face_readme(rng: Random, task: str, family: str) -> str:
    domain = DOMAINS[task]
    algorithm = pick(rng, domain["algorithms"])
    tags = rng.sample(domain["tags"], rng.randint(1, 6)) + rng.sample(COMMON_TAGS, 2)
    license = hf_slug(pick(rng, LICENSES))
    datasets = rng.sample(domain["datasets"], rng.randint(1, 3))
    lines = ["---", f"library_name: {rng.choice(HF_LIBRARIES[task])}"]
    if algorithm != "Others":
        lines.append(f"pipeline_tag: {hf_slug(algorithm)}")
    lines += yaml_list(rng, "tags", [f'"{t}"' if ":" in t else t for t in tags])
    lines.append(f"license: {license}")
    lines += yaml_list(rng, "datasets", datasets)
    if rng.random() < 0.3:
        lines += yaml_list(rng, "language", rng.sample(["en", "zh", "fr", "de", "ja"], 2))
    if rng.random() < 0.5:
        lines += ["model-index:", f"- name: {family}", "  results:"]
        for name in datasets:
            lines += [
                "  - task:",
                f"      type: {hf_slug(algorithm)}",
                "    dataset:",
                f"      name: {name}",
                f"      type: {name.lower()}",
                "    metrics:",
            ]
            for metric in rng.sample(domain["metrics"], min(len(domain["metrics"]), 2)):
                lines += [f"    - type: {metric}", f"      value: {rng.uniform(0.1, 0.99):.4f}"]
    lines.append("---")
    return "\n".join(lines) + "\n" + body(rng, family, algorithm, datasets, license, False)


def make_readme(rng: Random) -> tuple[str, bool, str]:
    """(model family, whether Chinese, README text)."""
    task = pick(rng, [(name, d["weight"]) for name, d in DOMAINS.items()])
    family = rng.choice(DOMAINS[task]["families"])
    style = rng.random()
    if style < 0.02:  # no front matter: an empty card
        return family, False, body(rng, family, task, ["wikipedia"], "mit", False)
    if style < 0.14:
        return family, True, amphub_readme(rng, task, family, zh=True)
    if style < 0.50:
        return family, False, hugging_face_readme(rng, task, family)
    return family, False, amphub_readme(rng, task, family, zh=False)


# ---------------------------------------------------------------- filling the hub

SPACES = [("research", "Research", 40), ("production", "Production", 30),
          ("vision-lab", "Vision lab", 20), ("nlp-team", "NLP team", 10)]  # fmt: skip
VARIANTS = ["ft", "v2", "int8", "lora", "chat", "base", "distilled", "awq", "exp"]


def model_rows(rng: Random, count: int, families: list[tuple[str, bool]]) -> list[db.Model]:
    now = datetime.now(UTC)
    models = []
    for i in range(count):
        family, zh = families[i % len(families)]
        space = pick(rng, [(s, w) for s, _, w in SPACES])
        created = now - timedelta(seconds=rng.randint(3600, 730 * 86400))
        updated = created + timedelta(seconds=rng.randint(0, int((now - created).total_seconds())))
        model_id = f"{family}-{rng.choice(VARIANTS)}-{i:06d}"
        name = f"{family} {'中文版' if zh else rng.choice(VARIANTS)} {i}"
        models.append(
            db.Model(space, model_id, name, "private", "admin", rfc3339(created), rfc3339(updated))
        )
    return models


CARD_SQL = (
    "INSERT INTO cards (space_id, model_id, commit_id, card, task_type, algorithm, license,"
    " parameters, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Rows per transaction of the bulk fill. Each row's trigger bumps the one row of the search
# clock: on PostgreSQL every bump in one transaction leaves a version that the next one
# steps over, so a transaction of n rows takes n² steps (100,000 models: 6 minutes).
CHUNK = 200
VALUE_SQL = (
    "INSERT INTO card_values (space_id, model_id, field, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)


async def populate(
    config: Config, rng: Random, cards: list[Card], families: list[tuple[str, bool]], count: int
) -> dict[str, str]:
    admin_key = await bootstrap(config)
    assert admin_key is not None
    async with db.opened(config.database_target) as database:
        _, user_key = await accounts.create_user(database, "reader", by="bench")
        for space_id, name, _ in SPACES:
            await db.insert_space(
                database, space_id, name, 100 * 1024**3, "pay_as_you_go", None, "admin"
            )
        models = model_rows(rng, count, families)
        start = time.perf_counter()
        for at in range(0, count, CHUNK):
            async with database.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO models (space_id, id, name, visibility, owner, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (m.space_id, m.id, m.name, m.visibility, m.owner, m.created_at,
                         m.updated_at)
                        for m in models[at : at + CHUNK]
                    ],
                )  # fmt: skip
        async with database.transaction() as conn:
            granted = rng.sample(models, max(1, count // 100))  # the reader may retrieve 1 %
            await conn.executemany(
                "INSERT INTO model_members (space_id, model_id, user, role)"
                " VALUES (?, ?, 'reader', 'user')",
                [(m.space_id, m.id) for m in granted],
            )
        print(f"models: {count} rows in {time.perf_counter() - start:.2f} s")

        rows = [
            card_row(m, secrets.token_hex(20), cards[i % len(cards)]) for i, m in enumerate(models)
        ]
        one_by_one = min(1000, count)  # the server's path, for its rate
        start = time.perf_counter()
        for model, row in zip(models[:one_by_one], rows[:one_by_one], strict=True):
            await db.store_card(database, model.space_id, model.id, row)
        took = time.perf_counter() - start
        print(f"store_card: {one_by_one / took:,.0f} cards/s one by one ({one_by_one} cards)")
        start = time.perf_counter()
        for at in range(one_by_one, count, CHUNK):
            pairs = list(zip(models[at : at + CHUNK], rows[at : at + CHUNK], strict=True))
            async with database.transaction() as conn:
                await conn.executemany(
                    CARD_SQL,
                    [
                        (m.space_id, m.id, r.commit_id, r.card_json, r.task_type, r.algorithm,
                         r.license, r.parameters, r.search_text)
                        for m, r in pairs
                    ],
                )  # fmt: skip
                await conn.executemany(
                    VALUE_SQL,
                    [(m.space_id, m.id, f, v) for m, r in pairs for f, v in r.values],
                )
        took = time.perf_counter() - start
        print(f"cards: {count - one_by_one} more in bulk in {took:.1f} s")
    # The server's start gives a model without a repository one, and re-reads its card from
    # it; an empty folder stands for each here, as searching reads no repository.
    for model in models:
        (config.repos_dir / model.space_id / f"{model.id}.git").mkdir(parents=True, exist_ok=True)
    return {"admin": admin_key, "reader": user_key}


# ---------------------------------------------------------------- searching

# Tags, dataset names, licenses and name parts, each matching 1 to 30 % of the cards.
TEXTS = ["bert", "wikipedia", "squad", "chinese", "apache", "llama", "glue", "大模型", "instruct",
         "qwen"]  # fmt: skip
SHORT_TEXTS = ["zh", "en", "v2", "7b", "中文"]  # under 3 characters: no trigram index
# Several words, each anywhere in the card (id, name, values, description), in any order.
WORD_TEXTS = ["bert base", "chinese 7b", "apache squad", "llama instruct", "text generation",
              "Computer Vision", "qwen chat zh"]  # fmt: skip
# Words of the descriptions' prose, common to rare, whole and as typed (a prefix).
DESCRIBED_TEXTS = [LEXICON[2], LEXICON[30], LEXICON[400], LEXICON[3000], LEXICON[5][:3],
                   LEXICON[50][:4], f"{LEXICON[1]} {LEXICON[900][:4]}", "fine-tun", "precis",
                   "evaluat"]  # fmt: skip
FILTERS = {"framework": "PyTorch", "task_type": "Natural language processing"}


def percentile(times: list[float], share: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(share * 100) - 1]


async def time_searches(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    texts: list[str],
    filters: dict[str, str],
    runs: int,
) -> tuple[list[float], list[int]]:
    headers = {"Authorization": f"Bearer {key}"}
    times, totals = [], []
    for i in range(runs):
        params = {"q": texts[i % len(texts)], **filters} if texts else dict(filters)
        start = time.perf_counter()
        async with session.get(f"{url}/api/v1/models?{urlencode(params)}", headers=headers) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        times.append(time.perf_counter() - start)
        totals.append(body["total"])
    return times, totals


def parse_all(readmes: list[bytes]) -> list[Card]:
    start = time.perf_counter()
    cards = [parse_card(readme) for readme in readmes]
    took = time.perf_counter() - start
    warned = sum(1 for card in cards if card.warnings)
    size = sum(map(len, readmes)) / len(readmes)
    print(
        f"parse: {len(readmes) / took:,.0f} READMEs/s (goal > 2,000) — {len(readmes)} READMEs,"
        f" {size / 1024:.1f} KiB average, {warned} with warnings"
    )
    return cards


def search_query(
    who: Actor, text: str, config: Config, filters: dict[str, str] = FILTERS
) -> db.SearchQuery:
    """The query amphub's search service builds for this caller and text."""
    live_after = rfc3339(datetime.now(UTC) - timedelta(days=config.grace_days))
    return model_query(who, ModelSearch(text=text, filters=filters), live_after)


PEOPLE = {"admin": Actor("admin", admin=True), "reader": Actor("reader")}


async def build_index(database: db.Database, config: Config) -> db.SearchIndex:
    """A fresh index of the hub, with the time it took and the memory it holds."""
    query = search_query(PEOPLE["admin"], "", config, {})
    start = time.perf_counter()
    await db.search_models(database, db.SearchIndex(), query, "updated", 1, 0)
    took = time.perf_counter() - start
    tracemalloc.start()
    index = db.SearchIndex()
    await db.search_models(database, index, query, "updated", 1, 0)
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"index: {len(index):,} models, built in {took:.1f} s; holds {held / 2**20:.0f} MiB"
        f" (peak {peak / 2**20:.0f} MiB while loading)"
    )
    return index


async def check_against_sql(database: db.Database, index: db.SearchIndex, config: Config) -> None:
    """Every kind of search the bench times, and each sort, answered as the SQL form does."""
    texts = TEXTS + SHORT_TEXTS + WORD_TEXTS + DESCRIBED_TEXTS
    cases = [(t, FILTERS) for t in texts] + [(t, {}) for t in texts] + [("", FILTERS)]
    cases += [("", {}), ("", {"tag": "CHINESE", "license": "MIT"}), ("bert", {"space": "research"})]
    checked = 0
    for who, actor in PEOPLE.items():
        for i, (text, filters) in enumerate(cases):
            query = search_query(actor, text, config, filters)
            sort = list(db.SORTS)[i % len(db.SORTS)]
            offset = 20 * (i % 3)
            found = await db.search_models(database, index, query, sort, 20, offset)
            page = await db.search_models_by_sql(database, query, sort, 20, offset)
            facets = await db.facet_counts_by_sql(database, query)
            total = sum(facets["space"].values())
            same = (found.models, found.total, found.facets) == (page, total, facets)
            assert same, f"{who} {text!r} {filters} {sort}: the index and the SQL differ"
            checked += 1
    print(f"index checked against the SQL form: {checked} searches, all equal")


async def breakdown(config: Config, runs: int, cards: list[Card]) -> None:
    """The index's memory and exactness, and the median ms of a search without HTTP."""
    async with db.opened(config.database_target) as database:
        index = await build_index(database, config)
        # The SQL form of a search is SQLite's (FTS5), the reference the index is held to.
        by_sql = database.dialect == "sqlite"
        if by_sql:
            await check_against_sql(database, index, config)
        for who, actor in PEOPLE.items():
            times: dict[str, list[float]] = {"index": []}
            for i in range(runs):
                query = search_query(actor, TEXTS[i % len(TEXTS)], config)
                start = time.perf_counter()
                await db.search_models(database, index, query, "updated", 20, 0)
                times["index"].append(time.perf_counter() - start)
                if by_sql:
                    start = time.perf_counter()
                    await db.search_models_by_sql(database, query, "updated", 20, 0)
                    await db.facet_counts_by_sql(database, query)
                    times.setdefault("SQL page + facets", []).append(time.perf_counter() - start)
            print(
                f"  text + 2 filters, {who:6} median:  "
                + "  ".join(f"{k} {statistics.median(v) * 1000:5.1f} ms" for k, v in times.items())
            )
        # A push re-stores one card; the next search replays it before answering.
        models = await db.list_models(database)
        times = []
        for i in range(runs):
            model = models[i * 997 % len(models)]
            row = card_row(model, secrets.token_hex(20), cards[i % len(cards)])
            await db.store_card(database, model.space_id, model.id, row)
            start = time.perf_counter()
            await db.search_models(
                database, index, search_query(PEOPLE["admin"], "bert", config), "updated", 20, 0
            )
            times.append(time.perf_counter() - start)
        took = statistics.median(times) * 1000
        print(f"  text + 2 filters, admin, right after a card was stored: {took:.1f} ms median")


async def database_size(config: Config) -> int:
    if config.database == "sqlite":
        return config.db_path.stat().st_size
    async with db.opened(config.database_target) as database:
        rows = await database.fetch_all("SELECT pg_database_size(current_database())", ())
    return int(rows[0][0])


async def run(args: argparse.Namespace, data_dir: Path, database: str) -> None:
    rng = Random(args.seed)
    made = [make_readme(rng) for _ in range(args.readmes)]
    cards = parse_all([text.encode() for _, _, text in made])
    kinds = Counter(card.task_type for card in cards)
    print("task types:", ", ".join(f"{k}: {v}" for k, v in kinds.most_common()))

    config = Config(data_dir=data_dir, database=database)
    print(f"database: {database.split('@')[-1]}")
    families = [(family, zh) for family, zh, _ in made]
    keys = await populate(config, rng, cards, families, args.models)
    print(f"database: {await database_size(config) / 1024**2:.0f} MiB")

    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            # The server builds its index at the start: this search comes while it does.
            start = time.perf_counter()
            await time_searches(session, url, keys["admin"], TEXTS, FILTERS, 1)
            took = time.perf_counter() - start
            print(f"first search, made while the index is built at the start: {took:.2f} s")
            cases = [  # (label, texts, filters, whether the goal applies)
                ("text + 2 filters", TEXTS, FILTERS, True),
                ("words + 2 filters", WORD_TEXTS, FILTERS, True),
                ("described + 2 filters", DESCRIBED_TEXTS, FILTERS, True),
                ("described only", DESCRIBED_TEXTS, {}, False),
                ("words only", WORD_TEXTS, {}, False),
                ("filters only", [], FILTERS, False),
                ("2-char text + filters", SHORT_TEXTS, FILTERS, False),
                ("text only", TEXTS, {}, False),
            ]
            for label, texts, filters, goal in cases:
                for who in ("admin", "reader"):
                    key = keys[who]
                    search = functools.partial(time_searches, session, url, key, texts, filters)
                    await search(len(texts) or 1)  # warm up
                    times, totals = await search(args.runs)
                    p50, p95 = (percentile(times, s) * 1000 for s in (0.5, 0.95))
                    verdict = (" ok" if p95 < 50 else " MISSED") if goal else ""
                    print(
                        f"{label:22} {who:6}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms"
                        f"{' (goal p95 < 50 ms)' + verdict if goal else ''}"
                        f"  matches {min(totals)}–{max(totals)}"
                    )
    finally:
        await server.close()
    print("the index (amphub.db called directly, no HTTP):")
    await breakdown(config, max(len(TEXTS), args.runs // 4), cards)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--readmes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, help="build the hub here and keep it")
    parser.add_argument("--database", default="sqlite", help=DATABASE_HELP)
    args = parser.parse_args()
    if args.data and args.data.exists():
        parser.error(f"{args.data} exists; give a new directory")
    with databases(args.database) as new_database:
        if args.data:
            await run(args, args.data, new_database())
            return
        with tempfile.TemporaryDirectory(prefix="amphub-search-") as tmp:
            await run(args, Path(tmp), new_database())


if __name__ == "__main__":
    asyncio.run(main())
