//! Reading locations into the catalog: files, directories, globs and URLs;
//! Location entities that point at more locations (with cycle detection);
//! `$text`/`$json`/`$yaml` substitutions; and the last-good-version rule.
//!
//! A refresh is one store transaction: a failure anywhere leaves what is
//! stored intact. Nothing is read, fetched or parsed while that
//! transaction holds the store's write lock: a slow disk, a slow server or
//! a large file would hold up fact pushes and every other write for as
//! long. A refresh reads and parses first, holding what it found in
//! memory, then writes it in one short transaction. Only a refresh that
//! finds more than `RefreshLimits::held_entities` new or changed entities
//! (the first import of a large catalog) opens its transaction early and
//! streams the rest of its local files into it file by file, so memory
//! stays bounded; if such a walk meets a URL it rolls back and is done
//! again holding everything, so the network is never waited on under the
//! lock. What one refresh reads is capped in files and bytes
//! (`catalog.max_files_per_location`, `catalog.max_refresh_bytes`), which
//! also bounds the memory that way holds.
//! A local file that is byte for byte what it was at the last committed
//! refresh (and so is every file it substitutes) is not parsed again when
//! it gave only valid entities: they are kept as stored, so a periodic
//! refresh of an unchanged catalog reads files and writes almost nothing.
//! A file that cannot be read or parsed keeps the entities it gave before;
//! an entity that turns invalid keeps its last good version, with the error
//! attached as its status.

pub mod provider;
pub mod source;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::catalog::FieldPath;
use crate::catalog::{EntityRef, Kinds, Problem, ValidEntity};
use crate::store::{Draft, Location, ProblemRecord, RefreshSummary, Store, StoreError};
use crate::yaml;
pub use provider::{Page, Providers};
pub use source::{ReadError, Reader, Target};

/// Reads locations and validates what they hold.
pub struct Ingestor {
    pub kinds: Arc<Kinds>,
    pub reader: Reader,
    /// Relative file targets are taken from here (the config file's folder).
    pub base_dir: PathBuf,
    pub limits: RefreshLimits,
    /// By location id, the clean files its last committed refresh read.
    memo: Mutex<HashMap<String, HashMap<String, Memo>>>,
    /// Who answers provider locations (none: they are not read).
    providers: Option<Arc<dyn Providers>>,
    /// Refreshes under way (a group counts once more than its members).
    running: AtomicUsize,
}

/// Counts a refresh as under way for as long as it lives.
struct Running<'a>(&'a AtomicUsize);

