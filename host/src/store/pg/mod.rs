//! The PostgreSQL backend, for portals that run several replicas on a
//! database their operators already run and back up. It is being built
//! capability by capability, each passing the same conformance suite as
//! SQLite (`tests/src/store_conformance.rs`): the catalog (locations,
//! refreshes, reads, filters, pages, facets, people) and its change feed
//! (`catalog.rs`, `refresh.rs`), plugin state, action runs, API
//! campaigns, and tokens, sessions and the audit trail so far. Until facts
//! and events are here too, `[server] database` does not offer it.
//!
//! The rules of a refresh, the filter language's SQL and the assembly of
//! served entities are SQLite's own code (`write::RefreshBook`,
//! `query::Sql` with `pg`, `query::splice`): only statements differ.
//! Refreshes, and anything else that writes entities, are serialized
//! across replicas by an advisory lock, as SQLite's single writer
//! serializes them, so "first claim wins" holds and the change feed's
//! sequence numbers commit in order.
//!
//! Connections come from a small pool; each is a tokio-postgres client
//! behind a blocking face (`client.rs`), driven by a runtime of the
//! backend's own, so a store call blocks its thread as a SQLite one does. Migrations are versioned in
//! `greenroom_schema` and applied under an advisory lock, so replicas
//! starting together migrate once.

mod catalog;
mod client;
mod facts;
mod history;
mod refresh;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::executor::block_on;
use tokio_postgres::{NoTls, Row};

use client::Client;

use super::{
    Access, ActionRun, ActionRuns, AuditEntry, AuditQuery, CampaignSpecs, PluginState,
    SessionRecord, StoreError, StoredGrants, TokenRecord, corrupt, now_ms,
};

/// Connections kept open for reuse.
const POOLED: usize = 8;

/// Any number: the key of the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6772_6565_6e72;

/// The key of the advisory lock every write of entities runs under.
pub(super) const CATALOG_LOCK: i64 = 0x6772_6565_6e73;

