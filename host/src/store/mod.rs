//! The store: entities, their search rows and relations, locations and
//! ingestion problems, facts, events, action runs, plugin state, sessions.
//!
//! [`Store`] is the boundary the rest of the host sees: one trait object
//! per capability (`boundary.rs`). The backend is SQLite ([`Sqlite`]).
//!
//! **Invariant:** only `store` writes SQL. SQLite: one writer connection
//! behind a mutex, a small pool of reader connections; WAL mode lets
//! readers run while a location refresh writes. Every refresh of a
//! location is one transaction ([`RefreshTx`]): a crash half-way leaves
//! the previous state. Callers run store methods off the async executor
//! (`spawn_blocking`).

mod actions;
mod auth;
mod boundary;
mod checkpoint;
mod events;
mod facts;
mod history;
mod index;
mod kv;
pub mod migrate;
mod pg;
mod query;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

pub use actions::ActionRun;
pub use auth::{AuditEntry, AuditQuery, SessionRecord, TokenRecord};
pub use boundary::{
    Access, ActionRuns, CampaignSpecs, Catalog, ChangeFeed, Events, Facts, Leases, Locations,
    NudgeLog, PluginState, RefreshTx, StatusHistory,
};
pub use events::{EventQuery, EventRecord};
pub use facts::{FactRecord, FactValue, RankedFact, valid_fact_name};
pub use history::{NudgeRecord, Status, StatusChange};
pub use kv::StoredGrants;
pub use pg::Postgres;
pub use query::{EntityPage, Filter, FilterSet, FullText, ListQuery, Order, PageQuery, QueryError};
pub use write::{Draft, RefreshSummary, Rejected};

/// Errors from the store. SQLite's own errors are internal: callers show a
/// generic message and log the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store at {path} has schema version {found}, newer than this greenroom ({supported}); upgrade greenroom"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot connect to PostgreSQL at {url}: {source}; check server.database and PGPASSWORD"
    )]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot take the lease {name}: {why}")]
    Lease { name: String, why: String },
    #[error("location {0} already exists")]
    LocationExists(String),
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Why the store cannot take writes, when that is the trouble: the
    /// disk is full, or the data folder is read-only or gone.
    pub fn unwritable(&self) -> Option<&'static str> {
        use rusqlite::ErrorCode;
        let StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) = self else {
            return None;
        };
        match e.code {
            ErrorCode::DiskFull => Some("the disk holding the data folder is full"),
            ErrorCode::ReadOnly => Some("the data folder is read-only"),
            ErrorCode::CannotOpen | ErrorCode::SystemIoFailure => {
                Some("the data folder cannot be written (I/O error)")
            }
            _ => None,
        }
    }
}

/// A stored value that does not read back as JSON.
fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Where a location came from: configuration locations are re-created at
/// start-up, API ones persist until deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
}

impl Origin {
    /// As stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }

    pub(crate) fn stored(text: &str) -> Origin {
        if text == "config" {
            Origin::Config
        } else {
            Origin::Api
        }
    }
}

impl Location {
    /// A location just registered: never read yet.
    pub(crate) fn registered(id: String, kind: &str, target: &str, origin: Origin) -> Location {
        Location {
            id,
            kind: kind.to_string(),
            target: target.to_string(),
            origin,
            last_refresh_ms: None,
            entity_count: 0,
            error_count: 0,
        }
    }
}

/// A registered location, as Backstage's API shows it, plus its last
/// refresh outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    #[serde(skip)]
    pub origin: Origin,
    pub last_refresh_ms: Option<i64>,
    pub entity_count: i64,
    pub error_count: i64,
}

/// A problem found while ingesting a location: which file, where, which
/// entity and field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemRecord {
    pub location_id: String,
    pub source: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub entity_ref: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

/// Aggregate counts for `/healthz` and the benchmark.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub entities: i64,
    pub locations: i64,
    pub problems: i64,
    pub orphans: i64,
}

/// Reader connections kept open. Each keeps its prepared statements and
/// page cache warm; a request waits for one (briefly) rather than opening
/// its own, which under 200 concurrent clients cost a cold connection per
/// request and hundreds of MiB of page caches (`cargo xtask bench load`).
const READERS: usize = 4;

