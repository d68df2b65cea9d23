"""Dangerous Python reached by names built at run time, as sandbox escapes and droppers do.

``code`` names a call by the dotted name it spells; this module sees through the
usual ways of not spelling it, without running anything:

- strings are folded where they are constants in disguise: ``'sys' + 'tem'``,
  f-strings of constants, ``''.join([...])``, ``'metsys'[::-1]``, ``chr(101)``, and
  names assigned such a string once;
- ``getattr(os, …)`` and ``__builtins__.__dict__[…]`` (also ``vars(builtins)[…]``,
  ``globals()['__builtins__']``) are judged by the folded name: dangerous when it
  names a call that runs code, suspicious when it cannot be folded (a computed
  attribute of a module that runs commands has no honest use);
- names assigned a risky callable (``e = eval``, ``f = getattr(os, 'system')``)
  become aliases, so calling them is judged like the original;
- ``**kwargs`` built with ``shell=True`` (a dict literal, ``dict(shell=True)``, or
  a name assigned one or given ``kw['shell'] = True``) count as ``shell=True``.

Folding is bounded (nesting depth and string length), so a file built to make it
slow cannot.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from amphub.scan.findings import Severity


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Modules whose computed attributes run commands or code.
RISKY_MODULES = _words(
    "os posix nt subprocess builtins importlib pty ctypes marshal runpy pickle commands"
)
# Names in those modules that run a command or code.
RISKY_NAMES = _words(
    "eval exec compile __import__ execfile system popen spawnl spawnlp spawnv spawnvp"
    " execl execle execlp execv execve execvp getoutput getstatusoutput Popen run call"
    " check_call check_output"
)
_MAX_FOLD = 4096  # characters: longer strings are not names
_MAX_DEPTH = 32


def fold(expr: ast.expr, consts: dict[str, str], depth: int = 0) -> str | None:
    """The string ``expr`` always evaluates to, if it is a constant in disguise."""
    if depth > _MAX_DEPTH:
        return None
    value: str | None = None
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        value = expr.value
    elif isinstance(expr, ast.Name):
        value = consts.get(expr.id)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = fold(expr.left, consts, depth + 1), fold(expr.right, consts, depth + 1)
        value = left + right if left is not None and right is not None else None
    elif isinstance(expr, ast.JoinedStr):
        parts = [_fold_part(v, consts, depth + 1) for v in expr.values]
        value = "".join(p for p in parts if p is not None) if None not in parts else None
    elif isinstance(expr, ast.Subscript) and _is_reversal(expr.slice):
        inner = fold(expr.value, consts, depth + 1)
        value = inner[::-1] if inner is not None else None
    elif isinstance(expr, ast.Call):
        value = _fold_call(expr, consts, depth + 1)
    return value if value is None or len(value) <= _MAX_FOLD else None


def _fold_part(value: ast.expr, consts: dict[str, str], depth: int) -> str | None:
    if isinstance(value, ast.FormattedValue):
        return fold(value.value, consts, depth) if value.format_spec is None else None
    return fold(value, consts, depth)


def _is_reversal(index: ast.expr) -> bool:
    return (
        isinstance(index, ast.Slice)
        and index.lower is None
        and index.upper is None
        and isinstance(index.step, ast.UnaryOp)
        and isinstance(index.step.op, ast.USub)
        and isinstance(index.step.operand, ast.Constant)
        and index.step.operand.value == 1
    )


def _fold_call(call: ast.Call, consts: dict[str, str], depth: int) -> str | None:
    func, args = call.func, call.args
    if isinstance(func, ast.Name) and func.id == "chr" and len(args) == 1:
        code = args[0].value if isinstance(args[0], ast.Constant) else None
        if type(code) is int and 0 <= code < 0x110000:
            return chr(code)
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "join"
        and len(args) == 1
        and isinstance(args[0], ast.List | ast.Tuple)
    ):
        sep = fold(func.value, consts, depth)
        parts = [fold(e, consts, depth) for e in args[0].elts]
        if sep is not None and None not in parts:
            return sep.join(p for p in parts if p is not None)
    return None


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names assigned a (disguised) constant string exactly once."""
    consts: dict[str, str] = {}
    seen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                value = fold(node.value, consts)
                if target.id in seen or value is None:
                    consts.pop(target.id, None)
                else:
                    consts[target.id] = value
                seen.add(target.id)
    return consts


