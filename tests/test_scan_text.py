"""The text scanner: leaked secrets, risky Python, chat templates, bounded time.

Every secret here is fake, generated from a seeded RNG when the tests run, and every
prefix is split ("gh" + "p_") so this file itself never looks like it leaks one.
"""

from __future__ import annotations

import base64
import json
import random
import string
import time

import pytest

from amphub.policy.access_keys import new_key
from amphub.policy.tokens import TransferToken, make_token
from amphub.scan.text import mask, scan_text

# A guard against runaway work (backtracking, alias expansion), not a speed test:
# linear work takes well under a second here; speed is measured in bench/.
HANG_GUARD = 30

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
UPPER32 = string.ascii_uppercase + "234567"


def fake(key: str, n: int, alphabet: str = ALNUM) -> str:
    """n random characters, the same every run for the same key."""
    rng = random.Random(key)
    return "".join(rng.choice(alphabet) for _ in range(n))


def pem_body(key: str, nbytes: int = 600) -> str:
    raw = base64.b64encode(random.Random(key).randbytes(nbytes)).decode()
    return "\n".join(raw[i : i + 64] for i in range(0, len(raw), 64))


BEGIN, END = "-----BEGIN ", "-----END "
RSA_BODY = pem_body("rsa")
SSH_BODY = pem_body("ssh", 1200)
GCP_BODY = pem_body("gcp")
AWS_ID = "AK" + "IA" + fake("aws-id", 16, UPPER32)
AWS_SECRET = fake("aws-secret", 40, B64)
AZURE_KEY = fake("azure", 86, B64) + "=="
AMP_KEY = new_key()
AMP_TOKEN = make_token(b"server-secret", TransferToken("ann", "space/model", "f" * 16, 2**40))
SENDGRID = "S" + "G." + fake("sg1", 22) + "." + fake("sg2", 43)
STRIPE_LIVE = "sk" + "_live_" + fake("stripe", 24)
STRIPE_TEST = "sk" + "_test_" + fake("stripe-test", 24)

HEX = "0123456789abcdef"


def case(case_id, secret, template, fragment, severity="dangerous"):
    """A table row: the secret as the finding masks it, on the line `template` makes."""
    return (case_id, secret, template.replace("{}", secret), fragment, severity)


def pem(kind: str, body: str, escaped: bool = False) -> str:
    text = f"{BEGIN}{kind}PRIVATE KEY-----\n{body}\n{END}{kind}PRIVATE KEY-----"
    return text.replace("\n", "\\n") if escaped else text


