"""Jupyter notebooks: each cell's code through the Python checks, its text through the secrets.

A notebook is JSON, so its raw text hides what a reader sees: sources are lists of
lines with escaped quotes, and outputs carry base64 images that look like noise.
Each cell is therefore rebuilt as the notebook shows it and checked alone; a finding
names the cell and the line in it. IPython's ``!shell`` and ``%magic`` lines are
blanked before parsing (Python would reject them and skip the whole cell); image
outputs are not read.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from amphub.scan.code import scan_python
from amphub.scan.findings import Finding
from amphub.scan.secrets import scan_secrets

_MAGIC_LINE = re.compile(r"^([ \t]*)[!%].*$", re.MULTILINE)
_MAX_CELLS = 10_000


def scan_notebook(text: str) -> list[Finding] | None:
    """Check a notebook's cells; None if it is not notebook JSON.

    Args:
        text: The ``.ipynb`` file's text.

    Returns:
        Findings whose message begins with the cell (and line in it) they are in.
    """
    try:
        notebook = json.loads(text)
    except (ValueError, RecursionError):
        return None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return None
    findings: list[Finding] = []
    for number, cell in enumerate(cells[:_MAX_CELLS], 1):
        if not isinstance(cell, dict):
            continue
        source = _joined(cell.get("source"))
        code = cell.get("cell_type") == "code"
        found = scan_secrets(source.encode(), code=code)
        if code and not source.startswith("%%"):  # a cell magic: the cell is not Python
            found += scan_python(_MAGIC_LINE.sub(r"\1pass", source))
        findings += [_in_cell(f, number, "") for f in found]
        for output in cell.get("outputs") or ():
            if isinstance(output, dict):
                shown = _output_text(output).encode()
                findings += [_in_cell(f, number, " output") for f in scan_secrets(shown)]
    if len(cells) > _MAX_CELLS:
        findings.append(Finding("code", f"over {_MAX_CELLS} cells: the rest not checked", "info"))
    return findings


def _joined(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _output_text(output: dict[str, object]) -> str:
    """What a cell printed or returned, but no images (base64 is not text)."""
    parts = [_joined(output.get("text")), _joined(output.get("traceback"))]
    data = output.get("data")
    if isinstance(data, dict):
        parts += [_joined(v) for k, v in data.items() if not str(k).startswith("image/")]
    return "\n".join(parts)


def _in_cell(finding: Finding, cell: int, part: str) -> Finding:
    line = f", line {finding.line}" if finding.line is not None else ""
    return replace(finding, message=f"cell {cell}{part}{line}: {finding.message}", line=None)
