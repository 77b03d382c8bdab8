//! The store conformance suite: what every storage backend must do, read
//! and written only through the boundary the host uses (`Store`, one trait
//! object per capability). Each check takes a fresh, empty store;
//! `conformance!` makes one test per check for a backend.

use std::collections::BTreeSet;

use greenroom::catalog::{EntityRef, Kinds};
use greenroom::store::{
    AuditEntry, AuditQuery, Draft, EventQuery, EventRecord, FactRecord, FactValue, Filter,
    FullText, ListQuery, NudgeRecord, Order, Origin, PageQuery, ProblemRecord, Rejected,
    SessionRecord, Status, StatusChange, Store, StoreError, StoredGrants, TokenRecord, now_ms,
};
use serde_json::{Value, json};

/// One test per check of the suite, each on a fresh store from `$open`
/// (an expression answering `(guard, Store)`; the guard lives as long as
/// the test). Every backend runs every check.
macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        conformance!(
            @each $backend,
            $open,
            [
                locations_are_unique_and_deleting_one_removes_its_entities,
                a_refresh_commits_whole_and_replaces_what_it_no_longer_produced,
                entities_worked_out_ahead_are_stored_as_the_writer_would,
                an_uncommitted_refresh_changes_nothing,
                the_first_location_to_claim_an_entity_keeps_it,
                locations_refreshed_in_one_transaction_keep_their_own_rules,
                invalid_and_unreadable_sources_keep_the_last_good_version,
                filtered_pages_have_totals_cursors_and_full_text,
                lists_orders_facets_and_lookups,
                broad_lists_in_id_order_are_the_same_however_planned,
                people_resolve_to_users_and_their_groups,
                the_change_feed_follows_every_committed_write,
                facts_keep_the_newest_value_and_a_history_of_changes,
                campaigns_saved_through_the_api,
                status_history_keeps_changes_and_prunes_to_the_horizon,
                nudges_are_logged_and_teams_snooze,
                events_are_kept_once_and_read_newest_first,
                action_runs_are_recorded_from_start_to_end,
                plugin_state_has_quotas_expiry_and_grants,
                tokens_sessions_and_the_audit_trail,
            ]
        );
    };
    (@each $backend:ident, $open:expr, [$($check:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $check() {
                    use greenroom::store::Store;
                    let (_guard, store) = $open;
                    super::$check(&store);
                }
            )*
        }
    };
}

conformance!(sqlite, {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("greenroom.db")).unwrap();
    (dir, store)
});

// On a fresh database of a real server.
conformance!(postgres, {
    let server = crate::support::pg_server();
    let pg = std::sync::Arc::new(greenroom::store::Postgres::open(&server.database()).unwrap());
    (server, Store::over(pg))
});

/// Replicas starting together migrate once; a schema from a newer
/// greenroom is refused, naming both versions; the audit trail cannot be
/// changed, even by hand.
#[test]
fn postgres_migrates_once_and_refuses_a_newer_schema() {
    use greenroom::store::Postgres;
    let server = crate::support::pg_server();
    let url = server.database();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Postgres::open(&url).map(drop));
        let b = s.spawn(|| Postgres::open(&url).map(drop));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.unwrap();
    b.unwrap();
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM greenroom_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!versions.is_empty());
    assert_eq!(versions, (1..=versions.len() as i32).collect::<Vec<_>>());

    client
        .batch_execute(
            "INSERT INTO audit (at_ms, actor, action, target, address, outcome, status)
             VALUES (1, 'a', 'b', 'c', 'd', 'allowed', 200)",
        )
        .unwrap();
    let changed = client
        .batch_execute("UPDATE audit SET actor = 'someone else'")
        .unwrap_err();
    assert!(
        format!("{changed:?}").contains("the audit trail is append-only"),
        "{changed:?}"
    );
    assert!(client.batch_execute("DELETE FROM audit").is_err());

    client
        .batch_execute("INSERT INTO greenroom_schema (version) VALUES (999)")
        .unwrap();
    match Postgres::open(&url) {
        Err(e) => assert!(
            e.to_string()
                .contains("version 999, newer than this greenroom"),
            "{e}"
        ),
        Ok(_) => panic!("opened a schema from the future"),
    }
}

/// `greenroom migrate`: a SQLite store with something in every table
/// (left by the conformance checks), copied into PostgreSQL, reads the
/// same through every capability, signed cursors included; the copy goes
/// on taking writes; a database that already holds a portal is refused.
#[test]
fn a_sqlite_store_migrates_to_postgresql_whole() {
    use greenroom::store::migrate::sqlite_to_postgres;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greenroom.db");
    let sqlite = Store::open(&path).unwrap();
    facts_keep_the_newest_value_and_a_history_of_changes(&sqlite);
    events_are_kept_once_and_read_newest_first(&sqlite);
    refresh(
        &sqlite,
        "people.yaml",
        vec![
            group("team-z", None, &["jane"]),
            user("jane", "jane@example.com"),
        ],
    );
    let broken = sqlite
        .locations
        .ensure_location("file", "broken.yaml", Origin::Api)
        .unwrap();
    let mut tx = sqlite.locations.begin_refresh(&broken.id).unwrap();
    tx.problem(ProblemRecord {
        location_id: broken.id.clone(),
        source: "file:broken.yaml".into(),
        line: Some(3),
        column: Some(7),
        entity_ref: None,
        field: Some("spec.owner".into()),
        message: "spec.owner is required".into(),
    });
    tx.commit().unwrap();
    campaigns_saved_through_the_api(&sqlite);
    nudges_are_logged_and_teams_snooze(&sqlite);
    sqlite
        .statuses
        .record_statuses(
            "campaign:py3",
            100,
            &[("component:default/a".into(), Status::Done)],
        )
        .unwrap();
    action_runs_are_recorded_from_start_to_end(&sqlite);
    plugin_state_has_quotas_expiry_and_grants(&sqlite);
    tokens_sessions_and_the_audit_trail(&sqlite);

    let server = crate::support::pg_server();
    let url = server.database();
    let report = sqlite_to_postgres(&path, &url).unwrap();
    assert!(report.iter().all(|c| c.source == c.target), "{report:?}");
    let rows = |table: &str| report.iter().find(|c| c.table == table).unwrap().target;
    for table in [
        "locations",
        "entities",
        "search",
        "relations",
        "problems",
        "plugin_kv",
        "plugin_grants",
        "action_runs",
        "facts",
        "fact_history",
        "events",
        "campaigns",
        "status_history",
        "nudge_log",
        "nudge_snoozes",
        "api_tokens",
        "sessions",
        "audit",
    ] {
        assert!(
            rows(table) > 0,
            "{table} was empty in the source: {report:?}"
        );
    }
    let pg = Store::over(std::sync::Arc::new(
        greenroom::store::Postgres::open(&url).unwrap(),
    ));

    // The same answers through every capability.
    let same = |what: &str, a: String, b: String| assert_eq!(a, b, "{what} differs");
    let everything = ListQuery::default();
    same(
        "entities",
        format!("{:?}", sqlite.catalog.list(&everything).unwrap()),
        format!("{:?}", pg.catalog.list(&everything).unwrap()),
    );
    let first = PageQuery {
        filter: filter(&["kind=component"]),
        limit: 3,
        ..PageQuery::default()
    };
    let page = sqlite.catalog.page(&first).unwrap().unwrap();
    let next = PageQuery {
        cursor: page.next_cursor.clone(),
        limit: 3,
        ..PageQuery::default()
    };
    same(
        "a page after a cursor made before the copy",
        format!("{:?}", sqlite.catalog.page(&next).unwrap().unwrap().items),
        format!("{:?}", pg.catalog.page(&next).unwrap().unwrap().items),
    );
    same(
        "locations",
        serde_json::to_string(&sqlite.locations.locations().unwrap()).unwrap(),
        serde_json::to_string(&pg.locations.locations().unwrap()).unwrap(),
    );
    same(
        "problems",
        format!("{:?}", sqlite.locations.problems(None).unwrap()),
        format!("{:?}", pg.locations.problems(None).unwrap()),
    );
    assert_eq!(
        pg.catalog.groups_of("user:default/jane").unwrap(),
        ["group:default/team-z"]
    );
    same(
        "groups",
        format!(
            "{:?}",
            sqlite.catalog.groups_of("user:default/jane").unwrap()
        ),
        format!("{:?}", pg.catalog.groups_of("user:default/jane").unwrap()),
    );
    for store in [&sqlite, &pg] {
        assert!(!store.facts.fact_names().unwrap().is_empty());
    }
    same(
        "facts",
        format!(
            "{:?}",
            sqlite
                .facts
                .entity_facts("component:default/svc-0")
                .unwrap()
        ),
        format!(
            "{:?}",
            pg.facts.entity_facts("component:default/svc-0").unwrap()
        ),
    );
    same(
        "fact history",
        format!("{:?}", sqlite.facts.fact_changes("coverage.lines").unwrap()),
        format!("{:?}", pg.facts.fact_changes("coverage.lines").unwrap()),
    );
    let events = EventQuery {
        since_ms: 0,
        limit: 100,
        ..EventQuery::default()
    };
    same(
        "events",
        format!("{:?}", sqlite.events.events(&events).unwrap()),
        format!("{:?}", pg.events.events(&events).unwrap()),
    );
    same(
        "campaigns",
        format!("{:?}", sqlite.campaigns.api_campaigns().unwrap()),
        format!("{:?}", pg.campaigns.api_campaigns().unwrap()),
    );
    same(
        "status history",
        format!(
            "{:?}",
            sqlite.statuses.status_changes("campaign:py3").unwrap()
        ),
        format!("{:?}", pg.statuses.status_changes("campaign:py3").unwrap()),
    );
    same(
        "nudges",
        format!("{:?}", sqlite.nudges.nudges("campaign:py3", 10).unwrap()),
        format!("{:?}", pg.nudges.nudges("campaign:py3", 10).unwrap()),
    );
    same(
        "action runs",
        format!("{:?}", sqlite.actions.action_runs(None, 100).unwrap()),
        format!("{:?}", pg.actions.action_runs(None, 100).unwrap()),
    );
    same(
        "kv",
        format!("{:?}", sqlite.plugin_state.kv_get("p", "k").unwrap()),
        format!("{:?}", pg.plugin_state.kv_get("p", "k").unwrap()),
    );
    same(
        "tokens",
        format!("{:?}", sqlite.access.tokens(None).unwrap()),
        format!("{:?}", pg.access.tokens(None).unwrap()),
    );
    same(
        "sessions",
        format!("{:?}", sqlite.access.session_by_hash(b"cookie-1").unwrap()),
        format!("{:?}", pg.access.session_by_hash(b"cookie-1").unwrap()),
    );
    let audit = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    let before = pg.access.audit_lines(&audit).unwrap();
    same(
        "audit",
        format!("{:?}", sqlite.access.audit_lines(&audit).unwrap()),
        format!("{before:?}"),
    );

    // The copy takes writes: its sequences start past what came across.
    let newest = pg.actions.action_runs(None, 100).unwrap()[0].id;
    let run = pg
        .actions
        .action_started(
            "github",
            "rerun",
            "Re-run",
            "component:default/svc-1",
            "user:default/jane",
            "{}",
        )
        .unwrap();
    assert!(run.id > newest, "{} after {newest}", run.id);
    pg.access
        .audit(&AuditEntry {
            seq: 0,
            at_ms: now_ms(),
            actor: "user:default/jane".into(),
            action: "POST /api/x".into(),
            target: "/api/x".into(),
            address: "127.0.0.1".into(),
            outcome: "allowed".into(),
            status: 200,
        })
        .unwrap();
    let after = pg.access.audit_lines(&audit).unwrap();
    assert!(after.last().unwrap().seq > before.last().unwrap().seq);
    refresh(
        &pg,
        "new.yaml",
        vec![component("fresh", "service", "team-a", "Fresh")],
    );
    assert!(has(&pg, &component_ref("fresh")));

    // Into a database that already holds a portal: refused, nothing added.
    let again = sqlite_to_postgres(&path, &url).unwrap_err().to_string();
    assert!(again.contains("already holds a portal's data"), "{again}");
    assert_eq!(pg.access.audit_lines(&audit).unwrap().len(), after.len());
}

