"""`amphub.cards.parse_card`: README.md front matter → model card, every rule and bad input.

Expected values are written out here from /work/shared/DESIGN.md and TAXONOMY.md, not
derived from amphub.cards' own tables.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from amphub.cards import (
    FRAMEWORKS,
    TASK_TYPES,
    Card,
    Dataset,
    Performance,
    canonical_algorithm,
    canonical_framework,
    canonical_task_type,
    parse_card,
    safe_yaml,
)
from amphub.cards.card import DESCRIPTION_LIMIT
from tests.samples import SEED, SEED_WITH_CBT_CN

# A guard against runaway work (backtracking, alias expansion), not a speed test:
# linear work takes well under a second here; speed is measured in bench/.
HANG_GUARD = 30

LAMBADA = Performance(Dataset("LAMBADA", "Public", None), {"PPL": 35.13, "ACC": 45.99})
WEBTEXT = Dataset("WebText", "Public", "https://github.com/openai/gpt-2/blob/master/domains.txt")
SEED_CARD = Card(
    frameworks=("PyTorch", "Transformers"),
    task_type="Natural Language Processing",
    algorithm="Text Generation",
    industry="Intelligent assistant",
    tags=("exbert", "en"),
    parameters=1700000000,
    license="mit",
    performance=(LAMBADA,),
    training_data=(WEBTEXT,),
    description="Other model descriptions...",
    performance_text="",
    warnings=(),
)
FAST = settings(max_examples=150, deadline=None)


def card_of(front_matter: str, body: str = "") -> Card:
    return parse_card(f"---\n{front_matter}---\n{body}")


# --- the seed example -------------------------------------------------------------------


def test_the_design_example_gives_the_documented_card():
    assert parse_card(SEED) == SEED_CARD


def test_the_design_example_as_json():
    assert parse_card(SEED).to_json() == {
        "frameworks": ["PyTorch", "Transformers"],
        "task_type": "Natural Language Processing",
        "algorithm": "Text Generation",
        "industry": "Intelligent assistant",
        "tags": ["exbert", "en"],
        "parameters": 1700000000,
        "license": "mit",
        "performance": [
            {
                "dataset": {"name": "LAMBADA", "permission": "Public", "link": None},
                "metrics": {"PPL": 35.13, "ACC": 45.99},
            }
        ],
        "training_data": [
            {
                "name": "WebText",
                "permission": "Public",
                "link": "https://github.com/openai/gpt-2/blob/master/domains.txt",
            }
        ],
        "description": "Other model descriptions...",
        "performance_text": "",
        "warnings": [],
    }


def test_a_second_performance_entry():
    readme = SEED_WITH_CBT_CN
    card = parse_card(readme)
    cbt = Performance(Dataset("CBT_CN", "Public", None), {"ACC": 87.65})
    assert card.performance == (LAMBADA, cbt)
    assert card.warnings == ()
    assert card.dataset_names() == ("LAMBADA", "CBT_CN", "WebText")


def test_bytes_and_crlf_give_the_same_card():
    assert parse_card(SEED.encode()) == SEED_CARD
    assert parse_card(SEED.replace("\n", "\r\n")) == SEED_CARD
    assert parse_card(SEED.replace("\n", "\r\n").encode()) == SEED_CARD


def test_a_utf8_byte_order_mark_is_skipped():
    assert parse_card("\ufeff" + SEED) == SEED_CARD
    assert parse_card(b"\xef\xbb\xbf" + SEED.encode()) == SEED_CARD


# --- the --- rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening,closing",
    [("---", "---"), (" ---", "---"), ("---\r", "---\r"), (" ---\r", "---")],
)
def test_accepted_fences(opening, closing):
    card = parse_card(f"{opening}\nIndustry: Finance\n{closing}\nBody")
    assert (card.industry, card.description, card.warnings) == ("Finance", "Body", ())


@pytest.mark.parametrize("opening", ["  ---", "--- ", "----", "---x", "\n---", "# ---", "\t---"])
def test_other_first_lines_are_not_front_matter(opening):
    readme = f"{opening}\nIndustry: Finance\n---\nBody"
    card = parse_card(readme)
    assert card.industry is None
    assert card.warnings == ()
    assert card.description == readme.strip("\n")


@pytest.mark.parametrize("closing", [" ---", "--- ", "----", "---x", "...", "- --"])
def test_other_lines_do_not_close_the_front_matter(closing):
    readme = f"---\nIndustry: Finance\n{closing}\nBody"
    card = parse_card(readme)
    assert card.industry is None
    assert card.warnings == (
        "Front matter: no closing '---' line; the README was read as description",
    )
    assert card.description == readme


def test_the_first_closing_line_ends_the_front_matter():
    card = parse_card("---\nIndustry: Finance\n---\nBody\n---\nMore")
    assert card.industry == "Finance"
    assert card.description == "Body\n---\nMore"


def test_closing_fence_at_the_very_end():
    card = parse_card("---\nIndustry: Finance\n---")
    assert (card.industry, card.description, card.warnings) == ("Finance", "", ())


@pytest.mark.parametrize("readme", ["", "\n", "# Title\n\nText", "---", "---x\n"])
def test_no_front_matter_is_an_empty_card_without_warnings(readme):
    card = parse_card(readme)
    assert card == Card(description=readme.strip())


@pytest.mark.parametrize("readme", ["---\n---\n", "---\n\n---\n", "---\n# just a comment\n---\n"])
def test_empty_front_matter(readme):
    assert parse_card(readme) == Card()


@pytest.mark.parametrize(
    "front,kind",
    [("- a\n- b\n", "a list"), ("hello\n", "text"), ("42\n", "a number"), ("true\n", "true/false")],
)
def test_front_matter_that_is_not_a_mapping(front, kind):
    assert card_of(front).warnings == (
        f"Front matter: expected fields (a mapping), got {kind}; ignored",
    )


def test_a_second_yaml_document_is_ignored_with_a_warning():
    card = card_of("Industry: Finance\n--- \nIndustry: Retail\n")
    assert card.industry == "Finance"
    assert card.warnings == ("Front matter: more than one YAML document; only the first read",)


# --- Training framework -----------------------------------------------------------------


@pytest.mark.parametrize(
    "written,canonical",
    [
        ("pytorch", "PyTorch"),
        ("PYTORCH", "PyTorch"),
        ("sentence_transformers", "Sentence Transformers"),
        ("Sentence-Transformers", "Sentence Transformers"),
        ("stable baselines3", "Stable-Baselines3"),
        ("rl_baselines3_zoo", "RL-Baselines3-Zoo"),
        ("ml agents", "ML-Agents"),
        ("Fast.AI", "fast.ai"),
        ("fastai", "fast.ai"),
        ("scikit-learn", "Scikit Learn"),
        ("sklearn", "Scikit Learn"),
        ("  Deep Learning 4j ", "Deeplearning4j"),
        ("others", "Others"),
    ],
)
def test_framework_spellings(written, canonical):
    assert canonical_framework(written) == canonical
    assert card_of(f"Training framework:\n- {written}\n").frameworks == (canonical,)


def test_every_taxonomy_framework_is_canonical():
    assert len(FRAMEWORKS) == 36
    for name in FRAMEWORKS:
        assert canonical_framework(name) == name
        assert canonical_framework(name.upper().replace(" ", "_")) == name


def test_an_unknown_framework_is_kept_and_warned():
    card = card_of("Training framework:\n- PyTorch\n- Torchy\n")
    assert card.frameworks == ("PyTorch", "Torchy")
    assert card.warnings == ("Training framework: unknown value 'Torchy', kept as written",)
    assert canonical_framework("Torchy") is None


def test_frameworks_as_one_string_or_comma_separated():
    assert card_of("Training framework: pytorch\n").frameworks == ("PyTorch",)
    card = card_of("Training framework: PyTorch, transformers\n")
    assert card.frameworks == ("PyTorch", "Transformers")


def test_duplicate_frameworks_are_kept_once():
    card = card_of("Training framework: [PyTorch, pytorch, Py-Torch]\n")
    assert card.frameworks == ("PyTorch",)


def test_framework_items_that_are_not_names():
    card = card_of("Training framework:\n- PyTorch\n- {a: 1}\n- [x]\n-\n")
    assert card.frameworks == ("PyTorch",)
    assert card.warnings == (
        "Training framework (item 2): expected text, got a mapping; ignored",
        "Training framework (item 3): expected text, got a list; ignored",
    )


def test_frameworks_as_a_mapping():
    card = card_of("Training framework: {PyTorch: 1}\n")
    assert card.frameworks == ()
    assert card.warnings == ("Training framework: expected a list, got a mapping; ignored",)


def test_field_names_ignore_case_spaces_hyphens_and_underscores():
    card = card_of("training_framework: [JAX]\nOPEN-SOURCE PROTOCOL: mit\nother tag: x\n")
    assert (card.frameworks, card.license, card.tags) == (("JAX",), "mit", ("x",))


# --- Job type ---------------------------------------------------------------------------


def test_every_taxonomy_type_and_algorithm_is_canonical():
    assert list(TASK_TYPES) == [
        "Multimodal",
        "Computer Vision",
        "Natural Language Processing",
        "Audio",
        "Table",
        "Reinforcement Learning",
    ]
    for task_type, algorithms in TASK_TYPES.items():
        assert canonical_task_type(task_type.lower()) == task_type
        assert algorithms[-1] == "Others"
        for algorithm in algorithms:
            assert canonical_algorithm(algorithm.lower(), task_type) == (task_type, algorithm)


@pytest.mark.parametrize(
    "written,expected",
    [
        ("text-generation", ("Natural Language Processing", "Text Generation")),
        ("TEXT_GENERATION", ("Natural Language Processing", "Text Generation")),
        ("text2text generation", ("Natural Language Processing", "Text2Text Generation")),
        ("fill mask", ("Natural Language Processing", "Fill-Mask")),
        ("image to text", ("Multimodal", "Image-to-Text")),
        ("automatic-speech-recognition", ("Audio", "Automatic Speech Recognition")),
        ("graph-ml", ("Multimodal", "Graph Machine Learning")),
        ("reinforcement-learning", ("Reinforcement Learning", "Reinforcement Learning")),
        ("Others", (None, "Others")),
        ("Dancing", (None, None)),
    ],
)
def test_canonical_algorithm(written, expected):
    assert canonical_algorithm(written) == expected


def test_canonical_algorithm_with_a_type():
    assert canonical_algorithm("others", "computer vision") == ("Computer Vision", "Others")
    # Not in the given type: its own type comes back, so the caller can tell.
    assert canonical_algorithm("Text Generation", "Audio") == (
        "Natural Language Processing",
        "Text Generation",
    )


@pytest.mark.parametrize(
    "written,canonical",
    [
        ("natural language processing", "Natural Language Processing"),
        ("NLP", "Natural Language Processing"),
        ("computer-vision", "Computer Vision"),
        ("table", "Table"),
        ("Poetry", None),
    ],
)
def test_canonical_task_type(written, canonical):
    assert canonical_task_type(written) == canonical


def test_job_type_type_and_algorithm():
    card = card_of("Job type:\n  Type: computer vision\n  Algorithm: object-detection\n")
    assert (card.task_type, card.algorithm, card.warnings) == (
        "Computer Vision",
        "Object Detection",
        (),
    )


def test_an_algorithm_alone_gives_its_type():
    card = card_of("Job type:\n  Algorithm: Summarization\n")
    assert (card.task_type, card.algorithm) == ("Natural Language Processing", "Summarization")


def test_others_alone_has_no_type():
    card = card_of("Job type:\n  Algorithm: others\n")
    assert (card.task_type, card.algorithm, card.warnings) == (None, "Others", ())


def test_a_type_alone():
    card = card_of("Job type:\n  Type: audio\n")
    assert (card.task_type, card.algorithm, card.warnings) == ("Audio", None, ())


def test_an_algorithm_of_another_type_is_kept_and_warned():
    card = card_of("Job type:\n  Type: Computer Vision\n  Algorithm: Text Generation\n")
    assert (card.task_type, card.algorithm) == ("Computer Vision", "Text Generation")
    assert card.warnings == (
        "Job type: Algorithm 'Text Generation' is not a 'Computer Vision' algorithm",
    )


def test_unknown_type_and_algorithm_are_kept_and_warned():
    card = card_of("Job type:\n  Type: Poetry\n  Algorithm: Rhyming\n")
    assert (card.task_type, card.algorithm) == ("Poetry", "Rhyming")
    assert card.warnings == (
        "Job type → Type: unknown value 'Poetry', kept as written",
        "Job type → Algorithm: unknown value 'Rhyming', kept as written",
    )


def test_unknown_type_with_a_known_algorithm_keeps_the_written_type():
    card = card_of("Job type:\n  Type: Poetry\n  Algorithm: translation\n")
    assert (card.task_type, card.algorithm) == ("Poetry", "Translation")
    assert card.warnings == ("Job type → Type: unknown value 'Poetry', kept as written",)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Text Generation", ("Natural Language Processing", "Text Generation")),
        ("Audio", ("Audio", None)),
        ("Reinforcement Learning", ("Reinforcement Learning", "Reinforcement Learning")),
    ],
)
def test_job_type_as_one_name(value, expected):
    card = card_of(f"Job type: {value}\n")
    assert (card.task_type, card.algorithm, card.warnings) == (*expected, ())


def test_job_type_of_the_wrong_kind():
    card = card_of("Job type: [a, b]\nIndustry: Finance\n")
    assert (card.task_type, card.algorithm, card.industry) == (None, None, "Finance")
    assert card.warnings == ("Job type: expected text, got a list; ignored",)


def test_type_as_a_list():
    card = card_of("Job type:\n  Type: [Audio]\n  Algorithm: Text-to-Speech\n")
    assert (card.task_type, card.algorithm) == ("Audio", "Text-to-Speech")
    assert card.warnings == ("Job type → Type: expected text, got a list; ignored",)


# --- Industry, Other tag, Open-source protocol ------------------------------------------


def test_text_fields():
    card = card_of("Industry: 金融\nOpen-source protocol: Apache-2.0\n")
    assert (card.industry, card.license) == ("金融", "Apache-2.0")


def test_text_fields_of_the_wrong_kind():
    card = card_of("Industry: [a]\nOpen-source protocol: {a: b}\nOther tag: [x]\n")
    assert (card.industry, card.license, card.tags) == (None, None, ("x",))
    assert card.warnings == (
        "Industry: expected text, got a list; ignored",
        "Open-source protocol: expected text, got a mapping; ignored",
    )


def test_tags_list_single_string_numbers_and_yes_no():
    assert card_of("Other tag: exbert\n").tags == ("exbert",)
    card = card_of("Other tag: [no, yes, on, 2023, 1.5, true, null, '', 2020-01-01, en, en]\n")
    assert card.tags == ("no", "yes", "on", "2023", "1.5", "true", "2020-01-01", "en")
    assert card.warnings == ()


def test_tag_items_that_are_not_text():
    card = card_of("Other tag:\n- ok\n- {a: 1}\n")
    assert card.tags == ("ok",)
    assert card.warnings == ("Other tag (item 2): expected text, got a mapping; ignored",)


# --- Number of parameters ---------------------------------------------------------------


@pytest.mark.parametrize(
    "written,count",
    [
        ("1700000000", 1700000000),
        ("'1700000000'", 1700000000),
        ("1,700,000,000", 1700000000),
        ("1 700 000 000", 1700000000),
        ("1_700_000_000", 1700000000),
        ("1.7B", 1700000000),
        ("1.7 billion", 1700000000),
        ("125M", 125000000),
        ("7b", 7000000000),
        ("350k", 350000),
        ("1.5T", 1500000000000),
        ("1.7e9", 1700000000),
        ("0", 0),
    ],
)
def test_parameter_counts(written, count):
    card = card_of(f"Number of parameters: {written}\n")
    assert (card.parameters, card.warnings) == (count, ())


@pytest.mark.parametrize(
    "written,shown",
    [
        ("lots", "'lots'"),
        ("1,7B", "'1,7B'"),
        ("17,00", "'17,00'"),
        ("-5", "'-5'"),
        ("1.5", "'1.5'"),
        ("1.2345K", "'1.2345K'"),
        ("true", "'True'"),
        (".inf", "'inf'"),
        ("[1]", "a list"),
        ("1e30", "'1e+30'"),
        ("9223372036854775808", "'9223372036854775808'"),
    ],
)
def test_bad_parameter_counts(written, shown):
    card = card_of(f"Number of parameters: {written}\nIndustry: Finance\n")
    assert (card.parameters, card.industry) == (None, "Finance")
    assert card.warnings == (
        "Number of parameters: expected a whole number such as 1700000000 or '1.7B', "
        f"got {shown}; ignored",
    )


# --- Performance information and Training data ------------------------------------------


def test_metrics_written_as_text_or_percent():
    card = card_of(
        "Performance information:\n- Dataset: {Name: D}\n"
        "  Performance metric: {ACC: '45.5', F1: 90%, N: 3}\n"
    )
    assert card.performance == (
        Performance(Dataset("D", None, None), {"ACC": 45.5, "F1": 90.0, "N": 3.0}),
    )


def test_bad_metrics_are_dropped_with_warnings():
    card = card_of(
        "Performance information:\n- Dataset: {Name: D}\n"
        "  Performance metric:\n    ACC: high\n    F1: .nan\n    PPL:\n    BLEU: 30\n"
        "    X: [1]\n"
    )
    assert card.performance[0].metrics == {"BLEU": 30.0}
    assert card.warnings == (
        "Performance information (entry 1): metric 'ACC' is not a number; ignored",
        "Performance information (entry 1): metric 'F1' is not a number; ignored",
        "Performance information (entry 1): metric 'PPL' is not a number; ignored",
        "Performance information (entry 1): metric 'X' is not a number; ignored",
    )


def test_bad_performance_entries():
    card = card_of(
        "Performance information:\n- just text\n- Dataset: {Permission: Public}\n"
        "- Dataset: Named\n  Performance metric: [1, 2]\n"
    )
    assert card.performance == (Performance(Dataset("Named", None, None), {}),)
    assert card.warnings == (
        "Performance information (entry 1): expected Dataset and Performance metric, got text",
        "Performance information (entry 2): no dataset Name; ignored",
        "Performance information (entry 3): a metric has no name; ignored",
        "Performance information (entry 3): a metric has no name; ignored",
    )


def test_a_single_performance_mapping_is_one_entry():
    card = card_of("Performance information:\n  Dataset: {Name: D}\n  Performance metric: {A: 1}\n")
    assert card.performance == (Performance(Dataset("D", None, None), {"A": 1.0}),)


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,x", "ftp://x", "/relative", "http://a b"]
)
def test_links_must_be_web_addresses(link):
    card = card_of(f"Training data:\n- Dataset:\n    Name: D\n    Link: '{link}'\n")
    assert card.training_data == (Dataset("D", None, None),)
    assert card.warnings == (
        f"Training data (entry 1) → Link: {link!r} is not an http(s) address; ignored",
    )


def test_training_data_shapes():
    card = card_of(
        "Training data:\n- WebText\n- Name: Flat\n  Link: HTTPS://x.org\n"
        "- Dataset: {Name: 维基百科, Permission: Public}\n- {Dataset: {}}\n- [x]\n"
    )
    assert card.training_data == (
        Dataset("WebText", None, None),
        Dataset("Flat", None, "HTTPS://x.org"),
        Dataset("维基百科", "Public", None),
    )
    assert card.warnings == (
        "Training data (entry 4): no dataset Name; ignored",
        "Training data (entry 5): expected text, got a list; ignored",
        "Training data (entry 5): no dataset Name; ignored",
    )


def test_dataset_names_are_unique_and_in_order():
    card = card_of(
        "Performance information:\n- Dataset: {Name: A}\n- Dataset: {Name: B}\n"
        "Training data: [B, C, A]\n"
    )
    assert card.dataset_names() == ("A", "B", "C")


# --- Hugging Face keys ------------------------------------------------------------------

HF = """\
library_name: transformers
pipeline_tag: text-generation
tags: [gpt2, en]
license: apache-2.0
datasets:
- openwebtext
model-index:
- name: gpt2
  results:
  - task: {type: text-generation}
    dataset: {name: WikiText-103, type: wikitext}
    metrics:
    - {type: perplexity, value: 37.5, name: Test perplexity}
    - {type: accuracy, value: '45.1'}
  - dataset: {type: lambada}
    metrics: [{type: ppl, value: 35.13}]