/// Each entry is one schema version; never edit a released one, add the
/// next.
const MIGRATIONS: &[&str] = &[
    // 1: plugin state and grants, action runs, API campaigns, tokens,
    // sessions, the audit trail (append-only, as in SQLite)
    "CREATE TABLE plugin_kv (
        plugin_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value BYTEA NOT NULL,
        expires_ms BIGINT,
        PRIMARY KEY (plugin_id, key)
    );
    CREATE TABLE plugin_grants (
        plugin_id TEXT PRIMARY KEY,
        hosts TEXT NOT NULL,
        secrets TEXT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE action_runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_ms BIGINT NOT NULL,
        finished_ms BIGINT,
        plugin_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        label TEXT NOT NULL,
        entity_ref TEXT NOT NULL,
        user_ref TEXT NOT NULL,
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT
    );
    CREATE INDEX action_runs_entity ON action_runs(entity_ref, started_ms);
    CREATE TABLE campaigns (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash BYTEA NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        owner TEXT,
        created_by TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT,
        revoked_ms BIGINT,
        person TEXT
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        csrf TEXT NOT NULL,
        login TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_ref TEXT,
        address TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        seen_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        ended_ms BIGINT
    );
    CREATE INDEX sessions_by_user ON sessions(user_ref);
    CREATE TABLE audit (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        address TEXT NOT NULL,
        outcome TEXT NOT NULL,
        status INTEGER NOT NULL
    );
    CREATE INDEX audit_by_time ON audit(at_ms);
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
        'BEGIN RAISE EXCEPTION ''the audit trail is append-only''; END';
    CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();",
    // 2: the catalog and its change feed. Text that is sorted or compared
    // is in the C collation, so that orders and cursors agree with SQLite
    // whatever the database's locale.
    r#"CREATE TABLE host_keys (
        name TEXT PRIMARY KEY,
        value BYTEA NOT NULL
    );
    CREATE TABLE locations (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        origin TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        last_refresh_ms BIGINT,
        UNIQUE (type, target)
    );
    CREATE TABLE entities (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        ref TEXT COLLATE "C" NOT NULL UNIQUE,
        kind TEXT COLLATE "C" NOT NULL,
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        title TEXT COLLATE "C",
        owner_ref TEXT COLLATE "C",
        location_id TEXT NOT NULL REFERENCES locations(id),
        source TEXT NOT NULL,
        etag TEXT NOT NULL,
        body TEXT NOT NULL,
        errors TEXT,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX entities_location_source ON entities(location_id, source);
    CREATE INDEX entities_name ON entities(name, id);
    CREATE INDEX entities_kind_name ON entities(kind, name, id);
    CREATE INDEX entities_owner ON entities(owner_ref);
    CREATE TABLE search (
        key TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        entity_id BIGINT NOT NULL,
        original TEXT COLLATE "C",
        PRIMARY KEY (key, value, entity_id)
    );
    CREATE INDEX search_entity ON search(entity_id);
    CREATE TABLE relations (
        source_ref TEXT COLLATE "C" NOT NULL,
        type TEXT COLLATE "C" NOT NULL,
        target_ref TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (source_ref, type, target_ref)
    );
    CREATE INDEX relations_target ON relations(target_ref, type);
    CREATE TABLE problems (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        location_id TEXT NOT NULL,
        source TEXT NOT NULL,
        line INTEGER,
        col INTEGER,
        entity_ref TEXT,
        field TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX problems_location ON problems(location_id);
    CREATE TABLE entity_changes (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ref TEXT NOT NULL,
        entity_id BIGINT
    );
    CREATE FUNCTION entity_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO entity_changes (ref, entity_id) VALUES (OLD.ref, OLD.id);
            RETURN OLD;
        END IF;
        INSERT INTO entity_changes (ref, entity_id) VALUES (NEW.ref, NEW.id);
        RETURN NEW;
    END $$;
    CREATE TRIGGER entities_added_or_removed AFTER INSERT OR DELETE ON entities
        FOR EACH ROW EXECUTE FUNCTION entity_changed();
    CREATE TRIGGER entities_changed AFTER UPDATE OF etag, owner_ref, body, title ON entities
        FOR EACH ROW EXECUTE FUNCTION entity_changed();"#,
    // 3: facts with their history, and the activity feed
    "CREATE TABLE facts (
        entity_ref TEXT COLLATE \"C\" NOT NULL,
        name TEXT COLLATE \"C\" NOT NULL,
        type TEXT NOT NULL,
        number DOUBLE PRECISION,
        text TEXT,
        source TEXT NOT NULL,
        url TEXT,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (entity_ref, name)
    );
    CREATE INDEX facts_rank ON facts(name, number, entity_ref);
    CREATE TABLE fact_history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        entity_ref TEXT COLLATE \"C\" NOT NULL,
        name TEXT COLLATE \"C\" NOT NULL,
        at_ms BIGINT NOT NULL,
        type TEXT NOT NULL,
        number DOUBLE PRECISION,
        text TEXT,
        source TEXT NOT NULL
    );
    CREATE INDEX fact_history_key ON fact_history(entity_ref, name, at_ms);
    CREATE INDEX fact_history_by_name ON fact_history(name, entity_ref, at_ms);
    CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        entity_ref TEXT,
        title TEXT NOT NULL,
        url TEXT,
        at_ms BIGINT NOT NULL,
        tone TEXT NOT NULL,
        actor TEXT,
        UNIQUE (source, source_id)
    );
    CREATE INDEX events_at ON events(at_ms);
    CREATE INDEX events_entity ON events(entity_ref, at_ms);",
    // 4: several processes follow the change feed: entries are kept a
    // while after one applied them, and the newest dropped for good is
    // known, so a follower that fell behind it reads the catalog whole.
    "ALTER TABLE entity_changes ADD COLUMN at_ms BIGINT NOT NULL
        DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    CREATE TABLE feed_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        forgotten BIGINT NOT NULL
    );
    INSERT INTO feed_state (id, forgotten) VALUES (1, 0);",
    // 5: full-text filters (a substring of name or title) from trigram
    // indexes, where the server has pg_trgm (PostgreSQL's contrib, trusted
    // since 13); without it they read every entity, as before.
    "DO $$
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available: full-text filters read every entity';
    END $$;
    DO $$
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
            CREATE INDEX entities_name_trgm ON entities USING gin (name gin_trgm_ops);
            CREATE INDEX entities_title_trgm ON entities USING gin (title gin_trgm_ops);
        END IF;
    END $$;",
    // 6: lists without an order walk a kind's entities in id order, and
    // the planner learns how often each key has each value (a filter's
    // `spec.lifecycle=production` is a quarter of its key, not of all
    // values), so it stops walking thousands of rows to fill a page.
    // Facets count from the search index alone, and read each value's
    // original spelling from an index of the rows that have one.
    "CREATE INDEX entities_kind_id ON entities(kind, id);
    CREATE STATISTICS search_key_value (mcv, ndistinct) ON key, value FROM search;
    CREATE INDEX search_original ON search(key, value, original) INCLUDE (entity_id)
        WHERE original IS NOT NULL;",
    // 7: what each campaign's targets were (open, done, gone) and since
    // when, changes only.
    "CREATE TABLE status_history (
        subject TEXT COLLATE \"C\" NOT NULL,
        entity_ref TEXT COLLATE \"C\" NOT NULL,
        at_ms BIGINT NOT NULL,
        status INTEGER NOT NULL,
        PRIMARY KEY (subject, entity_ref, at_ms)
    );",
    // 8: every nudge sent to a team (or not sent, and why), and snoozes.
    "CREATE TABLE nudge_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        subject TEXT COLLATE \"C\" NOT NULL,
        team TEXT COLLATE \"C\" NOT NULL,
        channel TEXT NOT NULL,
        status TEXT NOT NULL,
        targets TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        detail TEXT
    );
    CREATE INDEX nudge_log_subject ON nudge_log(subject, at_ms);
    CREATE TABLE nudge_snoozes (
        subject TEXT COLLATE \"C\" NOT NULL,
        team TEXT COLLATE \"C\" NOT NULL,
        until_ms BIGINT NOT NULL,
        by TEXT NOT NULL,
        PRIMARY KEY (subject, team)
    );",
];

