"""Settings: flag > AMPHUB_* environment > amphub.toml in the data dir > default."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from amphub.config import SETTINGS, Config, ConfigError, load_config

# setting: (flag value, environment text, toml text, expected from each of them, default)
SOURCES: dict[str, tuple[Any, str, str, tuple[Any, Any, Any], Any]] = {
    "host": (
        "10.0.0.1",
        "10.0.0.2",
        '"10.0.0.3"',
        ("10.0.0.1", "10.0.0.2", "10.0.0.3"),
        "127.0.0.1",
    ),  # noqa: E501
    "port": (9001, "9002", "9003", (9001, 9002, 9003), 8080),
    "base_url": (
        "https://flag.example/",
        "https://env.example/hub/",
        '"https://file.example"',
        ("https://flag.example", "https://env.example/hub", "https://file.example"),
        None,
    ),
    "quota_unit": (1024, "2048", "4096", (1024, 2048, 4096), 10 * 1024**3),
    "grace_days": (1, "2", "3", (1, 2, 3), 7),
    "retention_days": (10, "20", "30", (10, 20, 30), 15),
    "prune_days": (1, "2", "3", (1, 2, 3), 14),
    "workers": (4, "5", "6", (4, 5, 6), 2),
    "render_seconds": (3, "4", "5", (3, 4, 5), 2),
    "max_git_file_size": (2048, "4096", "8192", (2048, 4096, 8192), 100 * 1024**2),
    "zone": (
        "flag-zone",
        "env-zone",
        '"file-zone"',
        ("flag-zone", "env-zone", "file-zone"),
        "default",
    ),  # noqa: E501
    "header_timeout": (10, "20", "40", (10, 20, 40), 30),
    "min_body_rate": (0, "100", "200", (0, 100, 200), 1024),
    "body_rate_window": (5, "6", "7", (5, 6, 7), 30),
    "connections_per_address": (8, "16", "32", (8, 16, 32), 64),
    "max_connections": (100, "200", "300", (100, 200, 300), 4096),
    "node": ("n1", "n2.example", '"n-3"', ("n1", "n2.example", "n-3"), socket.gethostname()),
    "shutdown_timeout": (0, "5", "60", (0, 5, 60), 30),
    "log_format": ("json", "json", '"json"', ("json", "json", "json"), "text"),
    "object_grace_seconds": (0, "60", "120", (0, 60, 120), 3600),
    "database": (
        "postgresql://a@h/d",
        "postgres://b@h/d",
        '"sqlite"',
        ("postgresql://a@h/d", "postgres://b@h/d", "sqlite"),
        "sqlite",
    ),
    "storage": (
        "s3://flag/p/",
        "s3://env",
        '"local"',
        ("s3://flag/p", "s3://env", "local"),
        "local",
    ),
    "s3_endpoint": (
        "http://a:1",
        "http://b:2",
        '"http://c:3"',
        ("http://a:1", "http://b:2", "http://c:3"),
        None,
    ),  # noqa: E501
    "s3_region": ("eu-1", "eu-2", '"eu-3"', ("eu-1", "eu-2", "eu-3"), "us-east-1"),
    "s3_addressing": ("virtual", "virtual", '"virtual"', ("virtual",) * 3, "path"),
    "s3_redirect": (0, "0", "0", (0, 0, 0), 1),
    "verify_downloads": (0, "0", "0", (0, 0, 0), 1),
    "s3_part_size": (65536, "131072", "262144", (65536, 131072, 262144), 16 * 1024**2),
    "s3_access_key_id": ("k1", "k2", '"k3"', ("k1", "k2", "k3"), None),
    "s3_secret_access_key": ("s1", "s2", '"s3"', ("s1", "s2", "s3"), None),
    "mirror_suspicious": ("block", "warn", '"block"', ("block", "warn", "block"), "warn"),
    "task_lease_seconds": (3, "10", "20", (3, 10, 20), 60),
    "sign_in_limit": (1, "20", "30", (1, 20, 30), 10),
    "mirror_wait_seconds": (0, "5", "9", (0, 5, 9), 50),
}
LAYERS = ["flag", "env", "file", "default"]


def test_every_setting_is_covered():
    assert set(SOURCES) == set(SETTINGS)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_precedence(tmp_path: Path, name: str, layer: str):
    flag, env, toml, expected, default = SOURCES[name]
    data = tmp_path / "data"
    data.mkdir()
    given = LAYERS[LAYERS.index(layer) :]  # this layer and every weaker one
    flags = {"data_dir": str(data)}
    environ = {}
    if "flag" in given:
        flags[name] = flag
    if "env" in given:
        environ[f"AMPHUB_{name.upper()}"] = env
    if "file" in given:
        (data / "amphub.toml").write_text(f"{name} = {toml}\n")
    config = load_config(flags, environ)
    want = default if layer == "default" else expected[LAYERS.index(layer)]
    assert getattr(config, name) == want
    # Nothing else changed.
    for other in SETTINGS:
        if other != name:
            assert getattr(config, other) == SOURCES[other][4], other


def test_all_settings_from_one_file(tmp_path: Path):
    (tmp_path / "amphub.toml").write_text(
        "".join(f"{name} = {toml}\n" for name, (_, _, toml, _, _) in SOURCES.items())
    )
    config = load_config({"data_dir": str(tmp_path)}, {})
    assert {name: getattr(config, name) for name in SETTINGS} == {
        name: expected[2] for name, (_, _, _, expected, _) in SOURCES.items()
    }


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert load_config({}, {}) == Config(data_dir=tmp_path / "amphub-data")
    assert load_config(None, {}).data_dir == tmp_path / "amphub-data"


def test_data_dir_from_environment_and_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    env_dir, flag_dir = tmp_path / "from-env", tmp_path / "from-flag"
    for folder, port in ((env_dir, 7001), (flag_dir, 7002)):
        folder.mkdir()
        (folder / "amphub.toml").write_text(f"port = {port}\n")
    config = load_config({}, {"AMPHUB_DATA": str(env_dir)})
    assert (config.data_dir, config.port) == (env_dir, 7001)
    config = load_config({"data_dir": str(flag_dir)}, {"AMPHUB_DATA": str(env_dir)})
    assert (config.data_dir, config.port) == (flag_dir, 7002)
    # A relative data dir is made absolute against the working directory.
    config = load_config({}, {"AMPHUB_DATA": "from-env"})
    assert (config.data_dir, config.port) == (env_dir, 7001)
    assert config.db_path == env_dir / "amphub.db"
    assert config.repos_dir == env_dir / "repos"


def test_reads_process_environment_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AMPHUB_DATA", str(tmp_path))
    monkeypatch.setenv("AMPHUB_PORT", "8181")
    config = load_config({})
    assert (config.data_dir, config.port) == (tmp_path, 8181)


def test_flag_given_as_none_does_not_hide_environment(tmp_path: Path):
    # argparse passes None for a flag that was not given.
    config = load_config({"data_dir": str(tmp_path), "port": None}, {"AMPHUB_PORT": "9100"})
    assert config.port == 9100


# (environment, amphub.toml text or None, flags, the message with {toml} for the file's path)
BAD = [
    ({"AMPHUB_PORT": "eighty"}, None, {}, "AMPHUB_PORT: port must be a whole number, not 'eighty'"),
    ({"AMPHUB_PORT": ""}, None, {}, "AMPHUB_PORT: port must be a whole number, not ''"),
    (
        {"AMPHUB_WORKERS": "2.5"},
        None,
        {},
        "AMPHUB_WORKERS: workers must be a whole number, not '2.5'",
    ),  # noqa: E501
    (
        {"AMPHUB_GRACE_DAYS": "-1"},
        None,
        {},
        "AMPHUB_GRACE_DAYS: grace_days must be 0 to 36500, not -1",
    ),
    ({}, 'colour = "red"\n', {}, "{toml}: unknown settings colour"),
    ({}, "port = 1\nzebra = 1\napple = 2\n", {}, "{toml}: unknown settings apple, zebra"),
    ({}, "data_dir = '/x'\n", {}, "{toml}: unknown settings data_dir"),
    ({}, "port = true\n", {}, "{toml}: port must be a whole number, not True"),
    ({}, "host = 5\n", {}, "{toml}: host must be text, not 5"),
    ({}, "port = [1]\n", {}, "{toml}: port must be a whole number, not [1]"),
    ({}, None, {"port": "x"}, "--port: port must be a whole number, not 'x'"),
    (
        {"AMPHUB_LOG_FORMAT": "xml"},
        None,
        {},
        "AMPHUB_LOG_FORMAT: log_format must be text or json, not 'xml'",
    ),
    (
        {},
        None,
        {"node": "a\nb"},
        "--node: node must be a host name (letters, digits, ._-), not 'a\\nb'",
    ),
    ({}, 'node = "-x"\n', {}, "{toml}: node must be a host name (letters, digits, ._-), not '-x'"),
    (
        {"AMPHUB_S3_ADDRESSING": "dns"},
        None,
        {},
        "AMPHUB_S3_ADDRESSING: s3_addressing must be path or virtual, not 'dns'",
    ),
    (
        {},
        'storage = "/mnt/x"\n',
        {},
        "{toml}: storage must be local or s3://BUCKET[/PREFIX], not '/mnt/x'",
    ),
]


def test_s3_secrets_are_never_printed(tmp_path: Path):
    config = load_config({"data_dir": str(tmp_path)}, {"AMPHUB_S3_SECRET_ACCESS_KEY": "hush"})
    assert config.s3_secret_access_key == "hush" and "hush" not in repr(config)


@pytest.mark.parametrize(("environ", "toml", "flags", "message"), BAD)
def test_bad_values(tmp_path: Path, environ, toml, flags, message):
    path = tmp_path / "amphub.toml"
    if toml is not None:
        path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config({"data_dir": str(tmp_path), **flags}, environ)
    assert str(info.value) == message.format(toml=path)


@pytest.mark.parametrize("text", ["port = \n", "port = 80\nport = 81\n", "[server\n", "port: 80\n"])
def test_invalid_toml(tmp_path: Path, text: str):
    path = tmp_path / "amphub.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config({"data_dir": str(tmp_path)}, {})
    assert str(info.value).startswith(f"{path}: ")
    assert "line 1" in str(info.value) or "line 2" in str(info.value)


# Values that are numbers but not usable; each must be refused, not silently accepted.
UNUSABLE = [
    ("AMPHUB_PORT", "70000", "port"),
    ("AMPHUB_QUOTA_UNIT", "0", "quota_unit"),
]


@pytest.mark.parametrize(("variable", "value", "name"), UNUSABLE)
def test_unusable_numbers_refused(tmp_path: Path, variable: str, value: str, name: str):
    with pytest.raises(ConfigError) as info:
        load_config({"data_dir": str(tmp_path)}, {variable: value})
    assert str(info.value).startswith(f"{variable}: {name} must ")


@pytest.mark.parametrize("text", ["port = 8080.5\n", "quota_unit = 1.5e10\n"])
def test_toml_fractions_not_truncated(tmp_path: Path, text: str):
    (tmp_path / "amphub.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config({"data_dir": str(tmp_path)}, {})
    assert "must be a whole number" in str(info.value)