"""


def test_hugging_face_keys_fill_the_card():
    card = card_of(HF)
    assert card == Card(
        frameworks=("Transformers",),
        task_type="Natural Language Processing",
        algorithm="Text Generation",
        tags=("gpt2", "en"),
        license="apache-2.0",
        training_data=(Dataset("openwebtext", None, None),),
        performance=(
            Performance(
                Dataset("WikiText-103", None, None), {"Test perplexity": 37.5, "accuracy": 45.1}
            ),
            Performance(Dataset("lambada", None, None), {"ppl": 35.13}),
        ),
    )


def test_amphub_keys_win_over_hugging_face_keys():
    card = parse_card(SEED.replace("---\nTraining", "---\n" + HF + "Training", 1))
    assert card == SEED_CARD


def test_a_null_amphub_key_lets_the_hugging_face_key_through():
    card = card_of("Training framework:\nlibrary_name: timm\nOther tag: ~\ntags: [x]\n")
    assert (card.frameworks, card.tags) == (("Timm",), ("x",))


def test_unknown_hugging_face_values_name_their_key():
    card = card_of("library_name: open_clip\npipeline_tag: image-text-to-text\n")
    assert (card.frameworks, card.algorithm, card.task_type) == (
        ("open_clip",),
        "image-text-to-text",
        None,
    )
    assert card.warnings == (
        "library_name: unknown value 'open_clip', kept as written",
        "pipeline_tag: unknown value 'image-text-to-text', kept as written",
    )


def test_bad_model_index_shapes():
    card = card_of(
        "model-index:\n- text\n- {name: x}\n- results:\n  - 5\n  - dataset: {name: D}\n"
        "    metrics: {a: 1}\n"
    )
    assert card.performance == (Performance(Dataset("D", None, None), {"a": 1.0}),)
    assert card.warnings == (
        "model-index (entry 1): expected a mapping with a list of results; ignored",
        "model-index (entry 2): expected a mapping with a list of results; ignored",
        "model-index (entry 3) result 1: no dataset name; ignored",
    )


# --- description ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heading", ["## Performance", "## Evaluation results", "### Results", "## 评测", "## 模型性能"]
)
def test_performance_sections_are_split_off(heading):
    body = f"# Model\n\nIntro 中文。\n\n{heading}\n\n| a | b |\n\n## Usage\n\nRun it.\n"
    card = card_of("Industry: x\n", body)
    assert card.performance_text == f"{heading}\n\n| a | b |"
    assert card.description == "# Model\n\nIntro 中文。\n\n## Usage\n\nRun it."


def test_subsections_stay_in_the_performance_part():
    body = "Intro\n## Evaluation\nA\n### On LAMBADA\nB\n# Citation\nC\n## Benchmark\nD\n"
    card = parse_card(body)
    assert card.performance_text == "## Evaluation\nA\n### On LAMBADA\nB\n## Benchmark\nD"
    assert card.description == "Intro\n# Citation\nC"


def test_headings_inside_code_fences_are_not_headings():
    body = "Intro\n```python\n# Results\nprint()\n```\n~~~\n## Performance\n~~~\nEnd\n"
    card = parse_card(body)
    assert card.performance_text == ""
    assert card.description == body.strip()


def test_text_is_kept_exactly():
    body = "\n\n  第一行　\r\n\tΣ ü 🤗 \u200b\n\n"
    assert parse_card(body).description == "  第一行　\r\n\tΣ ü 🤗 \u200b"


# --- bad input never fails --------------------------------------------------------------


def test_python_tags_never_execute(tmp_path):
    marker = tmp_path / "pwned"
    card = card_of(
        f"Industry: !!python/object/apply:os.system ['touch {marker}']\n"
        "Other tag: !!python/object/new:list [[a]]\n"
        "License: !custom x\n"
        "Open-source protocol: !!str mit\n"
    )
    assert not marker.exists()
    assert (card.industry, card.tags, card.license) == (None, (), "mit")
    assert card.warnings == (
        "Industry: YAML tag '!!python/object/apply:os.system' is not allowed; value ignored",
        "Other tag: YAML tag '!!python/object/new:list' is not allowed; value ignored",
        "License: YAML tag '!custom' is not allowed; value ignored",
    )


@pytest.mark.parametrize("tag", ["!!binary", "!!set", "!!timestamp", "!!int", "!!float"])
def test_other_standard_tags_are_refused_too(tag):
    card = card_of(f"Industry: {tag} '1'\nOpen-source protocol: mit\n")
    assert (card.industry, card.license) == (None, "mit")
    assert card.warnings == (f"Industry: YAML tag '{tag}' is not allowed; value ignored",)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
Other tag: *i
"""


