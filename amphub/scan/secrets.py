"""Leaked secrets in a text file: key formats, passwords in URLs, secret-looking values.

The rules are written here, informed by the public gitleaks rule set: a keyword
pre-filter, then a regex, then an entropy threshold and a placeholder check.

Security rules, with the reason next to each:

- The content is untrusted, so every pattern runs in time linear in the input: each
  quantifier is bounded (``{0,40}``, never ``*`` or ``+``) and nothing is nested, so
  the work at any start position is bounded by a constant. Lines are not split or
  skipped: a 5 MB minified line is scanned like any other, in bounded time.
- Patterns run over the raw bytes and, for case-insensitive rules, over
  ``data.lower()`` — which lowercases ASCII only and so keeps every offset — so the
  text is never decoded and offsets map straight back to lines.
- Most patterns begin with a literal (``ghp_``, ``AKIA``) so ``re`` can jump between
  candidates; the left word boundary is checked in Python because a leading one in
  the pattern would disable that jump and cost a factor of ten.
- A finding carries a masked value (see ``mask``), never the secret itself: the scan
  report is shown to people who must not learn the secret from it.
- Documented example keys (AWS's ``AKIAIOSFODNN7EXAMPLE`` and its secret, Azurite's
  development account key) are not reported: they are published, grant nothing, and
  reporting them teaches people to ignore findings.
- Key formats (``ghp_…``, ``AKIA…``, PEM bodies) are dangerous. The rest is caught
  by an assignment rule (``password = "…"``, ``api_key: …``, ``HF_TOKEN=…``): the
  name must end in a secret word (so ``tokenizer_name``, ``NextToken`` do not
  count), the value must be 16–256 characters, not only letters (a name), a number,
  a UUID (a request ID), a path or a placeholder (``${X}``, ``<your-key>``,
  ``os.environ[…]``), and reach ``GENERIC_MIN_ENTROPY``. Those findings are only
  suspicious; so is a password in a URL, as nothing tells a real one from a sample.
- At most ``MAX_FINDINGS`` secrets are listed, and at most ``MAX_CANDIDATES`` matches
  checked, per file; past either the scan stops with a suspicious finding saying so
  (failing closed), so a file of a million fake keys is a short report, quickly.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import TypedDict, Unpack

from amphub.scan.findings import Finding, Severity

MAX_FINDINGS = 100
MAX_CANDIDATES = 100_000  # matches checked in Python per file; see _Found.take
GENERIC_MIN_ENTROPY = 3.5  # bits per character; random base62 of 16+ chars is ~3.8+
# Hex has 16 symbols, so its entropy tops out at 4: a random 32-digit hex string is
# under 3.5 one time in five, and under 3.0 one time in ten thousand.
GENERIC_MIN_ENTROPY_HEX = 3.0
GENERIC_MIN_LENGTH = 16
GENERIC_MAX_LENGTH = 256

_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

# Published in vendor documentation; see the module docstring.
_DOCUMENTED_EXAMPLES = frozenset(
    {
        b"AKIAIOSFODNN7EXAMPLE",
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    }
)


@dataclass(frozen=True)
class _Rule:
    """A key format: which service, how it looks, how sure a match makes us."""

    name: str
    keywords: tuple[bytes, ...]  # lowercase; the regex runs only if one occurs
    pattern: re.Pattern[bytes]  # group 1, if any, is the secret; else the whole match
    severity: Severity = "dangerous"
    min_entropy: float = 3.0  # keeps "ghp_xxxx…" placeholders out
    lowered: bool = False  # matched against data.lower(): a case-insensitive rule


class _RuleOptions(TypedDict, total=False):
    severity: Severity
    min_entropy: float
    lowered: bool


def _rule(name: str, keywords: str, pattern: bytes, **kw: Unpack[_RuleOptions]) -> _Rule:
    return _Rule(name, tuple(k.encode() for k in keywords.split()), re.compile(pattern), **kw)


# What follows a secret-like name in an assignment: `= "`, `: '`, `=> `, `:= `.
_ASSIGN = rb"""["']?[ \t]{0,8}(?:=|:|=>|:=)[ \t]{0,8}["']?"""

_RULES = (
    _rule("AWS access key ID", "akia asia", rb"A[KS]IA[A-Z2-7]{16}(?![A-Za-z0-9])"),
    _rule(
        "AWS secret access key",
        "aws secret_access secretaccess",
        rb"(?:aws[_.-]?secret|secret[_.-]?access)[a-z0-9_.-]{0,20}"
        + _ASSIGN
        + rb"([a-z0-9/+]{40})(?![a-z0-9/+=])",
        min_entropy=4.0,
        lowered=True,
    ),
    _rule(
        "Azure storage account key",
        "accountkey",
        rb"accountkey[ \t]{0,4}=[ \t]{0,4}([a-z0-9+/]{86}==)",
        min_entropy=4.0,
        lowered=True,
    ),
    _rule(
        "Azure shared access key",
        "sharedaccesskey",
        rb"sharedaccesskey[ \t]{0,4}=[ \t]{0,4}([a-z0-9+/]{42,43}=)",
        min_entropy=4.0,
        lowered=True,
    ),
    _rule("GitHub token", "ghp_ gho_ ghu_ ghs_ ghr_", rb"gh[pousr]_[0-9A-Za-z]{36,251}(?!\w)"),
    _rule("GitHub fine-grained token", "github_pat_", rb"github_pat_\w{60,251}(?!\w)"),
    _rule(
        "GitLab token",
        "glpat- gldt- glrt- glptt- gloas- glsoat-",
        rb"gl(?:pat|dt|rt|ptt|oas|soat)-[\w-]{20,300}(?:\.[0-9a-z]{9})?(?![\w-])",
    ),
    _rule("Slack token", "xox", rb"xox[abposer]-[0-9A-Za-z-]{10,250}(?![0-9A-Za-z-])"),
    _rule("Slack app token", "xapp-", rb"xapp-\d-[0-9A-Za-z]{6,20}-\d{6,20}-[0-9a-z]{20,100}"),
    _rule(
        "Slack webhook URL",
        "hooks.slack.com",
        rb"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/]{43,56})",
    ),
    _rule(
        "Hugging Face token",
        "hf_ api_org_",
        rb"(?:hf|api_org)_[A-Za-z0-9]{34,40}(?![A-Za-z0-9_])",
        min_entropy=3.5,
    ),
    _rule(
        "Anthropic API key",
        "sk-ant-",
        rb"sk-ant-(?:api|admin)\d\d-[\w-]{80,120}(?![\w-])",
        min_entropy=3.5,
    ),
    _rule(
        "OpenAI API key",
        "sk-",
        rb"sk-(?:(?:proj|svcacct|admin)-[\w-]{40,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})"
        rb"(?![\w-])",
        min_entropy=3.5,
    ),
    _rule("Stripe live key", "sk_live_", rb"sk_live_[A-Za-z0-9]{10,99}(?!\w)"),
    _rule("Stripe restricted live key", "rk_live_", rb"rk_live_[A-Za-z0-9]{10,99}(?!\w)"),
    # Test-mode keys reach only test data, hence a lesser severity.
    _rule(
        "Stripe test key",
        "sk_test_",
        rb"sk_test_[A-Za-z0-9]{10,99}(?!\w)",
        severity="suspicious",
    ),
    _rule("Google API key", "aiza", rb"AIza[\w-]{35}(?![\w-])", min_entropy=4.0),
    _rule("npm token", "npm_", rb"npm_[A-Za-z0-9]{36}(?!\w)", min_entropy=3.5),
    _rule(
        "PyPI upload token",
        "pypi-",
        rb"pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[\w-]{50,1000}",
    ),
    _rule("Twilio API key", "sk", rb"SK[0-9a-fA-F]{32}(?!\w)"),
    _rule("SendGrid API key", "sg.", rb"SG\.[\w-]{20,24}\.[\w-]{40,46}(?![\w-])"),
    # An amphub access key is "amp_" + 32 random bytes in URL-safe base64: 43 chars.
    # Mixed-precision code says "amp_" a lot; a 43-char identifier is not random
    # enough to pass the entropy check.
    _rule("amphub access key", "amp_", rb"amp_[\w-]{43}(?![\w-])", min_entropy=4.2),
    _rule(
        "amphub transfer token",
        "amptok.",
        rb"amptok\.eyJ[\w-]{10,4000}\.[\w-]{43}(?![\w-])",
    ),
)

_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{0,40}?)PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(rb"-----END")
_PEM_MAX_BODY = 65536  # the largest PGP private key blocks are well under this
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]{1,4096}")