impl<'a> Running<'a> {
    fn start(count: &'a AtomicUsize) -> Running<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Running(count)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A clean file as a refresh read it: every document a valid entity the
/// store took, none a Location. While its bytes and those of the files it
/// substitutes are unchanged, it gives the same `entities` again.
#[derive(Clone)]
struct Memo {
    digest: [u8; 32],
    deps: Vec<(Target, [u8; 32])>,
    entities: usize,
}

/// The memos of one location's refresh: those of the last committed one,
/// and those this one keeps or learns (they replace the first on commit).
#[derive(Default)]
struct Memos {
    known: HashMap<String, Memo>,
    learned: HashMap<String, Memo>,
}

fn digest_of(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// What one refresh of a location may read.
#[derive(Debug, Clone, Copy)]
pub struct RefreshLimits {
    pub max_files: usize,
    pub max_bytes: u64,
    /// New or changed entities a refresh holds in memory before it starts
    /// writing them under the write lock.
    pub held_entities: usize,
}

/// Parsed and validated, an entity weighs about 9 KB until it is written
/// (holding 100,000 cost 880 MiB): some 18 MB held at most. Beyond that a
/// refresh changes most of a large catalog, and writing it is most of its
/// time anyway.
pub const HELD_ENTITIES: usize = 2_000;

/// Entities one grouped refresh ([`Ingestor::refresh_group`]) writes
/// before it commits: the write lock is held about a second on SQLite,
/// and 200 locations of 500 entities commit 10 times rather than 200.
pub const GROUP_ENTITIES: usize = 10_000;

impl RefreshLimits {
    pub fn of(catalog: &crate::config::CatalogConfig) -> RefreshLimits {
        RefreshLimits {
            max_files: catalog.max_files_per_location,
            max_bytes: catalog.max_refresh_bytes,
            held_entities: HELD_ENTITIES,
        }
    }
}

/// Whether a walk may fetch URLs. Offline (while its sink writes under the
/// store's write lock), it stops at the first URL it would read and says
/// so: the refresh then holds everything in memory instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Offline,
    Online,
}

/// What is left of a refresh's [`RefreshLimits`], and whether an offline
/// file met a URL.
struct Budget {
    files: usize,
    bytes: u64,
    limits: RefreshLimits,
    mode: Mode,
    wanted_network: bool,
    /// Set when this walk may skip unchanged files (a store refresh of
    /// local files).
    memos: Option<Memos>,
    /// Files substituted so far, with their digests (when `memos` is set).
    deps: Vec<(Target, [u8; 32])>,
}

impl Budget {
    fn new(limits: RefreshLimits, memos: Option<Memos>) -> Budget {
        Budget {
            files: limits.max_files,
            bytes: limits.max_bytes,
            limits,
            mode: Mode::Online,
            wanted_network: false,
            memos,
            deps: Vec::new(),
        }
    }

    /// False (and remembered) when `target` needs the network and this
    /// walk is offline.
    fn may_read(&mut self, target: &Target) -> bool {
        if self.mode == Mode::Offline && matches!(target, Target::Url(_)) {
            self.wanted_network = true;
            return false;
        }
        true
    }

    /// Takes one file from the budget, or says why not.
    fn take_file(&mut self) -> Result<(), String> {
        if self.files == 0 {
            return Err(format!(
                "this location's refresh already read {} files (catalog.max_files_per_location); split the location or raise the limit",
                self.limits.max_files
            ));
        }
        if self.bytes == 0 {
            return Err(format!(
                "this location's refresh already read {} bytes (catalog.max_refresh_bytes); split the location or raise the limit",
                self.limits.max_bytes
            ));
        }
        self.files -= 1;
        Ok(())
    }

    fn spend(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_sub(bytes as u64);
    }
}

/// Receives what a walk over a location finds.
trait Sink {
    /// A valid entity; false when the sink refused it (a duplicate).
    fn entity(
        &mut self,
        entity: ValidEntity,
        source: &str,
        line: usize,
    ) -> Result<bool, StoreError>;
    /// An invalid entity; `problems` already carry positions.
    fn invalid(
        &mut self,
        entity_ref: Option<&EntityRef>,
        problems: Vec<ProblemRecord>,
    ) -> Result<(), StoreError>;
    fn problem(&mut self, problem: ProblemRecord);
    /// The file could not be read or parsed: keep what it gave before.
    fn keep_source(&mut self, source: &str);
    /// The file is unchanged: keep the `count` entities it gave, when
    /// they are stored as it gave them (false: read it as usual).
    fn keep_unchanged(&mut self, _source: &str, _count: usize) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// A file is done; the sink may start writing what it holds.
    fn file_done(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether the sink has had enough: the walk then ends early.
    fn full(&self) -> bool {
        false
    }
    /// Whether what comes next is written under the store's write lock
    /// (then no URL may be read).
    fn writing(&self) -> bool {
        false
    }
    /// The store written to, if any (a check writes nowhere).
    fn store(&self) -> Option<Store> {
        None
    }
}

impl Ingestor {
    pub fn new(
        kinds: Arc<Kinds>,
        reader: Reader,
        base_dir: PathBuf,
        limits: RefreshLimits,
    ) -> Ingestor {
        Ingestor {
            kinds,
            reader,
            base_dir,
            limits,
            memo: Mutex::default(),
            providers: None,
            running: AtomicUsize::new(0),
        }
    }

    /// Whether a refresh is reading or writing locations now: work that
    /// can wait (following the catalog into the search index) waits for
    /// it, as the writer every refresh waits on needs the CPU.
    pub fn is_refreshing(&self) -> bool {
        self.running.load(Ordering::Acquire) > 0
    }

    /// Reads provider locations (`provider:<plugin>/<name>`) through
    /// `providers`.
    pub fn with_providers(mut self, providers: Arc<dyn Providers>) -> Ingestor {
        self.providers = Some(providers);
        self
    }

    /// Refreshes part of provider location `location`: what `page` holds
    /// (a catalog file a webhook named, a suggestion someone accepted)
    /// replaces what the location gave under the same keys, and
    /// everything else it holds is kept as it is; the provider is not
    /// asked. Safe beside a full refresh of the same location: each
    /// writes in its own transaction (see `Refresher::refresh_page` for
    /// the order they land in).
    pub fn refresh_page(
        &self,
        store: &Store,
        location: &Location,
        page: &Page,
    ) -> Result<RefreshSummary, StoreError> {
        let _running = Running::start(&self.running);
        let at = || provider::At {
            target: &location.target,
            location_id: &location.id,
            now_ms: crate::store::now_ms(),
        };
        loop {
            let mut sink = RefreshSink::new(store, &location.id, self.limits.held_entities);
            provider::walk(
                self.providers.as_deref(),
                &self.kinds,
                at(),
                Some(page.clone()),
                &mut sink,
            )?;
            match sink.finish()? {
                Finished::Committed(mut summaries, _) => {
                    return Ok(summaries.pop().expect("one location, one summary"));
                }
                // Something it keeps changed under it: read again.
                Finished::Lost(_) => continue,
            }
        }
    }

    /// Refreshes one location in one transaction.
    pub fn refresh(
        &self,
        store: &Store,
        location: &Location,
    ) -> Result<RefreshSummary, StoreError> {
        let _running = Running::start(&self.running);
        let mut known = self.recall(&location.id);
        let mut held = self.limits.held_entities;
        loop {
            let mut sink = RefreshSink::new(store, &location.id, held);
            let memos = Memos {
                known,
                learned: HashMap::new(),
            };
            let (met_url, memos) = self.walk(
                &location.kind,
                &location.target,
                &location.id,
                &mut sink,
                Some(memos),
            )?;
            let memos = memos.unwrap_or_default();
            if met_url {
                // Writing already, it met a URL: rolled back, and read
                // again holding everything until the end.
                (known, held) = (memos.known, usize::MAX);
                continue;
            }
            match sink.finish()? {
                Finished::Committed(mut summaries, refused) => {
                    self.remember(&location.id, memos.learned, &refused);
                    return Ok(summaries.pop().expect("one location, one summary"));
                }
                // An unchanged file's entities are no longer stored as it
                // gave them: rolled back, and done again reading it.
                Finished::Lost(sources) => {
                    known = memos.known;
                    for source in sources {
                        known.remove(&source);
                    }
                }
            }
        }
    }

    /// Refreshes several locations (each read as [`Ingestor::refresh`]
    /// reads one), committing together as many as hold about
    /// [`GROUP_ENTITIES`]: one commit rather than one per location, which
    /// is what makes registering 200 locations in a row cheap. A thread
    /// of its own reads and validates the next location while this one
    /// writes (parsing is about half of a refresh's work). Answers each
    /// location's summary, in order. A location too large to hold is
    /// refreshed alone; a group that cannot be written together (an
    /// unchanged file no longer stored as it gave its entities, a store
    /// error) is done again one location at a time, so no location pays
    /// for another.
    pub fn refresh_group(
        &self,
        store: &Store,
        locations: &[Location],
    ) -> Vec<Result<RefreshSummary, StoreError>> {
        if let [one] = locations {
            return vec![self.refresh(store, one)];
        }
        let _running = Running::start(&self.running);
        let mut out = Vec::with_capacity(locations.len());
        std::thread::scope(|scope| {
            // One location read ahead at most: memory stays bounded.
            let (send, read) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("catalog-read".into())
                .spawn_scoped(scope, move || {
                    for location in locations {
                        if send.send(self.hold(store, location)).is_err() {
                            return;
                        }
                    }
                })
                .expect("a thread to read locations on");
            let mut group = Group::default();
            for (i, held) in read.into_iter().enumerate() {
                let location = &locations[i];
                let Some((found, learned)) = held else {
                    self.write_group(store, locations, std::mem::take(&mut group), &mut out);
                    out.push(self.refresh(store, location));
                    continue;
                };
                group.add(store, (i, location), found, learned);
                if group.entities >= GROUP_ENTITIES {
                    self.write_group(store, locations, std::mem::take(&mut group), &mut out);
                }
            }
            self.write_group(store, locations, group, &mut out);
        });
        out
    }

    /// Reads a location holding everything it gives, without touching the
    /// store; `None` when it gives more than a refresh holds.
    fn hold(
        &self,
        store: &Store,
        location: &Location,
    ) -> Option<(Vec<Found>, HashMap<String, Memo>)> {
        // A provider location is refreshed alone: its plugin may write to
        // the store (its key/value state, as may the walk), which would
        // wait for the group's open transaction while the group waits for
        // this read.
        if location.kind == provider::KIND {
            return None;
        }
        // Never writing (so never touching the store), and stopping the
        // walk past what a refresh holds.
        let mut sink = RefreshSink::new(store, &location.id, usize::MAX);
        sink.stop_after = self.limits.held_entities;
        sink.work_ahead = true;
        let memos = Memos {
            known: self.recall(&location.id),
            learned: HashMap::new(),
        };
        let at = (&location.kind, &location.target, &location.id);
        match self.walk(at.0, at.1, at.2, &mut sink, Some(memos)) {
            Ok((false, memos)) if !sink.full() => {
                Some((sink.held, memos.unwrap_or_default().learned))
            }
            // Given back, for the refresh of it alone.
            Ok((_, Some(memos))) => {
                self.remember(&location.id, memos.known, &HashSet::new());
                None
            }
            _ => None,
        }
    }

    /// Commits a group and pushes its summaries to `out`; a group that
    /// fails is refreshed again location by location.
    fn write_group(
        &self,
        store: &Store,
        locations: &[Location],
        group: Group<'_>,
        out: &mut Vec<Result<RefreshSummary, StoreError>>,
    ) {
        let Some(sink) = group.sink else {
            return;
        };
        let finished = group.failed.map_or_else(|| sink.finish(), Err);
        match finished {
            Ok(Finished::Committed(summaries, refused)) => {
                for (id, learned) in group.learned {
                    self.remember(&id, learned, &refused);
                }
                out.extend(summaries.into_iter().map(Ok));
            }
            failed => {
                let why = match failed {
                    Err(e) => e.to_string(),
                    _ => "an unchanged file's entities are no longer stored as it gave them".into(),
                };
                tracing::debug!(locations = group.members.len(), why = %why, "refreshing a group one location at a time");
                out.extend(
                    group
                        .members
                        .iter()
                        .map(|&i| self.refresh(store, &locations[i])),
                );
            }
        }
    }

    /// Takes out what the last committed refresh of a location learned: a
    /// refresh that fails forgets it, so the next one reads every file.
    fn recall(&self, location_id: &str) -> HashMap<String, Memo> {
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(location_id)
            .unwrap_or_default()
    }

    /// Keeps the clean files a committed refresh read, but those with an
    /// entity the store refused.
    fn remember(
        &self,
        location_id: &str,
        mut learned: HashMap<String, Memo>,
        refused: &HashSet<String>,
    ) {
        learned.retain(|source, _| !refused.contains(source));
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(location_id.to_string(), learned);
    }

    /// Validates files or directories without storing anything (the CLI's
    /// `validate`): every problem found, and how many entities were valid.
    pub fn check(&self, targets: &[String]) -> (Vec<ProblemRecord>, usize) {
        let mut sink = CheckSink::default();
        for t in targets {
            // Checking never touches the store, so the walk cannot fail.
            let _ = self.walk("file", t, "", &mut sink, None);
        }
        (sink.problems, sink.seen.len())
    }

    /// Reads a location without storing it (`POST /locations?dryRun=true`):
    /// the entities it would produce and its problems.
    pub fn preview(&self, kind: &str, target: &str) -> (Vec<Value>, Vec<ProblemRecord>) {
        let mut sink = CheckSink {
            collect: true,
            ..CheckSink::default()
        };
        let _ = self.walk(kind, target, "", &mut sink, None);
        (sink.entities, sink.problems)
    }

    /// Walks a location into `sink`: true when it met a URL while the sink
    /// was writing (under the write lock, where nothing may be fetched).
    /// With `memos`, skips unchanged files and gives back what it learned.
    fn walk(
        &self,
        kind: &str,
        target: &str,
        location_id: &str,
        sink: &mut dyn Sink,
        memos: Option<Memos>,
    ) -> Result<(bool, Option<Memos>), StoreError> {
        let problem = |source: String, message: String| ProblemRecord {
            location_id: location_id.to_string(),
            source,
            line: None,
            column: None,
            entity_ref: None,
            field: None,
            message,
        };
        if kind == provider::KIND {
            let now = crate::store::now_ms();
            let kinds = &self.kinds;
            let at = provider::At {
                target,
                location_id,
                now_ms: now,
            };
            provider::walk(self.providers.as_deref(), kinds, at, None, sink)?;
            return Ok((false, memos));
        }
        let root = match Target::from_location(kind, target, &self.base_dir) {
            Ok(t) => t,
            Err(e) => {
                sink.problem(problem(format!("{kind}:{target}"), e.to_string()));
                return Ok((false, None));
            }
        };
        let files = match root.expand() {
            Ok(f) => f,
            Err(e) => {
                sink.problem(problem(root.to_string(), e.to_string()));
                return Ok((false, None));
            }
        };
        // A folder or glob must not lead out of itself through a link.
        let (files, outside): (Vec<Target>, Vec<Target>) = files
            .into_iter()
            .partition(|f| *f == root || f.is_within_through_links(&root));
        for f in outside {
            let source = f.to_string();
            sink.problem(problem(
                source.clone(),
                format!(
                    "{} leaves the location's folder through a symbolic link; it is not read",
                    display_source(&source)
                ),
            ));
            // Like any file that cannot be read: what it gave before stays.
            sink.keep_source(&source);
        }
        let mut queue: VecDeque<(Target, Vec<String>)> =
            files.into_iter().map(|f| (f, Vec::new())).collect();
        let mut visited = HashSet::new();
        let mut budget = Budget::new(self.limits, memos);
        while let Some((file, chain)) = queue.pop_front() {
            if !visited.insert(file.to_string()) {
                continue;
            }
            if let Err(why) = budget.take_file() {
                // Not read this time: what it gave before stays.
                sink.problem(problem(file.to_string(), why));
                sink.keep_source(&file.to_string());
                continue;
            }
            let mut children = Vec::new();
            budget.mode = if sink.writing() {
                Mode::Offline
            } else {
                Mode::Online
            };
            self.file(&file, &root, location_id, sink, &mut children, &mut budget)?;
            if budget.wanted_network {
                return Ok((true, budget.memos));
            }
            sink.file_done()?;
            if sink.full() {
                return Ok((false, budget.memos));
            }
            let mut chain = chain;
            chain.push(file.to_string());
            for (child, line) in children {
                let expanded = match child.expand() {
                    Ok(e) => e,
                    Err(e) => {
                        sink.problem(problem(file.to_string(), e.to_string()));
                        continue;
                    }
                };
                for c in expanded {
                    let name = c.to_string();
                    if chain.contains(&name) {
                        let mut cycle: Vec<&str> = chain.iter().map(String::as_str).collect();
                        cycle.push(&name);
                        sink.problem(ProblemRecord {
                            line: Some(line as u32),
                            column: Some(1),
                            ..problem(
                                file.to_string(),
                                format!(
                                    "Location cycle: {}; the repeated target is not read again",
                                    cycle.join(" -> ")
                                ),
                            )
                        });
                    } else if !visited.contains(&name) {
                        queue.push_back((c, chain.clone()));
                    }
                }
            }
        }
        Ok((false, budget.memos))
    }

    /// Reads one file; pushes the targets of its Location entities (with
    /// the line they were declared on) to `children`.
    fn file(
        &self,
        file: &Target,
        root: &Target,
        location_id: &str,
        sink: &mut dyn Sink,
        children: &mut Vec<(Target, usize)>,
        budget: &mut Budget,
    ) -> Result<(), StoreError> {
        let source = file.to_string();
        if !budget.may_read(file) {
            return Ok(());
        }
        let text = match self.reader.read(file) {
            Ok(t) => {
                budget.spend(t.len());
                t
            }
            Err(e) => {
                sink.problem(ProblemRecord {
                    location_id: location_id.to_string(),
                    source: source.clone(),
                    line: None,
                    column: None,
                    entity_ref: None,
                    field: None,
                    message: format!("cannot read {}: {e}", display_source(&source)),
                });
                sink.keep_source(&source);
                return Ok(());
            }
        };
        let digest = budget.memos.is_some().then(|| digest_of(&text));
        if let Some(digest) = digest
            && self.unchanged(&source, digest, (file, root), sink, budget)?
        {
            return Ok(());
        }
        let docs = match yaml::parse_documents(&text) {
            Ok(d) => d,
            Err(e) => {
                sink.problem(syntax_problem(&e, location_id, &source));
                sink.keep_source(&source);
                return Ok(());
            }
        };
        let deps_from = budget.deps.len();
        let mut clean = true;
        let entities = docs.len();
        for (index, doc) in docs.into_iter().enumerate() {
            let mut value = doc.value;
            let mut problems = Vec::new();
            let at = (file, root);
            self.substitute(&mut value, FieldPath::default(), at, &mut problems, budget);
            annotate(&mut value, &source, &root.to_string());
            let (entity_ref, all) = match self.kinds.validate(value) {
                Ok(valid) if problems.is_empty() => {
                    if valid.entity_ref.kind == "location" {
                        clean = false;
                        for t in location_targets(&valid.value) {
                            match file.join(&t) {
                                Ok(child) => children.push((child, doc.line)),
                                Err(e) => problems.push(Problem {
                                    field: FieldPath::parse_dotted("spec.target"),
                                    message: e.to_string(),
                                }),
                            }
                        }
                    }
                    if problems.is_empty() {
                        clean &= sink.entity(valid, &source, doc.line)?;
                        continue;
                    }
                    (Some(valid.entity_ref), problems)
                }
                Ok(valid) => (Some(valid.entity_ref), problems),
                Err(invalid) => {
                    problems.extend(invalid.problems);
                    (invalid.entity_ref, problems)
                }
            };
            let at = DocumentAt {
                text: &text,
                index,
                line: doc.line,
                location_id,
                source: &source,
            };
            let records = at.records(all, entity_ref.as_ref());
            clean = false;
            sink.invalid(entity_ref.as_ref(), records)?;
        }
        let deps = budget.deps.split_off(deps_from);
        if let (Some(memos), Some(digest), true) = (&mut budget.memos, digest, clean) {
            memos.learned.insert(
                source,
                Memo {
                    digest,
                    deps,
                    entities,
                },
            );
        }
        Ok(())
    }

    /// Keeps what `file` gave at the last refresh when neither it (its
    /// text has `digest`) nor any file it substitutes has changed since.
    fn unchanged(
        &self,
        source: &str,
        digest: [u8; 32],
        (file, root): (&Target, &Target),
        sink: &mut dyn Sink,
        budget: &mut Budget,
    ) -> Result<bool, StoreError> {
        let Some(memo) = budget.memos.as_ref().and_then(|m| m.known.get(source)) else {
            return Ok(false);
        };
        if memo.digest != digest {
            return Ok(false);
        }
        let memo = memo.clone();
        for (dep, was) in &memo.deps {
            // Read as the substitution would, within the same limits.
            if !matches!(dep, Target::File(_)) || budget.take_file().is_err() {
                return Ok(false);
            }
            match self.reader.read_within(dep, &[root, file], None) {
                Ok(text) => {
                    budget.spend(text.len());
                    if digest_of(&text) != *was {
                        return Ok(false);
                    }
                }
                Err(_) => return Ok(false),
            }
        }
        if !sink.keep_unchanged(source, memo.entities)? {
            return Ok(false);
        }
        if let Some(memos) = &mut budget.memos {
            memos.learned.insert(source.to_string(), memo);
        }
        Ok(true)
    }

    /// Replaces `{"$text": path}`, `{"$json": path}` and `{"$yaml": path}`
    /// with the referenced file's content.
    fn substitute(
        &self,
        value: &mut Value,
        path: FieldPath,
        (file, root): (&Target, &Target),
        problems: &mut Vec<Problem>,
        budget: &mut Budget,
    ) {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, reference) = map
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_default();
                if !matches!(key.as_str(), "$text" | "$json" | "$yaml") {
                    let (k, v) = map.iter_mut().next().expect("one entry");
                    let p = path.clone().key(k);
                    self.substitute(v, p, (file, root), problems, budget);
                    return;
                }
                let mut fail = |message: String| {
                    problems.push(Problem {
                        field: path.clone(),
                        message,
                    })
                };
                let Some(reference) = reference.as_str() else {
                    fail(format!("{key} needs a path or URL string"));
                    return;
                };
                let target = match file.join(reference) {
                    Ok(t) => t,
                    Err(e) => return fail(format!("{key}: {e}")),
                };
                if !(target.is_within(root) || target.is_within(file)) {
                    return fail(format!(
                        "{key} '{reference}' points outside the location's folder or origin; substitutions may only read files beside the catalog"
                    ));
                }
                if !budget.may_read(&target) {
                    return;
                }
                if let Err(why) = budget.take_file() {
                    return fail(format!("{key} '{reference}' is not read: {why}"));
                }
                let text = match self.reader.read_within(&target, &[root, file], None) {
                    Ok(t) => {
                        budget.spend(t.len());
                        if budget.memos.is_some() {
                            budget.deps.push((target.clone(), digest_of(&t)));
                        }
                        t
                    }
                    Err(e) => {
                        return fail(format!(
                            "{key} '{reference}': cannot read {}: {e}",
                            display_source(&target.to_string())
                        ));
                    }
                };
                let parsed = match key.as_str() {
                    "$text" => Ok(Value::String(text)),
                    "$json" => serde_json::from_str(&text)
                        .map_err(|e| format!("$json '{reference}' is not valid JSON: {e}")),
                    _ => yaml::parse_documents(&text)
                        .map_err(|e| format!("$yaml '{reference}' is not valid YAML: {e}"))
                        .map(|docs| {
                            docs.into_iter()
                                .next()
                                .map(|d| d.value)
                                .unwrap_or(Value::Null)
                        }),
                };
                match parsed {
                    Ok(v) => *value = v,
                    Err(m) => fail(m),
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.substitute(v, path.clone().key(k), (file, root), problems, budget);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.substitute(v, path.clone().index(i), (file, root), problems, budget);
                }
            }
            _ => {}
        }
    }
}