/// How long a read waits for a pooled connection before it opens one of
/// its own (a read nested in another read never waits for itself).
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The store: one trait object per capability, all served by one backend.
/// Cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct Store {
    pub catalog: Arc<dyn Catalog>,
    pub locations: Arc<dyn Locations>,
    pub changes: Arc<dyn ChangeFeed>,
    pub facts: Arc<dyn Facts>,
    pub campaigns: Arc<dyn CampaignSpecs>,
    pub statuses: Arc<dyn StatusHistory>,
    pub nudges: Arc<dyn NudgeLog>,
    pub events: Arc<dyn Events>,
    pub actions: Arc<dyn ActionRuns>,
    pub plugin_state: Arc<dyn PluginState>,
    pub access: Arc<dyn Access>,
    pub leases: Arc<dyn Leases>,
}

impl Store {
    /// Opens (creating and migrating when needed) the SQLite store at
    /// `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::over(Arc::new(Sqlite::open(path)?)))
    }

    /// The store `database` names (`server.database`): PostgreSQL for a
    /// `postgres://` URL, SQLite at `sqlite_path` when it is unset.
    pub fn configured(database: Option<&str>, sqlite_path: &Path) -> Result<Store, StoreError> {
        let Some(url) = database else {
            return Store::open(sqlite_path);
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Config(format!(
                "server.database must be a postgres:// URL (or left out for SQLite in the data folder), not {url:?}"
            )));
        }
        Ok(Store::over(Arc::new(Postgres::open(url)?)))
    }

    /// Every capability served by `backend`.
    pub fn over<B>(backend: Arc<B>) -> Store
    where
        B: Catalog
            + Locations
            + ChangeFeed
            + Facts
            + CampaignSpecs
            + StatusHistory
            + NudgeLog
            + Events
            + ActionRuns
            + PluginState
            + Access
            + Leases
            + 'static,
    {
        Store {
            catalog: backend.clone(),
            locations: backend.clone(),
            changes: backend.clone(),
            facts: backend.clone(),
            campaigns: backend.clone(),
            statuses: backend.clone(),
            nudges: backend.clone(),
            events: backend.clone(),
            actions: backend.clone(),
            plugin_state: backend.clone(),
            access: backend.clone(),
            leases: backend,
        }
    }
}

/// The SQLite backend; every capability of [`Store`].
pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Signalled when a reader connection goes back to the pool.
    reader_free: std::sync::Condvar,
    /// Bumped by every committed write; lets callers cache derived answers.
    generation: AtomicU64,
    /// Facet counts by query, valid for one generation: the catalog page
    /// asks for the same facets on every view, and they change only when a
    /// refresh commits.
    facet_cache: Versioned<Facets>,
    /// Every ref a filter selects, while the catalog stays as it was.
    refs_cache: Versioned<FilterRefs>,
    /// The entity count and the generation it was counted at.
    count_cache: Mutex<Option<(u64, i64)>>,
    stats_cache: StatsCache,
    /// Every group of a User (`groups_of`), by generation: asked on every
    /// request of a signed-in person, changed only by a refresh.
    groups_cache: Mutex<std::collections::HashMap<String, (u64, Vec<String>)>>,
    /// Sessions by the hash of their cookie, with when each was read.
    session_cache: Mutex<std::collections::HashMap<Vec<u8>, (i64, SessionRecord)>>,
    /// Lease files this process holds locked, by lease name.
    leases: Mutex<std::collections::HashMap<String, std::fs::File>>,
    /// Signs paging cursors, so a client cannot forge one (see `query.rs`).
    cursor_key: Vec<u8>,
    /// What by-query asks, kept in memory (see `index.rs`).
    index: index::QueryIndex,
    /// Checkpoints the WAL off the writer's path (see `checkpoint.rs`).
    _checkpoint: checkpoint::Checkpointer,
}

/// Answers kept by query while the catalog stays at the version they
/// were computed at (at most 256; then it starts again).
pub(crate) struct Versioned<V>(Mutex<std::collections::HashMap<String, (u64, V)>>);

