"""Risky calls in Python source: what a model repository's code would do if run.

The source is parsed with ``ast`` and never executed or imported. Calls are named by
resolving simple import aliases (``import subprocess as sp``, ``from os import
system``), so ``sp.run(..., shell=True)`` is seen as ``subprocess.run``.

Severities, with the reason:

- **dangerous** — the call runs a shell command or arbitrary code the file computes:
  ``os.system``, ``os.popen``, ``subprocess.*(shell=True)``, ``subprocess.getoutput``,
  ``asyncio.create_subprocess_shell``, ``eval``/``exec`` of anything but a constant.
- **suspicious** — the call is common in honest ML code but runs code hidden in its
  input or fetched from elsewhere, so a person should look: ``eval``/``exec`` of a
  constant, ``pickle``/``dill``/``cloudpickle``/``joblib`` loads, ``torch.load``
  without ``weights_only=True``, ``yaml.load`` without a safe ``Loader``,
  ``trust_remote_code=True``, ``verify=False`` on an HTTP call, ``__import__`` of a
  computed name, and ``shell=`` set to a computed value.
- **info** — the file does not parse; the code checks were skipped.

A parse that fails in any way (syntax, nesting too deep for the parser) gives one
info finding, never an exception: the file is untrusted and may be built to break
the parser. The tree is walked breadth first in one loop (``_nodes``), which does not
recurse. A file over ``MAX_PARSE_CHARS`` is not parsed (a dense 10 MB file would take
a minute) but searched by text for the same names: every match is then only
suspicious.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from amphub.scan import obfuscation
from amphub.scan.findings import Finding, Severity

_EVAL = frozenset({"eval", "exec", "builtins.eval", "builtins.exec"})
_SHELL = frozenset(
    {
        "os.system",
        "os.popen",
        "posix.system",
        "subprocess.getoutput",
        "subprocess.getstatusoutput",
        "asyncio.create_subprocess_shell",
    }
)
_SUBPROCESS = frozenset(
    f"subprocess.{name}" for name in ("run", "call", "check_call", "check_output", "Popen")
)
_UNPICKLE = frozenset(
    f"{module}.{name}"
    for module in ("pickle", "_pickle", "cPickle", "dill", "cloudpickle")
    for name in ("load", "loads", "Unpickler")
) | {"joblib.load", "pandas.read_pickle"}
_YAML_LOAD = frozenset({"yaml.load", "yaml.load_all"})
_ALIASABLE = _EVAL | _SHELL | _SUBPROCESS | _UNPICKLE | {"torch.load", "yaml.load", "compile"}
_YAML_UNSAFE = frozenset(
    {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"}
)
_YAML_SAFE_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})
_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
_IMPORT = frozenset(
    {"__import__", "builtins.__import__", "importlib.import_module", "importlib.__import__"}
)

# ast.parse builds about one Python object per two bytes of dense code, at a few
# microseconds each: 256 KiB parses in about a second, and fewer than 0.2% of real
# .py files are larger (generated tables, lexers).
MAX_PARSE_CHARS = 256 * 1024
MAX_TEXT_FINDINGS = 100
# Each begins with a literal, so ``re`` jumps between candidates (one alternation with
# a lookbehind in front ran ten times slower on 10 MB).
_RISKY_TEXT = tuple(
    re.compile(pattern)
    for pattern in (
        r"eval[ \t]{0,4}\(",
        r"exec[ \t]{0,4}\(",
        r"__import__[ \t]{0,4}\(",
        r"os\.(?:system|popen)[ \t]{0,4}\(",
        r"subprocess\.get(?:status)?output[ \t]{0,4}\(",
        r"asyncio\.create_subprocess_shell[ \t]{0,4}\(",
        r"pickle\.loads?[ \t]{0,4}\(",
        r"cloudpickle\.loads?[ \t]{0,4}\(",
        r"dill\.loads?[ \t]{0,4}\(",
        r"torch\.load[ \t]{0,4}\(",
        r"yaml\.(?:unsafe_|full_)?load[ \t]{0,4}\(",
        r"shell[ \t]{0,4}=[ \t]{0,4}True\b",
        r"trust_remote_code[ \t]{0,4}=[ \t]{0,4}True\b",
        r"verify[ \t]{0,4}=[ \t]{0,4}False\b",
    )
)


# What a file must contain for a rule to match, as groups of words of which each must
# have one present: a call resolves to a rule's name only through the module and function
# names it spells out, in the call or in the import that aliases it. A file that meets no
# rule's words is not parsed at all (the parse is most of the cost of scanning Python).
_RULE_WORDS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("eval", "exec"),),
    (("os", "posix"), ("system", "popen")),
    (("subprocess",), ("getoutput", "getstatusoutput", "shell")),
    (("asyncio",), ("create_subprocess_shell",)),
    (("ickle", "dill", "joblib"), ("load", "Unpickler", "read_pickle")),
    (("torch",), ("load",)),
    (("yaml",), ("load",)),
    (("__import__",),),
    (("numpy",), ("allow_pickle",), ("True",)),
    (("trust_remote_code",), ("True",)),
    (("verify",), ("False",)),
    (("importlib",), ("import_module",)),  # importlib.__import__: the rule above
    (("**",), ("shell",), ("True",)),  # **kwargs carrying shell=True
)


def _may_match(source: str) -> bool:
    return any(all(any(word in source for word in group) for group in rule) for rule in _RULE_WORDS)


# Names built at run time (see ``obfuscation``): a lookup in a risky module, by name or
# through an alias (`import os as o`), or in the builtins or globals. Each pattern
# begins with a literal and runs only if a substring test passes: an alternation in
# front would make ``re`` try every position.
_RISKY = "|".join(sorted(obfuscation.RISKY_MODULES))
_LOOKUP_HINTS = (
    ("getattr(", re.compile(rf"getattr\(\s*(?:{_RISKY}|__builtins__)\b")),
    ("getattr(", re.compile(rf"import\s+(?:{_RISKY})\s+as\s")),
    ("vars(", re.compile(rf"vars\(\s*(?:{_RISKY}|__builtins__)\b")),
    ("__dict__", re.compile(r"\.__dict__\s*\[")),
    ("__builtins__", re.compile("__builtins__")),
    ("globals()", re.compile(r"globals\(\)\s*\[")),
    ("locals()", re.compile(r"locals\(\)\s*\[")),
)


def _has_lookups(source: str) -> bool:
    """Whether the source may look a name up in a risky module or the builtins."""
    return any(word in source and hint.search(source) for word, hint in _LOOKUP_HINTS)


def scan_python(source: str) -> list[Finding]:
    """Find risky calls in Python source without running it.

    Args:
        source: The file's text.

    Returns:
        Findings of kind ``code`` in line order; one info finding if it does not parse.
    """
    lookups_used = _has_lookups(source)
    if not lookups_used and not _may_match(source):
        return []
    if len(source) > MAX_PARSE_CHARS:
        return _scan_by_text(source)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        # Python cannot run it either, so nothing in it can run: info, not a warning.
        message = f"not valid Python ({exc.msg}); code checks skipped"
        return [Finding("code", message, "info", line=exc.lineno)]
    except (ValueError, RecursionError, MemoryError):
        # CPython reports nesting too deep for its parser as these.
        return [Finding("code", "Python too deeply nested to parse; code checks skipped", "info")]
    aliases: dict[str, str] = {}
    calls: list[ast.Call] = []
    lookups: list[ast.Subscript] = []
    assigns: list[ast.Assign] = []
    imports: list[ast.Import | ast.ImportFrom] = []
    # One pass, and one dict look-up per node: a big tree has millions of them.
    buckets: dict[type, list[Any]] = {ast.Call: calls, ast.Subscript: lookups, ast.Assign: assigns}
    buckets |= {ast.Import: imports, ast.ImportFrom: imports}
    bucket_of = buckets.get
    for node in _nodes(tree):
        if (bucket := bucket_of(type(node))) is not None:
            bucket.append(node)
    for node in imports:
        _add_aliases(node, aliases)
    consts = obfuscation.string_constants(tree) if lookups_used else {}
    shells = obfuscation.shell_dicts(assigns) if "shell" in source else set()
    names = _Names(aliases, consts, shells, lookups_used)
    _add_assigned_aliases(assigns, names)
    findings = [
        Finding("code", message, severity, line=call.lineno)
        for call in calls
        for severity, message in _check_call(call, names)
    ]
    findings += [
        Finding("code", message, severity, line=node.lineno)
        for node in (lookups if lookups_used else ())
        for severity, message in obfuscation.check(node, names.aliases, names.consts)
    ]
    return sorted(findings, key=lambda f: f.line or 0)


# Fields that never hold a node the checks look at: expression contexts and operators
# (a Load node under every name) and names, numbers and flags.
_LEAF_FIELDS = frozenset(
    {"ctx", "op", "ops", "id", "attr", "arg", "kind", "module", "level", "type_comment"}
    | {"name", "asname", "conversion", "is_async", "simple"}
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {ast.Constant: ()}  # a value, never a node


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """The tree's nodes but the leaves above, in ``ast.walk``'s order.

    ``ast.walk`` goes through two generators per node and visits every ``Load``: this
    loop over each node type's own fields takes under half of its time.
    """
    nodes = [tree]
    fields_of = _CHILD_FIELDS.get
    for node in nodes:  # the list grows as it is read: breadth first, as ast.walk
        kind = type(node)
        fields = fields_of(kind)
        if fields is None:
            fields = tuple(f for f in kind._fields if f not in _LEAF_FIELDS)
            _CHILD_FIELDS[kind] = fields
        for field in fields:
            value = getattr(node, field, None)
            if type(value) is list:
                nodes += [item for item in value if isinstance(item, ast.AST)]
            elif isinstance(value, ast.AST):
                nodes.append(value)
    return nodes


@dataclass(frozen=True)
class _Names:
    """What the module's names stand for: imports, assigned aliases, strings, shell kwargs."""

    aliases: dict[str, str]
    consts: dict[str, str]
    shell_kwargs: set[str]
    lookups: bool  # whether the source may look names up at run time (see _has_lookups)