/// `file:/x/y.yaml` → `/x/y.yaml`, for messages.
pub fn display_source(source: &str) -> &str {
    source
        .strip_prefix("file:")
        .or_else(|| source.strip_prefix("url:"))
        .unwrap_or(source)
}

fn location_targets(value: &Value) -> Vec<String> {
    let spec = &value["spec"];
    let mut out: Vec<String> = spec["target"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(list) = spec["targets"].as_array() {
        out.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
    }
    out
}

/// Records where an entity came from, as Backstage does.
/// A YAML syntax error in `source` as the location's problem.
fn syntax_problem(e: &yaml::YamlError, location_id: &str, source: &str) -> ProblemRecord {
    ProblemRecord {
        location_id: location_id.to_string(),
        source: source.to_string(),
        line: Some(e.line as u32),
        column: Some(e.col as u32),
        entity_ref: None,
        field: None,
        message: format!("YAML syntax error: {}", e.message),
    }
}

/// Document `index` of a catalog file's `text` (starting on `line`), for
/// placing its problems.
struct DocumentAt<'a> {
    text: &'a str,
    index: usize,
    line: usize,
    location_id: &'a str,
    source: &'a str,
}

impl DocumentAt<'_> {
    /// `problems` as records, each on its field's line (or the document's
    /// first), its message led by the field.
    fn records(
        &self,
        problems: Vec<Problem>,
        entity_ref: Option<&EntityRef>,
    ) -> Vec<ProblemRecord> {
        problems
            .into_iter()
            .map(|p| {
                let (line, col) =
                    yaml::locate(self.text, self.index, &p.field).unwrap_or((self.line, 1));
                let field = p.field.to_string();
                let message = if p.message.starts_with(&field) || field.is_empty() {
                    p.message
                } else {
                    format!("{field}: {}", p.message)
                };
                ProblemRecord {
                    location_id: self.location_id.to_string(),
                    source: self.source.to_string(),
                    line: Some(line as u32),
                    column: Some(col as u32),
                    entity_ref: entity_ref.map(ToString::to_string),
                    field: (!field.is_empty()).then_some(field),
                    message,
                }
            })
            .collect()
    }
}