impl<V> Default for Versioned<V> {
    fn default() -> Self {
        Versioned(Mutex::default())
    }
}

impl<V: Clone> Versioned<V> {
    /// The answer to `key` at `version`, computed by `compute` unless kept.
    pub(crate) fn get_or(
        &self,
        key: String,
        version: u64,
        compute: impl FnOnce() -> Result<V, StoreError>,
    ) -> Result<V, StoreError> {
        self.get_or_within(key, version, 256, compute)
    }

    /// As [`Versioned::get_or`], keeping at most `most` answers, all at
    /// the newest version: for large answers (every ref a filter selects),
    /// so memory holds only what the catalog as it is now could serve.
    pub(crate) fn get_or_within(
        &self,
        key: String,
        version: u64,
        most: usize,
        compute: impl FnOnce() -> Result<V, StoreError>,
    ) -> Result<V, StoreError> {
        if let Some((v, hit)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && *v == version
        {
            return Ok(hit.clone());
        }
        let answer = compute()?;
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if most < 256 {
            cache.retain(|_, (v, _)| *v == version);
        }
        if cache.len() >= most {
            cache.clear();
        }
        cache.insert(key, (version, answer.clone()));
        Ok(answer)
    }
}

/// The refs a filter selects (id, ref, owner), by id order.
pub(crate) type FilterRefs = std::sync::Arc<Vec<(i64, String, Option<String>)>>;

/// Filters whose refs are kept (campaigns and scorecards ask the same few
/// on every page view).
pub(crate) const KEPT_FILTERS: usize = 8;

/// Catalog counts (`/healthz`), kept while the store stays at the version
/// they were counted at and for at most [`StatsCache::AGE`] (problems and
/// locations another process changed may not move the version). At
/// 100,000 entities the orphan count alone reads every entity, and
/// `/healthz` is polled by load balancers and by whoever waits for a
/// refresh (the benchmarks, every 20 ms).
#[derive(Default)]
pub(crate) struct StatsCache(Mutex<Option<Counted>>);

/// Counts, with the store version and the time they were counted at.
type Counted = ((i64, u64), std::time::Instant, Stats);

impl StatsCache {
    const AGE: std::time::Duration = std::time::Duration::from_secs(5);

    /// The counts at `version`, counted by `count` unless kept.
    pub(crate) fn get_or(
        &self,
        version: (i64, u64),
        count: impl FnOnce() -> Result<Stats, StoreError>,
    ) -> Result<Stats, StoreError> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, at, stats)) = &*cache
            && *v == version
            && at.elapsed() < Self::AGE
        {
            return Ok(stats.clone());
        }
        let stats = count()?;
        *cache = Some((version, std::time::Instant::now(), stats.clone()));
        Ok(stats)
    }
}

/// Facet name → (value, count), most frequent first.
pub type Facets = std::collections::BTreeMap<String, Vec<(String, i64)>>;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Plans must not depend on bound values: otherwise SQLite marks every
    // statement with ORDER BY, LIMIT ? or LIKE ? to be compiled again
    // whenever its bindings are cleared, which rusqlite's statement cache
    // does on every return, so cached statements were parsed and planned
    // anew on every run (a sixth of the server's CPU under load).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )?;
    Ok(conn)
}