SECRETS = [
    case("rsa-pem", RSA_BODY.replace("\n", ""), pem("RSA ", RSA_BODY), "RSA private key"),
    case("openssh", SSH_BODY.replace("\n", ""), pem("OPENSSH ", SSH_BODY), "OPENSSH private"),
    case(
        "gcp-service-account",
        GCP_BODY.replace("\n", ""),
        '  "private_key": "' + pem("", GCP_BODY, escaped=True) + '\\n",',
        "GCP service account",
    ),
    case("aws-key-id", AWS_ID, "aws_access_key_id = {}", "AWS access key ID"),
    case("aws-session-key-id", "AS" + AWS_ID[2:], "key: {}", "AWS access key ID"),
    case("aws-secret", AWS_SECRET, "aws_secret_access_key = {}", "AWS secret access key"),
    case(
        "azure-connection-string",
        AZURE_KEY,
        'conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};"',
        "Azure storage account key",
    ),
    *[
        case(f"github-{p}", "gh" + p + "_" + fake("gh" + p, 36), "GITHUB_TOKEN={}", "GitHub token")
        for p in "pousr"
    ],
    case(
        "github-fine-grained",
        "github" + "_pat_" + fake("pat", 82, ALNUM + "_"),
        "token: {}",
        "GitHub fine-grained token",
    ),
    case("gitlab", "glp" + "at-" + fake("gl", 20), "  - export GL={}", "GitLab token"),
    *[
        case(
            f"slack-{k}", f"xox{k}-{fake(k, 12, string.digits)}-{fake(k, 24)}", '"s": "{}"', "Slack"
        )
        for k in "abpr"
    ],
    case(
        "hugging-face",
        "h" + "f_" + fake("hf", 34, string.ascii_letters),
        'login(token="{}")',
        "Hugging Face",
    ),
    case(
        "openai-project",
        "sk" + "-proj-" + fake("oai", 74, ALNUM + "_-"),
        "OPENAI_API_KEY={}",
        "OpenAI",
    ),
    case(
        "openai-legacy",
        "sk-" + fake("o1", 20) + "T3Blbk" + "FJ" + fake("o2", 20),
        "k = '{}'",
        "OpenAI",
    ),
    case("stripe-live", STRIPE_LIVE, "stripe.api_key = '{}'", "Stripe live"),
    case("stripe-test", STRIPE_TEST, "STRIPE={}", "Stripe test", "suspicious"),
    case(
        "google-api", "AI" + "za" + fake("gapi", 35, ALNUM + "_-"), "maps_key: {}", "Google API key"
    ),
    case("npm", "np" + "m_" + fake("npm", 36), "//registry.npmjs.org/:_authToken={}", "npm token"),
    case(
        "pypi",
        "py" + "pi-AgEIcHlwaS5vcmc" + fake("pypi", 120, ALNUM + "_-"),
        "password = {}",
        "PyPI",
    ),
    case("twilio", "S" + "K" + fake("tw", 32, HEX), "TWILIO_KEY_SID={}", "Twilio API key"),
    case("sendgrid", SENDGRID, "sendgrid: {}", "SendGrid API key"),
    case("amphub-key", AMP_KEY, "AMPHUB_KEY={}", "amphub access key"),
    case("amphub-token", AMP_TOKEN, "Authorization: Bearer {}", "amphub transfer token"),
    case(
        "url-password",
        "Zq8" + fake("url", 13),
        "db = postgresql://admin:{}@db.internal:5432/prod",
        "password in a URL",
        "suspicious",
    ),
    case("generic-python", fake("py", 24), 'DB_PASSWORD = "{}"', "`DB_PASSWORD`", "suspicious"),
    case(
        "generic-yaml",
        fake("yaml", 32, HEX),
        "  client_secret: {}",
        "`client_secret`",
        "suspicious",
    ),
    case("generic-json", fake("json", 20), '"apiKey": "{}",', "`apiKey`", "suspicious"),
    case("generic-env", fake("env2", 28), "export AUTH_TOKEN={}", "`AUTH_TOKEN`", "suspicious"),
]


@pytest.mark.parametrize("case", SECRETS, ids=[case[0] for case in SECRETS])
def test_each_kind_of_secret_is_found_on_its_line_and_masked(case):
    case_id, secret, line, fragment, severity = case
    # Python is scanned too: a quoted literal counts there, an expression would not.
    path = "settings.py" if case_id == "generic-python" else "notes.txt"
    text = f"# configuration\n\n{line}\n# end\n"
    findings = scan_text(path, text.encode())
    assert [(f.kind, f.line, f.severity, f.masked) for f in findings] == [
        ("secret", 3, severity, mask(secret))
    ]
    assert fragment in findings[0].message
    assert secret not in findings[0].message


def test_mask_shows_four_and_two_characters_and_less_of_a_short_secret():
    assert mask("gh" + "p_abcdefghijklmnop0123456789") == "ghp_…89"
    assert mask("hunter2hunter2") == "h…"
    assert mask("hunter2") == "…"
    for secret in ("x" * 16, "x" * 8, "p@ss"):
        assert len(mask(secret)) <= len(secret) // 2


def test_documented_example_keys_are_not_reported():
    # Published in AWS's documentation; they grant nothing, so reporting them is noise.
    text = (
        "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY\n"
    )
    assert scan_text("README.md", text.encode()) == []