fn annotate(value: &mut Value, source: &str, origin: &str) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(a) = annotations.as_object_mut() {
        a.insert(
            "backstage.io/managed-by-location".into(),
            Value::String(source.into()),
        );
        a.insert(
            "backstage.io/managed-by-origin-location".into(),
            Value::String(origin.into()),
        );
    }
}

/// Locations being written in one transaction by
/// [`Ingestor::refresh_group`].
#[derive(Default)]
struct Group<'s> {
    sink: Option<RefreshSink<'s>>,
    /// Indexes of the locations in it, and what each learned.
    members: Vec<usize>,
    learned: Vec<(String, HashMap<String, Memo>)>,
    /// Valid entities written so far.
    entities: usize,
    /// The first store error: the group is then rolled back.
    failed: Option<StoreError>,
}

impl<'s> Group<'s> {
    /// Writes what `location` (the `index`th of the refresh) gave into the
    /// group's transaction.
    fn add(
        &mut self,
        store: &'s Store,
        (index, location): (usize, &Location),
        found: Vec<Found>,
        learned: HashMap<String, Memo>,
    ) {
        self.members.push(index);
        self.learned.push((location.id.clone(), learned));
        if self.failed.is_some() {
            return;
        }
        let first = self.sink.is_none();
        let sink = self
            .sink
            .get_or_insert_with(|| RefreshSink::new(store, &location.id, usize::MAX));
        let written = (!first)
            .then(|| sink.begin_location(&location.id))
            .transpose()
            .and_then(|_| {
                self.entities += found
                    .iter()
                    .filter(|f| matches!(f, Found::Entity(..)))
                    .count();
                sink.held.extend(found);
                sink.write_held()
            });
        self.failed = written.err();
    }
}