impl Locations for Sqlite {
    fn add_location(
        &self,
        kind: &str,
        target: &str,
        origin: Origin,
    ) -> Result<Location, StoreError> {
        let conn = self.writer();
        let exists: Option<String> = conn
            .query_row(
                "SELECT id FROM locations WHERE type = ?1 AND target = ?2",
                params![kind, target],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::LocationExists(format!("{kind}:{target}")));
        }
        let id = uuid::Uuid::new_v4().to_string();
        conn.execute(
            "INSERT INTO locations (id, type, target, origin, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, kind, target, origin.as_str(), now_ms()],
        )?;
        drop(conn);
        self.bump();
        Ok(Location::registered(id, kind, target, origin))
    }

    fn locations(&self) -> Result<Vec<Location>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("{LOCATION_SELECT} ORDER BY l.rowid"))?;
            let rows = stmt.query_map([], location_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn location(&self, id: &str) -> Result<Option<Location>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("{LOCATION_SELECT} WHERE l.id = ?1"))?;
            Ok(stmt.query_row([id], location_row).optional()?)
        })
    }

    fn delete_location(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO entity_changes (ref, entity_id) SELECT ref, id FROM entities WHERE location_id = ?1",
            [id],
        )?;
        tx.execute(
            "DELETE FROM search WHERE entity_id IN (SELECT id FROM entities WHERE location_id = ?1)",
            [id],
        )?;
        tx.execute(
            "DELETE FROM entity_relations WHERE source_id IN (SELECT id FROM entities WHERE location_id = ?1)",
            [id],
        )?;
        tx.execute("DELETE FROM entities WHERE location_id = ?1", [id])?;
        tx.execute("DELETE FROM problems WHERE location_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM locations WHERE id = ?1", [id])?;
        tx.commit()?;
        drop(conn);
        self.bump();
        Ok(n > 0)
    }

    fn problems(&self, location_id: Option<&str>) -> Result<Vec<ProblemRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT location_id, source, line, col, entity_ref, field, message FROM problems
                 WHERE ?1 IS NULL OR location_id = ?1 ORDER BY location_id, source, line, id",
            )?;
            let rows = stmt.query_map([location_id], |r| {
                Ok(ProblemRecord {
                    location_id: r.get(0)?,
                    source: r.get(1)?,
                    line: r.get(2)?,
                    column: r.get(3)?,
                    entity_ref: r.get(4)?,
                    field: r.get(5)?,
                    message: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn begin_refresh(&self, location_id: &str) -> Result<Box<dyn RefreshTx + '_>, StoreError> {
        Ok(Box::new(write::SqliteRefresh::begin(self, location_id)?))
    }
}

impl Sqlite {
    /// Opens (creating and migrating when needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut writer = open_connection(path, OpenFlags::default())?;
        // A refresh of a large location touches every index; with too small
        // a cache, dirty pages spill to the WAL again and again. The writer
        // never checkpoints: a thread of its own does (`checkpoint.rs`).
        writer
            .execute_batch("PRAGMA cache_size = -65536; PRAGMA journal_size_limit = 67108864; PRAGMA wal_autocheckpoint = 0;")?;
        // Room for every statement a refresh runs, with each size of its
        // multi-row inserts (`write.rs`): the default 16 made it prepare
        // some again and again.
        writer.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut writer, path)?;
        // Two v4 UUIDs: 244 bits from the operating system's generator.
        let fresh: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| *u.as_bytes())
            .collect();
        writer.execute(
            "INSERT OR IGNORE INTO host_keys (name, value) VALUES ('cursor', ?1)",
            [fresh],
        )?;
        let cursor_key: Vec<u8> = writer.query_row(
            "SELECT value FROM host_keys WHERE name = 'cursor'",
            [],
            |r| r.get(0),
        )?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_connection(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?);
        }
        Ok(Sqlite {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
            reader_free: std::sync::Condvar::new(),
            generation: AtomicU64::new(1),
            groups_cache: Mutex::default(),
            session_cache: Mutex::default(),
            leases: Mutex::default(),
            facet_cache: Versioned::default(),
            refs_cache: Versioned::default(),
            count_cache: Mutex::new(None),
            stats_cache: StatsCache::default(),
            cursor_key,
            index: index::QueryIndex::default(),
            _checkpoint: checkpoint::Checkpointer::start(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back), so a poisoned lock is safe to reuse.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with a reader connection from the pool (or a new one when
    /// all are busy).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = {
            let pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            let (mut pool, _) = self
                .reader_free
                .wait_timeout_while(pool, READER_WAIT, |p| p.is_empty())
                .unwrap_or_else(|p| p.into_inner());
            pool.pop()
        };
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READERS {
            pool.push(conn);
            drop(pool);
            self.reader_free.notify_one();
        }
        result
    }
}