@pytest.fixture(params=["libyaml", "pure"])
def loader(request, monkeypatch):
    if request.param == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("libyaml is not installed")
    monkeypatch.setattr(
        safe_yaml, "_LOADER", yaml.CBaseLoader if request.param == "libyaml" else yaml.BaseLoader
    )


def test_alias_bombs_are_refused(loader):
    started = time.perf_counter()
    card = card_of(BILLION_LAUGHS)
    assert time.perf_counter() - started < HANG_GUARD
    assert card.tags == ()
    assert card.warnings == (
        "Front matter: more than 100000 values counting aliases expanded; ignored",
    )


def test_modest_aliases_are_fine(loader):
    card = card_of("x: &t [a, b]\nOther tag: *t\nIndustry: &i Finance\nlicense: *i\n")
    assert (card.tags, card.industry, card.license, card.warnings) == (
        ("a", "b"),
        "Finance",
        "Finance",
        (),
    )


@pytest.mark.parametrize(
    "front,problem",
    [
        ("a: &a [*a]\n", "alias *a refers to itself"),
        ("a: &a {b: *a}\n", "alias *a refers to itself"),
        ("a: &a [1]\nb: &a [*a]\n", "alias *a refers to itself"),
        ("a: *nowhere\n", "alias *nowhere is not defined"),
        ("? [a]\n: b\n", "a mapping key is a list or mapping"),
    ],
)
def test_bad_aliases_and_keys(loader, front, problem):
    assert card_of(front).warnings == (f"Front matter: {problem}; ignored",)


