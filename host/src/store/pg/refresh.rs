//! Locations, refreshes and the change feed in PostgreSQL. A refresh holds
//! one connection in one transaction under [`CATALOG_LOCK`]; its rules are
//! SQLite's (`write::RefreshBook`), its statements prepared once per
//! refresh.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::client::{Client, Started};
use super::{CATALOG_LOCK, Postgres};
use crate::catalog::EntityRef;
use crate::store::write::{Draft, Existing, Prepared, Put, RefreshBook};
use crate::store::{
    ChangeFeed, Leases, Location, Locations, Origin, ProblemRecord, RefreshSummary, RefreshTx,
    Rejected, StoreError, now_ms,
};

const LOCATION_SELECT: &str = "SELECT l.id, l.type, l.target, l.origin, l.last_refresh_ms,
    (SELECT count(*) FROM entities e WHERE e.location_id = l.id),
    (SELECT count(*) FROM problems p WHERE p.location_id = l.id)
    FROM locations l";

fn location(r: &Row) -> Location {
    let origin: String = r.get(3);
    Location {
        id: r.get(0),
        kind: r.get(1),
        target: r.get(2),
        origin: Origin::stored(&origin),
        last_refresh_ms: r.get(4),
        entity_count: r.get(5),
        error_count: r.get(6),
    }
}

fn line(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

impl Locations for Postgres {
    fn add_location(
        &self,
        kind: &str,
        target: &str,
        origin: Origin,
    ) -> Result<Location, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let added = self.with(|c| {
            Ok(c.execute(
                "INSERT INTO locations (id, type, target, origin, created_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (type, target) DO NOTHING",
                &[&id, &kind, &target, &origin.as_str(), &now_ms()],
            )?)
        })?;
        if added == 0 {
            return Err(StoreError::LocationExists(format!("{kind}:{target}")));
        }
        self.bump();
        Ok(Location::registered(id, kind, target, origin))
    }

    fn locations(&self) -> Result<Vec<Location>, StoreError> {
        self.with(|c| {
            Ok(c.query(&format!("{LOCATION_SELECT} ORDER BY l.seq"), &[])?
                .iter()
                .map(location)
                .collect())
        })
    }

    fn location(&self, id: &str) -> Result<Option<Location>, StoreError> {
        self.with(|c| {
            Ok(
                c.query_opt(&format!("{LOCATION_SELECT} WHERE l.id = $1"), &[&id])?
                    .map(|r| location(&r)),
            )
        })
    }

    fn delete_location(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])?;
            tx.execute(
                "DELETE FROM search WHERE entity_id IN (SELECT id FROM entities WHERE location_id = $1)",
                &[&id],
            )?;
            tx.execute(
                "DELETE FROM relations WHERE source_ref IN (SELECT ref FROM entities WHERE location_id = $1)",
                &[&id],
            )?;
            tx.execute("DELETE FROM entities WHERE location_id = $1", &[&id])?;
            tx.execute("DELETE FROM problems WHERE location_id = $1", &[&id])?;
            let n = tx.execute("DELETE FROM locations WHERE id = $1", &[&id])?;
            tx.commit()?;
            Ok(n > 0)
        })?;
        self.bump();
        Ok(deleted)
    }

    fn problems(&self, location_id: Option<&str>) -> Result<Vec<ProblemRecord>, StoreError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT location_id, source, line, col, entity_ref, field, message FROM problems
                 WHERE $1::TEXT IS NULL OR location_id = $1 ORDER BY location_id, source, line, id",
                &[&location_id],
            )?;
            Ok(rows
                .iter()
                .map(|r| ProblemRecord {
                    location_id: r.get(0),
                    source: r.get(1),
                    line: r.get::<_, Option<i32>>(2).map(|n| n as u32),
                    column: r.get::<_, Option<i32>>(3).map(|n| n as u32),
                    entity_ref: r.get(4),
                    field: r.get(5),
                    message: r.get(6),
                })
                .collect())
        })
    }

    fn begin_refresh(&self, location_id: &str) -> Result<Box<dyn RefreshTx + '_>, StoreError> {
        let mut client = self.take()?;
        if let Err(e) = client
            .batch_execute("BEGIN")
            .and_then(|()| client.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK]))
        {
            return Err(e.into());
        }
        let mut refresh = PgRefresh {
            store: self,
            client: Some(client),
            book: RefreshBook::new(location_id),
            own: HashMap::new(),
            elsewhere: HashMap::new(),
            fresh: HashSet::new(),
            pending: Vec::new(),
            pending_rows: 0,
            in_flight: None,
            changed: false,
            changes: 0,
        };
        refresh.load_own()?;
        Ok(Box::new(refresh))
    }
}