/// A lease is a lock on a file beside the store (`greenroom.db.background.lease`),
/// which the operating system lets go when the process dies.
impl Leases for Sqlite {
    fn holds(&self, name: &str) -> Result<bool, StoreError> {
        let mut held = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if held.contains_key(name) {
            return Ok(true);
        }
        let mut path = self.path.clone().into_os_string();
        path.push(format!(".{name}.lease"));
        let failed = |why: String| StoreError::Lease {
            name: name.to_string(),
            why,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| failed(format!("{}: {e}", PathBuf::from(&path).display())))?;
        match file.try_lock() {
            Ok(()) => {
                held.insert(name.to_string(), file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(failed(e.to_string())),
        }
    }
}

/// The search key a person is looked up by (`Catalog::user_by`).
pub(crate) fn user_key(field: &str) -> &'static str {
    match field {
        "email" => "spec.profile.email",
        "name" => "metadata.name",
        _ => "metadata.annotations.greenroom.dev/sso-subject",
    }
}

/// True for an entity whose owner resolves to no Group or User.
pub(crate) const ORPHAN_SQL: &str = "e.owner_ref IS NOT NULL AND NOT EXISTS \
    (SELECT 1 FROM entities o WHERE o.ref = e.owner_ref AND o.kind IN ('group', 'user'))";

const LOCATION_SELECT: &str = "SELECT l.id, l.type, l.target, l.origin, l.last_refresh_ms,
    (SELECT count(*) FROM entities e WHERE e.location_id = l.id),
    (SELECT count(*) FROM problems p WHERE p.location_id = l.id)
    FROM locations l";

fn location_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Location> {
    let origin: String = r.get(3)?;
    Ok(Location {
        id: r.get(0)?,
        kind: r.get(1)?,
        target: r.get(2)?,
        origin: Origin::stored(&origin),
        last_refresh_ms: r.get(4)?,
        entity_count: r.get(5)?,
        error_count: r.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::{EntityRef, Kinds};

    fn valid(name: &str) -> Draft {
        Draft::of(Kinds::default()
            .validate(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name}, "spec": {"type": "team"}}))
            .unwrap()).unwrap()
    }

    fn has(store: &Sqlite, name: &str) -> bool {
        store
            .entity_by_ref(&EntityRef::new("group", "default", name), &[])
            .unwrap()
            .is_some()
    }

    #[test]
    fn an_unfinished_refresh_leaves_the_previous_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = Sqlite::open(&path).unwrap();
        let loc = store
            .add_location("file", "x.yaml", Origin::Config)
            .unwrap();
        let mut tx = store.begin_refresh(&loc.id).unwrap();
        tx.put(valid("a"), "file:x.yaml").unwrap().unwrap();
        assert_eq!(tx.commit().unwrap().added, 1);

        // A refresh that dies half-way (dropped without commit)...
        let mut tx = store.begin_refresh(&loc.id).unwrap();
        tx.put(valid("b"), "file:x.yaml").unwrap().unwrap();
        drop(tx);
        assert!(has(&store, "a") && !has(&store, "b"));
        // ...and a process that dies half-way: nothing of it survives a reopen.
        drop(store);
        let store = Sqlite::open(&path).unwrap();
        assert!(has(&store, "a") && !has(&store, "b"));
        assert_eq!(store.stats().unwrap().entities, 1);
    }

    /// Reads run cached statements; each must be compiled once per
    /// connection, not again on every run.
    #[test]
    fn cached_statements_are_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let sql = "SELECT name FROM entities WHERE kind = ?1 ORDER BY name LIMIT ?2";
        let reprepared = store
            .read(|conn| {
                for limit in 1..=3 {
                    let mut stmt = conn.prepare_cached(sql)?;
                    stmt.query_map(params!["group", limit], |r| r.get::<_, String>(0))?
                        .for_each(drop);
                }
                Ok(conn
                    .prepare_cached(sql)?
                    .get_status(rusqlite::StatementStatus::RePrepare))
            })
            .unwrap();
        assert_eq!(reprepared, 0);
    }

    #[test]
    fn refuses_a_store_from_a_newer_greenroom() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        drop(Sqlite::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        match Sqlite::open(&path) {
            Err(StoreError::TooNew { found: 99, .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a store from the future"),
        }
    }

    #[test]
    fn locations_are_unique_and_deleting_one_removes_its_entities() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let loc = store
            .add_location("url", "https://x.example/a.yaml", Origin::Api)
            .unwrap();
        assert!(matches!(
            store.add_location("url", "https://x.example/a.yaml", Origin::Api),
            Err(StoreError::LocationExists(_))
        ));
        let mut tx = store.begin_refresh(&loc.id).unwrap();
        tx.put(valid("a"), "url:https://x.example/a.yaml")
            .unwrap()
            .unwrap();
        tx.commit().unwrap();
        let generation = store.generation();
        assert!(store.delete_location(&loc.id).unwrap());
        assert!(store.generation() > generation);
        assert!(!has(&store, "a"));
        assert!(!store.delete_location(&loc.id).unwrap());
    }
}