/// PostgreSQL keeps change-feed entries for other processes' followers
/// after one applied them, drops them once they are old, and then says
/// how far it dropped, so a follower behind that knows to start over.
#[test]
fn postgres_keeps_the_feed_for_other_followers_then_says_what_it_dropped() {
    let server = crate::support::pg_server();
    let url = server.database();
    let store = Store::over(std::sync::Arc::new(
        greenroom::store::Postgres::open(&url).unwrap(),
    ));
    refresh(
        &store,
        "a.yaml",
        vec![component("a", "service", "team-a", "A")],
    );
    let last = store.changes.last_entity_change().unwrap();
    store.changes.forget_entity_changes(last).unwrap();
    assert_eq!(store.changes.forgotten_through().unwrap(), 0);
    assert_eq!(store.changes.entity_changes_after(0, 10).unwrap().len(), 1);
    // Ten minutes on, as far as the feed can tell.
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE entity_changes SET at_ms = 0")
        .unwrap();
    store.changes.forget_entity_changes(last).unwrap();
    assert_eq!(store.changes.forgotten_through().unwrap(), last);
    assert!(
        store
            .changes
            .entity_changes_after(0, 10)
            .unwrap()
            .is_empty()
    );
}

/// A refresh of many entities on PostgreSQL vacuums the catalog's tables
/// at once, and every page of `entities` and `search` ends all-visible, so
/// index-only scans (a kind's list, facets) need not read the table. Two
/// faults left them unmarked, and autovacuum, seeing nothing new since,
/// did not come back: on a server with `synchronous_commit = off` (as the
/// tests' and the benchmarks' are) the vacuum ran before the refresh's
/// commit reached the disk (0 of 14,623 pages of `entities` at 100,000
/// entities), and analyzing `entities` between the tables' vacuums left
/// the table vacuumed after it unmarked (0 of 18,494 of `search`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_refresh_on_postgres_leaves_the_catalog_vacuumed() {
    let server = crate::support::pg_server();
    let url = server.database();
    let dir = tempfile::tempdir().unwrap();
    for f in 0..24 {
        let text: Vec<String> = (0..500)
            .map(|i| crate::support::component(&format!("svc-{f}-{i}"), "team-a"))
            .collect();
        crate::support::write_files(
            dir.path(),
            &[(&format!("org/part-{f:02}.yaml"), &text.join("---\n"))],
        );
    }
    let _portal = crate::support::Portal::start_in(
        dir,
        &format!(
            "database = \"{url}\"\n[[catalog.locations]]\ntype = \"file\"\ntarget = \"org/part-*.yaml\"\n"
        ),
    )
    .await;
    let tables = tokio::task::spawn_blocking(move || {
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        // The vacuum runs in the background after the commit; `relations`
        // is analyzed last.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let done: bool = client
                .query_one(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'relations'",
                    &[],
                )
                .unwrap()
                .get(0);
            if done {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the catalog was not vacuumed within 60 s of a 12,000-entity refresh"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        client
            .query(
                "SELECT relname::text, relpages, relallvisible FROM pg_class
                 WHERE relname IN ('entities', 'search') ORDER BY relname",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1), r.get::<_, i32>(2)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(tables.len(), 2);
    for (table, pages, visible) in tables {
        assert!(pages > 100, "{pages} pages of {table} for 12,000 entities");
        assert!(
            visible * 100 >= pages * 95,
            "{visible} of {pages} pages of {table} all-visible after the vacuum"
        );
    }
}

fn entity(value: Value) -> Draft {
    let valid = Kinds::default()
        .validate(value)
        .unwrap_or_else(|e| panic!("{e:?}"));
    Draft::of(valid).unwrap()
}

fn group(name: &str, parent: Option<&str>, members: &[&str]) -> Draft {
    let mut spec = json!({"type": "team", "children": [], "members": members});
    if let Some(p) = parent {
        spec["parent"] = json!(p);
    }
    entity(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
        "metadata": {"name": name}, "spec": spec}),
    )
}

fn user(name: &str, email: &str) -> Draft {
    entity(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": name}, "spec": {"profile": {"email": email}, "memberOf": []}}),
    )
}

fn component(name: &str, kind: &str, owner: &str, title: &str) -> Draft {
    entity(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "title": title},
        "spec": {"type": kind, "lifecycle": "production", "owner": owner}}),
    )
}

fn component_ref(name: &str) -> EntityRef {
    EntityRef::new("component", "default", name)
}

