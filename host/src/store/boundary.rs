//! The store boundary: what the rest of the host needs from storage, one
//! trait per capability. [`Store`](super::Store) holds one trait object
//! per capability, all served by one backend (SQLite or PostgreSQL); every
//! backend passes the same conformance suite
//! (`tests/src/store_conformance.rs`).
//!
//! Each method is synchronous: callers run store calls off the async
//! executor (`spawn_blocking`), as they did when the store was SQLite
//! alone. A backend that talks to a server blocks its calling thread.

use crate::catalog::EntityRef;

use super::{
    ActionRun, AuditEntry, AuditQuery, Draft, EntityPage, EventQuery, EventRecord, Facets,
    FactRecord, FactValue, Filter, ListQuery, Location, NudgeRecord, Origin, PageQuery,
    ProblemRecord, QueryError, RankedFact, RefreshSummary, Rejected, SessionRecord, Stats, Status,
    StatusChange, StoreError, StoredGrants, TokenRecord,
};

/// Reading the catalog: entities by ref or uid, filtered lists and pages
/// (the filter language of `catalog::filter`), facets, owners and people.
/// `generation` moves on with every committed write, so a caller may keep
/// an answer derived from the catalog until it changes.
pub trait Catalog: Send + Sync {
    /// Moves on with every committed write (of any kind).
    fn generation(&self) -> u64;

    /// Counts for `/healthz`: entities, locations, problems, orphans.
    fn stats(&self) -> Result<Stats, StoreError>;

    /// How many entities are stored; counted again only after a write
    /// (a scrape of `/metrics` asks every few seconds).
    fn entity_count(&self) -> Result<i64, StoreError>;

    /// An entity as served (JSON), projected to `fields` when any.
    fn entity_by_ref(&self, r: &EntityRef, fields: &[String])
    -> Result<Option<String>, StoreError>;

    /// An entity by its `metadata.uid`.
    fn entity_by_uid(&self, uid: &str, fields: &[String]) -> Result<Option<String>, StoreError>;

    /// Entities for each ref in order; `None` where a ref matches nothing.
    fn entities_by_refs(
        &self,
        refs: &[Option<EntityRef>],
        fields: &[String],
    ) -> Result<Vec<Option<String>>, StoreError>;

    /// Calls `each` with every entity as served (JSON), in id order, reading
    /// `page` at a time: for walks over the whole catalog (search builds,
    /// facts polls) that write between pages.
    fn each_entity(&self, page: usize, each: &mut dyn FnMut(String)) -> Result<(), StoreError>;

    /// `GET /entities`: filter, order, offset paging, projection.
    fn list(&self, q: &ListQuery) -> Result<Vec<String>, StoreError>;

    /// Calls `each` with every entity the query selects, in order, without
    /// holding more than one in memory.
    fn list_each(
        &self,
        q: &ListQuery,
        each: &mut dyn FnMut(String) -> bool,
    ) -> Result<(), StoreError>;

    /// One page of `by-query`, with cursors to the next and previous page.
    fn page(&self, q: &PageQuery) -> Result<Result<EntityPage, QueryError>, StoreError>;

    /// The id, ref and owner of every entity `filter` selects, by id; the
    /// filter is planned like a list's.
    fn filter_refs(
        &self,
        filter: &Filter,
    ) -> Result<Vec<(i64, String, Option<String>)>, StoreError>;

    /// Every entity's value for a flattened key (`metadata.annotations.x`,
    /// `spec.lifecycle`), as written, by entity id.
    fn values_of_key(&self, key: &str) -> Result<Vec<(i64, String)>, StoreError>;

    /// One entity's flattened keys and values, as written, in key order.
    fn entity_values(&self, id: i64) -> Result<Vec<(String, String)>, StoreError>;