LOOK_ALIKES = [
    ("task-words", "notes.md", "Run the task-" + fake("task", 48) + " and sk-learn's pipeline."),
    ("camp-site", "notes.txt", "camp_" + AMP_KEY[4:]),
    ("amp-identifier", "train.py", "amp_enabled_for_training_loop_with_grad_scal = True"),
    ("git-sha", "notes.txt", "commit " + fake("sha", 40, "0123456789abcdef")),
    (
        "lockfile",
        "poetry.lock",
        f'[[package]]\nname = "torch"\nfiles = [\n  {{file = "torch.whl", '
        f'hash = "sha256:{fake("lock", 64, "0123456789abcdef")}"}},\n]',
    ),
    (
        "npm-lockfile",
        "package-lock.json",
        f'"integrity": "sha512-{fake("integrity", 86, B64)}=="',
    ),
    ("uuid", "config.json", '{"id": "3f2b8c1e-9d4a-4b7e-8c2f-1a6d5e9b0c7d"}'),
    ("uuid-token", "reply.json", '{"ClientToken": "3f2b8c1e-9d4a-4b7e-8c2f-1a6d5e9b0c7d"}'),
    ("pagination-token", "reply.json", f'{{"NextToken": "eyJ{fake("next", 60, B64)}"}}'),
    ("aws-docs-marker", "docs.rst", "X-Amz-Credential=AKIA" + "EXAMPLEPBUMBC3GA%2F2017"),
    (
        "aws-docs-pem",
        "docs.rst",
        f"{BEGIN}RSA PRIVATE KEY-----\n{RSA_BODY[:100]}EXAMPLE{RSA_BODY[100:]}\n{END}RSA",
    ),
    (
        "notebook-image",
        "demo.ipynb",
        '{"data": {"image/png": "iVBORw0KGgo' + fake("png", 4000, B64) + '"}}',
    ),
    ("environ", "settings.py", 'password = os.environ["DB_PASSWORD"]'),
    ("environ-get", "settings.py", 'api_key = os.environ.get("OPENAI_API_KEY_FOR_TESTS")'),
    ("code-expression", "train.py", "token = tokenizer.encode(text)\nsecret = vault_client_v2"),
    (
        "env-reference",
        "compose.yaml",
        "environment:\n  token: ${TOKEN}\n  secret: $SECRET_VALUE_ONE",
    ),
    ("angle-placeholder", "README.md", 'api_key: "<your-key>"\ntoken = "<YOUR_HF_TOKEN_HERE>"'),
    ("x-placeholder", "README.md", 'secret = "xxxxxxxxxxxxxxxxxxxxxxxx"'),
    ("placeholder-token", "README.md", "gh" + "p_" + "x" * 36 + "\nh" + "f_" + "x" * 34),
    ("tokenizer-name", "config.py", 'tokenizer_name = "meta-llama/Llama-3.1-8B-Instruct"'),
    (
        "special-tokens",
        "tokenizer_config.json",
        '{"pad_token": "<|endoftext|>", "max_tokens": 4096}',
    ),
    ("url-placeholder", "README.md", "postgres://user:password@localhost/db"),
    ("url-same-user", "compose.yaml", "amqp://guest:guest@rabbitmq:5672/"),
    ("url-variables", "deploy.sh", 'curl "https://${USER}:${PASS}@example.org/"'),
    ("url-port", "README.md", "see http://host:8080/path@section for more"),
    (
        "pem-placeholder",
        "README.md",
        f"{BEGIN}RSA PRIVATE KEY-----\n...\n{END}RSA PRIVATE KEY-----",
    ),
    ("public-key", "key.pem", f"{BEGIN}PUBLIC KEY-----\n{RSA_BODY}\n{END}PUBLIC KEY-----"),
    ("letters-only", "app.yaml", "secret_name: database-credentials-primary"),
    ("path-value", "app.yaml", "secret: /run/secrets/database_2024.key"),
]


@pytest.mark.parametrize(
    ("path", "text"), [c[1:] for c in LOOK_ALIKES], ids=[c[0] for c in LOOK_ALIKES]
)
def test_look_alikes_are_not_reported(path, text):
    assert scan_text(path, text.encode()) == []


def test_a_token_assigned_to_a_secret_name_is_reported_once_as_its_format():
    token = "gh" + "p_" + fake("once", 36)
    findings = scan_text("ci.yaml", f"GITHUB_TOKEN: {token}\n".encode())
    assert [f.message for f in findings] == ["GitHub token found"]


