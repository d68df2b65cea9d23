"""The schema: one migration history for SQLite and PostgreSQL.

Statements are written for SQLite. On PostgreSQL each one is translated (`postgresql`):
INTEGER is 64 bits there as in SQLite, BLOB is BYTEA, an AUTOINCREMENT key is an identity
column, and identifiers that PostgreSQL reserves are quoted. What SQLite does with
triggers of its own dialect (the search log, the object links view, the FTS5 table) is
written for PostgreSQL beside it (`Each`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amphub.db.dialect import postgresql_sql


@dataclass(frozen=True)
class Each:
    """A statement written for each engine; None where an engine needs none."""

    sqlite: str | None
    postgresql: str | None


Statement = str | Each

INSTR = """
    CREATE FUNCTION instr(haystack text, needle text) RETURNS integer
    AS $$ SELECT strpos(haystack, needle) $$ LANGUAGE sql IMMUTABLE
"""
# One statement logs a change of a model for search, as SQLite's view `search_log` does.
SEARCH_LOG = """
    CREATE FUNCTION amphub_search_log(space text, model text) RETURNS void AS $$
        UPDATE search_clock SET seq = seq + 1;
        INSERT INTO search_changes (space_id, model_id, seq)
        SELECT space, model, seq FROM search_clock
        ON CONFLICT (space_id, model_id) DO UPDATE SET seq = excluded.seq;
    $$ LANGUAGE sql
"""
# SQLite's INSTEAD OF trigger on the view `object_links`, as a trigger function.
OBJECT_LINKS_INSERT = """
    CREATE FUNCTION object_links_insert() RETURNS trigger AS $$ BEGIN
        INSERT INTO lfs_objects (oid, size, created_at) VALUES (NEW.oid, NEW.size, NEW.at)
        ON CONFLICT DO NOTHING;
        INSERT INTO model_objects (space_id, model_id, oid, linked_at)
        VALUES (NEW.space_id, NEW.model_id, NEW.oid, NEW.at) ON CONFLICT DO NOTHING;
        RETURN NEW;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER object_links_insert INSTEAD OF INSERT ON object_links
    FOR EACH ROW EXECUTE FUNCTION object_links_insert()
"""


def search_trigger(table: str, model_column: str) -> str:
    """Log every insert, update and delete of `table`'s rows for search (SQLite: 3 triggers)."""
    return f"""
        CREATE FUNCTION {table}_search() RETURNS trigger AS $$ BEGIN
            IF TG_OP <> 'INSERT' THEN PERFORM amphub_search_log(OLD.space_id, OLD.{model_column});
            END IF;
            IF TG_OP <> 'DELETE' THEN PERFORM amphub_search_log(NEW.space_id, NEW.{model_column});
            END IF;
            RETURN NULL;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER {table}_search AFTER INSERT OR UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_search()
    """