# `scheme://user:password@host`; the user may be empty (`redis://:pw@host`).
_URL_PASSWORD = re.compile(rb"""://([^\s:/?#@"'<>\\]{0,128}):([^\s/?#@"'<>\\]{1,256})@(?=[\w\[])""")

# A secret-like word, then the rest of the name it sits in (matched on lowercase).
_SECRET_NAME = re.compile(
    rb"(?:passw|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|private[_.-]?key"
    rb"|credential|passphrase|auth)[a-z0-9_.-]{0,40}"
)
# The name must end in one of these: `api_key`, `hf_token`, `db_password` count,
# `tokenizer_name`, `max_tokens`, `author`, `secret_name` do not.
_NAME_ENDINGS = (
    b"password",
    b"passwd",
    b"pwd",
    b"secret",
    b"token",
    b"key",
    b"credential",
    b"credentials",
    b"passphrase",
    b"auth",
)
# Names of tokens that are not credentials: pagination, idempotency, CSRF.
_NOT_SECRET_NAME = re.compile(
    rb"(?:next|continuation|change|request|client|sequence|page|pagination|idempotency"
    rb"|purchase|lock|action|csrf|xsrf|sync|resume|cancellation|update|export|import"
    rb"|product)token\Z"
)
_NAME_START = re.compile(rb"[a-z0-9_.-]{1,40}\Z")
# What the name is assigned: an optional quote, then the value up to a delimiter.
_VALUE = re.compile(
    rb"""["']?[ \t]{0,8}(?::=|=>|=(?!=)|:(?!:))[ \t]{0,8}(?:[rbuRBUfF]{0,2}(["'`]))?"""
    rb"""([^\s"'`,;(){}\[\]<>]{%d,%d})""" % (GENERIC_MIN_LENGTH, GENERIC_MAX_LENGTH + 1)
)
_PLACEHOLDER_PARTS = (
    b"xxxx",
    b"****",
    b"...",
    b"example",
    b"changeme",
    b"change_me",
    b"change-me",
    b"placeholder",
    b"your_",
    b"your-",
    b"yourkey",
    b"yourtoken",
    b"dummy",
    b"redacted",
    b"replace",
    b"insert",
    b"sample",
    b"environ",
    b"getenv",
    b"process.env",
    b"secrets.",
    b"${",
    b"{{",
    b"%(",
    b"$(",
    b"abcdefgh",
    b"12345678",
)
_LETTERS_ONLY = re.compile(rb"[A-Za-z_.-]{1,256}")
_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A value naming what it stands for ("webdavpassword1", "export-token-x7") is a made-up
# one; as are placeholders (above) and test values.
_STOPWORDS = re.compile(rb"passw|secret|token|test")
_HEX = re.compile(rb"[0-9a-fA-F]{1,256}")
_URL_PLACEHOLDERS = frozenset(
    {b"password", b"passwd", b"pass", b"pwd", b"secret", b"token", b"pw", b"p", b"changeme"}
)