DEPTH_REFUSED = re.compile(
    r"Front matter: (nested deeper than 64 levels"
    r"|invalid YAML \(line \d+: exceeded maximum nesting depth\)); ignored"  # libyaml's own cap
)


@pytest.mark.parametrize(
    "front",
    [
        "x: " + "[" * 1000 + "]" * 1000 + "\n",
        "x: " + "{b: " * 1000 + "c" + "}" * 1000 + "\n",
        "x:\n" + "".join(" " * i + "-\n" for i in range(1, 300)),  # 300 deep fits 64 KiB
        "x:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 300)),
        "x:\n" + "- " * 1000 + "a\n",
    ],
    ids=["flow-seq", "flow-map", "block-seq", "block-map", "compact-seq"],
)
def test_deep_nesting_is_refused(loader, front):
    started = time.perf_counter()
    card = card_of(front + "Industry: Finance\n")
    assert time.perf_counter() - started < HANG_GUARD
    assert card.industry is None
    assert len(card.warnings) == 1
    assert DEPTH_REFUSED.fullmatch(card.warnings[0])


def test_nesting_within_the_limit_is_fine(loader):
    card = card_of("x: " + "[" * 60 + "]" * 60 + "\nIndustry: Finance\n")
    assert (card.industry, card.warnings) == ("Finance", ())