/// A refresh in progress on a connection of its own; rolled back when
/// dropped uncommitted.
struct PgRefresh<'s> {
    store: &'s Postgres,
    /// Taken when the refresh ends.
    client: Option<Client>,
    book: RefreshBook,
    /// The stored rows of this location's entities not met yet, by ref.
    /// Any other ref is new here, or another location's (then its insert
    /// finds it taken).
    own: HashMap<String, Existing>,
    /// Refs looked up by `prefetch` that another location holds, with
    /// its type and target.
    elsewhere: HashMap<String, String>,
    /// Refs looked up by `prefetch` and stored nowhere: under the catalog
    /// lock nothing else can take them, so they are written in batches.
    fresh: HashSet<String>,
    /// New and changed entities not written yet.
    pending: Vec<Batched>,
    /// Their rows (entities, search rows, relations).
    pending_rows: usize,
    /// The last batch, being written while the refresh reads on: the ids
    /// it stored, and how many it should have.
    in_flight: Option<Started<(Vec<i64>, usize)>>,
    /// Whether anything an entity shows changed, in any location so far.
    changed: bool,
    /// Entities added, changed or removed, in every location so far.
    changes: usize,
}

/// An entity waiting for its batch: new, or a change of the stored `id`.
struct Batched {
    id: Option<i64>,
    key: String,
    entity_ref: EntityRef,
    source: String,
    prepared: Box<Prepared>,
    relations: Vec<(&'static str, String)>,
}

/// Rows written per batch statement, at most (about 25 per entity).
const BATCH_ROWS: usize = 12_000;

impl PgRefresh<'_> {
    /// The current location's entities, read once: a refresh then asks
    /// the database nothing about an entity it already knows.
    fn load_own(&mut self) -> Result<(), StoreError> {
        let location_id = self.book.location_id.clone();
        for r in self.query(
            "SELECT ref, id, uid, location_id, etag, source, errors IS NOT NULL FROM entities
             WHERE location_id = $1",
            &[&location_id],
        )? {
            self.own.insert(
                r.get(0),
                Existing {
                    id: r.get(1),
                    uid: r.get(2),
                    location_id: r.get(3),
                    etag: r.get(4),
                    source: r.get(5),
                    has_errors: r.get(6),
                },
            );
        }
        Ok(())
    }

    fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("an open refresh has its connection")
    }

    /// Runs `sql` (prepared once per connection) and answers its rows,
    /// after the batch in flight.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.settle()?;
        Ok(self.client().query(sql, params)?)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.settle()?;
        Ok(self.client().execute(sql, params)?)
    }

    /// Waits for the batch in flight and books what it stored.
    fn settle(&mut self) -> Result<(), StoreError> {
        let Some(started) = self.in_flight.take() else {
            return Ok(());
        };
        let (ids, expected) = started.wait()?;
        // `prefetch` found these refs free, and the catalog lock keeps
        // them so: a ref taken since is a broken rule, not a claim.
        if ids.len() != expected {
            return Err(StoreError::Corrupt(format!(
                "{} of {expected} new entities of location {} were stored meanwhile by another writer",
                expected - ids.len(),
                self.book.location_id
            )));
        }
        self.book.seen.extend(ids);
        Ok(())
    }

    /// Where the entity `key` is stored now, when that is another
    /// location: its type and target, for the message.
    fn claimed_by(&mut self, key: &str) -> Result<String, StoreError> {
        Ok(self
            .query(
                "SELECT l.type || ':' || l.target FROM entities e JOIN locations l ON l.id = e.location_id
                 WHERE e.ref = $1",
                &[&key],
            )?
            .first()
            .map_or_else(|| "another location".to_string(), |r| r.get(0)))
    }

    /// Starts writing the pending entities, their search rows and
    /// relations: changed ones in two statements, new ones in one; the
    /// refresh reads and parses on meanwhile (its next statement waits).
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.settle()?;
        let pending = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let location_id = self.book.location_id.clone();
        let runtime = self
            .store
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        let client = self
            .client
            .as_mut()
            .expect("an open refresh has its connection");
        let started = client.start(runtime, INSERT_NEW, move |client, insert| async move {
            let now = now_ms();
            let (changed, new): (Vec<Batched>, Vec<Batched>) =
                pending.into_iter().partition(|b| b.id.is_some());
            if !changed.is_empty() {
                let (ids, e) = change_columns(&changed);
                let mut params: Vec<&(dyn ToSql + Sync)> = vec![&now, &ids];
                params.extend(e.iter().map(|c| c as &(dyn ToSql + Sync)));
                client.execute(UPDATE_CHANGED, &params).await?;
                // Apart: rows deleted and inserted in one statement would
                // collide.
                let (s, r) = row_columns(&changed);
                let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
                params.extend(s.iter().map(|c| c as &(dyn ToSql + Sync)));
                params.extend(r.iter().map(|c| c as &(dyn ToSql + Sync)));
                client.execute(INSERT_CHANGED_ROWS, &params).await?;
            }
            if new.is_empty() {
                return Ok((Vec::new(), 0));
            }
            let e = entity_columns(&new);
            let (s, r) = row_columns(&new);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&location_id, &now];
            params.extend(e.iter().map(|c| c as &(dyn ToSql + Sync)));
            params.extend(s.iter().map(|c| c as &(dyn ToSql + Sync)));
            params.extend(r.iter().map(|c| c as &(dyn ToSql + Sync)));
            let rows = client.query(&insert, &params).await?;
            Ok((rows.iter().map(|row| row.get(0)).collect(), new.len()))
        })?;
        self.in_flight = Some(started);
        Ok(())
    }
}

/// Writes a batch of new entities (unless another location has one), with
/// their search rows and relations: `$1` the location, `$2` the time,
/// then [`entity_columns`] and [`row_columns`] in order. Neither rows of a new entity can be
/// there already (an entity's search rows are unique by key and value,
/// its relations by type and target, and both go with it), so they are
/// inserted without the conflict checks that cost PostgreSQL a second
/// index probe each.
const INSERT_NEW: &str = "WITH e AS (
        INSERT INTO entities (uid, ref, kind, namespace, name, title, owner_ref, location_id,
            source, etag, body, created_ms, updated_ms)
        SELECT u, r, k, n, m, t, o, $1, s, g, b, $2, $2
        FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[],
            $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[]) AS x(u, r, k, n, m, t, o, s, g, b)
        ON CONFLICT (ref) DO NOTHING RETURNING id, ref),
     s AS (INSERT INTO search (key, value, entity_id, original)
        SELECT t.k, t.v, e.id, t.o
        FROM unnest($13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[]) AS t(r, k, v, o)
        JOIN e ON e.ref = t.r),
     l AS (INSERT INTO relations (source_ref, type, target_ref)
        SELECT u.r, u.t, u.x FROM unnest($17::TEXT[], $18::TEXT[], $19::TEXT[]) AS u(r, t, x)
        WHERE u.r IN (SELECT ref FROM e))
     SELECT id FROM e";