/// Where a refresh's walk puts what it finds: held in memory, then
/// written in one short transaction at the end; or, once it holds more
/// than its share of entities, written from then on a file at a time.
struct RefreshSink<'s> {
    store: &'s Store,
    /// The location the first thing held belongs to (the one the
    /// transaction begins with).
    first_location: String,
    /// Entities held before the transaction begins.
    cap: usize,
    held: Vec<Found>,
    held_entities: usize,
    /// Past this many entities held the sink is full: the walk stops.
    stop_after: usize,
    /// Whether each entity's stored form is worked out as it is found
    /// (reading ahead of a group's writer), rather than when written.
    work_ahead: bool,
    tx: Option<Box<dyn crate::store::RefreshTx + 's>>,
    /// The summaries of the locations written before the current one.
    done: Vec<RefreshSummary>,
    /// Sources with an entity the transaction refused (their files are
    /// not clean after all).
    refused: HashSet<String>,
    /// Unchanged files whose entities were not stored as they gave them.
    lost: Vec<String>,
}

enum Found {
    Entity(Draft, String, usize),
    Invalid(Option<EntityRef>, Vec<ProblemRecord>),
    Problem(ProblemRecord),
    KeepSource(String),
    KeepUnchanged(String, usize),
}

enum Finished {
    /// Each location's summary, in order, and the sources with an entity
    /// the store refused.
    Committed(Vec<RefreshSummary>, HashSet<String>),
    /// These unchanged files must be read again.
    Lost(Vec<String>),
}