fn has(store: &Store, r: &EntityRef) -> bool {
    store.catalog.entity_by_ref(r, &[]).unwrap().is_some()
}

/// Registers a location and writes `entities` into it in one refresh.
fn refresh(store: &Store, target: &str, entities: Vec<Draft>) -> String {
    let id = store
        .locations
        .ensure_location("file", target, Origin::Config)
        .unwrap()
        .id;
    let mut tx = store.locations.begin_refresh(&id).unwrap();
    // As ingest does: a backend may write looked-up entities in batches.
    let refs: Vec<String> = entities.iter().map(|e| e.key().to_string()).collect();
    tx.prefetch(&refs).unwrap();
    for e in entities {
        tx.put(e, &format!("file:{target}")).unwrap().unwrap();
    }
    tx.commit().unwrap();
    id
}

fn names(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|json| {
            let v: Value = serde_json::from_str(json).unwrap();
            v["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect()
}

fn filter(params: &[&str]) -> Filter {
    Filter::parse(params.iter().copied()).unwrap()
}

pub fn locations_are_unique_and_deleting_one_removes_its_entities(store: &Store) {
    let loc = store
        .locations
        .add_location("url", "https://x.example/a.yaml", Origin::Api)
        .unwrap();
    assert_eq!(
        store.locations.location(&loc.id).unwrap().unwrap().target,
        "https://x.example/a.yaml"
    );
    assert!(matches!(
        store
            .locations
            .add_location("url", "https://x.example/a.yaml", Origin::Api),
        Err(StoreError::LocationExists(_))
    ));
    let again = store
        .locations
        .ensure_location("url", "https://x.example/a.yaml", Origin::Api)
        .unwrap();
    assert_eq!(again.id, loc.id);
    assert_eq!(store.locations.locations().unwrap().len(), 1);

    let mut tx = store.locations.begin_refresh(&loc.id).unwrap();
    tx.put(component("a", "service", "team-a", "A"), "url:a.yaml")
        .unwrap()
        .unwrap();
    tx.commit().unwrap();
    let generation = store.catalog.generation();
    assert!(store.locations.delete_location(&loc.id).unwrap());
    assert!(store.catalog.generation() > generation);
    assert!(!has(store, &component_ref("a")));
    assert!(store.locations.location(&loc.id).unwrap().is_none());
    assert!(!store.locations.delete_location(&loc.id).unwrap());
}

/// A group's reader works out each entity's stored form before the
/// writer meets it (`Draft::work_out`, with a fresh uid); the writer works
/// out the others. Both give the same entity, and a changed entity keeps
/// its uid either way.
pub fn entities_worked_out_ahead_are_stored_as_the_writer_would(store: &Store) {
    let ahead = |name: &str, title: &str| {
        let mut d = component(name, "service", "team-a", title);
        d.work_out().unwrap();
        d
    };
    let stored = |name: &str| -> Value {
        let json = store
            .catalog
            .entity_by_ref(&component_ref(name), &[])
            .unwrap()
            .unwrap();
        serde_json::from_str(&json).unwrap()
    };
    refresh(
        store,
        "a.yaml",
        vec![
            component("late", "service", "team-a", "Late Title"),
            ahead("early", "Late Title"),
        ],
    );
    let (late, early) = (stored("late"), stored("early"));
    let uid = |v: &Value| v["metadata"]["uid"].as_str().unwrap().to_string();
    assert_ne!(uid(&late), uid(&early));
    // The same entity but for its name and uid.
    let mut same = early.clone();
    same["metadata"]["name"] = json!("late");
    same["metadata"]["uid"] = late["metadata"]["uid"].clone();
    same["metadata"]["etag"] = late["metadata"]["etag"].clone();
    assert_eq!(same, late);
    let by_title = |title: &str| {
        let query = ListQuery {
            filter: filter(&[&format!("metadata.title={title}")]),
            ..Default::default()
        };
        let mut found = names(&store.catalog.list(&query).unwrap());
        found.sort();
        found
    };
    assert_eq!(by_title("late title"), ["early", "late"]);

    // Changed, and worked out ahead under a fresh uid: stored under its own.
    let before = (uid(&late), uid(&early));
    refresh(
        store,
        "a.yaml",
        vec![ahead("late", "New Title"), ahead("early", "Late Title")],
    );
    let (late, early) = (stored("late"), stored("early"));
    assert_eq!((uid(&late), uid(&early)), before);
    assert_eq!(late["metadata"]["title"], "New Title");
    assert_eq!(
        store
            .catalog
            .entity_by_uid(&before.0, &[])
            .unwrap()
            .map(|j| names(&[j])),
        Some(vec!["late".to_string()])
    );
    assert_eq!(by_title("late title"), ["early"]);
    assert_eq!(by_title("new title"), ["late"]);
}

pub fn a_refresh_commits_whole_and_replaces_what_it_no_longer_produced(store: &Store) {
    let loc = store
        .locations
        .ensure_location("file", "a.yaml", Origin::Config)
        .unwrap();
    let before = store.catalog.generation();
    let mut tx = store.locations.begin_refresh(&loc.id).unwrap();
    assert_eq!(tx.location_id(), loc.id);
    for name in ["a", "b"] {
        tx.put(component(name, "service", "team-a", name), "file:a.yaml")
            .unwrap()
            .unwrap();
    }
    let summary = tx.commit().unwrap();
    assert_eq!((summary.added, summary.removed), (2, 0));
    assert!(store.catalog.generation() > before);
    assert_eq!(store.catalog.entity_count().unwrap(), 2);

    let mut tx = store.locations.begin_refresh(&loc.id).unwrap();
    tx.put(component("a", "service", "team-a", "a"), "file:a.yaml")
        .unwrap()
        .unwrap();
    tx.put(
        component("c", "website", "team-a", "a changed title"),
        "file:a.yaml",
    )
    .unwrap()
    .unwrap();
    let summary = tx.commit().unwrap();
    assert_eq!(
        (
            summary.added,
            summary.unchanged,
            summary.removed,
            summary.updated
        ),
        (1, 1, 1, 0)
    );
    assert!(has(store, &component_ref("a")) && has(store, &component_ref("c")));
    assert!(!has(store, &component_ref("b")));

    // A changed entity: its body, search rows and relations follow.
    let mut tx = store.locations.begin_refresh(&loc.id).unwrap();
    for (name, ty, owner) in [("a", "library", "team-b"), ("c", "website", "team-a")] {
        let title = if name == "c" { "a changed title" } else { "a" };
        tx.put(component(name, ty, owner, title), "file:a.yaml")
            .unwrap()
            .unwrap();
    }
    let summary = tx.commit().unwrap();
    assert_eq!((summary.updated, summary.unchanged), (1, 1), "{summary:?}");
    let listed = |params: &[&str]| {
        names(
            &store
                .catalog
                .list(&ListQuery {
                    filter: filter(params),
                    ..ListQuery::default()
                })
                .unwrap(),
        )
    };
    assert_eq!(listed(&["spec.type=library"]), ["a"]);
    assert!(listed(&["spec.type=service"]).is_empty());
    assert_eq!(listed(&["relations.ownedBy=group:default/team-b"]), ["a"]);
    assert_eq!(listed(&["relations.ownedBy=group:default/team-a"]), ["c"]);

    // The same entity twice in one refresh: the second is refused.
    let mut tx = store.locations.begin_refresh(&loc.id).unwrap();
    tx.put(component("a", "service", "team-a", "a"), "file:a.yaml")
        .unwrap()
        .unwrap();
    let twice = tx
        .put(component("a", "service", "team-b", "a"), "file:b.yaml")
        .unwrap();
    assert!(
        matches!(twice, Err(Rejected::Duplicate { ref first_source }) if first_source == "file:a.yaml"),
        "{twice:?}"
    );
}

pub fn an_uncommitted_refresh_changes_nothing(store: &Store) {
    refresh(
        store,
        "a.yaml",
        vec![component("a", "service", "team-a", "A")],
    );
    let generation = store.catalog.generation();
    let id = store.locations.locations().unwrap()[0].id.clone();
    let mut tx = store.locations.begin_refresh(&id).unwrap();
    tx.put(component("b", "service", "team-a", "B"), "file:a.yaml")
        .unwrap()
        .unwrap();
    drop(tx);
    assert!(has(store, &component_ref("a")));
    assert!(!has(store, &component_ref("b")));
    assert_eq!(store.catalog.generation(), generation);
    // The store takes the next refresh after one was abandoned.
    refresh(
        store,
        "a.yaml",
        vec![component("b", "service", "team-a", "B")],
    );
    assert!(has(store, &component_ref("b")) && !has(store, &component_ref("a")));
}

/// `next_location`: several locations in one transaction, each with its
/// own removals and problems, the first claim winning across them.
pub fn locations_refreshed_in_one_transaction_keep_their_own_rules(store: &Store) {
    let [a, b, c] = ["a.yaml", "b.yaml", "c.yaml"].map(|f| {
        store
            .locations
            .ensure_location("file", f, Origin::Config)
            .unwrap()
    });
    let problem = |location: &str, message: &str| ProblemRecord {
        location_id: location.to_string(),
        source: "file:x".into(),
        line: None,
        column: None,
        entity_ref: None,
        field: None,
        message: message.into(),
    };
    // Both rounds look the refs up first or not, as the ingest does.
    for prefetch in [true, false] {
        let mut tx = store.locations.begin_refresh(&a.id).unwrap();
        let refs = ["x", "y", "z"].map(|n| component_ref(n).to_string());
        if prefetch {
            tx.prefetch(&refs).unwrap();
        }
        tx.put(component("x", "service", "team-a", "X"), "file:a.yaml")
            .unwrap()
            .unwrap();
        tx.problem(problem(&a.id, "a's problem"));
        let first = tx.next_location(&b.id).unwrap();
        assert_eq!(tx.location_id(), b.id);
        if prefetch {
            tx.prefetch(&refs).unwrap();
        }
        // Claimed by `a` earlier in this very transaction.
        let refused = tx
            .put(component("x", "service", "team-b", "X"), "file:b.yaml")
            .unwrap();
        assert!(
            matches!(refused, Err(Rejected::ClaimedElsewhere { ref location }) if location == "file:a.yaml"),
            "{refused:?}"
        );
        tx.put(component("y", "service", "team-b", "Y"), "file:b.yaml")
            .unwrap()
            .unwrap();
        let second = tx.next_location(&c.id).unwrap();
        let third = tx.commit().unwrap();
        if prefetch {
            assert_eq!((first.added, first.problems), (1, 1), "{first:?}");
            assert_eq!((second.added, second.problems), (1, 0), "{second:?}");
            assert_eq!((third.added, third.removed), (0, 0), "{third:?}");
        } else {
            // The second round: nothing new, and each location's
            // problems replaced by its own.
            assert_eq!((first.unchanged, first.problems), (1, 1), "{first:?}");
            assert_eq!((second.unchanged, second.removed), (1, 0), "{second:?}");
        }
        for (name, location) in [("x", &a.id), ("y", &b.id)] {
            let (stored, _) = store
                .catalog
                .entity_origin(&component_ref(name))
                .unwrap()
                .unwrap();
            assert_eq!(&stored, location, "{name}");
        }
        let problems = store.locations.problems(Some(&a.id)).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(store.locations.problems(Some(&b.id)).unwrap().is_empty());
    }
    // A location that no longer produces its entity loses it; the one
    // after it in the same transaction takes it over.
    let mut tx = store.locations.begin_refresh(&b.id).unwrap();
    let gone = tx.next_location(&c.id).unwrap();
    tx.put(component("y", "library", "team-c", "Y"), "file:c.yaml")
        .unwrap()
        .unwrap();
    let took = tx.commit().unwrap();
    assert_eq!(gone.removed, 1, "{gone:?}");
    assert_eq!(took.added, 1, "{took:?}");
    let (stored, _) = store
        .catalog
        .entity_origin(&component_ref("y"))
        .unwrap()
        .unwrap();
    assert_eq!(stored, c.id);
    assert_eq!(store.catalog.entity_count().unwrap(), 2);
}

pub fn the_first_location_to_claim_an_entity_keeps_it(store: &Store) {
    let first = refresh(
        store,
        "first.yaml",
        vec![component("a", "service", "team-a", "A")],
    );
    let second = store
        .locations
        .ensure_location("file", "second.yaml", Origin::Config)
        .unwrap();
    // Looked up first or not, a claimed ref is refused and a free one kept.
    for prefetch in [true, false] {
        let mut tx = store.locations.begin_refresh(&second.id).unwrap();
        if prefetch {
            let refs = ["a", "b"].map(|n| component_ref(n).to_string());
            tx.prefetch(&refs).unwrap();
        }
        let refused = tx
            .put(component("a", "service", "team-b", "A"), "file:second.yaml")
            .unwrap();
        assert!(
            matches!(refused, Err(Rejected::ClaimedElsewhere { ref location }) if location == "file:first.yaml"),
            "{refused:?}"
        );
        for name in ["b", "c"] {
            tx.put(
                component(name, "service", "team-b", "B"),
                "file:second.yaml",
            )
            .unwrap()
            .unwrap();
        }
        let summary = tx.commit().unwrap();
        assert_eq!(summary.added, if prefetch { 2 } else { 0 }, "{summary:?}");
        for name in ["b", "c"] {
            let (location, _) = store
                .catalog
                .entity_origin(&component_ref(name))
                .unwrap()
                .unwrap();
            assert_eq!(location, second.id);
        }
    }
    let (location, source) = store
        .catalog
        .entity_origin(&component_ref("a"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (location.as_str(), source.as_str()),
        (first.as_str(), "file:first.yaml")
    );
    assert_eq!(
        store
            .catalog
            .location_of_entity(&component_ref("a"))
            .unwrap()
            .unwrap()
            .id,
        first
    );
    let stored: Value = serde_json::from_str(
        &store
            .catalog
            .entity_by_ref(&component_ref("a"), &[])
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["spec"]["owner"], "team-a");
}

pub fn invalid_and_unreadable_sources_keep_the_last_good_version(store: &Store) {
    let id = refresh(
        store,
        "a.yaml",
        vec![
            component("a", "service", "team-a", "A"),
            component("b", "service", "team-a", "B"),
        ],
    );
    let mut tx = store.locations.begin_refresh(&id).unwrap();
    assert!(
        tx.keep_invalid(&component_ref("a"), &["spec.owner is required".into()])
            .unwrap()
    );
    assert!(
        !tx.keep_invalid(&component_ref("nowhere"), &["x".into()])
            .unwrap()
    );
    tx.problem(ProblemRecord {
        location_id: id.clone(),
        source: "file:a.yaml".into(),
        line: Some(3),
        column: Some(5),
        entity_ref: Some("component:default/a".into()),
        field: Some("spec.owner".into()),
        message: "spec.owner is required".into(),
    });
    tx.keep_source("file:a.yaml");
    tx.commit().unwrap();
    assert!(has(store, &component_ref("a")) && has(store, &component_ref("b")));
    let problems = store.locations.problems(Some(&id)).unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field.as_deref(), Some("spec.owner"));
    assert_eq!(problems[0].line, Some(3));
    assert_eq!(store.locations.problems(None).unwrap().len(), 1);

    // A clean refresh replaces the problems.
    refresh(
        store,
        "a.yaml",
        vec![
            component("a", "service", "team-a", "A"),
            component("b", "service", "team-a", "B"),
        ],
    );
    assert!(store.locations.problems(Some(&id)).unwrap().is_empty());

    // An unchanged file keeps its entities without reading them again.
    let mut tx = store.locations.begin_refresh(&id).unwrap();
    assert!(!tx.keep_unchanged("file:a.yaml", 3).unwrap());
    assert!(tx.keep_unchanged("file:a.yaml", 2).unwrap());
    let summary = tx.commit().unwrap();
    assert_eq!((summary.unchanged, summary.removed), (2, 0));
}

/// Five services and three websites of two owners, with mixed-case titles.
fn catalog_of_eight(store: &Store) {
    let mut entities = vec![group("team-a", None, &[]), group("team-b", None, &[])];
    for i in 0..8 {
        let (kind, owner) = if i < 5 {
            ("service", "team-a")
        } else {
            ("website", "team-b")
        };
        entities.push(component(
            &format!("svc-{i}"),
            kind,
            owner,
            &format!("Payments Thing {i}"),
        ));
    }
    refresh(store, "catalog.yaml", entities);
}

pub fn filtered_pages_have_totals_cursors_and_full_text(store: &Store) {
    catalog_of_eight(store);
    let first = store
        .catalog
        .page(&PageQuery {
            filter: filter(&["kind=component,spec.type=service"]),
            limit: 2,
            ..PageQuery::default()
        })
        .unwrap()
        .unwrap();
    assert_eq!(first.total_items, 5);
    assert_eq!(names(&first.items), ["svc-0", "svc-1"]);
    assert!(first.prev_cursor.is_none());
    let mut seen = names(&first.items);
    let mut cursor = first.next_cursor.clone();
    while let Some(c) = cursor {
        let page = store
            .catalog
            .page(&PageQuery {
                cursor: Some(c),
                limit: 2,
                ..PageQuery::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(page.total_items, 5);
        seen.extend(names(&page.items));
        cursor = page.next_cursor;
    }
    assert_eq!(seen, ["svc-0", "svc-1", "svc-2", "svc-3", "svc-4"]);

    // Descending order by a field.
    let by_name = store
        .catalog
        .page(&PageQuery {
            filter: filter(&["kind=component"]),
            order: Some(Order::parse_prefixed("desc:metadata.name").unwrap()),
            limit: 3,
            ..PageQuery::default()
        })
        .unwrap()
        .unwrap();
    assert_eq!(names(&by_name.items), ["svc-7", "svc-6", "svc-5"]);

    // Full text: a case-insensitive substring of the named fields, ANDed
    // with the filter.
    let text = |term: &str, fields: &[&str], params: &[&str]| {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        let page = store
            .catalog
            .page(&PageQuery {
                filter: filter(params),
                full_text: Some(FullText::new(term, &fields)),
                limit: 20,
                ..PageQuery::default()
            })
            .unwrap()
            .unwrap();
        (page.total_items, names(&page.items))
    };
    assert_eq!(text("PAYMENTS thing 7", &[], &[]).1, ["svc-7"]);
    assert_eq!(
        text("ments", &["metadata.title"], &["spec.type=website"]).0,
        3
    );
    assert_eq!(text("ments", &["metadata.name"], &[]).0, 0);
    assert_eq!(
        text("svc-", &["metadata.name"], &["spec.type=service"]).0,
        5
    );

    // A cursor cannot be forged.
    let forged = store.catalog.page(&PageQuery {
        cursor: Some("eyJmaWx0ZXIiOnt9fQ.AAAA".into()),
        limit: 2,
        ..PageQuery::default()
    });
    assert!(matches!(forged, Ok(Err(_))), "{forged:?}");
}

pub fn lists_orders_facets_and_lookups(store: &Store) {
    catalog_of_eight(store);
    // One entity's flattened values, as written, for scorecards.
    let refs = store
        .catalog
        .filter_refs(&filter(&["metadata.name=svc-6"]))
        .unwrap();
    let (id, r, owner) = &refs[0];
    assert_eq!(
        (r.as_str(), owner.as_deref()),
        ("component:default/svc-6", Some("group:default/team-b"))
    );
    let values = store.catalog.entity_values(*id).unwrap();
    assert!(
        values.contains(&("metadata.title".into(), "Payments Thing 6".into())),
        "{values:?}"
    );
    assert!(
        values.contains(&("spec.type".into(), "website".into())),
        "{values:?}"
    );
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    assert!(store.catalog.entity_values(-1).unwrap().is_empty());
    let list = store
        .catalog
        .list(&ListQuery {
            filter: filter(&["kind=component"]),
            order: vec![Order::parse_prefixed("desc:metadata.name").unwrap()],
            limit: Some(3),
            offset: 1,
            fields: vec!["metadata.name".into()],
        })
        .unwrap();
    assert_eq!(names(&list), ["svc-6", "svc-5", "svc-4"]);
    let projected: Value = serde_json::from_str(&list[0]).unwrap();
    assert!(projected.get("spec").is_none(), "{projected}");

    let mut streamed = Vec::new();
    store
        .catalog
        .list_each(
            &ListQuery {
                filter: filter(&["spec.owner=team-b"]),
                ..ListQuery::default()
            },
            &mut |json| {
                streamed.push(json);
                true
            },
        )
        .unwrap();
    assert_eq!(names(&streamed), ["svc-5", "svc-6", "svc-7"]);
    let mut all = 0;
    store.catalog.each_entity(3, &mut |_| all += 1).unwrap();
    assert_eq!(all, 10);

    let facets = store
        .catalog
        .facets(&["spec.type".into()], &filter(&["kind=component"]))
        .unwrap();
    assert_eq!(
        facets["spec.type"],
        [("service".to_string(), 5), ("website".to_string(), 3)]
    );
    assert_eq!(
        store
            .catalog
            .facets_uncached(&["kind".into()], &Filter::default())
            .unwrap()["kind"],
        [("Component".to_string(), 8), ("Group".to_string(), 2)]
    );

    let a: Value = serde_json::from_str(
        &store
            .catalog
            .entity_by_ref(&component_ref("svc-1"), &[])
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let uid = a["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        names(&[store.catalog.entity_by_uid(uid, &[]).unwrap().unwrap()]),
        ["svc-1"]
    );
    let many = store
        .catalog
        .entities_by_refs(
            &[
                Some(component_ref("svc-2")),
                None,
                Some(component_ref("missing")),
                Some(component_ref("svc-0")),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(many.len(), 4);
    assert!(many[1].is_none() && many[2].is_none());
    assert_eq!(
        names(&[many[0].clone().unwrap(), many[3].clone().unwrap()]),
        ["svc-2", "svc-0"]
    );
    assert_eq!(
        store
            .catalog
            .existing_refs(&["component:default/svc-3", "component:default/nope"])
            .unwrap(),
        [true, false]
    );
    let owners = store
        .catalog
        .filter_refs(&filter(&["spec.type=website"]))
        .unwrap();
    assert_eq!(owners.len(), 3);
    assert!(
        owners
            .iter()
            .all(|(_, _, owner)| owner.as_deref() == Some("group:default/team-b")),
        "{owners:?}"
    );
    let stats = store.catalog.stats().unwrap();
    assert_eq!((stats.entities, stats.locations, stats.orphans), (10, 1, 0));

    // An owner that is in no catalog makes an orphan.
    refresh(
        store,
        "orphan.yaml",
        vec![component("lost", "service", "team-gone", "Lost")],
    );
    let orphans = store.catalog.orphans().unwrap();
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(orphans[0].0, "component:default/lost");

    // A value spelled several ways is shown as the smallest spelling among
    // the entities the filter selects.
    refresh(
        store,
        "spellings.yaml",
        vec![
            component("s1", "DataBase", "team-x", "S"),
            component("s2", "Database", "team-y", "S"),
            component("s3", "database", "team-z", "S"),
            // Two spellings of one link title in one entity: one row, the
            // first spelling.
            entity(
                json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                "metadata": {"name": "s4", "links": [
                    {"url": "https://a.example", "title": "Runbook"},
                    {"url": "https://b.example", "title": "runbook"}]},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-w"}}),
            ),
        ],
    );
    let titles = store
        .catalog
        .facets_uncached(
            &["metadata.links.title".into()],
            &filter(&["metadata.name=s4"]),
        )
        .unwrap();
    assert_eq!(titles["metadata.links.title"], [("Runbook".to_string(), 1)]);
    for (owner, shown, n) in [
        ("team-x,spec.owner=team-y,spec.owner=team-z", "DataBase", 3),
        ("team-y,spec.owner=team-z", "Database", 2),
        ("team-z", "database", 1),
    ] {
        let spelled = store
            .catalog
            .facets_uncached(
                &["spec.type".into()],
                &filter(&[&format!("spec.owner={owner}")]),
            )
            .unwrap();
        assert_eq!(spelled["spec.type"], [(shown.to_string(), n)], "{owner}");
    }
}

/// Lists without an order, where every condition matches thousands of
/// entities: then a backend may drive from one condition's index in id
/// order and check the rest per row (both do). Whatever the plan, a list
/// is the filter's entities in id order, and its pages are slices of it.
pub fn broad_lists_in_id_order_are_the_same_however_planned(store: &Store) {
    let lifecycles = ["production", "experimental"];
    let types = ["service", "website", "library"];
    let owners = ["team-a", "team-b"];
    let components: Vec<(String, &str, &str, &str)> = (0..4_500)
        .map(|i| {
            let name = format!("svc-{i:04}");
            (name, lifecycles[i % 2], types[i % 3], owners[(i / 2) % 2])
        })
        .collect();
    refresh(
        store,
        "broad.yaml",
        components
            .iter()
            .map(|(name, lifecycle, ty, owner)| {
                entity(
                    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                    "metadata": {"name": name, "tags": ["broad"]},
                    "spec": {"type": ty, "lifecycle": lifecycle, "owner": owner}}),
                )
            })
            .collect(),
    );
    type Matches = dyn Fn(&str, &str, &str) -> bool;
    let cases: [(&[&str], &Matches); 4] = [
        (&["kind=component,spec.lifecycle=production"], &|l, _, _| {
            l == "production"
        }),
        (&["kind=component,spec.type=website"], &|_, t, _| {
            t == "website"
        }),
        (
            &["kind=component,spec.lifecycle=experimental,relations.ownedBy=group:default/team-a"],
            &|l, _, o| l == "experimental" && o == "team-a",
        ),
        (&["spec.lifecycle=production,metadata.tags"], &|l, _, _| {
            l == "production"
        }),
    ];
    for (params, matches) in cases {
        let f = filter(params);
        let expected: BTreeSet<String> = components
            .iter()
            .filter(|(_, l, t, o)| matches(l, t, o))
            .map(|(name, ..)| name.clone())
            .collect();
        let refs = store.catalog.filter_refs(&f).unwrap();
        assert!(
            refs.windows(2).all(|w| w[0].0 < w[1].0),
            "{params:?}: not in id order"
        );
        let by_id: Vec<String> = refs
            .iter()
            .map(|(_, r, _)| r.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(
            by_id.iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{params:?}"
        );
        let list = |limit: Option<usize>, offset: usize| {
            names(
                &store
                    .catalog
                    .list(&ListQuery {
                        filter: f.clone(),
                        limit,
                        offset,
                        ..ListQuery::default()
                    })
                    .unwrap(),
            )
        };
        assert_eq!(list(None, 0), by_id, "{params:?}: the whole list");
        assert_eq!(list(Some(50), 0), by_id[..50], "{params:?}: the first page");
        assert_eq!(
            list(Some(50), 700),
            by_id[700..750],
            "{params:?}: a later page"
        );
    }
}

pub fn people_resolve_to_users_and_their_groups(store: &Store) {
    refresh(
        store,
        "org.yaml",
        vec![
            group("org", None, &[]),
            group("team-a", Some("org"), &["jane"]),
            user("jane", "Jane@Example.com"),
            user("joe", "joe@example.com"),
        ],
    );
    assert_eq!(
        store
            .catalog
            .user_by("email", "jane@example.com")
            .unwrap()
            .as_deref(),
        Some("user:default/jane")
    );
    assert_eq!(
        store.catalog.user_by("name", "joe").unwrap().as_deref(),
        Some("user:default/joe")
    );
    assert!(
        store
            .catalog
            .user_by("email", "nobody@x")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.catalog.groups_of("user:default/jane").unwrap(),
        ["group:default/org", "group:default/team-a"]
    );
    assert!(
        store
            .catalog
            .groups_of("user:default/joe")
            .unwrap()
            .is_empty()
    );
    // Membership follows the catalog at once.
    refresh(
        store,
        "org.yaml",
        vec![
            group("org", None, &[]),
            group("team-a", Some("org"), &[]),
            user("jane", "jane@example.com"),
        ],
    );
    assert!(
        store
            .catalog
            .groups_of("user:default/jane")
            .unwrap()
            .is_empty()
    );
}

pub fn the_change_feed_follows_every_committed_write(store: &Store) {
    let start = store.changes.last_entity_change().unwrap();
    refresh(
        store,
        "a.yaml",
        vec![
            component("a", "service", "team-a", "A"),
            component("b", "service", "team-a", "B"),
        ],
    );
    let changes = store.changes.entity_changes_after(start, 100).unwrap();
    let refs: Vec<&str> = changes.iter().map(|(_, r)| r.as_str()).collect();
    assert!(refs.contains(&"component:default/a") && refs.contains(&"component:default/b"));
    assert!(changes.windows(2).all(|w| w[0].0 < w[1].0), "{changes:?}");
    let last = store.changes.last_entity_change().unwrap();
    assert_eq!(last, changes.last().unwrap().0);
    assert_eq!(
        store.changes.entity_changes_after(start, 1).unwrap().len(),
        1
    );

    // Removing an entity is a change too.
    refresh(
        store,
        "a.yaml",
        vec![component("a", "service", "team-a", "A")],
    );
    let after = store.changes.entity_changes_after(last, 100).unwrap();
    assert!(
        after.iter().any(|(_, r)| r == "component:default/b"),
        "{after:?}"
    );
    // Forgetting up to `last` keeps what came after it; what came before
    // may stay a while (a store several processes follow keeps it for
    // the others), and nothing after `last` counts as dropped for good.
    store.changes.forget_entity_changes(last).unwrap();
    assert_eq!(
        store.changes.entity_changes_after(last, 100).unwrap(),
        after
    );
    let kept = store.changes.entity_changes_after(start, 100).unwrap();
    assert!(kept.ends_with(&after), "{kept:?}");
    assert!(store.changes.forgotten_through().unwrap() <= last);

    // A changed entity, and every entity of a deleted location, too.
    let before = store.changes.last_entity_change().unwrap();
    refresh(
        store,
        "a.yaml",
        vec![component("a", "service", "team-b", "A")],
    );
    let id = refresh(
        store,
        "c.yaml",
        vec![
            component("c1", "service", "team-c", "C"),
            component("c2", "service", "team-c", "C"),
        ],
    );
    let written = store.changes.last_entity_change().unwrap();
    assert!(store.locations.delete_location(&id).unwrap());
    let refs = |from| -> Vec<String> {
        let mut refs: Vec<String> = store
            .changes
            .entity_changes_after(from, 100)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        refs.sort();
        refs
    };
    assert_eq!(
        refs(before),
        [
            "component:default/a",
            "component:default/c1",
            "component:default/c1",
            "component:default/c2",
            "component:default/c2"
        ]
    );
    assert_eq!(
        refs(written),
        ["component:default/c1", "component:default/c2"]
    );
}

fn fact(entity: &str, name: &str, value: FactValue, at_ms: i64) -> FactRecord {
    FactRecord {
        entity_ref: entity.into(),
        name: name.into(),
        value,
        source: "push:ci".into(),
        url: None,
        at_ms,
    }
}

pub fn facts_keep_the_newest_value_and_a_history_of_changes(store: &Store) {
    catalog_of_eight(store);
    let t = now_ms() - 10_000;
    let mut facts = Vec::new();
    for i in 0..5 {
        facts.push(fact(
            &format!("component:default/svc-{i}"),
            "coverage.lines",
            FactValue::Number(50.0 + f64::from(i) * 10.0),
            t,
        ));
    }
    assert_eq!(store.facts.put_facts(&facts).unwrap(), 5);
    // The same values again change nothing; a new value is a change.
    assert_eq!(store.facts.put_facts(&facts).unwrap(), 0);
    let later = fact(
        "component:default/svc-0",
        "coverage.lines",
        FactValue::Number(95.0),
        t + 1000,
    );
    assert_eq!(store.facts.put_facts(&[later]).unwrap(), 1);
    // A value measured before the stored one goes to the history only.
    let backfill = fact(
        "component:default/svc-0",
        "coverage.lines",
        FactValue::Number(10.0),
        t - 5000,
    );
    store.facts.put_facts(&[backfill]).unwrap();
    let text = fact(
        "component:default/svc-1",
        "runtime.python",
        FactValue::Text("2.7".into()),
        t,
    );
    store.facts.put_facts(&[text]).unwrap();

    let current = store.facts.entity_facts("component:default/svc-0").unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].value, FactValue::Number(95.0));
    let history = store
        .facts
        .fact_history("component:default/svc-0", "coverage.lines", 10)
        .unwrap();
    let values: Vec<&FactValue> = history.iter().map(|(_, v, _)| v).collect();
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(values.contains(&&FactValue::Number(10.0)));
    assert_eq!(
        store.facts.fact_type("coverage.lines").unwrap().as_deref(),
        Some("number")
    );
    assert_eq!(
        store.facts.fact_type("runtime.python").unwrap().as_deref(),
        Some("text")
    );
    assert!(store.facts.fact_type("nothing.here").unwrap().is_none());
    let named = store.facts.facts_named("coverage.lines").unwrap();
    assert_eq!(named.len(), 5);
    assert!(named.contains(&("component:default/svc-0".into(), FactValue::Number(95.0))));
    assert_eq!(store.facts.fact_changes("coverage.lines").unwrap().len(), 7);
    let names = store.facts.fact_names().unwrap();
    assert!(
        names.contains(&("coverage.lines".into(), "number".into(), 5)),
        "{names:?}"
    );

    let lowest = store
        .facts
        .top_facts("coverage.lines", true, 2, Some("component"))
        .unwrap();
    let refs: Vec<&str> = lowest.iter().map(|r| r.fact.entity_ref.as_str()).collect();
    assert_eq!(refs, ["component:default/svc-1", "component:default/svc-2"]);
    assert_eq!(lowest[0].title.as_deref(), Some("Payments Thing 1"));
    assert_eq!(lowest[0].owner.as_deref(), Some("group:default/team-a"));
    let highest = store
        .facts
        .top_facts("coverage.lines", false, 1, None)
        .unwrap();
    assert_eq!(highest[0].fact.value, FactValue::Number(95.0));
    assert!(
        store
            .facts
            .top_facts("coverage.lines", false, 5, Some("group"))
            .unwrap()
            .is_empty()
    );
}

pub fn campaigns_saved_through_the_api(store: &Store) {
    assert!(store.campaigns.api_campaigns().unwrap().is_empty());
    store
        .campaigns
        .put_campaign("py3", "{\"a\":1}", "user:default/jane")
        .unwrap();
    store
        .campaigns
        .put_campaign("docs", "{\"b\":2}", "user:default/joe")
        .unwrap();
    store
        .campaigns
        .put_campaign("py3", "{\"a\":2}", "user:default/jane")
        .unwrap();
    let mut saved = store.campaigns.api_campaigns().unwrap();
    saved.sort();
    assert_eq!(
        saved,
        [
            ("docs".to_string(), "{\"b\":2}".to_string()),
            ("py3".to_string(), "{\"a\":2}".to_string())
        ]
    );
    assert!(store.campaigns.delete_campaign("py3").unwrap());
    assert!(!store.campaigns.delete_campaign("py3").unwrap());
    assert_eq!(store.campaigns.api_campaigns().unwrap().len(), 1);
}

pub fn status_history_keeps_changes_and_prunes_to_the_horizon(store: &Store) {
    let h = &store.statuses;
    let changes = |subject: &str| -> Vec<(String, i64, Status)> {
        h.status_changes(subject)
            .unwrap()
            .into_iter()
            .map(
                |StatusChange {
                     entity_ref,
                     at_ms,
                     status,
                 }| (entity_ref, at_ms, status),
            )
            .collect()
    };
    let ch = |r: &str, s: Status| (r.to_string(), s);
    assert!(h.latest_statuses("campaign:py3").unwrap().is_empty());
    h.record_statuses(
        "campaign:py3",
        100,
        &[ch("b", Status::Open), ch("a", Status::Open)],
    )
    .unwrap();
    h.record_statuses("campaign:py3", 200, &[ch("a", Status::Done)])
        .unwrap();
    // The same target twice at one time keeps the last.
    h.record_statuses(
        "campaign:py3",
        300,
        &[
            ch("b", Status::Done),
            ch("c", Status::Open),
            ch("b", Status::Gone),
        ],
    )
    .unwrap();
    h.record_statuses("campaign:docs", 150, &[ch("a", Status::Done)])
        .unwrap();
    h.record_statuses("campaign:docs", 160, &[]).unwrap();
    assert_eq!(
        h.latest_statuses("campaign:py3").unwrap(),
        [
            ch("a", Status::Done),
            ch("b", Status::Gone),
            ch("c", Status::Open)
        ]
    );
    assert_eq!(
        changes("campaign:py3"),
        [
            ("a".to_string(), 100, Status::Open),
            ("b".to_string(), 100, Status::Open),
            ("a".to_string(), 200, Status::Done),
            ("b".to_string(), 300, Status::Gone),
            ("c".to_string(), 300, Status::Open),
        ]
    );
    assert_eq!(
        h.status_subjects().unwrap(),
        ["campaign:docs", "campaign:py3"]
    );

    // Before 250: a's open at 100 was replaced by done at 200 (kept, what
    // a was at the horizon); b was open then (kept); c came later.
    assert_eq!(h.prune_statuses(250).unwrap(), 1);
    assert_eq!(
        changes("campaign:py3"),
        [
            ("b".to_string(), 100, Status::Open),
            ("a".to_string(), 200, Status::Done),
            ("b".to_string(), 300, Status::Gone),
            ("c".to_string(), 300, Status::Open),
        ]
    );
    // Past 300, b is gone altogether and its open row is replaced.
    assert_eq!(h.prune_statuses(301).unwrap(), 2);
    assert_eq!(
        changes("campaign:py3"),
        [
            ("a".to_string(), 200, Status::Done),
            ("c".to_string(), 300, Status::Open),
        ]
    );
    assert_eq!(
        changes("campaign:docs"),
        [("a".to_string(), 150, Status::Done)]
    );
    h.forget_statuses("campaign:py3").unwrap();
    assert!(changes("campaign:py3").is_empty());
    assert_eq!(h.status_subjects().unwrap(), ["campaign:docs"]);
}

fn nudge(at_ms: i64, team: &str, channel: &str, status: &str) -> NudgeRecord {
    NudgeRecord {
        at_ms,
        subject: "campaign:py3".into(),
        team: team.into(),
        channel: channel.into(),
        status: status.into(),
        targets: vec!["component:default/a".into(), "component:default/b".into()],
        attempts: 1,
        detail: Some("#team-a".into()),
    }
}

pub fn nudges_are_logged_and_teams_snooze(store: &Store) {
    let n = &store.nudges;
    assert!(n.nudges("campaign:py3", 10).unwrap().is_empty());
    n.record_nudge(&nudge(100, "group:default/a", "slack", "sent"))
        .unwrap();
    n.record_nudge(&nudge(200, "group:default/a", "webhook", "failed"))
        .unwrap();
    n.record_nudge(&nudge(150, "group:default/b", "none", "no-channel"))
        .unwrap();
    let mut other = nudge(300, "group:default/a", "email", "sent");
    other.subject = "campaign:docs".into();
    n.record_nudge(&other).unwrap();
    let log = n.nudges("campaign:py3", 10).unwrap();
    assert_eq!(
        log.iter()
            .map(|r| (r.at_ms, r.channel.as_str()))
            .collect::<Vec<_>>(),
        [(200, "webhook"), (150, "none"), (100, "slack")]
    );
    assert_eq!(log[2], nudge(100, "group:default/a", "slack", "sent"));
    assert_eq!(n.nudges("campaign:py3", 1).unwrap().len(), 1);
    // A failure does not count as told.
    assert_eq!(
        n.last_nudged("campaign:py3").unwrap(),
        [
            ("group:default/a".to_string(), 100),
            ("group:default/b".to_string(), 150)
        ]
    );
    n.snooze(
        "campaign:py3",
        "group:default/a",
        5_000,
        "user:default/jane",
    )
    .unwrap();
    n.snooze("campaign:py3", "group:default/a", 9_000, "user:default/joe")
        .unwrap();
    n.snooze("campaign:py3", "group:default/b", 7_000, "user:default/joe")
        .unwrap();
    assert_eq!(
        n.snoozes("campaign:py3").unwrap(),
        [
            (
                "group:default/a".to_string(),
                9_000,
                "user:default/joe".to_string()
            ),
            (
                "group:default/b".to_string(),
                7_000,
                "user:default/joe".to_string()
            )
        ]
    );
    n.snooze("campaign:py3", "group:default/b", 0, "user:default/joe")
        .unwrap();
    assert_eq!(n.snoozes("campaign:py3").unwrap().len(), 1);
    assert!(n.snoozes("campaign:docs").unwrap().is_empty());
}

fn event(id: &str, kind: &str, entity: Option<&str>, at_ms: i64) -> EventRecord {
    EventRecord {
        source: "plugin:github".into(),
        id: id.into(),
        kind: kind.into(),
        entity_ref: entity.map(str::to_string),
        title: format!("event {id}"),
        url: None,
        at_ms,
        tone: "good".into(),
        actor: Some("jane".into()),
        owner: None,
    }
}

pub fn events_are_kept_once_and_read_newest_first(store: &Store) {
    catalog_of_eight(store);
    let now = now_ms();
    let events = [
        event(
            "1",
            "deployment",
            Some("component:default/svc-0"),
            now - 3000,
        ),
        event("2", "build", Some("component:default/svc-5"), now - 2000),
        event(
            "3",
            "deployment",
            Some("component:default/svc-6"),
            now - 1000,
        ),
        event("4", "deployment", None, now - 10 * 60_000),
    ];
    assert_eq!(store.events.put_events(&events).unwrap(), 4);
    assert_eq!(store.events.put_events(&events[..2]).unwrap(), 0);
    let all = store
        .events
        .events(&EventQuery {
            since_ms: now - 60_000,
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["3", "2", "1"]);
    assert_eq!(all[0].owner.as_deref(), Some("group:default/team-b"));
    let deploys_of_b = store
        .events
        .events(&EventQuery {
            since_ms: 0,
            owner: Some("group:default/team-b".into()),
            kind: Some("deployment".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(deploys_of_b.len(), 1);
    assert_eq!(deploys_of_b[0].id, "3");
    let of_one = store
        .events
        .events(&EventQuery {
            since_ms: 0,
            entity_ref: Some("component:default/svc-0".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(of_one.len(), 1);
    let not_deploys = store
        .events
        .events(&EventQuery {
            since_ms: 0,
            except_kind: Some("deployment".into()),
            limit: 10,
            ..EventQuery::default()
        })
        .unwrap();
    assert!(
        !not_deploys.is_empty() && not_deploys.iter().all(|e| e.kind != "deployment"),
        "{not_deploys:?}"
    );
    assert_eq!(
        store
            .events
            .events(&EventQuery {
                since_ms: 0,
                limit: 2,
                ..EventQuery::default()
            })
            .unwrap()
            .len(),
        2
    );
}

pub fn action_runs_are_recorded_from_start_to_end(store: &Store) {
    let mut run = store
        .actions
        .action_started(
            "github",
            "rerun",
            "Re-run CI",
            "component:default/a",
            "user:default/jane",
            "{\"run\":1}",
        )
        .unwrap();
    assert_eq!(run.status, "running");
    assert!(run.finished_ms.is_none());
    store
        .actions
        .action_started(
            "github",
            "merge",
            "Merge",
            "component:default/b",
            "user:default/joe",
            "{}",
        )
        .unwrap();
    store
        .actions
        .action_finished(&mut run, true, "queued run 2")
        .unwrap();
    assert_eq!(run.status, "succeeded");
    let of_a = store
        .actions
        .action_runs(Some("component:default/a"), 10)
        .unwrap();
    assert_eq!(of_a, [run.clone()]);
    assert_eq!(of_a[0].message.as_deref(), Some("queued run 2"));
    assert!(of_a[0].finished_ms.is_some());
    let all = store.actions.action_runs(None, 10).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].action, "merge", "newest first");
    assert_eq!(store.actions.action_runs(None, 1).unwrap().len(), 1);
}

pub fn plugin_state_has_quotas_expiry_and_grants(store: &Store) {
    let kv = &store.plugin_state;
    assert!(kv.kv_get("p", "k").unwrap().is_none());
    assert!(kv.kv_set("p", "k", b"value", None, 100).unwrap());
    assert_eq!(kv.kv_get("p", "k").unwrap().as_deref(), Some(&b"value"[..]));
    assert!(
        kv.kv_get("other", "k").unwrap().is_none(),
        "state is per plugin"
    );
    // Over quota: refused, the old value kept; replacing a key counts once.
    assert!(!kv.kv_set("p", "big", &[0u8; 100], None, 100).unwrap());
    assert!(kv.kv_set("p", "k", &[1u8; 90], None, 100).unwrap());
    assert!(!kv.kv_set("p", "k2", &[2u8; 8], None, 100).unwrap());
    kv.kv_delete("p", "k").unwrap();
    assert!(kv.kv_get("p", "k").unwrap().is_none());
    assert!(kv.kv_set("p", "k2", &[2u8; 8], None, 100).unwrap());
    // Expired values are gone.
    assert!(kv.kv_set("p", "gone", b"x", Some(0), 100).unwrap());
    assert!(kv.kv_get("p", "gone").unwrap().is_none());

    assert!(kv.grants("github").unwrap().is_none());
    let mut grants = StoredGrants {
        hosts: vec!["https://api.github.com".into()],
        secrets: vec!["GITHUB_TOKEN".into()],
        disabled: false,
        ..StoredGrants::default()
    };
    grants
        .secret_hosts
        .insert("GITHUB_TOKEN".into(), vec!["https://api.github.com".into()]);
    kv.set_grants("github", &grants).unwrap();
    assert_eq!(kv.grants("github").unwrap(), Some(grants.clone()));
    grants.disabled = true;
    kv.set_grants("github", &grants).unwrap();
    assert!(kv.grants("github").unwrap().unwrap().disabled);
}

pub fn tokens_sessions_and_the_audit_trail(store: &Store) {
    let now = now_ms();
    let token = TokenRecord {
        id: "t1".into(),
        name: "ci".into(),
        scopes: vec!["catalog:write".into()],
        owner: None,
        created_by: "user:default/admin".into(),
        created_ms: now,
        expires_ms: None,
        revoked_ms: None,
        person: Some("user:default/jane".into()),
    };
    store.access.token_create(&token, b"hash-1").unwrap();
    assert_eq!(
        store.access.token_by_hash(b"hash-1").unwrap(),
        Some(token.clone())
    );
    assert!(store.access.token_by_hash(b"hash-2").unwrap().is_none());
    assert_eq!(store.access.token("t1").unwrap(), Some(token.clone()));
    assert_eq!(
        store
            .access
            .tokens(Some("user:default/jane"))
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .access
            .tokens(Some("user:default/joe"))
            .unwrap()
            .is_empty()
    );
    assert!(store.access.token_revoke("t1").unwrap());
    assert!(!store.access.token_revoke("t1").unwrap());
    assert!(!store.access.token("t1").unwrap().unwrap().live(now_ms()));

    let session = SessionRecord {
        id: "s1".into(),
        login: "jane@example.com".into(),
        subject: "sub-1".into(),
        user_ref: Some("user:default/jane".into()),
        address: "127.0.0.1".into(),
        created_ms: now,
        seen_ms: now,
        expires_ms: now + 3_600_000,
        ended_ms: None,
        csrf: "csrf-1".into(),
    };
    store.access.session_create(&session, b"cookie-1").unwrap();
    let read = store.access.session_by_hash(b"cookie-1").unwrap().unwrap();
    assert_eq!(read, session);
    assert_eq!(read.csrf, "csrf-1");
    store.access.session_seen("s1", now + 1000).unwrap();
    assert_eq!(
        store.access.session("s1").unwrap().unwrap().seen_ms,
        now + 1000
    );
    assert_eq!(store.access.session_count(now).unwrap(), 1);
    assert_eq!(
        store
            .access
            .sessions(now, Some("user:default/jane"))
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .access
            .sessions(now, Some("user:default/joe"))
            .unwrap()
            .is_empty()
    );
    assert!(store.access.session_end("s1").unwrap());
    let ended = |store: &Store| {
        store
            .access
            .session_by_hash(b"cookie-1")
            .unwrap()
            .unwrap()
            .ended_ms
    };
    let first_end = ended(store);
    assert!(first_end.is_some());
    // Ending it again changes nothing, in the store or in a cache of it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert!(!store.access.session_end("s1").unwrap());
    assert_eq!(ended(store), first_end);
    assert_eq!(
        store.access.session("s1").unwrap().unwrap().ended_ms,
        first_end
    );
    assert_eq!(store.access.session_count(now).unwrap(), 0);

    for (i, actor) in ["user:default/jane", "token:ci", "user:default/jane"]
        .iter()
        .enumerate()
    {
        store
            .access
            .audit(&AuditEntry {
                seq: 0,
                at_ms: now + i as i64,
                actor: actor.to_string(),
                action: "POST /api/catalog/locations".into(),
                target: format!("/api/catalog/locations/{i}"),
                address: "127.0.0.1".into(),
                outcome: "allowed".into(),
                status: 201,
            })
            .unwrap();
    }
    let janes = store
        .access
        .audit_lines(&AuditQuery {
            actor: Some("user:default/jane".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(janes.len(), 2);
    assert!(janes[0].seq != janes[1].seq);
    let one = store
        .access
        .audit_lines(&AuditQuery {
            target: Some("locations/1".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].actor, "token:ci");
    assert_eq!(one[0].status, 201);
}