def test_a_flood_of_secrets_stops_with_a_suspicious_note():
    lines = [f"key{i} = AKIA{fake(str(i), 16, UPPER32)}" for i in range(150)]
    findings = scan_text("dump.txt", "\n".join(lines).encode())
    assert len(findings) == 101
    assert [f.line for f in findings[:100]] == list(range(1, 101))
    assert findings[-1].severity == "suspicious" and "stopped early" in findings[-1].message


# (id, source whose last line holds the call, severity, message fragment)
RISKY_CODE = [
    ("eval-computed", "x = input()\neval(x)", "dangerous", "`eval` runs code computed"),
    ("exec-computed", "exec(compile(src, 'f', 'exec'))", "dangerous", "`exec` runs code computed"),
    ("eval-constant", "eval('1 + 1')", "suspicious", "`eval` of a constant"),
    ("os-system", "import os\nos.system('ls')", "dangerous", "`os.system` runs a shell"),
    ("os-popen-alias", "import os as o\no.popen('id')", "dangerous", "`os.popen` runs a shell"),
    ("from-os-system", "from os import system\nsystem(cmd)", "dangerous", "`os.system`"),
    (
        "subprocess-shell",
        "import subprocess as sp\nsp.run(cmd, shell=True)",
        "dangerous",
        "`subprocess.run` with shell=True",
    ),
    (
        "popen-shell",
        "from subprocess import Popen\nPopen('x', shell=True)",
        "dangerous",
        "`subprocess.Popen` with shell=True",
    ),
    (
        "shell-computed",
        "import subprocess\nsubprocess.call(c, shell=use_shell)",
        "suspicious",
        "computed shell=",
    ),
    ("getoutput", "import subprocess\nsubprocess.getoutput('ls')", "dangerous", "getoutput"),
    ("pickle-load", "import pickle\npickle.load(f)", "suspicious", "`pickle.load` unpickles"),
    ("pickle-loads-from", "from pickle import loads\nloads(b)", "suspicious", "`pickle.loads`"),
    ("dill", "import dill\ndill.load(f)", "suspicious", "`dill.load`"),
    ("cloudpickle", "import cloudpickle as cp\ncp.loads(b)", "suspicious", "`cloudpickle.loads`"),
    ("torch-load", "import torch\ntorch.load(f)", "suspicious", "`torch.load` without"),
    (
        "torch-load-false",
        "import torch\ntorch.load(f, weights_only=False)",
        "suspicious",
        "`torch.load` without",
    ),
    ("yaml-load-bare", "import yaml\nyaml.load(f)", "suspicious", "without a Loader"),
    *[
        (
            f"yaml-{loader}",
            f"import yaml\nyaml.load(f, Loader=yaml.{loader})",
            "suspicious",
            f"yaml.{loader}, not a safe Loader",
        )
        for loader in ("Loader", "FullLoader", "UnsafeLoader")
    ],
    ("yaml-unsafe-load", "import yaml\nyaml.unsafe_load(f)", "suspicious", "yaml.unsafe_load"),
    (
        "trust-remote-code",
        "from transformers import AutoModel\nAutoModel.from_pretrained(p, trust_remote_code=True)",
        "suspicious",
        "trust_remote_code=True",
    ),
    (
        "requests-verify",
        "import requests\nrequests.get(url, verify=False)",
        "suspicious",
        "`requests.get` with verify=False",
    ),
    ("session-verify", "s.post(url, json=body, verify=False)", "suspicious", "verify=False"),
    ("dynamic-import", "mod = __import__(name)", "suspicious", "`__import__` of a module"),
    # One per word group of the parse gate, spelled through an alias where one can be.
    (
        "getstatusoutput",
        "from subprocess import getstatusoutput as g\ng('ls')",
        "dangerous",
        "getstatusoutput",
    ),
    ("posix-system", "import posix as p\np.system('id')", "dangerous", "`posix.system`"),
    (
        "asyncio-shell",
        "import asyncio as a\na.create_subprocess_shell(c)",
        "dangerous",
        "create_subprocess_shell",
    ),
    ("cpickle", "import cPickle as cp\ncp.loads(b)", "suspicious", "`cPickle.loads`"),
    ("joblib", "from joblib import load as jl\njl(f)", "suspicious", "`joblib.load`"),
    ("pandas-pickle", "import pandas as pd\npd.read_pickle(f)", "suspicious", "read_pickle"),
    (
        "numpy-allow-pickle",
        "import numpy as np\nnp.load(f, allow_pickle=True)",
        "suspicious",
        "allow_pickle=True",
    ),
]