impl<'s> RefreshSink<'s> {
    fn new(store: &'s Store, location_id: &str, cap: usize) -> RefreshSink<'s> {
        RefreshSink {
            store,
            first_location: location_id.to_string(),
            cap,
            held: Vec::new(),
            held_entities: 0,
            stop_after: usize::MAX,
            work_ahead: false,
            tx: None,
            done: Vec::new(),
            refused: HashSet::new(),
            lost: Vec::new(),
        }
    }

    /// Begins the transaction and writes everything held into it.
    fn write_held(&mut self) -> Result<(), StoreError> {
        if self.tx.is_none() {
            self.tx = Some(self.store.locations.begin_refresh(&self.first_location)?);
        }
        let refs: Vec<String> = self
            .held
            .iter()
            .filter_map(|found| match found {
                Found::Entity(e, ..) => Some(e.key().to_string()),
                _ => None,
            })
            .collect();
        self.tx_mut().prefetch(&refs)?;
        for found in std::mem::take(&mut self.held) {
            match found {
                Found::Entity(e, source, line) => self.put(e, &source, line)?,
                Found::Invalid(r, problems) => self.keep_invalid(r.as_ref(), problems)?,
                Found::Problem(p) => self.tx_mut().problem(p),
                Found::KeepSource(source) => self.tx_mut().keep_source(&source),
                Found::KeepUnchanged(source, count) => {
                    if !self.tx_mut().keep_unchanged(&source, count)? {
                        self.lost.push(source);
                    }
                }
            }
        }
        self.held_entities = 0;
        Ok(())
    }

    fn tx_mut(&mut self) -> &mut Box<dyn crate::store::RefreshTx + 's> {
        self.tx.as_mut().expect("write_held began it")
    }

    /// Writes a valid entity; one the store refuses becomes a problem of
    /// its file, which is then not clean after all.
    fn put(&mut self, draft: Draft, source: &str, line: usize) -> Result<(), StoreError> {
        let entity_ref = draft.key().to_string();
        let Err(rejected) = self.tx_mut().put(draft, source)? else {
            return Ok(());
        };
        use crate::store::Rejected;
        let message = match rejected {
            Rejected::ClaimedElsewhere { location } => format!(
                "{entity_ref} is already defined by location {location}; the first claim wins, so this definition is ignored. Remove one of the two."
            ),
            Rejected::Duplicate { first_source } => format!(
                "{entity_ref} is defined twice; the first definition (in {}) wins and this one is ignored",
                display_source(&first_source)
            ),
        };
        let location_id = self.tx_mut().location_id().to_string();
        self.tx_mut().problem(ProblemRecord {
            location_id,
            source: source.to_string(),
            line: Some(line as u32),
            column: Some(1),
            entity_ref: Some(entity_ref),
            field: None,
            message,
        });
        self.refused.insert(source.to_string());
        Ok(())
    }

    /// Keeps the stored version of an entity that is now invalid.
    fn keep_invalid(
        &mut self,
        entity_ref: Option<&EntityRef>,
        problems: Vec<ProblemRecord>,
    ) -> Result<(), StoreError> {
        let tx = self.tx_mut();
        if let Some(r) = entity_ref {
            let messages: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
            tx.keep_invalid(r, &messages)?;
        }
        for p in problems {
            tx.problem(p);
        }
        Ok(())
    }

    /// Writes what is held, then begins the location `id` in the same
    /// transaction.
    fn begin_location(&mut self, id: &str) -> Result<(), StoreError> {
        self.write_held()?;
        let summary = self.tx_mut().next_location(id)?;
        self.done.push(summary);
        Ok(())
    }

    fn finish(mut self) -> Result<Finished, StoreError> {
        self.write_held()?;
        if !self.lost.is_empty() {
            return Ok(Finished::Lost(self.lost));
        }
        let tx = self.tx.take().expect("write_held began it");
        self.done.push(tx.commit()?);
        Ok(Finished::Committed(self.done, self.refused))
    }
}

/// Everything found is held; once writing, one file at a time, so a
/// store can look up and write each file's entities together.
impl Sink for RefreshSink<'_> {
    fn entity(
        &mut self,
        entity: ValidEntity,
        source: &str,
        line: usize,
    ) -> Result<bool, StoreError> {
        self.held_entities += 1;
        let mut draft = Draft::of(entity)?;
        if self.work_ahead {
            draft.work_out()?;
        }
        self.held
            .push(Found::Entity(draft, source.to_string(), line));
        // A refusal shows when written: the source is then in `refused`.
        Ok(true)
    }

    fn invalid(
        &mut self,
        entity_ref: Option<&EntityRef>,
        problems: Vec<ProblemRecord>,
    ) -> Result<(), StoreError> {
        self.held
            .push(Found::Invalid(entity_ref.cloned(), problems));
        Ok(())
    }

    fn problem(&mut self, problem: ProblemRecord) {
        self.held.push(Found::Problem(problem));
    }

    fn keep_source(&mut self, source: &str) {
        self.held.push(Found::KeepSource(source.to_string()));
    }

    fn keep_unchanged(&mut self, source: &str, count: usize) -> Result<bool, StoreError> {
        if self.tx.is_none() {
            // Checked when written; a miss reads everything again.
            self.held
                .push(Found::KeepUnchanged(source.to_string(), count));
            return Ok(true);
        }
        // Writing: answered now, so a miss reads just this file.
        self.write_held()?;
        self.tx_mut().keep_unchanged(source, count)
    }

    fn file_done(&mut self) -> Result<(), StoreError> {
        if self.tx.is_some() || self.held_entities > self.cap {
            self.write_held()?;
        }
        Ok(())
    }

    fn full(&self) -> bool {
        self.held_entities > self.stop_after
    }

    fn writing(&self) -> bool {
        self.tx.is_some()
    }

    fn store(&self) -> Option<Store> {
        Some(self.store.clone())
    }
}

