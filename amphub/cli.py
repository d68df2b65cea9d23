"""The command line: amphub serve | tui | admin | backup | restore."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiohttp import web

from amphub import __version__, db
from amphub.config import SETTINGS, Config, ConfigError, load_config
from amphub.errors import ApiError
from amphub.server.app import bootstrap, create_app, offline
from amphub.server.connections import GuardedServer, HubRunner
from amphub.server.logs import logging_to_stderr
from amphub.services import accounts
from amphub.services.backup import BackupError, backup, restore
from amphub.services.cards import reindex_all
from amphub.services.doctor import examine
from amphub.services.scan_pool import scan_processes
from amphub.storage.objects import StoreUnusable
from amphub.tasks.airgap import AirGapRefused, export_model, import_model

log = logging.getLogger("amphub")
OFFLINE = "amphub admin"


@dataclass(frozen=True)
class UserChange:
    """An admin command that sets flags of a user: its help, the flags, the sentence after."""

    help: str
    flags: dict[str, bool]
    done: str


USER_CHANGES = {
    "grant-creator": UserChange(
        "let a user create spaces", {"creator": True}, "may now create spaces"
    ),
    "grant-admin": UserChange(
        "make a user an administrator", {"admin": True}, "is now an administrator"
    ),
    "disable": UserChange("stop a user's key and tokens", {"disabled": True}, "is now disabled"),
    "enable": UserChange("let a disabled user in again", {"disabled": False}, "is now enabled"),
}
CONSOLE_URL = "http://127.0.0.1:8080"
SERVE_FLAGS = (
    "data_dir",
    "host",
    "port",
    "base_url",
    "max_git_file_size",
    "node",
    "database",
    "storage",
    "s3_endpoint",
    "s3_region",
    "s3_addressing",
    "s3_redirect",
)


def _serve_epilog() -> str:
    """Where settings come from, every one of them, and what the first start prints."""
    names = "\n".join(f"  {name:<24} AMPHUB_{name.upper()}" for name in SETTINGS)
    return (
        "settings, the first found wins: a flag above, the environment variable\n"
        "AMPHUB_<NAME>, then <NAME> in amphub.toml in the data dir (AMPHUB_DATA or --data\n"
        "names the data dir itself), then the default. In amphub.toml: port = 9000\n\n"
        f"{names}\n\n"
        "first start: on an empty data dir, the server creates the user admin and prints\n"
        "its key once. Keep it: only its hash is stored (`amphub admin reset-key admin\n"
        "--data DIR` makes a new one)."
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amphub", description="A self-hosted model hub.")
    parser.add_argument("--version", action="version", version=f"amphub {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the server",
        epilog=_serve_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--data", dest="data_dir", help="data dir (default ./amphub-data)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--base-url", dest="base_url", help="public URL of the server")
    serve.add_argument(
        "--max-git-file-size",
        dest="max_git_file_size",
        type=int,
        help="largest file, in bytes, a push may store in git rather than LFS (default 100 MiB)",
    )
    serve.add_argument("--node", help="this process's name in tasks and logs (default host name)")
    serve.add_argument(
        "--database", help="where metadata lives: sqlite (default) or a postgresql:// URL"
    )
    serve.add_argument(
        "--storage", help="where LFS objects live: local (default) or s3://BUCKET[/PREFIX]"
    )
    serve.add_argument("--s3-endpoint", dest="s3_endpoint", help="URL of the S3-compatible store")
    serve.add_argument("--s3-region", dest="s3_region", help="the bucket's region (us-east-1)")
    serve.add_argument("--s3-addressing", dest="s3_addressing", help="path (default) or virtual")
    serve.add_argument(
        "--s3-redirect",
        dest="s3_redirect",
        type=int,
        help="1 (default): downloads go straight from the bucket; 0: amphub streams them",
    )

    console = commands.add_parser("tui", help="the admin console, over a running server's API")
    console.add_argument("--url", help=f"the server (default $AMPHUB_URL, else {CONSOLE_URL})")
    console.add_argument("--key", help="an administrator's key (default $AMPHUB_KEY)")

    doctor = commands.add_parser(
        "doctor", help="check a data dir (a live server's too) and repair what can be repaired"
    )
    doctor.add_argument("--data", dest="data_dir", help="data dir (default ./amphub-data)")
    doctor.add_argument("--repair", action="store_true", help="fix what can be fixed safely")
    doctor.add_argument(
        "--verify-objects", action="store_true", help="also hash every LFS object (reads all)"
    )

    admin = commands.add_parser("admin", help="offline administration of a data dir")
    actions = admin.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create-user", help="create a user and print its key")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.add_argument("--creator", action="store_true", help="let the user create spaces")
    reset = actions.add_parser("reset-key", help="give a user a new key and print it")
    reset.add_argument("name")
    listed = actions.add_parser("list-users", help="every user and their roles")
    changes = [
        actions.add_parser(action, help=change.help) for action, change in USER_CHANGES.items()
    ]
    for change in changes:
        change.add_argument("name")
    reindex = actions.add_parser("reindex", help="rebuild every model card from its repository")
    migrate_to = actions.add_parser(
        "migrate-to", help="copy this hub's metadata into an empty PostgreSQL database"
    )
    migrate_to.add_argument("url", help="postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE")
    export = actions.add_parser(
        "export", help="write a model at a revision into one file, for a hub out of reach"
    )
    export.add_argument("model", help="SPACE/MODEL")
    export.add_argument("file", type=Path, help="the file to write (a tar)")
    export.add_argument("--revision", default="master", help="a branch or tag (default master)")
    imported = actions.add_parser(
        "import", help="make a model from an export file; it is scanned before it is served"
    )
    imported.add_argument("file", type=Path, help="a file `amphub admin export` wrote")
    imported.add_argument("--space", required=True, help="the space of the new model")
    imported.add_argument("--name", help="the new model's id (default: the exported one's)")
    air_gap = (export, imported)
    for action in (create, reset, listed, *changes, reindex, migrate_to, *air_gap):
        action.add_argument("--data", dest="data_dir", help="data dir (default ./amphub-data)")
        action.add_argument(
            "--init", action="store_true", help="create the data dir if it does not exist"
        )

    copy = commands.add_parser(
        "backup", help="copy a data dir, while its server runs, into a new or empty folder"
    )
    copy.add_argument("dest", type=Path, help="the folder to hold the backup")
    copy.add_argument("--data", dest="data_dir", help="data dir (default ./amphub-data)")
    back = commands.add_parser("restore", help="copy a backup into a new or empty data dir")
    back.add_argument("source", type=Path, help="the backup's folder")
    back.add_argument("--data", dest="data_dir", help="data dir (default ./amphub-data)")
    return parser


async def _serve(config: Config) -> None:
    os.umask(0o077)  # what the server writes (database, repositories, objects) is its own
    key = await bootstrap(config)
    if key:
        print("created user admin (administrator, space creator)")
        print(f"administrator key: {key}", flush=True)
    with logging_to_stderr(config):
        runner = HubRunner(create_app(config))
        await runner.setup()
        try:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await web.TCPSite(runner, config.host, config.port).start()
            # Said once a stop signal is handled: whoever waits for this line may send one.
            url = config.base_url or f"http://{config.host}:{config.port}"
            print(f"amphub listening on {url}", flush=True)
            await stop.wait()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, _hurry, runner)
            seconds = config.shutdown_timeout
            log.info(
                "stopping: requests under way get %d seconds to finish (another stop signal: none)",
                seconds,
            )
        finally:
            await runner.cleanup()
        log.info("stopped")


def _hurry(runner: HubRunner) -> None:
    """A second stop signal: requests under way are cut now instead of at the timeout."""
    if isinstance(runner.server, GuardedServer) and not runner.server.hurried.is_set():
        log.info("stopping now: requests under way are cut")
        runner.server.hurried.set()


async def _migrate_to(config: Config, url: str) -> int:
    """Copy the data dir's SQLite metadata into PostgreSQL, saying what was copied."""
    if config.database != "sqlite":
        print("amphub: migrate-to copies a hub whose database is SQLite", file=sys.stderr)
        return 2
    if not url.startswith(("postgresql://", "postgres://")):
        print("amphub: give the target as postgresql://USER:PASSWORD@HOST/DB", file=sys.stderr)
        return 2
    # Opened as the offline commands open it: a secret.key not yet moved into the
    # database is moved now, and so copied with the rest.
    async with offline(config) as hub, db.opened(url) as target:
        assert isinstance(hub.db, db.SqliteDatabase)  # the database setting says sqlite
        try:
            copied = await db.copy_metadata(hub.db, target)
        except db.NotEmpty as exc:
            print(f"amphub: {exc}", file=sys.stderr)
            return 1
    for table, count in copied.items():
        print(f"copied {count} {'row' if count == 1 else 'rows'} of {table}")
    print(
        f"copied {sum(copied.values())} rows in {len(copied)} tables; start every node with"
        " the database setting (AMPHUB_DATABASE) set to that URL, and the same data dir"
    )
    return 0