@pytest.mark.parametrize(
    ("source", "severity", "fragment"),
    [c[1:] for c in RISKY_CODE],
    ids=[c[0] for c in RISKY_CODE],
)
def test_risky_calls_are_reported_on_their_line(source, severity, fragment):
    findings = scan_text("model/modeling_custom.py", source.encode())
    assert [(f.kind, f.severity, f.line) for f in findings] == [
        ("code", severity, source.count("\n") + 1)
    ]
    assert fragment in findings[0].message


SAFE_CODE = [
    ("torch-weights-only", "import torch\ntorch.load(f, weights_only=True)"),
    ("yaml-safe-load", "import yaml\nyaml.safe_load(f)"),
    ("yaml-safe-loader", "import yaml\nyaml.load(f, Loader=yaml.SafeLoader)"),
    (
        "yaml-csafe-positional",
        "import yaml\nfrom yaml import CSafeLoader\nyaml.load(f, CSafeLoader)",
    ),
    ("subprocess-list", "import subprocess\nsubprocess.run(['git', 'status'], check=True)"),
    ("subprocess-shell-false", "import subprocess\nsubprocess.run(cmd, shell=False)"),
    ("model-eval", "model.eval()\nself.exec_count += 1\nnn.Module.eval(model)"),
    ("trust-remote-code-false", "AutoModel.from_pretrained(p, trust_remote_code=False)"),
    ("requests-verified", "import requests\nrequests.get(url, verify='/etc/ca.pem')"),
    ("constant-import", "os = __import__('os')"),
    ("shadowed-pickle", "import mypickle as pickle\npickle.load(f)"),
]


@pytest.mark.parametrize("source", [c[1] for c in SAFE_CODE], ids=[c[0] for c in SAFE_CODE])
def test_safe_twins_are_not_reported(source):
    assert scan_text("train.py", source.encode()) == []


def test_code_checks_only_python_files():
    assert scan_text("notes.md", b"os.system(cmd)\neval(x)") == []


def test_dense_python_at_the_parse_limit_is_checked_in_bounded_time():
    source = "f(x)\n" * (256 * 1024 // 5)
    started = time.perf_counter()
    assert scan_text("dense.py", source.encode()) == []
    assert time.perf_counter() - started < HANG_GUARD


def test_python_too_big_to_parse_is_searched_by_text():
    source = "# generated\n" + "x = 1\n" * 60_000 + "model.eval()\nos.system(cmd)\n"
    findings = scan_text("generated.py", source.encode())
    assert [(f.severity, f.line) for f in findings] == [("info", None), ("suspicious", 60_003)]
    assert "`os.system(` found by text match" in findings[1].message


def test_a_syntax_error_is_one_info_finding():
    findings = scan_text("broken.py", b"import os\n\ndef f(:\n    os.system('x')\n")
    assert [(f.kind, f.severity, f.line) for f in findings] == [("code", "info", 3)]
    assert "not valid Python" in findings[0].message


def test_python_naming_nothing_risky_is_not_parsed():
    # No rule can match without one of the names it looks for, so the parse is skipped.
    assert scan_text("broken.py", b"import math\n\ndef f(:\n    pass\n") == []


@pytest.mark.parametrize(
    "source",
    ["(" * 10_000, "a" + "+a" * 100_000, "-" * 200_000 + "a"],
    ids=["parens", "chain", "unary"],
)
def test_python_built_to_break_the_parser_is_an_info_finding(source):
    findings = scan_text("evil.py", ("eval\n" + source).encode())
    assert [(f.kind, f.severity) for f in findings] == [("code", "info")]


SAFE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate; the request was malformed') }}"
    "{% endif %}{% set ns = namespace(found=false) %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] | trim + eos_token }}"
    "{% endfor %}{# os.system is not called: this is a comment #}"
    "Please answer the user's request. Use self.reflection and the os. of your choice."
)
ESCAPE = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