/// The PostgreSQL backend.
pub struct Postgres {
    url: String,
    pool: Mutex<Vec<Client>>,
    /// Signs paging cursors; one key per database, so every replica
    /// accepts the others' cursors.
    cursor_key: Vec<u8>,
    /// Bumped by this process's writes of entities.
    generation: AtomicU64,
    /// Drives the connections; shut down when the store is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    /// The connections holding this process's leases (a session-level
    /// advisory lock each), by lease name.
    leases: Mutex<std::collections::HashMap<String, Client>>,
    /// Facet counts by query, by change-feed position.
    facet_cache: super::Versioned<super::Facets>,
    refs_cache: super::Versioned<super::FilterRefs>,
    /// The catalog's counts, by change-feed position and generation, and
    /// when they were counted (see `Catalog::stats`).
    stats_cache: super::StatsCache,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Allowed anywhere, an async context included.
            runtime.shutdown_background();
        }
    }
}

impl Postgres {
    /// Connects to `url` (`postgres://user@host:port/db`; the password
    /// from `PGPASSWORD`, refused in the URL) and migrates the schema.
    pub fn open(url: &str) -> Result<Postgres, StoreError> {
        let mut store = Postgres {
            url: url.to_string(),
            pool: Mutex::new(Vec::new()),
            cursor_key: Vec::new(),
            generation: AtomicU64::new(1),
            leases: Mutex::default(),
            facet_cache: super::Versioned::default(),
            refs_cache: super::Versioned::default(),
            stats_cache: super::StatsCache::default(),
            runtime: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("greenroom-postgres")
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        StoreError::Config(format!("cannot start the PostgreSQL runtime: {e}"))
                    })?,
            ),
        };
        store.with(migrate)?;
        store.cursor_key = store.with(|c| {
            // Two v4 UUIDs: 244 bits from the operating system's generator.
            let fresh: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| *u.as_bytes())
                .collect();
            c.execute(
                "INSERT INTO host_keys (name, value) VALUES ('cursor', $1) ON CONFLICT DO NOTHING",
                &[&fresh],
            )?;
            Ok(
                c.query_one("SELECT value FROM host_keys WHERE name = 'cursor'", &[])?
                    .get(0),
            )
        })?;
        Ok(store)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// After a large change, vacuums the catalog's tables (so index-only
    /// scans, such as facet counts, need not visit the table: 250 ms
    /// against 40 at 100,000 entities) and refreshes the planner's
    /// statistics: what autovacuum does a minute or more later. On a
    /// connection of its own, without waiting (a few seconds at 100,000
    /// entities; reads and writes go on meanwhile). A failure costs only
    /// speed, so it is logged: the change is committed.
    ///
    /// The refresh's commit is flushed first (`PgRefresh::commit`): until
    /// it is on disk no page of its rows can be marked all-visible. Every
    /// table is vacuumed before any is analyzed: one `VACUUM (ANALYZE)`
    /// of the three analyzed `entities` before it vacuumed `search`, and
    /// that left all 18,494 pages of `search` unmarked at 100,000 entities
    /// (uncached facets 271 ms against 46), which autovacuum, seeing no
    /// change since, did not come back to. Tested by
    /// `a_large_refresh_on_postgres_leaves_the_catalog_vacuumed`.
    fn analyze(&self) {
        const FAILED: &str =
            "could not vacuum and analyze the catalog's tables after a large refresh";
        match (self.take(), &self.runtime) {
            (Ok(c), Some(runtime)) => {
                c.run_detached(
                    runtime,
                    &[
                        "VACUUM entities, search, relations",
                        "ANALYZE entities, search, relations",
                    ],
                    FAILED,
                );
            }
            (Err(e), _) => tracing::warn!(error = %e, "{FAILED}"),
            (Ok(_), None) => {}
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|e| {
            StoreError::Config(format!("server.database is not a PostgreSQL URL: {e}"))
        })?;
        if config.get_password().is_some() {
            return Err(StoreError::Config(
                "server.database carries a password; remove it and set PGPASSWORD in the environment instead".into(),
            ));
        }
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        config.application_name("greenroom");
        // Compiling a plan costs more than the catalog's short queries
        // save by it (seen: 100 ms of JIT on a 76 ms facet count).
        let options = format!("{} -c jit=off", config.get_options().unwrap_or_default());
        config.options(options.trim());
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        let connecting = runtime.spawn(async move { config.connect(NoTls).await });
        let (client, connection) = block_on(connecting)
            .map_err(|e| StoreError::Config(format!("connecting to PostgreSQL: {e}")))?
            .map_err(|source| StoreError::Connect {
                url: self.url.clone(),
                source,
            })?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(Client::new(client))
    }

    /// Runs `f` on a pooled connection (a new one when none is free); a
    /// connection that failed is not returned to the pool.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.take()?;
        let result = f(&mut client);
        self.give_back(client);
        result
    }

    /// A connection of its own: from the pool, or a new one.
    pub(super) fn take(&self) -> Result<Client, StoreError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.connect(),
        }
    }

    /// Returns a connection taken with [`Postgres::take`], when it still
    /// works and the pool has room.
    fn give_back(&self, client: Client) {
        if !client.is_closed() {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOLED {
                pool.push(client);
            }
        }
    }
}