async def _air_gap(args: argparse.Namespace, config: Config) -> int:
    """Export a model into one file, or import one, saying what was done."""
    async with offline(config) as hub:
        try:
            if args.action == "export":
                space_id, _, model_id = args.model.partition("/")
                said = await export_model(hub, space_id, model_id, args.revision, args.file)
            else:
                async with scan_processes(hub):
                    said = await import_model(hub, args.file, args.space, args.name, OFFLINE)
        except (AirGapRefused, ApiError, OSError) as exc:
            print(f"amphub: {exc}", file=sys.stderr)
            return 1
    for sentence in said:
        print(sentence)
    return 0


async def _admin(args: argparse.Namespace, config: Config) -> int:
    if args.action == "migrate-to":
        return await _migrate_to(config, args.url)
    if args.action in ("export", "import"):
        return await _air_gap(args, config)
    async with offline(config) as hub:
        database = hub.db
        if args.action == "create-user":
            try:
                user, key = await accounts.create_user(
                    database, args.name, by=OFFLINE, admin=args.admin, creator=args.creator
                )
            except db.Conflict as exc:
                print(f"amphub: {exc}", file=sys.stderr)
                return 1
            print(f"created user {user.name}")
            print(key)
            return 0
        if args.action == "reset-key":
            new_key = await accounts.regenerate_key(database, args.name, by=OFFLINE)
            if new_key is None:
                print(f"amphub: no user {args.name}", file=sys.stderr)
                return 1
            print(f"new key for {args.name}; the old one no longer works")
            print(new_key)
            return 0
        if args.action == "reindex":
            count = await reindex_all(hub)
            print(f"indexed {count} models")
            return 0
        if args.action == "list-users":
            for user in await db.list_users(database):
                print(_user_line(user))
            return 0
        change = USER_CHANGES[args.action]
        if await accounts.change_user(database, args.name, by=OFFLINE, **change.flags) is None:
            print(f"amphub: no user {args.name}", file=sys.stderr)
            return 1
        print(f"{args.name} {change.done}")
        return 0