/// Rewrites changed entities (`$2` their ids, then their title, owner,
/// source, etag and body; `$1` the time) and drops their search rows and
/// relations, which [`INSERT_CHANGED_ROWS`] then writes anew.
const UPDATE_CHANGED: &str = "WITH u AS (
        UPDATE entities e SET title = x.t, owner_ref = x.o, source = x.s, etag = x.g, body = x.b,
            errors = NULL, updated_ms = $1
        FROM unnest($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])
            AS x(id, t, o, s, g, b)
        WHERE e.id = x.id),
     s AS (DELETE FROM search WHERE entity_id = ANY($2)),
     r AS (DELETE FROM relations WHERE source_ref IN (SELECT ref FROM entities WHERE id = ANY($2)))
     SELECT 1";

/// The search rows and relations of changed entities ([`row_columns`]).
const INSERT_CHANGED_ROWS: &str = "WITH s AS (INSERT INTO search (key, value, entity_id, original)
        SELECT t.k, t.v, e.id, t.o
        FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) AS t(r, k, v, o)
        JOIN entities e ON e.ref = t.r),
     r AS (INSERT INTO relations (source_ref, type, target_ref)
        SELECT r, t, x FROM unnest($5::TEXT[], $6::TEXT[], $7::TEXT[]) AS u(r, t, x))
     SELECT 1";

/// The columns [`UPDATE_CHANGED`] takes for `batch`: ids, then title,
/// owner, source, etag and body.
fn change_columns(batch: &[Batched]) -> (Vec<i64>, [Vec<Option<&str>>; 5]) {
    let mut ids = Vec::with_capacity(batch.len());
    let mut e: [Vec<Option<&str>>; 5] = Default::default();
    for b in batch {
        let (Some(id), p) = (b.id, &b.prepared) else {
            continue;
        };
        ids.push(id);
        let columns = [
            p.title.as_deref(),
            p.owner.as_deref(),
            Some(b.source.as_str()),
            Some(p.etag.as_str()),
            Some(p.body.as_str()),
        ];
        for (column, value) in e.iter_mut().zip(columns) {
            column.push(value);
        }
    }
    (ids, e)
}

/// The entity columns [`INSERT_NEW`] takes for `batch` (`$3` to `$12`).
fn entity_columns(batch: &[Batched]) -> [Vec<Option<&str>>; 10] {
    let mut e: [Vec<Option<&str>>; 10] = Default::default();
    for n in batch {
        let p = &n.prepared;
        let columns = [
            Some(p.uid.as_str()),
            Some(n.key.as_str()),
            Some(n.entity_ref.kind.as_str()),
            Some(n.entity_ref.namespace.as_str()),
            Some(n.entity_ref.name.as_str()),
            p.title.as_deref(),
            p.owner.as_deref(),
            Some(n.source.as_str()),
            Some(p.etag.as_str()),
            Some(p.body.as_str()),
        ];
        for (column, value) in e.iter_mut().zip(columns) {
            column.push(value);
        }
    }
    e
}

/// The search rows (ref, key, value, original) and relations (ref, type,
/// target) of `batch`, as [`INSERT_NEW`] and [`INSERT_CHANGED_ROWS`] take
/// them.
#[allow(clippy::type_complexity, reason = "two fixed groups of columns")]
fn row_columns(batch: &[Batched]) -> ([Vec<Option<&str>>; 4], [Vec<&str>; 3]) {
    let (mut s, mut r): ([Vec<Option<&str>>; 4], [Vec<&str>; 3]) = Default::default();
    for n in batch {
        for (k, v, o) in &n.prepared.flat {
            s[0].push(Some(n.key.as_str()));
            s[1].push(Some(k.as_str()));
            s[2].push(Some(v.as_str()));
            s[3].push(o.as_deref());
        }
        for (kind, target) in &n.relations {
            r[0].push(n.key.as_str());
            r[1].push(kind);
            r[2].push(target.as_str());
        }
    }
    (s, r)
}