def resolve(
    expr: ast.expr, aliases: dict[str, str], consts: dict[str, str], depth: int = 0
) -> str | None:
    """The dotted name of what ``expr`` is, seeing through getattr and ``__dict__``."""
    attrs = []
    while isinstance(expr, ast.Attribute):  # a loop: attribute chains can be long
        attrs.append(expr.attr)
        expr = expr.value
    base: str | None = None
    if isinstance(expr, ast.Name):
        base = aliases.get(expr.id, expr.id)
        base = "builtins" if base == "__builtins__" else base
    elif depth < _MAX_DEPTH:
        looked_up = _lookup(expr, aliases, consts, depth + 1)
        if looked_up is not None and looked_up[1] is not None:
            base = f"{looked_up[0]}.{looked_up[1]}"
    return ".".join([base, *reversed(attrs)]) if base else None


def _lookup(
    expr: ast.expr, aliases: dict[str, str], consts: dict[str, str], depth: int = 0
) -> tuple[str, str | None] | None:
    """(module, folded name or None) for ``getattr(m, x)`` or ``m.__dict__[x]`` on a risky m."""
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and len(expr.args) >= 2
        and aliases.get(expr.func.id, expr.func.id) in ("getattr", "builtins.getattr")
    ):
        module = resolve(expr.args[0], aliases, consts, depth)
        if module in RISKY_MODULES:
            return module, fold(expr.args[1], consts)
    if isinstance(expr, ast.Subscript) and not isinstance(expr.slice, ast.Slice):
        module = _namespace(expr.value, aliases, consts, depth)
        if module is not None:
            return module, fold(expr.slice, consts)
    return None


def _namespace(
    expr: ast.expr, aliases: dict[str, str], consts: dict[str, str], depth: int
) -> str | None:
    """The risky module whose namespace ``expr`` is (``os.__dict__``, ``vars(builtins)``)."""
    if isinstance(expr, ast.Attribute) and expr.attr == "__dict__":
        module = resolve(expr.value, aliases, consts, depth)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "vars":
        module = resolve(expr.args[0], aliases, consts, depth) if len(expr.args) == 1 else None
    else:
        module = "builtins" if isinstance(expr, ast.Name) and expr.id == "__builtins__" else None
    return module if module in RISKY_MODULES else None


def check(
    node: ast.expr, aliases: dict[str, str], consts: dict[str, str]
) -> Iterator[tuple[Severity, str]]:
    """Yield (severity, message) for a name built at run time (a call or a subscript)."""
    looked_up = _lookup(node, aliases, consts)
    if looked_up is not None:
        module, name = looked_up
        if name is None:
            yield "suspicious", f"an attribute of `{module}` named at run time"
        elif name in RISKY_NAMES:
            yield "dangerous", f"`{module}.{name}` reached by name lookup"
    elif _is_globals_lookup(node):
        assert isinstance(node, ast.Subscript)
        key = fold(node.slice, consts)
        if key == "__builtins__":
            yield "suspicious", "`__builtins__` fetched from the globals"
        elif key in RISKY_NAMES:
            yield "dangerous", f"`{key}` fetched from the globals by name"


def _is_globals_lookup(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id in ("globals", "locals")
    )


def shell_dicts(assigns: list[ast.Assign]) -> set[str]:
    """Names that hold keyword arguments with ``shell=True``."""
    names: set[str] = set()
    for node in assigns:
        if len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and carries_shell(node.value, set()):
                names.add(target.id)
            elif (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and _is_key(target.slice, "shell")
                and _is_true(node.value)
            ):
                names.add(target.value.id)
    return names


def carries_shell(expr: ast.expr, names: set[str]) -> bool:
    """Whether ``**expr`` passes ``shell=True``."""
    if isinstance(expr, ast.Dict):
        return any(
            k is not None and _is_key(k, "shell") and _is_true(v)
            for k, v in zip(expr.keys, expr.values, strict=True)
        )
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict":
        return any(k.arg == "shell" and _is_true(k.value) for k in expr.keywords)
    return isinstance(expr, ast.Name) and expr.id in names


def _is_key(expr: ast.expr, key: str) -> bool:
    return isinstance(expr, ast.Constant) and expr.value == key


def _is_true(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is True