@pytest.mark.parametrize(
    "front,problem",
    [
        ("Industry: [a\n", "line 3: "),
        ("a: b: c\n", "line 2: "),
        ("Industry: \x00\n", ""),
        ("\tIndustry: x\n", "line 2: "),
    ],
)
def test_invalid_yaml_is_a_warning(loader, front, problem):
    card = card_of(front, "Body")
    assert card.description == "Body"
    assert card.warnings[0].startswith(f"Front matter: invalid YAML ({problem}")
    assert card.warnings[0].endswith("); ignored")


def test_oversized_front_matter_is_ignored():
    card = card_of("Industry: x\n" + "# pad\n" * 12000, "Body")
    assert (card.industry, card.description) == (None, "Body")
    assert card.warnings == ("Front matter: longer than 64 KiB; ignored",)


def test_undecodable_bytes_are_replaced_with_a_warning():
    card = parse_card(b"---\nIndustry: caf\xe9\n---\nna\xefve \xe4\xb8\xad")
    assert (card.industry, card.description) == ("caf\ufffd", "na\ufffdve 中")
    assert card.warnings == ("README: not valid UTF-8; undecodable bytes were replaced",)


def test_a_character_cut_at_the_end_is_replaced_with_a_warning():
    card = parse_card("Body 中".encode()[:-1])
    assert (card.description, card.warnings) == (
        "Body \ufffd",
        ("README: not valid UTF-8; undecodable bytes were replaced",),
    )