/// The search rows of an entity as `unnest` takes them.
fn search_columns(flat: &[(String, String, Option<String>)]) -> [Vec<Option<&str>>; 3] {
    [
        flat.iter().map(|(k, _, _)| Some(k.as_str())).collect(),
        flat.iter().map(|(_, v, _)| Some(v.as_str())).collect(),
        flat.iter().map(|(_, _, o)| o.as_deref()).collect(),
    ]
}

impl RefreshTx for PgRefresh<'_> {
    fn location_id(&self) -> &str {
        &self.book.location_id
    }

    /// One statement finds which of `refs` other locations hold; the rest
    /// (not this location's either) are new and go in batches.
    fn prefetch(&mut self, refs: &[String]) -> Result<(), StoreError> {
        let location_id = self.book.location_id.clone();
        let refs: Vec<&str> = refs
            .iter()
            .map(String::as_str)
            .filter(|r| !self.own.contains_key(*r))
            .collect();
        for r in self.query(
            "SELECT e.ref, l.type || ':' || l.target FROM entities e
             JOIN locations l ON l.id = e.location_id
             WHERE e.ref = ANY($1) AND e.location_id <> $2",
            &[&refs, &location_id],
        )? {
            self.elsewhere.insert(r.get(0), r.get(1));
        }
        for r in refs {
            if !self.elsewhere.contains_key(r) {
                self.fresh.insert(r.to_string());
            }
        }
        Ok(())
    }

    fn put(&mut self, draft: Draft, source: &str) -> Result<Result<(), Rejected>, StoreError> {
        let Draft {
            entity_ref,
            key,
            relations,
            stored,
        } = draft;
        // Met once: a second definition is the book's duplicate.
        let existing = self.own.remove(&key);
        if let Some(location) = self.elsewhere.get(&key) {
            return Ok(Err(Rejected::ClaimedElsewhere {
                location: location.clone(),
            }));
        }
        let decided = self.book.put(
            &key,
            stored,
            source,
            existing.as_ref(),
            // Never asked: `existing` is only ever this location's own;
            // another location's claim is in `elsewhere`, or shows when
            // the insert finds the ref.
            &mut |location| Ok(location.to_string()),
        )?;
        let p = match decided {
            Put::Refused(why) => return Ok(Err(why)),
            Put::Unchanged { rewrite } => {
                if let (true, Some(e)) = (rewrite, &existing) {
                    self.execute(
                        "UPDATE entities SET source = $2, errors = NULL WHERE id = $1",
                        &[&e.id, &source],
                    )?;
                }
                return Ok(Ok(()));
            }
            Put::Write(p) => p,
        };
        // A change of this location's own entity, or a new entity no other
        // location holds (looked up by `prefetch`): written in batches.
        if existing.is_some() || self.fresh.contains(&key) {
            self.pending_rows += 1 + p.flat.len() + relations.len();
            self.pending.push(Batched {
                id: existing.as_ref().map(|e| e.id),
                key,
                entity_ref,
                source: source.to_string(),
                prepared: p,
                relations,
            });
            if self.pending_rows >= BATCH_ROWS {
                self.flush()?;
            }
            return Ok(Ok(()));
        }
        let now = now_ms();
        let [keys, values, originals] = search_columns(&p.flat);
        let (types, targets): (Vec<&str>, Vec<&str>) =
            relations.iter().map(|(t, x)| (*t, x.as_str())).unzip();
        // Not looked up first: one statement writes the entity (unless
        // another location has it), its search rows and its relations.
        let location_id = self.book.location_id.clone();
        let inserted = self.query(
            "WITH e AS (
                INSERT INTO entities (uid, ref, kind, namespace, name, title, owner_ref, location_id,
                    source, etag, body, created_ms, updated_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
                ON CONFLICT (ref) DO NOTHING RETURNING id),
             s AS (INSERT INTO search (key, value, entity_id, original)
                SELECT k, v, e.id, o FROM e, unnest($13::TEXT[], $14::TEXT[], $15::TEXT[]) AS t(k, v, o)
                ON CONFLICT DO NOTHING),
             r AS (INSERT INTO relations (source_ref, type, target_ref)
                SELECT $2, t, x FROM e, unnest($16::TEXT[], $17::TEXT[]) AS u(t, x)
                ON CONFLICT DO NOTHING)
             SELECT id FROM e",
            &[
                &p.uid,
                &key,
                &entity_ref.kind,
                &entity_ref.namespace,
                &entity_ref.name,
                &p.title,
                &p.owner,
                &location_id,
                &source,
                &p.etag,
                &p.body,
                &now,
                &keys,
                &values,
                &originals,
                &types,
                &targets,
            ],
        )?;
        let Some(row) = inserted.first() else {
            // Another location claimed it first.
            self.book.refuse_new(&key);
            return Ok(Err(Rejected::ClaimedElsewhere {
                location: self.claimed_by(&key)?,
            }));
        };
        self.book.seen.insert(row.get(0));
        Ok(Ok(()))
    }

    fn keep_invalid(
        &mut self,
        entity_ref: &EntityRef,
        errors: &[String],
    ) -> Result<bool, StoreError> {
        let existing = self.own.remove(&entity_ref.to_string());
        let Some((id, json)) = self.book.keep_invalid(entity_ref, existing, errors) else {
            return Ok(false);
        };
        self.execute(
            "UPDATE entities SET errors = $2 WHERE id = $1",
            &[&id, &json],
        )?;
        Ok(true)
    }

    fn keep_unchanged(&mut self, source: &str, count: usize) -> Result<bool, StoreError> {
        self.flush()?;
        let location_id = self.book.location_id.clone();
        let rows = self
            .query(
                "SELECT id, ref, errors IS NOT NULL FROM entities WHERE location_id = $1 AND source = $2",
                &[&location_id, &source],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        Ok(self.book.keep_unchanged(source, count, rows))
    }

    fn keep_source(&mut self, source: &str) {
        self.book.keep_source(source);
    }

    fn problem(&mut self, problem: ProblemRecord) {
        self.book.problems.push(problem);
    }

    fn next_location(&mut self, location_id: &str) -> Result<RefreshSummary, StoreError> {
        let summary = self.finish_location()?;
        self.book = RefreshBook::new(location_id);
        // What the last location's lookups found no longer holds: it may
        // have taken those refs itself.
        self.own.clear();
        self.elsewhere.clear();
        self.fresh.clear();
        self.load_own()?;
        Ok(summary)
    }

    fn commit(mut self: Box<Self>) -> Result<RefreshSummary, StoreError> {
        let summary = self.finish_location()?;
        if self.changes >= ANALYZE_AFTER {
            // Flushed before the answer, whatever the server's default:
            // the vacuum that follows can mark a page all-visible only
            // once the commit of its rows is on disk (a server with
            // `synchronous_commit = off` left every page unmarked).
            self.client()
                .batch_execute("SET LOCAL synchronous_commit = on")?;
        }
        self.client().batch_execute("COMMIT")?;
        let client = self
            .client
            .take()
            .expect("an open refresh has its connection");
        self.store.give_back(client);
        if self.changed {
            self.store.bump();
        }
        if self.changes >= ANALYZE_AFTER {
            self.store.analyze();
        }
        Ok(summary)
    }
}