/// The hand-made query plans (selective driver, id-ordered index range,
/// ordered scan) must all give what a naive evaluation gives. A catalog
/// larger than `query::SELECTIVE` exercises each.
#[cfg(test)]
mod plan_tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::catalog::Kinds;

    const N: usize = 4500;

    fn store() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let loc = store
            .add_location("file", "x.yaml", Origin::Config)
            .unwrap();
        let mut tx = store.begin_refresh(&loc.id).unwrap();
        let kinds = Kinds::default();
        for i in 0..N {
            let (kind, ty) = if i.is_multiple_of(3) {
                ("Resource", "database")
            } else {
                ("Component", ["service", "website"][i % 2])
            };
            let lifecycle = if i % 5 == 4 {
                "experimental"
            } else {
                "production"
            };
            let mut spec =
                json!({"type": ty, "lifecycle": lifecycle, "owner": format!("team-{}", i % 7)});
            if i.is_multiple_of(11) {
                spec["dependsOn"] = json!(["resource:r-0"]);
            }
            let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": {"name": format!("e-{:05}", (i * 7919) % N), "tags": [format!("t{}", i % 4)]}, "spec": spec});
            tx.put(
                Draft::of(kinds.validate(v).unwrap()).unwrap(),
                "file:x.yaml",
            )
            .unwrap()
            .unwrap();
        }
        tx.commit().unwrap();
        (dir, store)
    }

    fn run(store: &Sqlite, filters: &[&str], order: &[&str], limit: Option<usize>) -> Vec<String> {
        let q = ListQuery {
            filter: Filter::parse(filters.iter().copied()).unwrap(),
            order: order
                .iter()
                .map(|o| Order::parse_prefixed(o).unwrap())
                .collect(),
            limit,
            offset: 0,
            fields: vec!["metadata.name".into()],
        };
        store
            .list(&q)
            .unwrap()
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e).unwrap()["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// What the filter should select, computed without SQL, in id order.
    fn naive(pred: impl Fn(usize) -> bool) -> Vec<String> {
        (0..N)
            .filter(|&i| pred(i))
            .map(|i| format!("e-{:05}", (i * 7919) % N))
            .collect()
    }

    #[test]
    fn every_plan_agrees_with_a_naive_evaluation() {
        let (_dir, store) = store();
        let components = |i: usize| !i.is_multiple_of(3);
        // Broad conditions, ordered by id: the index range of one drives.
        let expected = naive(|i| components(i) && i % 5 != 4);
        assert!(expected.len() > 2000);
        assert_eq!(
            run(
                &store,
                &["kind=component,spec.lifecycle=production"],
                &[],
                None
            ),
            expected
        );
        assert_eq!(
            run(
                &store,
                &["kind=component,spec.lifecycle=production"],
                &[],
                Some(25)
            ),
            expected[..25].to_vec()
        );
        // Broad, ordered by name: the (kind, name) scan.
        let mut by_name = expected.clone();
        by_name.sort();
        assert_eq!(
            run(
                &store,
                &["kind=component,spec.lifecycle=production"],
                &["asc:metadata.name"],
                Some(40)
            ),
            by_name[..40].to_vec()
        );
        by_name.reverse();
        assert_eq!(
            run(
                &store,
                &["spec.lifecycle=production,kind=component"],
                &["desc:metadata.name"],
                Some(40)
            ),
            by_name[..40].to_vec()
        );
        // A selective condition among broad ones drives.
        let expected = naive(|i| components(i) && i % 7 == 3 && i % 4 == 1);
        assert_eq!(
            run(
                &store,
                &["kind=component,spec.owner=team-3,metadata.tags=t1"],
                &[],
                None
            ),
            expected
        );
        // Several values, existence, relations, OR of sets.
        let expected = naive(|i| i % 4 == 1 || i % 4 == 2);
        assert_eq!(
            run(&store, &["metadata.tags=t1,metadata.tags=t2"], &[], None),
            expected
        );
        assert_eq!(
            run(&store, &["spec.dependsOn"], &[], None),
            naive(|i| i.is_multiple_of(11))
        );
        assert_eq!(
            run(
                &store,
                &["relations.dependsOn=resource:default/r-0"],
                &[],
                None
            ),
            naive(|i| i.is_multiple_of(11))
        );
        let expected = naive(|i| (components(i) && i % 5 == 4) || i.is_multiple_of(11));
        assert_eq!(
            run(
                &store,
                &[
                    "kind=component,spec.lifecycle=experimental",
                    "spec.dependsOn"
                ],
                &[],
                None
            ),
            expected
        );
        // Ordered by a field without a column.
        let got = run(
            &store,
            &["kind=resource"],
            &["asc:spec.lifecycle", "asc:metadata.name"],
            Some(5),
        );
        let mut expected: Vec<(usize, String)> = (0..N)
            .filter(|i| i.is_multiple_of(3))
            .map(|i| (i % 5 / 4, format!("e-{:05}", (i * 7919) % N)))
            .collect();
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(
            got,
            expected
                .iter()
                .take(5)
                .map(|e| e.1.clone())
                .collect::<Vec<_>>(),
            "experimental sorts before production"
        );
    }

    #[test]
    fn cursor_pages_cover_a_broad_selection_exactly_once() {
        let (_dir, store) = store();
        let mut q = PageQuery {
            filter: Filter::parse(["kind=component"]).unwrap(),
            limit: 500,
            fields: vec!["metadata.name".into()],
            ..PageQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = store.page(&q).unwrap().unwrap();
            assert_eq!(page.total_items, 3000);
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!((seen.len(), sorted.len()), (3000, 3000));
        let facets = store
            .facets(
                &["spec.owner".into()],
                &Filter::parse(["kind=component"]).unwrap(),
            )
            .unwrap();
        assert_eq!(
            facets["spec.owner"].iter().map(|(_, n)| n).sum::<i64>(),
            3000
        );
    }
}

#[cfg(test)]
mod cache_tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::Kinds;

    #[test]
    fn facets_stay_cached_across_refreshes_that_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let loc = store
            .add_location("file", "x.yaml", Origin::Config)
            .unwrap();
        let group = |name: &str| {
            let valid = Kinds::default()
                .validate(json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name}, "spec": {"type": "team"}}))
                .unwrap();
            Draft::of(valid).unwrap()
        };
        let refresh = |names: &[&str]| {
            let mut tx = store.begin_refresh(&loc.id).unwrap();
            for n in names {
                tx.put(group(n), "file:x.yaml").unwrap().unwrap();
            }
            tx.commit().unwrap()
        };
        refresh(&["a"]);
        let facet = || store.facets(&["kind".into()], &Filter::default()).unwrap()["kind"].clone();
        assert_eq!(facet(), vec![("Group".to_string(), 1)]);
        let generation = store.generation();
        refresh(&["a"]);
        assert_eq!(
            store.generation(),
            generation,
            "an unchanged refresh keeps caches"
        );
        refresh(&["a", "b"]);
        assert!(store.generation() > generation);
        assert_eq!(
            facet(),
            vec![("Group".to_string(), 2)],
            "a change invalidates them"
        );
    }
}