_ALIAS_LAST = frozenset(name.rpartition(".")[2] for name in _ALIASABLE)


def _add_assigned_aliases(assigns: list[ast.Assign], names: _Names) -> None:
    """`e = eval`, `run = getattr(os, 'sys' + 'tem')`: the name stands for the risky call."""
    for node in sorted(assigns, key=_line):
        target = node.targets[0] if len(node.targets) == 1 else None
        value = node.value
        if type(value) is ast.Call or type(value) is ast.Subscript:
            if not names.lookups:  # only getattr(…) or a namespace lookup can stand for one
                continue
        elif type(value) is ast.Attribute:
            if value.attr not in _ALIAS_LAST:
                continue
        elif type(value) is not ast.Name:
            continue
        if isinstance(target, ast.Name):
            resolved = obfuscation.resolve(node.value, names.aliases, names.consts)
            if resolved in _ALIASABLE:
                names.aliases[target.id] = resolved


def _line(node: ast.stmt) -> int:
    return node.lineno


def _add_aliases(node: ast.Import | ast.ImportFrom, aliases: dict[str, str]) -> None:
    """Record local name → dotted name it stands for."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                aliases[alias.asname] = alias.name
            else:  # `import os.path` binds `os`
                top = alias.name.partition(".")[0]
                aliases[top] = top
    elif node.module and not node.level:  # a relative import names a local module
        for alias in node.names:
            if alias.name != "*":
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"


def _scan_by_text(source: str) -> list[Finding]:
    """The fallback for a file too big to parse in bounded time: the risky names by text.

    Without a tree there is no alias resolution and no telling code from comments, so
    every match is only suspicious.
    """
    note = f"Python over {MAX_PARSE_CHARS // 1024} KiB: checked by text match, not parsed"
    findings = [Finding("code", note, "info")]
    starts = []
    for pattern in _RISKY_TEXT:
        kept = 0
        for match in pattern.finditer(source):
            at = match.start()
            # `model.eval(`, `my_exec(` and `cloudpickle.load(` (for `pickle.load(`)
            # continue another name.
            if at and (source[at - 1].isalnum() or source[at - 1] in "_."):
                continue
            starts.append((at, match.group()))
            kept += 1
            if kept == MAX_TEXT_FINDINGS:  # enough to fill the earliest MAX_TEXT_FINDINGS
                break
    line, pos = 1, 0
    for at, text in sorted(starts)[:MAX_TEXT_FINDINGS]:
        line += source.count("\n", pos, at)
        pos = at
        message = f"`{' '.join(text.split())}` found by text match in a file too big to parse"
        findings.append(Finding("code", message, "suspicious", line=line))
    return findings


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _check_call(node: ast.Call, names: _Names) -> Iterator[tuple[Severity, str]]:
    """Yield (severity, message) for each risk in one call."""
    aliases = names.aliases
    name = obfuscation.resolve(node.func, aliases, names.consts)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    first = node.args[0] if node.args else None
    if names.lookups:
        yield from obfuscation.check(node, aliases, names.consts)
    if name in _SUBPROCESS and any(
        k.arg is None and obfuscation.carries_shell(k.value, names.shell_kwargs)
        for k in node.keywords
    ):
        yield "dangerous", f"`{name}` with shell=True passed in **kwargs runs a shell command"
    if name in _EVAL:
        if isinstance(first, ast.Constant):
            yield "suspicious", f"`{name}` of a constant string"
        else:
            yield "dangerous", f"`{name}` runs code computed at run time"
    elif name in _SHELL:
        yield "dangerous", f"`{name}` runs a shell command"
    elif name in _SUBPROCESS and "shell" in keywords:
        shell = keywords["shell"]
        if _is_const(shell, True):
            yield "dangerous", f"`{name}` with shell=True runs a shell command"
        elif not isinstance(shell, ast.Constant):
            yield "suspicious", f"`{name}` with a computed shell= argument"
    elif name in _UNPICKLE:
        yield "suspicious", f"`{name}` unpickles data, which can run any code"
    elif name == "torch.load" and not _is_const(keywords.get("weights_only"), True):
        yield (
            "suspicious",
            "`torch.load` without weights_only=True unpickles, which can run any code",
        )
    elif name in _YAML_LOAD:
        yield from _check_yaml_load(node, name, keywords, aliases)
    elif name in _YAML_UNSAFE:
        yield "suspicious", f"`{name}` can construct arbitrary Python objects"
    elif name in _IMPORT and first is not None and not isinstance(first, ast.Constant):
        yield "suspicious", f"`{name}` of a module named at run time"
    elif name == "numpy.load" and _is_const(keywords.get("allow_pickle"), True):
        yield "suspicious", "`numpy.load` with allow_pickle=True can run any code"
    if _is_const(keywords.get("trust_remote_code"), True):
        yield (
            "suspicious",
            f"`{name or 'a call'}` with trust_remote_code=True runs code from the Hub",
        )
    if _is_const(keywords.get("verify"), False) and _is_http_call(node, name):
        yield "suspicious", f"`{name or 'an HTTP call'}` with verify=False skips TLS checks"


def _check_yaml_load(
    node: ast.Call, name: str, keywords: dict[str, ast.expr], aliases: dict[str, str]
) -> Iterator[tuple[Severity, str]]:
    loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
    if loader is None:
        yield "suspicious", f"`{name}` without a Loader: PyYAML before 6 picks an unsafe default"
        return
    loader_name = obfuscation.resolve(loader, aliases, {}) or "a computed Loader"
    if loader_name.rpartition(".")[2] not in _YAML_SAFE_LOADERS:
        yield "suspicious", f"`{name}` with {loader_name}, not a safe Loader"


def _is_http_call(node: ast.Call, name: str | None) -> bool:
    if name and name.partition(".")[0] in ("requests", "httpx"):
        return True
    # `session.get(url, verify=False)`: the session's type is not known statically.
    return isinstance(node.func, ast.Attribute) and node.func.attr in _HTTP_METHODS