def test_lone_surrogates_are_replaced_with_a_warning():
    card = parse_card("---\nIndustry: a\ud800b\n---\n\udfff")
    assert (card.industry, card.description) == ("a\ufffdb", "\ufffd")
    assert card.warnings == ("README: invalid characters were replaced",)


def test_warnings_are_capped():
    card = card_of("Training framework: [" + ", ".join(f"F{i}" for i in range(200)) + "]\n")
    assert len(card.frameworks) == 200
    assert len(card.warnings) == 51
    assert card.warnings[-1] == "… and 150 more warnings"


HUNDRED_MB = 100 * 1024 * 1024


@pytest.mark.parametrize(
    "make",
    [
        lambda: "x" * HUNDRED_MB,
        lambda: SEED + "y" * HUNDRED_MB,
        lambda: "---\nIndustry: x\n" + "z\n" * (HUNDRED_MB // 2),
        lambda: "#\n" * (HUNDRED_MB // 2),
        lambda: "---\n" + "\n---x" * (HUNDRED_MB // 5),
        lambda: (SEED + "é" * HUNDRED_MB).encode(),
    ],
    ids=["plain", "seed-then-text", "unclosed", "headings", "near-fences", "bytes"],
)
def test_a_100_mb_readme_is_quick(make):
    readme = make()
    started = time.perf_counter()
    card = parse_card(readme)
    assert time.perf_counter() - started < HANG_GUARD
    assert len(card.description) + len(card.performance_text) <= DESCRIPTION_LIMIT
    assert card.warnings[-1] == "Description: longer than 1 MiB; cut"


@pytest.mark.parametrize(
    "line,performance",
    [
        ("# a" + " \t" * 60_000 + "b", False),
        ("```" + " " * 120_000 + "x", False),
        ("## Results" + " " * 120_000, True),
    ],
    ids=["heading", "fence", "performance-heading"],
)
def test_a_long_line_of_blanks_is_quick(line, performance):
    started = time.perf_counter()
    card = parse_card(f"Intro\n{line}\nEnd\n")
    assert time.perf_counter() - started < HANG_GUARD
    split = (card.description, card.performance_text)
    assert split == (("Intro", f"{line}\nEnd") if performance else (f"Intro\n{line}\nEnd", ""))


# --- properties -------------------------------------------------------------------------


LOADERS = [yaml.BaseLoader] + ([yaml.CBaseLoader] if yaml.__with_libyaml__ else [])


def assert_well_formed(readme: str | bytes) -> None:
    """Parse with each YAML parser (no fixture: hypothesis runs many examples per test)."""
    saved = safe_yaml._LOADER
    try:
        for loader in LOADERS:
            safe_yaml._LOADER = loader
            card = parse_card(readme)
            assert isinstance(card, Card)
            json.dumps(card.to_json(), allow_nan=False)
            assert all(isinstance(w, str) and w for w in card.warnings)
            assert all(isinstance(name, str) and name for name in card.frameworks + card.tags)
            assert card.parameters is None or card.parameters >= 0
    finally:
        safe_yaml._LOADER = saved


@FAST
@given(st.text())
def test_any_text_gives_a_card(text):
    assert_well_formed(text)
    assert_well_formed("---\n" + text + "\n---\n")


@FAST
@given(st.binary())
def test_any_bytes_give_a_card(data):
    assert_well_formed(data)
    assert_well_formed(b"---\n" + data + b"\n---\n")


YAMLISH = st.text(alphabet=st.sampled_from(list("-:[]{}&*!|>'\"#,?%@`\n\t ab1.~")), max_size=80)


@FAST
@given(YAMLISH)
def test_yaml_punctuation_soup_gives_a_card(text):
    assert_well_formed("---\n" + text + "\n---\n")
    assert_well_formed("---\nOther tag: " + text + "\n---\n")


FIELD_NAMES = st.sampled_from(
    ["Training framework", "Job type", "Type", "Algorithm", "Industry", "Other tag",
     "Number of parameters", "Open-source protocol", "Performance information",
     "Performance metric", "Training data", "Dataset", "Name", "Permission", "Link",
     "library_name", "pipeline_tag", "tags", "license", "datasets", "model-index", "results",
     "metrics", "type", "value", "name", "dataset"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["PyTorch", "Text Generation", "Audio", "1.7B", "others", "http://x"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(FIELD_NAMES | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@FAST
@given(st.dictionaries(FIELD_NAMES, VALUES, max_size=8))
def test_arbitrary_structures_give_a_card(fields):
    assert_well_formed("---\n" + yaml.safe_dump(fields, allow_unicode=True) + "---\n")


TAG_TEXT = st.text("abcxyz中文-_ ", min_size=1, max_size=8).map(str.strip).filter(bool)
VALID = st.fixed_dictionaries(
    {
        "frameworks": st.lists(st.sampled_from(FRAMEWORKS), unique=True, max_size=4),
        "job": st.sampled_from([(t, a) for t, algs in TASK_TYPES.items() for a in algs]),
        "tags": st.lists(TAG_TEXT, unique=True, max_size=4),
        "parameters": st.integers(min_value=0, max_value=10**15),
        "metrics": st.dictionaries(st.sampled_from(["ACC", "PPL", "F1"]), st.floats(-1e6, 1e6)),
    }
)  # fmt: skip


@FAST
@given(VALID)
def test_valid_fields_round_trip(data):
    task_type, algorithm = data["job"]
    fields = {
        "Training framework": data["frameworks"],
        "Job type": {"Type": task_type, "Algorithm": algorithm},
        "Other tag": data["tags"],
        "Number of parameters": data["parameters"],
        "Performance information": [
            {
                "Dataset": {"Name": "D", "Permission": "Public"},
                "Performance metric": data["metrics"],
            }
        ],
    }
    card = card_of(yaml.safe_dump(fields, allow_unicode=True))
    assert card.warnings == ()
    assert card.frameworks == tuple(data["frameworks"])
    assert (card.task_type, card.algorithm) == (task_type, algorithm)
    assert card.tags == tuple(data["tags"])
    assert card.parameters == data["parameters"]
    assert card.performance == (Performance(Dataset("D", "Public", None), data["metrics"]),)