/// Applies the migrations this schema lacks, in one transaction under an
/// advisory lock.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS greenroom_schema (version INTEGER NOT NULL)")?;
    let found: Option<i32> = tx
        .query_opt("SELECT max(version) FROM greenroom_schema", &[])?
        .and_then(|r| r.get(0));
    let found = found.unwrap_or(0) as usize;
    if found > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the PostgreSQL schema has version {found}, newer than this greenroom ({}); upgrade greenroom",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO greenroom_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl PluginState for Postgres {
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT value FROM plugin_kv WHERE plugin_id = $1 AND key = $2
                 AND (expires_ms IS NULL OR expires_ms > $3)",
                &[&plugin, &key, &now_ms()],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u32>,
        quota: u64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        self.with(|c| {
            let mut tx = c.transaction()?;
            // One writer per plugin at a time, across replicas, so two
            // writes cannot both pass the quota.
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&plugin])?;
            tx.execute(
                "DELETE FROM plugin_kv WHERE plugin_id = $1 AND expires_ms <= $2",
                &[&plugin, &now],
            )?;
            let used: i64 = tx
                .query_one(
                    "SELECT COALESCE(sum(octet_length(key) + octet_length(value)), 0)::BIGINT
                     FROM plugin_kv WHERE plugin_id = $1 AND key <> $2",
                    &[&plugin, &key],
                )?
                .get(0);
            if !super::kv::within_quota(used, key, value, quota) {
                return Ok(false);
            }
            let expires = ttl_seconds.map(|t| now + i64::from(t) * 1000);
            tx.execute(
                "INSERT INTO plugin_kv (plugin_id, key, value, expires_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (plugin_id, key) DO UPDATE SET value = $3, expires_ms = $4",
                &[&plugin, &key, &value, &expires],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2",
                &[&plugin, &key],
            )?;
            Ok(())
        })
    }

    fn grants(&self, plugin: &str) -> Result<Option<StoredGrants>, StoreError> {
        let row = self.with(|c| {
            Ok(c.query_opt(
                "SELECT hosts, secrets, disabled FROM plugin_grants WHERE plugin_id = $1",
                &[&plugin],
            )?)
        })?;
        row.map(|r| StoredGrants::from_columns(r.get(0), r.get(1), r.get(2)))
            .transpose()
    }

    fn set_grants(&self, plugin: &str, grants: &StoredGrants) -> Result<(), StoreError> {
        let (hosts, secrets) = grants.columns()?;
        self.with(|c| {
            c.execute(
                "INSERT INTO plugin_grants (plugin_id, hosts, secrets, disabled) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (plugin_id) DO UPDATE SET hosts = $2, secrets = $3, disabled = $4",
                &[&plugin, &hosts, &secrets, &grants.disabled],
            )?;
            Ok(())
        })
    }
}

