//! Schema migrations, numbered by `PRAGMA user_version`. A migration is only
//! ever appended: a released one never changes.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: catalog
    "CREATE TABLE locations (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        origin TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        last_refresh_ms INTEGER,
        UNIQUE (type, target)
    );
    CREATE TABLE entities (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        ref TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        title TEXT,
        owner_ref TEXT,
        location_id TEXT NOT NULL REFERENCES locations(id),
        source TEXT NOT NULL,
        etag TEXT NOT NULL,
        body TEXT NOT NULL,
        errors TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX entities_location ON entities(location_id);
    CREATE INDEX entities_name ON entities(name, id);
    CREATE INDEX entities_kind_name ON entities(kind, name, id);
    CREATE INDEX entities_text ON entities(name, title);
    CREATE INDEX entities_owner ON entities(owner_ref);
    -- One row per leaf value of an entity, lower-cased, for filters and facets.
    CREATE TABLE search (
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        entity_id INTEGER NOT NULL,
        original TEXT,
        PRIMARY KEY (key, value, entity_id)
    ) WITHOUT ROWID;
    CREATE INDEX search_entity ON search(entity_id);
    -- Relations as declared (source -> target); the reverse is derived on read.
    CREATE TABLE relations (
        source_ref TEXT NOT NULL,
        type TEXT NOT NULL,
        target_ref TEXT NOT NULL,
        PRIMARY KEY (source_ref, type, target_ref)
    ) WITHOUT ROWID;
    CREATE INDEX relations_target ON relations(target_ref, type);
    CREATE TABLE problems (
        id INTEGER PRIMARY KEY,
        location_id TEXT NOT NULL,
        source TEXT NOT NULL,
        line INTEGER,
        col INTEGER,
        entity_ref TEXT,
        field TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX problems_location ON problems(location_id);",
    // 2: plugins
    "CREATE TABLE plugin_kv (
        plugin_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        expires_ms INTEGER,
        PRIMARY KEY (plugin_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE plugin_grants (
        plugin_id TEXT PRIMARY KEY,
        hosts TEXT NOT NULL,
        secrets TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );",
    // 3: plugin actions run from the portal, and who ran them
    "CREATE TABLE action_runs (
        id INTEGER PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER,
        plugin_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        label TEXT NOT NULL,
        entity_ref TEXT NOT NULL,
        user_ref TEXT NOT NULL,
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT
    );
    CREATE INDEX action_runs_entity ON action_runs(entity_ref, started_ms);",
    // 4: facts with their history, and the activity feed
    "CREATE TABLE facts (
        entity_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        number REAL,
        text TEXT,
        source TEXT NOT NULL,
        url TEXT,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (entity_ref, name)
    ) WITHOUT ROWID;
    CREATE INDEX facts_rank ON facts(name, number, entity_ref);
    CREATE TABLE fact_history (
        entity_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        number REAL,
        text TEXT,
        source TEXT NOT NULL
    );
    CREATE INDEX fact_history_key ON fact_history(entity_ref, name, at_ms);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        entity_ref TEXT,
        title TEXT NOT NULL,
        url TEXT,
        at_ms INTEGER NOT NULL,
        tone TEXT NOT NULL,
        actor TEXT,
        UNIQUE (source, source_id)
    );
    CREATE INDEX events_at ON events(at_ms);
    CREATE INDEX events_entity ON events(entity_ref, at_ms);",
    // 5: campaigns defined through the API (catalog ones are entities)
    "CREATE TABLE campaigns (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );",
    // 6: campaigns read one fact for many entities, now and in the past:
    // covering indexes by name (a campaign over 10,000 targets went from
    // p50/p99 133/266 ms to 109/127 ms; see BENCHMARKS.md).
    "CREATE INDEX facts_by_name ON facts(name, entity_ref, type, number, text);
    CREATE INDEX fact_history_by_name ON fact_history(name, entity_ref, at_ms, type, number, text);",
    // 7: every entity change, for the search index to follow
    "CREATE TABLE entity_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ref TEXT NOT NULL
    );
    CREATE TRIGGER entities_added AFTER INSERT ON entities
        BEGIN INSERT INTO entity_changes (ref) VALUES (NEW.ref); END;
    CREATE TRIGGER entities_changed AFTER UPDATE OF etag, owner_ref, body ON entities
        BEGIN INSERT INTO entity_changes (ref) VALUES (NEW.ref); END;
    CREATE TRIGGER entities_removed AFTER DELETE ON entities
        BEGIN INSERT INTO entity_changes (ref) VALUES (OLD.ref); END;",
    // 8: keys the host makes for itself (the paging cursors' signing key),
    // kept with the data so that every replica and restart agrees.
    "CREATE TABLE host_keys (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );",
    // 9: API tokens (only the hash of each secret) and the audit trail,
    // which SQL itself keeps append-only.
    "CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        owner TEXT,
        created_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER,
        revoked_ms INTEGER
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        address TEXT NOT NULL,
        outcome TEXT NOT NULL,
        status INTEGER NOT NULL
    );
    CREATE INDEX audit_by_time ON audit(at_ms);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
    // 10: sign-in sessions (only the hash of each cookie's secret), and
    // personal tokens, which act for the person who made them.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        csrf TEXT NOT NULL,
        login TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_ref TEXT,
        address TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        seen_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        ended_ms INTEGER
    );
    CREATE INDEX sessions_by_user ON sessions(user_ref);
    ALTER TABLE api_tokens ADD COLUMN person TEXT;",
    // 11: the change feed names the entity's id too, so that the query
    // index can follow removals (the ref is gone from `entities` by then).
    "ALTER TABLE entity_changes ADD COLUMN entity_id INTEGER;
    DROP TRIGGER entities_added;
    DROP TRIGGER entities_changed;
    DROP TRIGGER entities_removed;
    CREATE TRIGGER entities_added AFTER INSERT ON entities
        BEGIN INSERT INTO entity_changes (ref, entity_id) VALUES (NEW.ref, NEW.id); END;
    CREATE TRIGGER entities_changed AFTER UPDATE OF etag, owner_ref, body, title ON entities
        BEGIN INSERT INTO entity_changes (ref, entity_id) VALUES (NEW.ref, NEW.id); END;
    CREATE TRIGGER entities_removed AFTER DELETE ON entities
        BEGIN INSERT INTO entity_changes (ref, entity_id) VALUES (OLD.ref, OLD.id); END;",
    // 12: a refresh finds a file's entities by location and source, to
    // keep those of a file that has not changed without parsing it.
    "DROP INDEX entities_location;
    CREATE INDEX entities_location_source ON entities(location_id, source);",
    // 13: what each campaign's targets were (open, done, gone) and since
    // when, changes only, for burndowns and movers of any predicate.
    "CREATE TABLE status_history (
        subject TEXT NOT NULL,
        entity_ref TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        status INTEGER NOT NULL,
        PRIMARY KEY (subject, entity_ref, at_ms)
    ) WITHOUT ROWID;",
    // 14: every nudge sent to a team (or not sent, and why), and the
    // teams that asked for quiet until a date.
    "CREATE TABLE nudge_log (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        subject TEXT NOT NULL,
        team TEXT NOT NULL,
        channel TEXT NOT NULL,
        status TEXT NOT NULL,
        targets TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        detail TEXT
    );
    CREATE INDEX nudge_log_subject ON nudge_log(subject, at_ms);
    CREATE TABLE nudge_snoozes (
        subject TEXT NOT NULL,
        team TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        by TEXT NOT NULL,
        PRIMARY KEY (subject, team)
    );",
    // 15: relations stored under their source entity's id, so that a new
    // entity's rows go at the end of the table rather than anywhere its
    // ref sorts: every commit of an ingest wrote most of the table's
    // pages to the WAL again (see BENCHMARKS.md, "Backstage clients'
    // queries"). `relations` stays, as a view, for every reader.
    "CREATE TABLE entity_relations (
        source_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        target_ref TEXT NOT NULL,
        PRIMARY KEY (source_id, type, target_ref)
    ) WITHOUT ROWID;
    INSERT INTO entity_relations (source_id, type, target_ref)
        SELECT e.id, r.type, r.target_ref FROM relations r JOIN entities e ON e.ref = r.source_ref;
    DROP TABLE relations;
    CREATE INDEX entity_relations_target ON entity_relations(target_ref, type);
    CREATE VIEW relations (source_ref, type, target_ref) AS
        SELECT e.ref, r.type, r.target_ref FROM entity_relations r JOIN entities e ON e.id = r.source_id;",
    // 16: the writer records each entity change itself (`write.rs`,
    // `delete_location`). A trigger made every write to `entities` a
    // multi-row statement, which SQLite journals page by page in case it
    // must undo half of it: a copy of each page the statement touched,
    // ten for a new entity with its indexes.
    "DROP TRIGGER entities_added;
    DROP TRIGGER entities_changed;
    DROP TRIGGER entities_removed;",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, VERSION)
}