def mask(secret: str) -> str:
    """Show enough of a secret to recognise it, never enough to use it.

    The first four and last two characters of a secret of 16 or more characters (a
    prefix like ``ghp_`` names only the kind); of a shorter one, such as a password
    in a URL, only the first character, and of one under 8 characters nothing.

    Args:
        secret: The secret as found.

    Returns:
        For example ``ghp_…9Z`` for a GitHub token.
    """
    if len(secret) >= 16:
        return f"{secret[:4]}…{secret[-2:]}"
    return f"{secret[:1]}…" if len(secret) >= 8 else "…"


def shannon_entropy(value: bytes) -> float:
    """Bits per character of ``value``: ~4.7+ for random base62, under 3 for words."""
    if not value:
        return 0.0
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values())


def scan_secrets(data: bytes, *, code: bool = False) -> list[Finding]:
    """Find leaked secrets in a text file.

    Args:
        data: The file's bytes (UTF-8 text).
        code: Whether the file is source code, where an unquoted value after
            ``password =`` is an expression, not a literal, and is not checked.

    Returns:
        Findings of kind ``secret`` in line order, each with a masked value.
    """
    found = _Found(data)
    lowered = data.lower()
    for rule in _RULES:
        if any(k in lowered for k in rule.keywords):
            _run_rule(rule, data, lowered, found)
    if b"-----begin" in lowered:
        _private_keys(data, found)
    if b"://" in data:
        _url_passwords(data, found)
    _secret_assignments(data, lowered, found, code=code)
    return found.findings()