const RUN_COLUMNS: &str = "id, started_ms, finished_ms, plugin_id, action_id, label, entity_ref, user_ref, input, status, message";

fn action_run(r: &Row) -> ActionRun {
    ActionRun {
        id: r.get(0),
        started_ms: r.get(1),
        finished_ms: r.get(2),
        plugin: r.get(3),
        action: r.get(4),
        label: r.get(5),
        entity_ref: r.get(6),
        user: r.get(7),
        input: r.get(8),
        status: r.get(9),
        message: r.get(10),
    }
}

impl ActionRuns for Postgres {
    fn action_started(
        &self,
        plugin: &str,
        action: &str,
        label: &str,
        entity_ref: &str,
        user: &str,
        input: &str,
    ) -> Result<ActionRun, StoreError> {
        let started = now_ms();
        self.with(|c| {
            let row = c.query_one(
                &format!(
                    "INSERT INTO action_runs (started_ms, plugin_id, action_id, label, entity_ref, user_ref, input, status)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'running') RETURNING {RUN_COLUMNS}"
                ),
                &[&started, &plugin, &action, &label, &entity_ref, &user, &input],
            )?;
            Ok(action_run(&row))
        })
    }

    fn action_finished(
        &self,
        run: &mut ActionRun,
        succeeded: bool,
        message: &str,
    ) -> Result<(), StoreError> {
        let (finished, status) = run.finish(succeeded, message);
        let id = run.id;
        self.with(|c| {
            c.execute(
                "UPDATE action_runs SET finished_ms = $1, status = $2, message = $3 WHERE id = $4",
                &[&finished, &status, &message, &id],
            )?;
            Ok(())
        })
    }

    fn action_runs(
        &self,
        entity_ref: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRun>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM action_runs WHERE $1::TEXT IS NULL OR entity_ref = $1
                     ORDER BY started_ms DESC, id DESC LIMIT $2"
                ),
                &[&entity_ref, &(limit as i64)],
            )?
            .iter()
            .map(action_run)
            .collect())
        })
    }
}

impl CampaignSpecs for Postgres {
    fn api_campaigns(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            Ok(
                c.query("SELECT name, body FROM campaigns ORDER BY name", &[])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect(),
            )
        })
    }

    fn put_campaign(&self, name: &str, body: &str, by: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO campaigns (name, body, created_by, created_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET body = $2, created_by = $3",
                &[&name, &body, &by, &now_ms()],
            )?;
            Ok(())
        })
    }

    fn delete_campaign(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM campaigns WHERE name = $1", &[&name])? == 1))
    }
}

const TOKEN_COLUMNS: &str =
    "id, name, scopes, owner, created_by, created_ms, expires_ms, revoked_ms, person";

fn token(r: &Row) -> TokenRecord {
    TokenRecord {
        id: r.get(0),
        name: r.get(1),
        scopes: serde_json::from_str(r.get(2)).unwrap_or_default(),
        owner: r.get(3),
        created_by: r.get(4),
        created_ms: r.get(5),
        expires_ms: r.get(6),
        revoked_ms: r.get(7),
        person: r.get(8),
    }
}

const SESSION_COLUMNS: &str =
    "id, login, subject, user_ref, address, created_ms, seen_ms, expires_ms, ended_ms, csrf";