def tokenizer_config(chat_template) -> bytes:
    config = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": chat_template}
    return json.dumps(config, indent=2).encode()


def test_a_safe_chat_template_is_not_reported():
    assert scan_text("tokenizer_config.json", tokenizer_config(SAFE_TEMPLATE)) == []


def test_a_chat_template_reaching_for_python_internals_is_dangerous():
    findings = scan_text("sub/tokenizer_config.json", tokenizer_config(SAFE_TEMPLATE + ESCAPE))
    assert {f.severity for f in findings} == {"dangerous"}
    assert {f.kind for f in findings} == {"template"}
    assert {f.line for f in findings} == {4}  # the "chat_template" key's line
    used = {f.message.split("`")[1] for f in findings}
    assert used == {"__init__", "__globals__", "cycler", "os.", "popen"}


def test_each_named_template_in_a_list_is_checked():
    templates = [
        {"name": "default", "template": SAFE_TEMPLATE},
        {"name": "tool_use", "template": "{{ x|attr('__class__')|attr('__mro__') }}"},
    ]
    findings = scan_text("tokenizer_config.json", tokenizer_config(templates))
    assert [f.message for f in findings] == [
        "chat template 'tool_use' uses `__class__`, a known route out of the Jinja sandbox",
        "chat template 'tool_use' uses `__mro__`, a known route out of the Jinja sandbox",
    ]


@pytest.mark.parametrize(
    "escape",
    [
        "{{ lipsum.__globals__ }}",
        "{% set x = joiner.__init__ %}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ self._TemplateReference__context }}",
        "{{ namespace.__init__.__builtins__ }}",
        "{{ request.application }}",
    ],
)
def test_a_jinja_file_is_checked_line_by_line(escape):
    text = f"{{{{ bos_token }}}}\nline two\n{escape}\n"
    findings = scan_text("chat_template.jinja", text.encode())
    assert findings and {(f.kind, f.severity, f.line) for f in findings} == {
        ("template", "dangerous", 3)
    }


def test_an_invalid_tokenizer_config_is_an_info_finding():
    findings = scan_text("tokenizer_config.json", b'{"chat_template": ')
    assert [(f.kind, f.severity) for f in findings] == [("template", "info")]


def test_other_json_files_are_not_template_checked():
    assert scan_text("config.json", tokenizer_config(ESCAPE)) == []


MB = 1024 * 1024
PATHOLOGICAL = [
    ("a-equals", "data.txt", "a=" * (5 * MB // 2) + "\n" + "x = 1\n" * (5 * MB // 6)),
    ("quotes", "data.txt", '"' * (5 * MB) + "\n" + "'" * (5 * MB)),
    ("password-equals", "data.txt", 'password="' * (10 * MB // 10)),
    ("secret-colons", "data.yaml", "secret: " * (10 * MB // 8)),
    ("near-miss-urls", "data.txt", "://u:u@h" * (10 * MB // 8)),
    ("pem-headers", "key.txt", (BEGIN + "RSA PRIVATE KEY-----") * (10 * MB // 31)),
    ("token-prefixes", "data.txt", ("gh" + "p_" + "x" * 36 + " ") * (10 * MB // 41)),
    ("python-line", "big.py", "x = " + "1 + " * (10 * MB // 4)),
    ("jinja-quotes", "chat_template.jinja", "{{ '" + "\\'" * (5 * MB) + " {% " * MB),
    ("jinja-opens", "chat_template.jinja", "{{" * (5 * MB)),
    ("jinja-near-words", "chat_template.jinja", "{{ " + "xcycler bos.x " * (10 * MB // 14)),
    ("secret-names", "data.txt", "tokentoken=" * (10 * MB // 11)),
]


@pytest.mark.parametrize(
    ("path", "text"), [c[1:] for c in PATHOLOGICAL], ids=[c[0] for c in PATHOLOGICAL]
)
def test_ten_megabytes_built_to_be_slow_scan_in_bounded_time(path, text):
    data = text.encode()[: 10 * MB]
    started = time.perf_counter()
    scan_text(path, data)
    assert time.perf_counter() - started < HANG_GUARD