#[derive(Default)]
struct CheckSink {
    problems: Vec<ProblemRecord>,
    seen: HashMap<String, String>,
    collect: bool,
    entities: Vec<Value>,
}

impl Sink for CheckSink {
    fn entity(
        &mut self,
        entity: ValidEntity,
        source: &str,
        line: usize,
    ) -> Result<bool, StoreError> {
        let entity_ref = entity.entity_ref.to_string();
        let here = format!("{}:{line}", display_source(source));
        if let Some(first) = self.seen.get(&entity_ref) {
            self.problems.push(ProblemRecord {
                location_id: String::new(),
                source: source.to_string(),
                line: Some(line as u32),
                column: Some(1),
                entity_ref: Some(entity_ref.clone()),
                field: None,
                message: format!("{entity_ref} is defined twice; first at {first}"),
            });
            return Ok(false);
        }
        self.seen.insert(entity_ref, here);
        if self.collect {
            self.entities.push(entity.value);
        }
        Ok(true)
    }

    fn invalid(
        &mut self,
        _entity_ref: Option<&EntityRef>,
        problems: Vec<ProblemRecord>,
    ) -> Result<(), StoreError> {
        self.problems.extend(problems);
        Ok(())
    }

    fn problem(&mut self, problem: ProblemRecord) {
        self.problems.push(problem);
    }

    fn keep_source(&mut self, _source: &str) {}
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::store::Origin;