/// Migrates to schema `version` (the latest but in tests).
fn migrate_to(conn: &mut Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: VERSION,
        });
    }
    let upto = &MIGRATIONS[..version as usize];
    for (i, sql) in upto.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, path = %path.display(), "migrated store schema");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written before relations were kept by source id reads the
    /// same relations after the migration, and writes them the new way.
    #[test]
    fn relations_move_to_their_source_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 14).unwrap();
        conn.execute_batch(
            "INSERT INTO locations VALUES ('l', 'file', 'x.yaml', 'config', 0, NULL);
             INSERT INTO entities (id, uid, ref, kind, namespace, name, location_id, source, etag, body, created_ms, updated_ms)
                VALUES (7, 'u7', 'component:default/a', 'component', 'default', 'a', 'l', 's', 'e', '{}', 0, 0),
                       (9, 'u9', 'component:default/b', 'component', 'default', 'b', 'l', 's', 'e', '{}', 0, 0);
             INSERT INTO relations VALUES ('component:default/a', 'dependsOn', 'component:default/b'),
                                          ('component:default/a', 'ownedBy', 'group:default/x'),
                                          ('component:default/b', 'ownedBy', 'group:default/x');",
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let rows = |conn: &Connection, sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| {
                Ok(format!(
                    "{} {} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
        };
        assert_eq!(
            rows(
                &conn,
                "SELECT source_ref, type, target_ref FROM relations ORDER BY 1, 2"
            ),
            [
                "component:default/a dependsOn component:default/b",
                "component:default/a ownedBy group:default/x",
                "component:default/b ownedBy group:default/x",
            ]
        );
        assert_eq!(
            rows(
                &conn,
                "SELECT source_id || '', type, target_ref FROM entity_relations WHERE target_ref = 'group:default/x' ORDER BY 1"
            ),
            ["7 ownedBy group:default/x", "9 ownedBy group:default/x"]
        );
    }
}