fn session(r: &Row) -> SessionRecord {
    SessionRecord {
        id: r.get(0),
        login: r.get(1),
        subject: r.get(2),
        user_ref: r.get(3),
        address: r.get(4),
        created_ms: r.get(5),
        seen_ms: r.get(6),
        expires_ms: r.get(7),
        ended_ms: r.get(8),
        csrf: r.get(9),
    }
}

impl Access for Postgres {
    fn token_create(&self, t: &TokenRecord, hash: &[u8]) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&t.scopes).map_err(corrupt)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO api_tokens (id, name, hash, scopes, owner, created_by, created_ms, expires_ms, revoked_ms, person)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
                &[&t.id, &t.name, &hash, &scopes, &t.owner, &t.created_by, &t.created_ms, &t.expires_ms, &t.person],
            )?;
            Ok(())
        })
    }

    fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1");
            Ok(c.query_opt(&sql, &[&hash])?.map(|r| token(&r)))
        })
    }

    fn tokens(&self, person: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE $1::TEXT IS NULL OR person = $1
                 ORDER BY created_ms DESC, id"
            );
            Ok(c.query(&sql, &[&person])?.iter().map(token).collect())
        })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
            Ok(c.query_opt(&sql, &[&id])?.map(|r| token(&r)))
        })
    }

    fn token_revoke(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE api_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL",
                &[&id, &now_ms()],
            )? == 1)
        })
    }

    fn session_create(&self, s: &SessionRecord, hash: &[u8]) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &s.id,
                    &s.login,
                    &s.subject,
                    &s.user_ref,
                    &s.address,
                    &s.created_ms,
                    &s.seen_ms,
                    &s.expires_ms,
                    &s.ended_ms,
                    &s.csrf,
                    &hash,
                ],
            )?;
            Ok(())
        })
    }

    fn session_by_hash(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = $1");
            Ok(c.query_opt(&sql, &[&hash])?.map(|r| session(&r)))
        })
    }

    fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
            Ok(c.query_opt(&sql, &[&id])?.map(|r| session(&r)))
        })
    }

    fn session_seen(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE sessions SET seen_ms = $2 WHERE id = $1 AND ended_ms IS NULL",
                &[&id, &now],
            )?;
            Ok(())
        })
    }

    fn session_end(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE sessions SET ended_ms = $2 WHERE id = $1 AND ended_ms IS NULL",
                &[&id, &now_ms()],
            )? == 1)
        })
    }

    fn sessions(&self, now: i64, user_ref: Option<&str>) -> Result<Vec<SessionRecord>, StoreError> {
        self.with(|c| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM sessions
                 WHERE ended_ms IS NULL AND expires_ms > $1 AND ($2::TEXT IS NULL OR user_ref = $2)
                 ORDER BY created_ms DESC, id LIMIT 10000"
            );
            Ok(c.query(&sql, &[&now, &user_ref])?
                .iter()
                .map(session)
                .collect())
        })
    }

    fn session_count(&self, now: i64) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(c.query_one(
                "SELECT count(*) FROM sessions WHERE ended_ms IS NULL AND expires_ms > $1",
                &[&now],
            )?
            .get(0))
        })
    }

    fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at_ms, actor, action, target, address, outcome, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &e.at_ms,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.address,
                    &e.outcome,
                    &i32::from(e.status),
                ],
            )?;
            Ok(())
        })
    }

    fn audit_lines(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT seq, at_ms, actor, action, target, address, outcome, status FROM audit
                 WHERE at_ms >= $1 AND ($2::TEXT IS NULL OR actor = $2)
                 AND ($3::TEXT IS NULL OR strpos(target, $3) > 0)
                 ORDER BY seq LIMIT $4",
                &[
                    &q.since_ms.unwrap_or(0),
                    &q.actor,
                    &q.target,
                    &(q.limit.clamp(1, 100_000) as i64),
                ],
            )?;
            Ok(rows
                .iter()
                .map(|r| AuditEntry {
                    seq: r.get(0),
                    at_ms: r.get(1),
                    actor: r.get(2),
                    action: r.get(3),
                    target: r.get(4),
                    address: r.get(5),
                    outcome: r.get(6),
                    status: r.get::<_, i32>(7) as u16,
                })
                .collect())
        })
    }
}