    /// Counts of each value of each facet among the entities `filter`
    /// selects, most frequent first. Answers are cached until the next write.
    fn facets(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError>;

    /// Facet counts computed now, bypassing the cache.
    fn facets_uncached(&self, facets: &[String], filter: &Filter) -> Result<Facets, StoreError>;

    /// Every kind, owner and `spec.type` in the catalog, lower case: the
    /// names of search facets.
    fn facet_values(&self) -> Result<Vec<String>, StoreError>;

    /// Entities whose owner resolves to no Group or User, as refs.
    fn orphans(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Which of `refs` are entities in the catalog.
    fn existing_refs(&self, refs: &[&str]) -> Result<Vec<bool>, StoreError>;

    /// The location an entity came from.
    fn location_of_entity(&self, r: &EntityRef) -> Result<Option<Location>, StoreError>;

    /// The location id and source file an entity came from.
    fn entity_origin(&self, r: &EntityRef) -> Result<Option<(String, String)>, StoreError>;

    /// The User whose `spec.profile.email`, name or
    /// `greenroom.dev/sso-subject` annotation (by `field`) is `value`.
    fn user_by(&self, field: &str, value: &str) -> Result<Option<String>, StoreError>;

    /// Every group a User belongs to, and their parents, transitively;
    /// kept until the catalog next changes.
    fn groups_of(&self, user_ref: &str) -> Result<Vec<String>, StoreError>;
}

/// Registered locations, their ingestion problems, and the one write path
/// of entities: a refresh transaction per location.
pub trait Locations: Send + Sync {
    /// Registers a location. Fails with [`StoreError::LocationExists`] when
    /// the same type and target are already registered.
    fn add_location(
        &self,
        kind: &str,
        target: &str,
        origin: Origin,
    ) -> Result<Location, StoreError>;

    /// Registers a location unless it exists; returns it either way.
    fn ensure_location(
        &self,
        kind: &str,
        target: &str,
        origin: Origin,
    ) -> Result<Location, StoreError> {
        match self.add_location(kind, target, origin) {
            Err(StoreError::LocationExists(_)) => {
                let found = self
                    .locations()?
                    .into_iter()
                    .find(|l| l.kind == kind && l.target == target);
                found.ok_or_else(|| {
                    StoreError::Corrupt(format!("location {kind}:{target} vanished"))
                })
            }
            other => other,
        }
    }

    fn locations(&self) -> Result<Vec<Location>, StoreError>;

    fn location(&self, id: &str) -> Result<Option<Location>, StoreError>;

    /// Deletes a location with every entity and problem it brought.
    fn delete_location(&self, id: &str) -> Result<bool, StoreError>;

    /// Current ingestion problems, of one location or of all.
    fn problems(&self, location_id: Option<&str>) -> Result<Vec<ProblemRecord>, StoreError>;

    /// Begins the single transaction in which a location's refresh is
    /// written. Holds the writer until committed or dropped (rolled back).
    fn begin_refresh(&self, location_id: &str) -> Result<Box<dyn RefreshTx + '_>, StoreError>;
}

/// The entity change feed: every committed write of an entity appends its
/// ref with a rising sequence number; search and the query index follow it.
pub trait ChangeFeed: Send + Sync {
    /// The newest entry of `entity_changes` (0 when empty).
    fn last_entity_change(&self) -> Result<i64, StoreError>;

    /// Entities changed (added, updated or removed) after `seq`, oldest
    /// first, at most `limit`.
    fn entity_changes_after(
        &self,
        seq: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError>;

    /// Drops change entries up to `seq` once they are reflected, and once
    /// the query index has applied them. A store several processes follow
    /// keeps them a while longer, for the others.
    fn forget_entity_changes(&self, seq: i64) -> Result<(), StoreError>;

    /// The newest entry dropped for good: a follower behind it has missed
    /// changes and must read the catalog whole again.
    fn forgotten_through(&self) -> Result<i64, StoreError>;
}

/// Leases on background work: of the processes sharing one store, exactly
/// one refreshes locations and polls plugins at a time, and another takes
/// over when it dies.
pub trait Leases: Send + Sync {
    /// Whether this process holds the lease `name` now, taking it when
    /// nobody does. A holder keeps it until it dies or loses its store.
    fn holds(&self, name: &str) -> Result<bool, StoreError>;
}

/// Facts about entities (from CI pushes and plugins) and their history.
pub trait Facts: Send + Sync {
    /// The type facts named `name` hold, if any is stored.
    fn fact_type(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Every fact name with its type and how many entities have it.
    fn fact_names(&self) -> Result<Vec<(String, String, u64)>, StoreError>;

    /// Writes facts in one transaction. A value that differs from the
    /// stored one (or is new) is also appended to the history; an
    /// unchanged value only moves the time it was last seen.
    fn put_facts(&self, facts: &[FactRecord]) -> Result<usize, StoreError>;

    /// An entity's current facts, by name.
    fn entity_facts(&self, entity_ref: &str) -> Result<Vec<FactRecord>, StoreError>;

    /// The values a fact of an entity took, oldest first (at most `limit`,
    /// the newest ones).
    fn fact_history(
        &self,
        entity_ref: &str,
        name: &str,
        limit: usize,
    ) -> Result<Vec<(i64, FactValue, String)>, StoreError>;

    /// Every entity's current value of a fact, by entity ref.
    fn facts_named(&self, name: &str) -> Result<Vec<(String, FactValue)>, StoreError>;

    /// Every change of a fact, by entity ref then time.
    fn fact_changes(&self, name: &str) -> Result<Vec<(String, i64, FactValue)>, StoreError>;

    /// A number that grows with every change written to the fact
    /// history (0 when there is none): whether facts moved since.
    fn fact_history_head(&self) -> Result<i64, StoreError>;

    /// The `limit` entities with the lowest (or highest) number for a fact,
    /// optionally of one kind, walking the `(name, number)` index.
    fn top_facts(
        &self,
        name: &str,
        ascending: bool,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<RankedFact>, StoreError>;
}

/// Campaigns saved through the API (campaigns written as entities live in
/// the catalog).
pub trait CampaignSpecs: Send + Sync {
    /// Campaigns defined through the API, as (name, JSON body).
    fn api_campaigns(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Creates or replaces an API campaign.
    fn put_campaign(&self, name: &str, body: &str, by: &str) -> Result<(), StoreError>;

    fn delete_campaign(&self, name: &str) -> Result<bool, StoreError>;
}

/// What each target of a campaign (a *subject*) was, and since when:
/// changes only, so a target that stays done costs one row.
pub trait StatusHistory: Send + Sync {
    /// Each target's latest status, in entity-ref order.
    fn latest_statuses(&self, subject: &str) -> Result<Vec<(String, Status)>, StoreError>;

    /// Records `changes`, all at `at_ms` (a target recorded twice at the
    /// same time keeps the last).
    fn record_statuses(
        &self,
        subject: &str,
        at_ms: i64,
        changes: &[(String, Status)],
    ) -> Result<(), StoreError>;

    /// Every recorded change of a subject, oldest first.
    fn status_changes(&self, subject: &str) -> Result<Vec<StatusChange>, StoreError>;

    /// The subjects with any history.
    fn status_subjects(&self) -> Result<Vec<String>, StoreError>;

    /// Forgets what happened before `before_ms`, keeping what each target
    /// was then (its last change before it), and targets gone by then
    /// altogether; answers how many rows went.
    fn prune_statuses(&self, before_ms: i64) -> Result<usize, StoreError>;

    /// Forgets a subject's history (its campaign is gone).
    fn forget_statuses(&self, subject: &str) -> Result<(), StoreError>;
}

/// Nudges: every message sent to a team about a campaign or scorecard
/// (or not sent, and why), and the teams that asked for quiet.
pub trait NudgeLog: Send + Sync {
    fn record_nudge(&self, nudge: &NudgeRecord) -> Result<(), StoreError>;

    /// A subject's nudges, newest first, at most `limit`.
    fn nudges(&self, subject: &str, limit: usize) -> Result<Vec<NudgeRecord>, StoreError>;

    /// Per team, when it was last told about `subject` (sent, or found to
    /// have no channel), by team.
    fn last_nudged(&self, subject: &str) -> Result<Vec<(String, i64)>, StoreError>;

    /// Keeps `subject`'s nudges from `team` until `until_ms` (0 lifts it).
    fn snooze(&self, subject: &str, team: &str, until_ms: i64, by: &str) -> Result<(), StoreError>;

    /// A subject's snoozes: (team, until, by), by team.
    fn snoozes(&self, subject: &str) -> Result<Vec<(String, i64, String)>, StoreError>;
}

/// The activity feed: deploys, incidents and the like from plugins.
pub trait Events: Send + Sync {
    /// Stores events not seen before; returns how many were new.
    fn put_events(&self, events: &[EventRecord]) -> Result<usize, StoreError>;

    fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;
}

/// The record of plugin actions run from the portal: who, what, on what,
/// and how it ended.
pub trait ActionRuns: Send + Sync {
    /// Records that a run starts; returns it with its id.
    fn action_started(
        &self,
        plugin: &str,
        action: &str,
        label: &str,
        entity_ref: &str,
        user: &str,
        input: &str,
    ) -> Result<ActionRun, StoreError>;

    /// Records how a run ended.
    fn action_finished(
        &self,
        run: &mut ActionRun,
        succeeded: bool,
        message: &str,
    ) -> Result<(), StoreError>;

    /// The latest runs, newest first, of one entity or of all.
    fn action_runs(
        &self,
        entity_ref: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ActionRun>, StoreError>;
}

/// What plugins keep: their key/value state (with quotas and expiry) and
/// the grants given to them from the portal.
pub trait PluginState: Send + Sync {
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores a value unless the plugin's keys and values would exceed
    /// `quota` bytes; returns `Ok(false)` when over quota.
    fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u32>,
        quota: u64,
    ) -> Result<bool, StoreError>;

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError>;

    fn grants(&self, plugin: &str) -> Result<Option<StoredGrants>, StoreError>;

    fn set_grants(&self, plugin: &str, grants: &StoredGrants) -> Result<(), StoreError>;
}

/// Sign-in state: API tokens and browser sessions (each stored by the hash
/// of its secret) and the audit log.
pub trait Access: Send + Sync {
    /// Stores a token by the hash of its secret.
    fn token_create(&self, token: &TokenRecord, hash: &[u8]) -> Result<(), StoreError>;

    fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>, StoreError>;

    /// Every token (or one person's personal tokens), newest first.
    fn tokens(&self, person: Option<&str>) -> Result<Vec<TokenRecord>, StoreError>;

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Revokes a token; false when there is no such live token.
    fn token_revoke(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores a new session by the hash of its cookie's secret.
    fn session_create(&self, s: &SessionRecord, hash: &[u8]) -> Result<(), StoreError>;

    /// The session of a cookie's hash. A backend may answer from a copy
    /// read within the last `SESSION_CACHE_MS` (5 s); ending a session
    /// through the same store drops the copy at once, and one ended by
    /// another replica is seen within that time.
    fn session_by_hash(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;

    fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Notes that a session was used (callers do it at most once a minute).
    fn session_seen(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Ends a session (sign-out, revocation); false when it had ended.
    fn session_end(&self, id: &str) -> Result<bool, StoreError>;

    /// Sessions not ended nor past their absolute end, newest first;
    /// one person's when `user_ref` is given.
    fn sessions(&self, now: i64, user_ref: Option<&str>) -> Result<Vec<SessionRecord>, StoreError>;

    /// Sessions not ended nor past their absolute end.
    fn session_count(&self, now: i64) -> Result<i64, StoreError>;

    /// Appends a line to the audit trail.
    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Audit lines, oldest first after `since_ms`.
    fn audit_lines(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
}

/// A refresh in progress: entities are written as they are read, so memory
/// stays bounded by one file, and everything commits or nothing does.
/// Dropped uncommitted, it rolls back.
pub trait RefreshTx {
    fn location_id(&self) -> &str;

    /// The refs of the entities the next puts write: a backend may look
    /// them up, and write them, together rather than one by one.
    fn prefetch(&mut self, _refs: &[String]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes a valid entity read from `source` (unless unchanged).
    fn put(&mut self, draft: Draft, source: &str) -> Result<Result<(), Rejected>, StoreError>;

    /// Keeps the stored version of an entity that is now invalid, with the
    /// errors attached as its status. Returns whether there was one to keep.
    fn keep_invalid(
        &mut self,
        entity_ref: &EntityRef,
        errors: &[String],
    ) -> Result<bool, StoreError>;

    /// Keeps, as they are, the `count` entities stored from `source`, a
    /// file that has not changed since they were written from it. False,
    /// with nothing kept, when the store does not hold exactly that many
    /// from it, all without errors and none already seen in this refresh:
    /// the caller then reads the file as usual.
    fn keep_unchanged(&mut self, source: &str, count: usize) -> Result<bool, StoreError>;

    /// Keeps every stored entity that came from `source` (a file or URL
    /// that could not be read or parsed this time).
    fn keep_source(&mut self, source: &str);

    fn problem(&mut self, problem: ProblemRecord);

    /// Ends this location's part as `commit` would (removes what it no
    /// longer produced, records its problems) and begins `location_id`'s
    /// in the same transaction: locations registered together commit once,
    /// and a commit rewrites every index page it touched into the log, so
    /// 200 registrations committed one by one cost twice their work.
    fn next_location(&mut self, location_id: &str) -> Result<RefreshSummary, StoreError>;

    /// Removes what this refresh no longer produced, records problems and
    /// commits.
    fn commit(self: Box<Self>) -> Result<RefreshSummary, StoreError>;
}