impl PgRefresh<'_> {
    /// Writes what is pending, removes what the current location no
    /// longer produced and records its problems and refresh time; answers
    /// its summary.
    fn finish_location(&mut self) -> Result<RefreshSummary, StoreError> {
        self.flush()?;
        self.settle()?;
        let location_id = self.book.location_id.clone();
        let (mut ids, mut refs) = (Vec::<i64>::new(), Vec::<String>::new());
        for r in self.query(
            "SELECT id, source, ref FROM entities WHERE location_id = $1",
            &[&location_id],
        )? {
            let id: i64 = r.get(0);
            if self.book.gone(id, r.get(1)) {
                ids.push(id);
                refs.push(r.get(2));
            }
        }
        self.execute("DELETE FROM search WHERE entity_id = ANY($1)", &[&ids])?;
        self.execute("DELETE FROM relations WHERE source_ref = ANY($1)", &[&refs])?;
        self.execute("DELETE FROM entities WHERE id = ANY($1)", &[&ids])?;
        self.book.summary.removed = ids.len();
        self.execute(
            "DELETE FROM problems WHERE location_id = $1",
            &[&location_id],
        )?;
        for p in std::mem::take(&mut self.book.problems) {
            self.execute(
                "INSERT INTO problems (location_id, source, line, col, entity_ref, field, message)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &location_id,
                    &p.source,
                    &line(p.line),
                    &line(p.column),
                    &p.entity_ref,
                    &p.field,
                    &p.message,
                ],
            )?;
            self.book.summary.problems += 1;
        }
        self.execute(
            "UPDATE locations SET last_refresh_ms = $2 WHERE id = $1",
            &[&location_id, &now_ms()],
        )?;
        self.changed |= self.book.changed();
        let summary = std::mem::take(&mut self.book.summary);
        self.changes += summary.added + summary.updated + summary.removed;
        Ok(summary)
    }
}