    fn component(name: &str, description: &str) -> String {
        format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  description: {description}\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n"
        )
    }

    fn setup(held_entities: usize) -> (tempfile::TempDir, Store, Ingestor, Location) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.db")).unwrap();
        std::fs::create_dir(dir.path().join("org")).unwrap();
        let ingestor = Ingestor::new(
            Arc::new(Kinds::default()),
            Reader::local(1 << 20, Duration::from_secs(5)),
            dir.path().to_path_buf(),
            RefreshLimits {
                max_files: 100,
                max_bytes: 1 << 24,
                held_entities,
            },
        );
        let location = store
            .locations
            .add_location("file", "org/*.yaml", Origin::Config)
            .unwrap();
        (dir, store, ingestor, location)
    }

    fn description(store: &Store, name: &str) -> Option<String> {
        let json = store
            .catalog
            .entity_by_ref(&EntityRef::new("component", "default", name), &[])
            .unwrap()?;
        let v: Value = serde_json::from_str(&json).unwrap();
        v["metadata"]["description"].as_str().map(str::to_string)
    }

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join("org").join(file), text).unwrap();
    }

    fn register(store: &Store, targets: &[&str]) -> Vec<Location> {
        targets
            .iter()
            .map(|t| {
                store
                    .locations
                    .add_location("file", t, Origin::Api)
                    .unwrap()
            })
            .collect()
    }

    fn refresh_group(
        ingestor: &Ingestor,
        store: &Store,
        locations: &[Location],
    ) -> Vec<RefreshSummary> {
        ingestor
            .refresh_group(store, locations)
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    /// Several locations read into one transaction give what each gives
    /// alone: the first claim wins across them, problems stay with their
    /// location, and each keeps what it learned.
    #[test]
    fn locations_refreshed_together_keep_each_ones_rules() {
        // With 1 entity held, each location is too large to hold and is
        // refreshed alone: the same outcome either way.
        for held in [1, HELD_ENTITIES] {
            let (dir, store, ingestor, _) = setup(held);
            let d = dir.path();
            write(
                d,
                "a.yaml",
                &(component("a1", "x") + &component("shared", "a")),
            );
            write(
                d,
                "b.yaml",
                &(component("b1", "x") + &component("shared", "b")),
            );
            write(d, "c.yaml", "kind: [unclosed");
            let locations = register(
                &store,
                &["org/a.yaml", "org/b.yaml", "org/c.yaml", "org/none.yaml"],
            );
            let done = refresh_group(&ingestor, &store, &locations);
            let counts: Vec<(usize, usize)> = done.iter().map(|s| (s.added, s.problems)).collect();
            assert_eq!(
                counts,
                [(2, 0), (1, 1), (0, 1), (0, 1)],
                "held {held}: {done:?}"
            );
            assert_eq!(description(&store, "shared").as_deref(), Some("a"));
            let problems = store.locations.problems(Some(&locations[1].id)).unwrap();
            assert!(
                problems[0].message.contains("first claim wins"),
                "{problems:?}"
            );
            let problems = store.locations.problems(Some(&locations[2].id)).unwrap();
            assert!(
                problems[0].message.contains("YAML syntax error"),
                "{problems:?}"
            );

            // Read again together: what each learned is kept, so the
            // clean file is not parsed again.
            write(d, "b.yaml", &component("b1", "changed"));
            let again = refresh_group(&ingestor, &store, &locations);
            assert_eq!(
                (again[0].unchanged_files, again[0].unchanged),
                (1, 2),
                "{again:?}"
            );
            assert_eq!((again[1].updated, again[1].problems), (1, 0), "{again:?}");
            assert_eq!(description(&store, "b1").as_deref(), Some("changed"));
        }

        // A Location entity naming a URL is read with its group (nothing
        // is written while the group reads).
        let (dir, store, ingestor, _) = setup(HELD_ENTITIES);
        let d = dir.path();
        write(d, "a.yaml", &component("a1", "x"));
        write(
            d,
            "b.yaml",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: far\nspec:\n  target: http://127.0.0.1:9/far.yaml\n",
        );
        let locations = register(&store, &["org/a.yaml", "org/b.yaml"]);
        let done = refresh_group(&ingestor, &store, &locations);
        assert_eq!(done[0].added, 1, "{done:?}");
        assert_eq!((done[1].added, done[1].problems), (1, 1), "{done:?}");
        let problems = store.locations.problems(Some(&locations[1].id)).unwrap();
        assert!(problems[0].message.contains("far.yaml"), "{problems:?}");
    }

    #[test]
    fn unchanged_files_are_kept_unparsed_and_every_change_is_still_seen() {
        let (dir, store, ingestor, location) = setup(HELD_ENTITIES);
        let d = dir.path();
        write(
            d,
            "a.yaml",
            &(component("a1", "first")
                + &component("a2", "x")
                    .replace("description: x", "description:\n    $text: ./a2.txt")),
        );
        write(d, "a2.txt", "from a file");
        write(d, "b.yaml", &component("b1", "bee"));
        let first = ingestor.refresh(&store, &location).unwrap();
        assert_eq!((first.added, first.unchanged_files), (3, 0));
        assert_eq!(description(&store, "a2").as_deref(), Some("from a file"));

        let again = ingestor.refresh(&store, &location).unwrap();
        assert_eq!(
            (
                again.added,
                again.updated,
                again.unchanged,
                again.unchanged_files
            ),
            (0, 0, 3, 2),
            "{again:?}"
        );

        // A substituted file changes: its catalog file is read again.
        write(d, "a2.txt", "changed");
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!(
            (s.updated, s.unchanged, s.unchanged_files),
            (1, 2, 1),
            "{s:?}"
        );
        assert_eq!(description(&store, "a2").as_deref(), Some("changed"));

        // The file itself changes.
        write(d, "b.yaml", &component("b1", "wasp"));
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!((s.updated, s.unchanged_files), (1, 1), "{s:?}");
        assert_eq!(description(&store, "b1").as_deref(), Some("wasp"));

        // Something else removed a stored entity: the file is read again
        // and gives it back.
        rusqlite::Connection::open(d.join("g.db"))
            .unwrap()
            .execute("DELETE FROM entities WHERE name = 'a1'", [])
            .unwrap();
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!((s.added, s.unchanged_files), (1, 1), "{s:?}");
        assert_eq!(description(&store, "a1").as_deref(), Some("first"));

        // A file removed takes its entities with it.
        std::fs::remove_file(d.join("org/b.yaml")).unwrap();
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!((s.removed, s.unchanged_files), (1, 1), "{s:?}");
        assert_eq!(description(&store, "b1"), None);
    }

    #[test]
    fn a_file_being_read_does_not_hold_the_write_lock() {
        use std::io::Write;
        let (dir, store, ingestor, location) = setup(HELD_ENTITIES);
        let d = dir.path();
        write(
            d,
            "a.yaml",
            &component("a", "x").replace("description: x", "description:\n    $text: ./slow.txt"),
        );
        // A named pipe: reading it waits until the test writes to it.
        let pipe_path = d.join("org/slow.txt");
        let made = std::process::Command::new("mkfifo")
            .arg(&pipe_path)
            .status()
            .unwrap();
        assert!(made.success());
        std::thread::scope(|s| {
            let refreshing = s.spawn(|| ingestor.refresh(&store, &location));
            // Opening the pipe to write waits until the refresh reads it.
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(&pipe_path)
                .unwrap();
            let (done, written) = std::sync::mpsc::channel();
            let writer = store.clone();
            s.spawn(move || {
                let _ = done.send(writer.plugin_state.kv_set("test", "k", b"v", None, 100));
            });
            // Before, the write waited for the file (it would wait forever).
            let written = written
                .recv_timeout(Duration::from_secs(30))
                .expect("a store write waited for a file being read");
            assert!(written.unwrap());
            assert!(!refreshing.is_finished(), "the file is still being read");
            // What can wait for the refresh (search indexing) sees it.
            assert!(ingestor.is_refreshing());
            pipe.write_all(b"from a pipe").unwrap();
            drop(pipe);
            let summary = refreshing.join().unwrap().unwrap();
            assert_eq!(summary.added, 1, "{summary:?}");
        });
        assert_eq!(description(&store, "a").as_deref(), Some("from a pipe"));
        assert!(!ingestor.is_refreshing());
    }

    #[test]
    fn a_refresh_too_big_to_hold_writes_as_it_reads_and_still_skips_unchanged_files() {
        // Holding at most one entity: the second file starts the writing.
        let (dir, store, ingestor, location) = setup(1);
        let d = dir.path();
        write(
            d,
            "a.yaml",
            &(component("a1", "one") + &component("a2", "two")),
        );
        write(d, "b.yaml", &component("b1", "bee"));
        write(d, "c.yaml", &component("b1", "again"));
        let first = ingestor.refresh(&store, &location).unwrap();
        assert_eq!((first.added, first.problems), (3, 1), "{first:?}");
        let again = ingestor.refresh(&store, &location).unwrap();
        assert_eq!(
            (again.unchanged, again.unchanged_files),
            (3, 2),
            "{again:?}"
        );
        // A held unchanged file lost an entity: done again, reading it.
        rusqlite::Connection::open(d.join("g.db"))
            .unwrap()
            .execute("DELETE FROM entities WHERE name = 'a1'", [])
            .unwrap();
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!(
            (s.added, s.unchanged, s.unchanged_files),
            (1, 2, 1),
            "{s:?}"
        );
        assert_eq!(description(&store, "a1").as_deref(), Some("one"));
        assert_eq!(description(&store, "b1").as_deref(), Some("bee"));
        let s = ingestor.refresh(&store, &location).unwrap();
        assert_eq!(s.unchanged_files, 2, "{s:?}");
    }

    #[test]
    fn files_with_problems_are_read_on_every_refresh() {
        let (dir, store, ingestor, location) = setup(HELD_ENTITIES);
        let d = dir.path();
        write(d, "a.yaml", &component("dup", "first"));
        write(d, "b.yaml", &component("dup", "second"));
        write(
            d,
            "c.yaml",
            &component("bad", "x").replace("  owner: team-a\n", ""),
        );
        for round in 0..3 {
            let s = ingestor.refresh(&store, &location).unwrap();
            // Only a.yaml is clean: b.yaml's entity is a duplicate and
            // c.yaml's is invalid, so both give their problems each time.
            if round > 0 {
                assert_eq!(s.unchanged_files, 1, "round {round}: {s:?}");
            }
            let problems = store.locations.problems(Some(&location.id)).unwrap();
            assert_eq!(problems.len(), 2, "round {round}: {problems:?}");
            assert!(problems.iter().any(|p| p.message.contains("defined twice")));
            assert!(problems.iter().any(|p| p.source.ends_with("c.yaml")));
            assert_eq!(description(&store, "dup").as_deref(), Some("first"));
        }
    }
}
