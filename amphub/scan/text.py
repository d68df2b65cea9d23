"""Scan a text file: leaked secrets in any file, risky calls in Python, chat templates.

``scan_text`` is the entry point; ``secrets`` and ``code`` hold the first two checks,
``notebooks`` applies both to each cell of a notebook, this module holds the third.

A chat template is Jinja that ``transformers`` renders in a sandbox whenever the
tokenizer formats a conversation. The sandbox has been escaped before through
Python's object model (``__globals__``, ``__subclasses__``, ``__mro__`` …) and
through Jinja's own globals whose ``__init__`` leads back to Python (``cycler``,
``joiner``, ``lipsum``, ``namespace``). No honest template needs any of them, so each
is reported as dangerous. Dunder names are looked for in the whole of each ``{{ }}``
and ``{% %}`` block, strings included (``x|attr('__class__')`` reaches them through
a string); plain words only outside string literals, so a ``raise_exception('…
request …')`` message is not mistaken for ``request``.

Bounded work: templates are cut into blocks with ``str.find`` and strings are found
with possessive patterns that never backtrack, so a 10 MB template of unclosed
quotes or braces takes linear time; the JSON parser's nesting limit surfaces as an
info finding.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import PurePosixPath

from amphub.scan.code import scan_python
from amphub.scan.findings import Finding
from amphub.scan.literals import joined_literals
from amphub.scan.notebooks import scan_notebook
from amphub.scan.secrets import mask, scan_secrets

__all__ = ["mask", "scan_chat_template", "scan_text"]

# Files where an unquoted value after `password =` is an expression, not a literal.
_CODE_SUFFIXES = frozenset(
    {".py", ".pyi", ".pyw", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".rs"}
    | {".java", ".kt", ".scala", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php"}
    | {".swift", ".lua", ".jl", ".r"}
)
_JS_SUFFIXES = frozenset({".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx"})
_TEMPLATE_CONFIGS = frozenset({"tokenizer_config.json", "chat_template.json"})
_DUNDERS = (
    "__globals__",
    "__subclasses__",
    "__builtins__",
    "__class__",
    "__mro__",
    "__base__",
    "__init__",
    "__getattribute__",
    "__import__",
)
# Each begins with its literal, so ``re`` jumps between candidates; the left word
# boundary is checked in Python, as a leading \b would make each search ten times slower.
_ESCAPE_WORDS = {
    **{w: re.compile(rf"{w}\b") for w in ("cycler", "joiner", "lipsum", "popen", "request")},
    **{f"{w}.": re.compile(rf"{w}[ \t]{{0,8}}\.") for w in ("os", "self", "namespace")},
}
_BLOCK_OPEN = re.compile(r"\{[{%#]")
_BLOCK_CLOSE = {"{": "}}", "%": "%}", "#": "#}"}
_QUOTE = re.compile(r"['\"]")
# The rest of a string after its opening quote. Possessive quantifiers (Python 3.11)
# never give back what they matched, so an unclosed string fails in one linear pass.
_STRING_REST = {q: re.compile(rf"[^{q}\\]*+(?:\\.[^{q}\\]*+)*+{q}", re.DOTALL) for q in "'\""}
_NOT_NEWLINE = re.compile(r"[^\n]+")


def scan_text(path: str, data: bytes) -> list[Finding]:
    """Scan one text file for leaked secrets, risky Python and unsafe chat templates.

    Args:
        path: The file's path in the repository; its name picks the checks.
        data: The file's bytes: UTF-8, no NUL, at most 10 MiB.

    Returns:
        Secrets first, then code, then template findings, each group in line order.
    """
    name = PurePosixPath(path).name.lower()
    suffix = PurePosixPath(name).suffix
    if suffix == ".ipynb":
        notebook = scan_notebook(data.decode("utf-8", "replace"))
        if notebook is not None:
            return notebook
    findings = scan_secrets(data, code=suffix in _CODE_SUFFIXES)
    if suffix in _CODE_SUFFIXES:
        findings += _split_secrets(data, findings, templates=suffix in _JS_SUFFIXES)
    if suffix == ".py":
        findings += scan_python(data.decode("utf-8", "replace"))
    if name in _TEMPLATE_CONFIGS:
        findings += _scan_template_config(data.decode("utf-8", "replace"))
    elif suffix == ".jinja":
        findings += scan_chat_template(data.decode("utf-8", "replace"))
    return findings


def _split_secrets(data: bytes, found: list[Finding], *, templates: bool) -> list[Finding]:
    """Secrets split across string literals that the code joins (see ``literals``)."""
    joined, origins = joined_literals(data, templates=templates)
    if not joined:
        return []
    seen = {(f.line, f.masked) for f in found}
    out = []
    for finding in scan_secrets(joined, code=True):
        line = origins[finding.line - 1] if finding.line else None
        if (line, finding.masked) not in seen and line is not None:
            seen.add((line, finding.masked))
            message = f"{finding.message} (split across string literals)"
            out.append(replace(finding, message=message, line=line))
    return out


def scan_chat_template(
    template: str, label: str = "chat template", line: int | None = None
) -> list[Finding]:
    """Find sandbox-escape routes in one Jinja chat template.

    Args:
        template: The template's source.
        label: How the message names the template.
        line: The line every finding gets (the template's line in a JSON file);
            None to give each finding its own line within the template.

    Returns:
        One dangerous ``template`` finding per escape route used, in line order.
    """
    blocks, code = _jinja_code(template)
    hits: dict[str, int] = {}
    for dunder in _DUNDERS:
        if (at := blocks.find(dunder)) != -1:
            hits[dunder] = at
    for word, pattern in _ESCAPE_WORDS.items():
        for match in pattern.finditer(code):
            at = match.start()
            if at == 0 or not (code[at - 1].isalnum() or code[at - 1] == "_"):
                hits[word] = at  # the first use is enough
                break
    findings = [
        Finding(
            "template",
            f"{label} uses `{word}`, a known route out of the Jinja sandbox",
            "dangerous",
            line=line if line is not None else template.count("\n", 0, at) + 1,
        )
        for word, at in hits.items()
    ]
    return sorted(findings, key=lambda f: f.line or 0)


def _scan_template_config(text: str) -> list[Finding]:
    """The ``chat_template`` of a tokenizer config: a string or a list of named ones."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        return [Finding("template", "not valid JSON; chat template not checked", "info")]
    templates = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(templates, str):
        templates = [{"template": templates}]
    if not isinstance(templates, list):
        return []
    at = text.find('"chat_template"')
    line = text.count("\n", 0, at) + 1 if at != -1 else None
    findings = []
    for entry in templates:
        if isinstance(entry, dict) and isinstance(entry.get("template"), str):
            name = entry.get("name")
            label = f"chat template {name!r}" if isinstance(name, str) else "chat template"
            findings += scan_chat_template(entry["template"], label, line or 1)
    return findings


def _jinja_code(template: str) -> tuple[str, str]:
    """The template's ``{{ }}``/``{% %}`` blocks, and those without string literals.

    Both are the template's length with everything else blanked to spaces (newlines
    kept), so an offset in either is an offset in the template.
    """
    blocks, code = [], []
    pos = 0
    while (opening := _BLOCK_OPEN.search(template, pos)) is not None:
        start = opening.start()
        close = template.find(_BLOCK_CLOSE[template[start + 1]], start + 2)
        end = len(template) if close == -1 else close + 2
        outside = _blank(template[pos:start])
        inside = template[start:end]
        blocks += [outside, _blank(inside) if inside[1] == "#" else inside]
        code += [outside, _blank(inside) if inside[1] == "#" else _blank_strings(inside)]
        pos = end
    rest = _blank(template[pos:])
    return "".join(blocks + [rest]), "".join(code + [rest])


def _blank_strings(code: str) -> str:
    parts = []
    pos = 0
    while (quote := _QUOTE.search(code, pos)) is not None:
        rest = _STRING_REST[quote.group()].match(code, quote.end())
        end = rest.end() if rest else len(code)  # unclosed: the string runs to the end
        parts += [code[pos : quote.start()], _blank(code[quote.start() : end])]
        pos = end
    parts.append(code[pos:])
    return "".join(parts)


def _blank(text: str) -> str:
    return _NOT_NEWLINE.sub(lambda m: " " * len(m.group()), text)