impl Drop for PgRefresh<'_> {
    fn drop(&mut self) {
        // A batch in flight first, or the rollback could overtake it.
        let _ = self.in_flight.take().map(Started::wait);
        if let Some(mut client) = self.client.take() {
            // A connection whose rollback fails is closed, not pooled.
            if client.batch_execute("ROLLBACK").is_ok() {
                self.store.give_back(client);
            }
        }
    }
}

impl ChangeFeed for Postgres {
    fn last_entity_change(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(
                c.query_one("SELECT COALESCE(max(seq), 0) FROM entity_changes", &[])?
                    .get(0),
            )
        })
    }

    fn entity_changes_after(
        &self,
        seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.with(|c| {
            Ok(c.query(
                "SELECT seq, ref FROM entity_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&seq, &(limit as i64)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// Entries stay [`FEED_RETENTION`] after one follower applied them,
    /// for the other processes' followers.
    fn forget_entity_changes(&self, seq: i64) -> Result<(), StoreError> {
        let before = now_ms() - FEED_RETENTION.as_millis() as i64;
        self.with(|c| {
            c.execute(
                "WITH gone AS (DELETE FROM entity_changes WHERE seq <= $1 AND at_ms < $2 RETURNING seq)
                 UPDATE feed_state SET forgotten = GREATEST(forgotten, (SELECT COALESCE(max(seq), 0) FROM gone))",
                &[&seq, &before],
            )?;
            Ok(())
        })
    }

    fn forgotten_through(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_one("SELECT forgotten FROM feed_state", &[])?.get(0)))
    }
}

/// Entities a refresh changes before the catalog's tables are vacuumed
/// and analyzed at once, rather than by autovacuum a minute or more
/// later: plans made from the statistics of an empty catalog walk whole
/// tables, and index-only scans visit the table until it is vacuumed.
const ANALYZE_AFTER: usize = 10_000;

/// How long a change-feed entry outlives its first follower.
const FEED_RETENTION: std::time::Duration = std::time::Duration::from_secs(600);

/// A lease is a session-level advisory lock held by a connection of its
/// own: PostgreSQL lets go of it when that connection ends, the process
/// holding it dying included.
impl Leases for Postgres {
    fn holds(&self, name: &str) -> Result<bool, StoreError> {
        let mut held = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = held.get_mut(name) {
            if c.batch_execute("SELECT 1").is_ok() {
                return Ok(true);
            }
            // Its connection is gone, and the lease with it.
            held.remove(name);
        }
        let mut c = self.take()?;
        // The two-key form: a space of its own, apart from the one-key
        // locks of migrations, refreshes and kv quotas.
        let got: bool = c
            .query_one("SELECT pg_try_advisory_lock(1, hashtext($1))", &[&name])?
            .get(0);
        if got {
            held.insert(name.to_string(), c);
        } else {
            self.give_back(c);
        }
        Ok(got)
    }
}