class _Found:
    """Accepted matches (no two overlap) and the budget of candidates left to check."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._items: list[tuple[int, int, str, Severity, bytes]] = []
        self._candidates = 0
        self.stopped = False

    def take(self) -> bool:
        """Count one candidate; False once the scan must stop.

        Regexes are linear in C, but each candidate costs microseconds of Python: a
        file built of a million near-misses (`://u:u@h` …) is cut short here, and
        says so, rather than taking seconds.
        """
        self._candidates += 1
        if self._candidates > MAX_CANDIDATES or len(self._items) > MAX_FINDINGS:
            self.stopped = True
        return not self.stopped

    def add(self, start: int, end: int, message: str, severity: Severity, secret: bytes) -> None:
        # Earlier rules are the more specific ones: a GitHub token assigned to
        # `token = …` is reported once, as a GitHub token.
        if not any(start < e and s < end for s, e, *_ in self._items):
            self._items.append((start, end, message, severity, secret))

    def findings(self) -> list[Finding]:
        out = []
        line, pos = 1, 0
        for start, _end, message, severity, secret in sorted(self._items)[:MAX_FINDINGS]:
            line += self._data.count(b"\n", pos, start)
            pos = start
            text = secret.decode("utf-8", "replace")
            out.append(Finding("secret", message, severity, line=line, masked=mask(text)))
        if self.stopped or len(self._items) > MAX_FINDINGS:
            # Fail closed: what was not looked at may hold something worse.
            note = f"secret scan stopped early: over {MAX_FINDINGS} findings or too many candidates"
            out.append(Finding("secret", note, "suspicious"))
        return out


def _word_start(data: bytes, start: int) -> bool:
    """Whether a match at ``start`` begins a word rather than continuing one."""
    return start == 0 or data[start - 1] not in _WORD


def _run_rule(rule: _Rule, data: bytes, lowered: bytes, found: _Found) -> None:
    haystack = lowered if rule.lowered else data
    group = 1 if rule.pattern.groups else 0
    for match in rule.pattern.finditer(haystack):
        if not found.take():
            return
        start, end = match.span(group)
        secret = data[start:end]
        if not _word_start(data, match.start()) or _is_documented(secret):
            continue
        if shannon_entropy(secret) < rule.min_entropy or _looks_sequential(secret):
            continue
        found.add(start, end, f"{rule.name} found", rule.severity, secret)


def _is_documented(secret: bytes) -> bool:
    # AWS marks every key in its documentation with EXAMPLE (AKIAEXAMPLEPBUMBC3GA,
    # private keys with EXAMPLE in the body); chance puts it in a random key never.
    return secret in _DOCUMENTED_EXAMPLES or b"EXAMPLE" in secret


def _looks_sequential(value: bytes) -> bool:
    lowered = value.lower()
    return b"abcdefgh" in lowered or b"12345678" in lowered or b"xxxxxx" in lowered


def _private_keys(data: bytes, found: _Found) -> None:
    headers = [(m.start(), m.end(), m.group(1)) for m in _PEM_BEGIN.finditer(data)]
    ends = [m.start() for m in _PEM_END.finditer(data)]
    for i, (start, body_start, kind_bytes) in enumerate(headers):
        if not found.take():
            return
        # The body stops at the next END, the next BEGIN or the size bound, so a file
        # of a million headers reads each byte once, not once per header.
        stop = body_start + _PEM_MAX_BODY
        if i + 1 < len(headers):
            stop = min(stop, headers[i + 1][0])
        j = bisect.bisect_left(ends, body_start)
        closed = j < len(ends) and ends[j] <= stop
        if closed:
            stop = ends[j]
        body = _pem_body(data[body_start:stop])
        # Documentation shows "-----BEGIN … PRIVATE KEY-----\n...\n-----END": no body.
        if len(body) < 64 or _is_documented(body):
            continue
        kind = kind_bytes.decode().strip()
        label = f"{kind} private key" if kind else "private key"
        if data.rfind(b'"private_key"', max(0, start - 40), start) != -1:
            label += " (in a JSON key file, e.g. a GCP service account)"
        span_end = stop if closed else body_start  # an unclosed body's extent is a guess
        found.add(start, span_end, f"{label} found", "dangerous", body)


def _pem_body(raw: bytes) -> bytes:
    """The base64 of a PEM body; JSON-escaped newlines and header lines are skipped."""
    lines = raw.replace(b"\\n", b"\n").replace(b"\\r", b"").splitlines()
    kept = []
    for line in lines:
        line = line.strip(b" \t\"',\\")
        if _BASE64_LINE.fullmatch(line):
            kept.append(line)
    return b"".join(kept)


def _url_passwords(data: bytes, found: _Found) -> None:
    for match in _URL_PASSWORD.finditer(data):
        if not found.take():
            return
        user, password = match.group(1), match.group(2)
        lowered = password.lower()
        if lowered in _URL_PLACEHOLDERS or password == user or _is_placeholder(password):
            continue
        if lowered.strip(b"*x.") == b"" or password[:1] in b"$%{<[:":
            continue
        # Suspicious, not dangerous: unlike a key format, nothing tells a real password
        # from a sample or a local development default.
        start, end = match.span(2)
        found.add(start, end, "password in a URL", "suspicious", password)


def _secret_assignments(data: bytes, lowered: bytes, found: _Found, *, code: bool) -> None:
    """`password = "…"`, `api_key: …`, `HF_TOKEN=…` with a random-looking value."""
    for match in _SECRET_NAME.finditer(lowered):
        if not found.take():
            return
        name_end = match.end()
        if not lowered[match.start() : name_end].rstrip(b"._-").endswith(_NAME_ENDINGS):
            continue
        value = _VALUE.match(data, name_end)
        if value is None:
            continue
        quote, secret = value.group(1), value.group(2)
        if not _plausible_value(data, value.end(), quote, secret, code=code):
            continue
        head = _NAME_START.search(lowered, max(0, match.start() - 40), match.start())
        name_start = head.start() if head else match.start()
        if _NOT_SECRET_NAME.search(re.sub(rb"[_.-]", b"", lowered[name_start:name_end])):
            continue
        name = data[name_start:name_end].decode("ascii", "replace").lstrip("-.")
        message = f"high-entropy value assigned to `{name}`"
        start, end = value.span(2)
        found.add(start, end, message, "suspicious", secret)


def _plausible_value(
    data: bytes, end: int, quote: bytes | None, secret: bytes, *, code: bool
) -> bool:
    if len(secret) > GENERIC_MAX_LENGTH:  # a long blob, or cut short by the bound
        return False
    after = data[end : end + 1]
    if quote:
        if after != quote:  # the string holds spaces or other text: not a token
            return False
    elif code or (after and after not in b" \t\r\n,;)}]"):
        return False  # in code an unquoted value is an expression; `x(` is a call
    # Words, dotted names, numbers and UUIDs (request and resource IDs) are not keys; a
    # URL's password is the URL rule's business.
    if _LETTERS_ONLY.fullmatch(secret) or secret.isdigit() or _UUID.fullmatch(secret):
        return False
    if _is_placeholder(secret) or b"://" in secret or _STOPWORDS.search(secret.lower()):
        return False
    if secret.startswith((b"/", b"./", b"../", b"~/")) and secret.count(b"/") > 1:
        return False  # a file's path, like `secret: /run/secrets/db.key`
    threshold = GENERIC_MIN_ENTROPY_HEX if _HEX.fullmatch(secret) else GENERIC_MIN_ENTROPY
    # Entropy is at most log2(distinct symbols): a cheap test first.
    return len(set(secret)) > 2**threshold and shannon_entropy(secret) >= threshold


def _is_placeholder(value: bytes) -> bool:
    lowered = value.lower()
    return value[:1] in b"$%@<" or any(part in lowered for part in _PLACEHOLDER_PARTS)