def _user_line(user: db.User) -> str:
    roles = [word for word, held in (("admin", user.admin), ("creator", user.creator)) if held]
    state = "disabled" if user.disabled else "enabled"
    return f"{user.name}\t{','.join(roles) or '-'}\t{state}\t{user.created_at}"


def _no_data_dir(args: argparse.Namespace, config: Config) -> str | None:
    """Why an admin command (or the doctor of a hub on PostgreSQL) refuses the data dir.

    None if it may go on. A mistyped --data would otherwise make a new, empty data dir and
    print a key that no server knows; the doctor would find every model's repository
    missing, and --repair would make each anew there.
    """
    if args.command == "doctor" and config.database != "sqlite":
        if config.repos_dir.is_dir():
            return None
        return f"{config.data_dir} holds no amphub repositories (no repos/); check --data"
    if args.command != "admin" or args.init or config.database != "sqlite":
        return None
    if config.db_path.exists():
        return None
    return (
        f"{config.data_dir} holds no amphub data (no {config.db_path.name}); check --data,"
        " or give --init to start a new data dir there"
    )


def _copy(args: argparse.Namespace, config: Config) -> int:
    """Run `backup` or `restore`, printing what was copied."""
    os.umask(0o077)  # a backup holds private models and the server's secret
    try:
        if args.command == "backup":
            said = backup(config, args.dest)
        else:
            said = restore(args.source, config)
    except (BackupError, OSError, sqlite3.Error, psycopg.Error) as exc:
        print(f"amphub: {exc}", file=sys.stderr)
        return 1
    for sentence in said:
        print(sentence)
    return 0


async def _doctor(args: argparse.Namespace, config: Config) -> int:
    """Print what is wrong, as sentences; non-zero while anything is."""
    async with offline(config) as hub:
        result = await examine(hub, repair=args.repair, verify_objects=args.verify_objects)
    for sentence in result.fixed:
        print(f"fixed: {sentence}")
    for sentence in result.fixable + result.problems:
        print(f"wrong: {sentence}")
    if result.fixable:
        print(f"`amphub doctor --repair` fixes {len(result.fixable)} of these")
    if result.problems:
        print(f"{len(result.problems)} problems need a person (see above)")
    if not (result.fixable or result.problems):
        print("nothing is wrong" if not result.fixed else "nothing else is wrong")
        return 0
    return 1


def _console(args: argparse.Namespace) -> int:
    """Run the admin console until it is quit; it needs a server and a key, not a data dir."""
    # Imported here so that serve and admin do not pay for loading Textual.
    from amphub.tui.app import ConsoleApp
    from amphub.tui.client import ApiClient

    url = args.url or os.environ.get("AMPHUB_URL") or CONSOLE_URL
    key = args.key or os.environ.get("AMPHUB_KEY")
    if not key:
        print("amphub: give an administrator's key with --key or AMPHUB_KEY", file=sys.stderr)
        return 2
    ConsoleApp(ApiClient(url, key)).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "tui":
        return _console(args)
    flags = {k: v for k, v in vars(args).items() if k in SERVE_FLAGS}
    try:
        config = load_config(flags)
    except ConfigError as exc:
        print(f"amphub: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        try:
            asyncio.run(_serve(config))
        except StoreUnusable as exc:
            print(f"amphub: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"amphub: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command in ("backup", "restore"):
        return _copy(args, config)
    refusal = _no_data_dir(args, config)
    if refusal:
        print(f"amphub: {refusal}", file=sys.stderr)
        return 2
    command = _doctor if args.command == "doctor" else _admin
    try:
        return asyncio.run(command(args, config))
    except Exception as exc:  # noqa: BLE001 - a sentence, not a traceback, for the admin
        print(f"amphub: {exc}", file=sys.stderr)
        return 1