# Append-only: a shipped migration is never edited, new ones go at the end.
MIGRATIONS: list[tuple[Statement, ...]] = [
    (
        # SQLite's instr(), which amphub's statements use, for PostgreSQL.
        Each(sqlite=None, postgresql=INSTR),
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL DEFAULT 0,
            creator INTEGER NOT NULL DEFAULT 0,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE spaces (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            quota INTEGER NOT NULL,
            billing_mode TEXT NOT NULL,
            expires_at TEXT,
            creator TEXT NOT NULL REFERENCES users(name),
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE models (
            space_id TEXT NOT NULL REFERENCES spaces(id),
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            visibility TEXT NOT NULL DEFAULT 'private',
            owner TEXT NOT NULL REFERENCES users(name),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (space_id, id)
        )
        """,
        """
        CREATE TABLE pushes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            user TEXT NOT NULL,
            ref TEXT NOT NULL,
            old TEXT NOT NULL,
            new TEXT NOT NULL,
            at TEXT NOT NULL,
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    (
        """
        CREATE TABLE lfs_objects (
            oid TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE model_objects (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            oid TEXT NOT NULL REFERENCES lfs_objects(oid),
            linked_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, oid),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX model_objects_oid ON model_objects(oid)",
        # One statement stores an object's row and its link, so an upload's last step is
        # one round trip to the database.
        """
        CREATE VIEW object_links (space_id, model_id, oid, size, at) AS
            SELECT m.space_id, m.model_id, m.oid, o.size, m.linked_at
            FROM model_objects m JOIN lfs_objects o ON o.oid = m.oid
        """,
        Each(
            sqlite="""
        CREATE TRIGGER object_links_insert INSTEAD OF INSERT ON object_links BEGIN
            INSERT OR IGNORE INTO lfs_objects (oid, size, created_at)
            VALUES (new.oid, new.size, new.at);
            INSERT OR IGNORE INTO model_objects (space_id, model_id, oid, linked_at)
            VALUES (new.space_id, new.model_id, new.oid, new.at);
        END
        """,
            postgresql=OBJECT_LINKS_INSERT,
        ),
        """
        CREATE TABLE lfs_locks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            path TEXT NOT NULL,
            ref TEXT,
            owner TEXT NOT NULL,
            locked_at TEXT NOT NULL,
            UNIQUE (space_id, model_id, path),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    (
        """
        CREATE TABLE space_members (
            space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
            user TEXT NOT NULL REFERENCES users(name),
            role TEXT NOT NULL,
            PRIMARY KEY (space_id, user)
        )
        """,
        "CREATE INDEX space_members_user ON space_members(user)",
        """
        CREATE TABLE model_members (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            user TEXT NOT NULL REFERENCES users(name),
            role TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, user),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX model_members_user ON model_members(user)",
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            space_id TEXT,
            model_id TEXT,
            target TEXT,
            detail TEXT NOT NULL DEFAULT ''
        )
        """,
        "CREATE INDEX audit_space ON audit(space_id, seq)",
        "ALTER TABLE spaces ADD COLUMN released_at TEXT",
        "ALTER TABLE spaces ADD COLUMN purged_at TEXT",
    ),
    (
        """
        CREATE TABLE cards (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            commit_id TEXT,
            card TEXT NOT NULL,
            task_type TEXT,
            algorithm TEXT,
            license TEXT,
            parameters INTEGER,
            search_text TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        # Covering: a task filter is answered from the index, not the wide card rows.
        "CREATE INDEX cards_task ON cards(task_type COLLATE NOCASE, algorithm COLLATE NOCASE,"
        " space_id, model_id, parameters)",
        "CREATE INDEX cards_algorithm ON cards(algorithm COLLATE NOCASE)",
        """
        CREATE TABLE card_values (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, field, value),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX card_values_lookup ON card_values(field, value COLLATE NOCASE,"
        " space_id, model_id)",
        "CREATE INDEX cards_license ON cards(license COLLATE NOCASE)",
        "CREATE INDEX models_updated ON models(updated_at)",
        "CREATE INDEX models_created ON models(created_at)",
        Each(
            sqlite="""
        CREATE VIRTUAL TABLE cards_fts USING fts5(
            search_text, content='cards', content_rowid='rowid', tokenize='trigram'
        )
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_fts_insert AFTER INSERT ON cards BEGIN
            INSERT INTO cards_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_fts_delete AFTER DELETE ON cards BEGIN
            INSERT INTO cards_fts(cards_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_fts_update AFTER UPDATE ON cards BEGIN
            INSERT INTO cards_fts(cards_fts, rowid, search_text)
            VALUES ('delete', old.rowid, old.search_text);
            INSERT INTO cards_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
        END
        """,
            postgresql=None,
        ),
    ),
    (
        """
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            ref TEXT,
            commit_id TEXT,
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            progress INTEGER NOT NULL DEFAULT 0,
            message TEXT NOT NULL DEFAULT '',
            result TEXT,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX tasks_status ON tasks(status, id)",
        "CREATE INDEX tasks_model ON tasks(space_id, model_id, id)",
        """
        CREATE TABLE scan_results (
            content_id TEXT NOT NULL,
            scanner_version TEXT NOT NULL,
            verdict TEXT NOT NULL,
            PRIMARY KEY (content_id, scanner_version)
        )
        """,
    ),
    (
        # Peer credentials and target secrets are sealed with the server secret.
        """
        CREATE TABLE zones (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            user TEXT NOT NULL,
            sealed_key BLOB NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE deploy_targets (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            sealed_secret BLOB NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE replicas (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            zone TEXT NOT NULL,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id, zone, ref)
        )
        """,
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            target TEXT NOT NULL,
            service TEXT NOT NULL,
            instance TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            replicas INTEGER NOT NULL,
            ready_replicas INTEGER NOT NULL DEFAULT 0,
            ref TEXT NOT NULL,
            commit_id TEXT NOT NULL,
            message TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        )
        """,
        "CREATE INDEX deployments_model ON deployments(space_id, model_id, id)",
        # Signatures of accepted callbacks, so that a replayed one is refused.
        """
        CREATE TABLE callback_signatures (
            signature TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        )
        """,
    ),
    (
        # Search answers from an index in memory (amphub/search_index.py). These triggers
        # log each model whose row, card, card values or members change, whichever
        # connection or process writes, so the index replays exactly those models first.
        # The clock only goes up; a model's row holds the number of its latest change.
        "CREATE TABLE search_clock (seq INTEGER NOT NULL)",
        "INSERT INTO search_clock (seq) VALUES (0)",
        """
        CREATE TABLE search_changes (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (space_id, model_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX search_changes_seq ON search_changes(seq)",
        "CREATE VIEW search_log (space_id, model_id) AS"
        " SELECT space_id, model_id FROM search_changes",
        # Delete, then insert: a conflict clause in a trigger gives way to the outer
        # statement's, and an outer INSERT OR IGNORE would then drop the entry.
        Each(
            sqlite="""
        CREATE TRIGGER search_log_insert INSTEAD OF INSERT ON search_log BEGIN
            UPDATE search_clock SET seq = seq + 1;
            DELETE FROM search_changes WHERE space_id = new.space_id AND model_id = new.model_id;
            INSERT INTO search_changes (space_id, model_id, seq)
            SELECT new.space_id, new.model_id, seq FROM search_clock;
        END
        """,
            postgresql=SEARCH_LOG,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER models_search_insert AFTER INSERT ON models BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.id);
        END
        """,
            postgresql=search_trigger("models", "id"),
        ),
        Each(
            sqlite="""
        CREATE TRIGGER models_search_update AFTER UPDATE ON models BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.id);
            INSERT INTO search_log VALUES (new.space_id, new.id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER models_search_delete AFTER DELETE ON models BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_search_insert AFTER INSERT ON cards BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=search_trigger("cards", "model_id"),
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_search_update AFTER UPDATE ON cards BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER cards_search_delete AFTER DELETE ON cards BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER card_values_search_insert AFTER INSERT ON card_values BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=search_trigger("card_values", "model_id"),
        ),
        Each(
            sqlite="""
        CREATE TRIGGER card_values_search_update AFTER UPDATE ON card_values BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER card_values_search_delete AFTER DELETE ON card_values BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER model_members_search_insert AFTER INSERT ON model_members BEGIN
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=search_trigger("model_members", "model_id"),
        ),
        Each(
            sqlite="""
        CREATE TRIGGER model_members_search_update AFTER UPDATE ON model_members BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
            INSERT INTO search_log VALUES (new.space_id, new.model_id);
        END
        """,
            postgresql=None,
        ),
        Each(
            sqlite="""
        CREATE TRIGGER model_members_search_delete AFTER DELETE ON model_members BEGIN
            INSERT INTO search_log VALUES (old.space_id, old.model_id);
        END
        """,
            postgresql=None,
        ),
    ),
    (
        # Where each chunk of a model's Xet uploads ended up: a byte range of an LFS object
        # linked to the model. A later upload may name chunks of a xorb sent long before.
        """
        CREATE TABLE xet_chunks (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            xorb TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            oid TEXT NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (space_id, model_id, xorb, chunk),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        ) WITHOUT ROWID
        """,
    ),
    # The node (the `node` setting) that last started each task.
    ("ALTER TABLE tasks ADD COLUMN node TEXT",),
    (
        # Upstream hubs that models are mirrored from, and which model mirrors which repo.
        # A mirror's row outlives its upstream's: the model stays when the upstream goes.
        """
        CREATE TABLE upstreams (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            space_id TEXT NOT NULL,
            sealed_token BLOB,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE mirrors (
            space_id TEXT NOT NULL,
            model_id TEXT NOT NULL,
            upstream TEXT NOT NULL,
            repo TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (space_id, model_id),
            FOREIGN KEY (space_id, model_id) REFERENCES models(space_id, id) ON DELETE CASCADE
        )
        """,
    ),
    # Until when a running task is its node's: renewed while the node works on it, and
    # taken over by any node once it lapses (the node died).
    ("ALTER TABLE tasks ADD COLUMN lease_until TEXT",),
    (
        # What every node of a hub must see alike. Bytes promised to uploads in flight: a
        # batch call's for a few minutes, an upload's for as long as its node renews it.
        """
        CREATE TABLE reservations (
            space_id TEXT NOT NULL,
            oid TEXT NOT NULL,
            size INTEGER NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (space_id, oid)
        )
        """,
        # Objects an upload is storing and linking, one row a claim of a node (`holder`):
        # collection skips them.
        """
        CREATE TABLE object_claims (
            oid TEXT NOT NULL,
            id TEXT NOT NULL,
            holder TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (oid, id)
        )
        """,
        # Failed sign-ins by client address, in a window that opens at the first of them.
        """
        CREATE TABLE failed_sign_ins (
            address TEXT PRIMARY KEY,
            since TEXT NOT NULL,
            failures INTEGER NOT NULL
        )
        """,
        "CREATE INDEX failed_sign_ins_since ON failed_sign_ins(since)",
        # The key that signs tokens and sessions and seals credentials, as hex.
        """
        CREATE TABLE signing_secrets (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    ),
    # Who may read an upstream's mirrors: the visibility its models are made with.
    ("ALTER TABLE upstreams ADD COLUMN visibility TEXT NOT NULL DEFAULT 'internal'",),
    # Branches of mirrored repos fetched again on a schedule; by upstream name, like the
    # mirrors, and removed with their upstream.
    (
        """
        CREATE TABLE mirror_schedules (
            upstream TEXT NOT NULL,
            repo TEXT NOT NULL,
            revision TEXT NOT NULL,
            refresh_hours INTEGER NOT NULL,
            due_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (upstream, repo, revision)
        )
        """,
        "CREATE INDEX mirror_schedules_due ON mirror_schedules (due_at)",
    ),
]


_TYPES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\s+COLLATE NOCASE\b"), ""),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
]


def statements(migration: tuple[Statement, ...], dialect: str) -> list[str]:
    """A migration's statements as the engine runs them."""
    found: list[str] = []
    for statement in migration:
        if isinstance(statement, Each):
            chosen = statement.sqlite if dialect == "sqlite" else statement.postgresql
            if chosen is not None:
                found.append(chosen)
        elif dialect == "sqlite":
            found.append(statement)
        else:
            found.append(postgresql_ddl(statement))
    return found


def postgresql_ddl(statement: str) -> str:
    """A statement written for SQLite, with PostgreSQL's types and quoting."""
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return postgresql_sql(statement, placeholders=False)
