//! The query index: what Backstage's `by-query` asks of the catalog, kept
//! in memory so that a filtered page with its total, or a full-text filter,
//! costs milliseconds at 100,000 entities and grows sub-linearly beyond.
//!
//! - **Filters**: the entities of each `(key, value)` of the `search` table
//!   a filter names, as compressed bitmaps (`roaring`), loaded on first use
//!   and kept current. A total is the size of a bitmap expression: nothing
//!   is rescanned.
//! - **Order**: every entity by `(name, id)`. A page walks that order from
//!   its cursor and skips unselected entities when the selection is dense,
//!   or sorts just the selection when it is sparse; either way the work is
//!   about √(limit × entities), never all of them.
//! - **Full text**: the trigrams of each entity's name, title and profile
//!   display name (the fields the Backstage frontend searches); a term's
//!   candidates are the intersection of its trigrams' bitmaps, each checked
//!   against its text.
//!
//! **Invariant:** the index follows `entity_changes` (the writer records
//! the id of every entity added, changed or removed: `write::record_change`
//! and `delete_location`). Each query
//! first applies what changed since the last one, on its own read
//! connection, so it sees every committed write, made by this process or
//! another on the same file. A gap in the feed, or a change too large to
//! apply piecemeal, rebuilds the index from the tables; it can always be
//! rebuilt, and holds nothing the store does not.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Mutex;

use roaring::RoaringBitmap;
use rusqlite::{Connection, params};

use super::StoreError;

/// Changes applied one by one; past this many, the index is rebuilt.
const REBUILD_AFTER: usize = 20_000;

/// Filter postings kept at most; past this many the cache starts again.
const MAX_POSTINGS: usize = 2048;

/// The profile display name's key in `search` (keys are lower-cased).
const DISPLAY_NAME: &str = "spec.profile.displayname";

/// A text field the index answers full-text filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TextField {
    Name,
    Title,
    DisplayName,
}

impl TextField {
    /// The field a `fullTextFilterFields` entry names, when indexed.
    pub(super) fn of(field: &str) -> Option<TextField> {
        match field {
            "metadata.name" => Some(TextField::Name),
            "metadata.title" => Some(TextField::Title),
            DISPLAY_NAME => Some(TextField::DisplayName),
            _ => None,
        }
    }
}

/// What a full-text filter searches, lower-cased.
#[derive(Default)]
struct Texts {
    name: Box<str>,
    title: Option<Box<str>>,
    display: Option<Box<str>>,
}

impl Texts {
    fn get(&self, field: TextField) -> Option<&str> {
        match field {
            TextField::Name => Some(&self.name),
            TextField::Title => self.title.as_deref(),
            TextField::DisplayName => self.display.as_deref(),
        }
    }

    /// The distinct trigrams of every field.
    fn trigrams(&self) -> HashSet<u32> {
        let mut out = HashSet::new();
        for text in [
            Some(&*self.name),
            self.title.as_deref(),
            self.display.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            out.extend(trigrams(text));
        }
        out
    }
}

/// The byte trigrams of a text, each packed into a `u32`. Matching bytes
/// is matching characters: a UTF-8 needle found in UTF-8 text always
/// starts and ends on character boundaries.
fn trigrams(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.as_bytes()
        .windows(3)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], 0]))
}

/// The index proper, as of change `seq` of `entity_changes`.
struct Index {
    seq: i64,
    /// Texts by entity id (ids are SQLite rowids: small and dense).
    texts: Vec<Option<Texts>>,
    all: RoaringBitmap,
    by_name: BTreeSet<(Box<str>, u32)>,
    trigrams: HashMap<u32, RoaringBitmap>,
    /// `key → value → entities`, for the values filters have asked for.
    values: HashMap<String, HashMap<String, RoaringBitmap>>,
    /// `key → entities that have it`, for existence filters.
    exists: HashMap<String, RoaringBitmap>,
    postings: usize,
    /// The entities each recent full-text term matched, in the whole
    /// catalog: dropped at the first change. A word in 5 % of a million
    /// names has 50,000 candidates to check (8 ms); typing, paging and
    /// the same search again ask it again.
    text_memo: HashMap<(Box<str>, Vec<TextField>), RoaringBitmap>,
}

/// Full-text terms remembered at most (each a bitmap of its matches).
const TEXT_MEMO: usize = 64;

/// The newest change the feed has handed out (0 before the first).
fn feed_head(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'entity_changes'), 0)",
        )?
        .query_row([], |r| r.get(0))?)
}

fn id32(id: i64) -> Result<u32, StoreError> {
    u32::try_from(id).map_err(|_| StoreError::Corrupt(format!("entity id {id} out of range")))
}

impl Index {
    /// Reads the whole catalog's texts and order, in one read transaction
    /// so that `seq` and the rows agree.
    fn build(conn: &Connection) -> Result<Index, StoreError> {
        let tx = conn.unchecked_transaction()?;
        let seq = feed_head(&tx)?;
        let mut index = Index {
            seq,
            texts: Vec::new(),
            all: RoaringBitmap::new(),
            by_name: BTreeSet::new(),
            trigrams: HashMap::new(),
            values: HashMap::new(),
            exists: HashMap::new(),
            postings: 0,
            text_memo: HashMap::new(),
        };
        {
            let mut stmt = tx.prepare("SELECT id, name, title FROM entities")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id = id32(row.get(0)?)?;
                let texts = Texts {
                    name: row.get::<_, String>(1)?.into(),
                    title: row.get::<_, Option<String>>(2)?.map(Into::into),
                    display: None,
                };
                index.slot(id).replace(texts);
            }
            let mut stmt = tx.prepare("SELECT entity_id, value FROM search WHERE key = ?1")?;
            let mut rows = stmt.query([DISPLAY_NAME])?;
            while let Some(row) = rows.next()? {
                let id = id32(row.get(0)?)?;
                if let Some(Some(t)) = index.texts.get_mut(id as usize) {
                    t.display = Some(row.get::<_, String>(1)?.into());
                }
            }
        }
        tx.commit()?;
        // Trigram postings built from sorted pairs, each bitmap appended in
        // id order (much cheaper than inserting at random).
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (id, texts) in index.texts.iter().enumerate() {
            let Some(t) = texts else { continue };
            let id = id as u32;
            index.all.insert(id);
            index.by_name.insert((t.name.clone(), id));
            pairs.extend(t.trigrams().into_iter().map(|g| (g, id)));
        }
        pairs.sort_unstable();
        for chunk in pairs.chunk_by(|a, b| a.0 == b.0) {
            let ids = RoaringBitmap::from_sorted_iter(chunk.iter().map(|p| p.1))
                .map_err(|e| StoreError::Corrupt(format!("trigram postings: {e}")))?;
            index.trigrams.insert(chunk[0].0, ids);
        }
        Ok(index)
    }

    fn slot(&mut self, id: u32) -> &mut Option<Texts> {
        let i = id as usize;
        if self.texts.len() <= i {
            self.texts.resize_with(i + 1, || None);
        }
        &mut self.texts[i]
    }

    /// Brings the index to the newest change. `Ok(false)` when it must be
    /// rebuilt instead (a gap in the feed, or too much to apply).
    fn catch_up(&mut self, conn: &Connection) -> Result<bool, StoreError> {
        let head = feed_head(conn)?;
        if head == self.seq {
            return Ok(true);
        }
        if head < self.seq || (head - self.seq) as usize > REBUILD_AFTER {
            return Ok(false);
        }
        let changes: Vec<(i64, Option<i64>)> = conn
            .prepare_cached(
                "SELECT seq, entity_id FROM entity_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![self.seq, REBUILD_AFTER as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        // Sequence numbers of committed changes are consecutive: a first
        // one further on means the feed was trimmed past this index.
        match changes.first() {
            Some((first, _)) if *first == self.seq + 1 => {}
            _ => return Ok(false),
        }
        let mut ids = Vec::with_capacity(changes.len());
        for (_, id) in &changes {
            match id {
                Some(id) => ids.push(id32(*id)?),
                // A change recorded before the feed carried ids.
                None => return Ok(false),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.remove(id);
            self.insert(conn, id)?;
        }
        self.seq = changes.last().map_or(self.seq, |c| c.0);
        Ok(true)
    }

    /// The entities of `within` where any of `fields` contains `term`
    /// (both lower-cased): the candidates its trigrams allow, each checked.
    fn text(&self, term: &str, fields: &[TextField], within: &RoaringBitmap) -> RoaringBitmap {
        let mut candidates = within.clone();
        if term.len() >= 3 {
            // Each trigram's bitmap, smallest first, so the intersection
            // shrinks fastest.
            let mut grams: Vec<&RoaringBitmap> = Vec::new();
            for g in trigrams(term) {
                match self.trigrams.get(&g) {
                    Some(ids) => grams.push(ids),
                    None => return RoaringBitmap::new(),
                }
            }
            grams.sort_by_key(|ids| ids.len());
            for ids in grams {
                candidates &= ids;
                if candidates.is_empty() {
                    break;
                }
            }
        }
        // A term of one or two characters has no trigram: every entity of
        // `within` is checked (such a term matches most of them anyway).
        let finder = memchr::memmem::Finder::new(term.as_bytes());
        candidates
            .iter()
            .filter(|&id| {
                self.texts
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|t| {
                        fields.iter().any(|f| {
                            t.get(*f)
                                .is_some_and(|text| finder.find(text.as_bytes()).is_some())
                        })
                    })
            })
            .collect()
    }

    fn remove(&mut self, id: u32) {
        self.text_memo.clear();
        let Some(Some(old)) = self.texts.get_mut(id as usize).map(Option::take) else {
            return;
        };
        self.all.remove(id);
        self.by_name.remove(&(old.name.clone(), id));
        for g in old.trigrams() {
            if let Some(ids) = self.trigrams.get_mut(&g) {
                ids.remove(id);
                if ids.is_empty() {
                    self.trigrams.remove(&g);
                }
            }
        }
        for ids in self.values.values_mut().flat_map(HashMap::values_mut) {
            ids.remove(id);
        }
        for ids in self.exists.values_mut() {
            ids.remove(id);
        }
    }

    /// Adds entity `id` as it is stored now (nothing when it is gone).
    fn insert(&mut self, conn: &Connection, id: u32) -> Result<(), StoreError> {
        let row: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT name, title FROM entities WHERE id = ?1")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .next()
            .transpose()?;
        let Some((name, title)) = row else {
            return Ok(());
        };
        let mut texts = Texts {
            name: name.into(),
            title: title.map(Into::into),
            display: None,
        };
        let mut stmt = conn.prepare_cached("SELECT key, value FROM search WHERE entity_id = ?1")?;
        let mut rows = stmt.query([id])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let value: String = row.get(1)?;
            if let Some(ids) = self.exists.get_mut(&key) {
                ids.insert(id);
            }
            if let Some(ids) = self.values.get_mut(&key).and_then(|v| v.get_mut(&value)) {
                ids.insert(id);
            }
            if key == DISPLAY_NAME {
                texts.display = Some(value.into());
            }
        }
        for g in texts.trigrams() {
            self.trigrams.entry(g).or_default().insert(id);
        }
        self.all.insert(id);
        self.by_name.insert((texts.name.clone(), id));
        *self.slot(id) = Some(texts);
        Ok(())
    }

    /// The entities whose `key` has `value` (any value when `None`),
    /// loaded from `search` on first use.
    fn posting(
        &mut self,
        conn: &Connection,
        key: &str,
        value: Option<&str>,
    ) -> Result<&RoaringBitmap, StoreError> {
        let cached = match value {
            Some(v) => self.values.get(key).is_some_and(|m| m.contains_key(v)),
            None => self.exists.contains_key(key),
        };
        if !cached {
            if self.postings >= MAX_POSTINGS {
                self.values.clear();
                self.exists.clear();
                self.postings = 0;
            }
            let ids = match value {
                Some(v) => load(
                    conn,
                    "SELECT entity_id FROM search WHERE key = ?1 AND value = ?2",
                    params![key, v],
                )?,
                None => load(
                    conn,
                    "SELECT entity_id FROM search WHERE key = ?1",
                    params![key],
                )?,
            };
            self.postings += 1;
            match value {
                Some(v) => {
                    self.values
                        .entry(key.to_string())
                        .or_default()
                        .insert(v.to_string(), ids);
                }
                None => {
                    self.exists.insert(key.to_string(), ids);
                }
            }
        }
        Ok(match value {
            Some(v) => &self.values[key][v],
            None => &self.exists[key],
        })
    }
}

/// The entity ids a query's first column gives.
pub(super) fn load(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<RoaringBitmap, StoreError> {
    let mut out = RoaringBitmap::new();
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    while let Some(row) = rows.next()? {
        out.insert(id32(row.get(0)?)?);
    }
    Ok(out)
}

/// The query index of one store; see the module documentation.
#[derive(Default)]
pub(super) struct QueryIndex(Mutex<Option<Index>>);

/// The index, current as of the connection's view of the store, for the
/// length of one query.
pub(super) struct Current<'a> {
    guard: std::sync::MutexGuard<'a, Option<Index>>,
    conn: &'a Connection,
}

impl QueryIndex {
    /// Locks the index and brings it up to date on `conn`.
    pub(super) fn current<'a>(&'a self, conn: &'a Connection) -> Result<Current<'a>, StoreError> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match guard.as_mut() {
            Some(index) => index.catch_up(conn)?,
            None => false,
        };
        if !fresh {
            *guard = None;
            *guard = Some(Index::build(conn)?);
        }
        Ok(Current { guard, conn })
    }

    /// The change this index has applied, when it has been built: the
    /// feed must not be trimmed past it (unless it lags so far that it
    /// would be rebuilt anyway).
    pub(super) fn keep_changes_after(&self, seq: i64) -> i64 {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(index) if seq - index.seq <= REBUILD_AFTER as i64 => seq.min(index.seq),
            _ => seq,
        }
    }
}

impl Current<'_> {
    fn index(&mut self) -> &mut Index {
        self.guard.as_mut().expect("built by QueryIndex::current")
    }

    pub(super) fn all(&mut self) -> RoaringBitmap {
        self.index().all.clone()
    }

    /// The entities whose `key` has any of `values` (or any value at all).
    pub(super) fn search(
        &mut self,
        key: &str,
        values: &[String],
    ) -> Result<RoaringBitmap, StoreError> {
        let conn = self.conn;
        let index = self.index();
        if values.is_empty() {
            return Ok(index.posting(conn, key, None)?.clone());
        }
        let mut out = RoaringBitmap::new();
        for v in values {
            out |= index.posting(conn, key, Some(v))?;
        }
        Ok(out)
    }

    /// The entities of `within` where any of `fields` contains `term`
    /// (both lower-cased).
    pub(super) fn text(
        &mut self,
        term: &str,
        fields: &[TextField],
        within: &RoaringBitmap,
    ) -> RoaringBitmap {
        let index = self.index();
        // Without trigrams, only what `within` holds is checked.
        if term.len() < 3 {
            return index.text(term, fields, within);
        }
        let key = (Box::<str>::from(term), fields.to_vec());
        if let Some(matched) = index.text_memo.get(&key) {
            return matched & within;
        }
        let matched = index.text(term, fields, &index.all);
        if index.text_memo.len() >= TEXT_MEMO {
            index.text_memo.clear();
        }
        let answer = &matched & within;
        index.text_memo.insert(key, matched);
        answer
    }
    /// Up to `take` entities of `selected` in name order, after (or, walking
    /// backwards, before) `from`, with their names.
    pub(super) fn by_name(
        &mut self,
        selected: &RoaringBitmap,
        from: Option<(&str, u32)>,
        ascending: bool,
        take: usize,
    ) -> Vec<(String, u32)> {
        let index = self.index();
        let n = selected.len() as usize;
        // Walking the order visits about take × total / n entities; sorting
        // the selection costs about n. Walk while that is the cheaper, and
        // stop walking once it has cost as much as sorting would.
        if n * n > take * index.all.len() as usize {
            let start = from.map(|(name, id)| (Box::<str>::from(name), id));
            let range = match (&start, ascending) {
                (Some(k), true) => index.by_name.range((Bound::Excluded(k), Bound::Unbounded)),
                (Some(k), false) => index.by_name.range((Bound::Unbounded, Bound::Excluded(k))),
                (None, _) => index.by_name.range::<(Box<str>, u32), _>(..),
            };
            let walk: Box<dyn Iterator<Item = &(Box<str>, u32)>> = if ascending {
                Box::new(range)
            } else {
                Box::new(range.rev())
            };
            let budget = n.max(1024);
            let mut out = Vec::with_capacity(take);
            let mut cut = false;
            for (steps, (name, id)) in walk.enumerate() {
                if steps == budget {
                    cut = true;
                    break;
                }
                if selected.contains(*id) {
                    out.push((name.to_string(), *id));
                    if out.len() == take {
                        return out;
                    }
                }
            }
            if !cut {
                return out;
            }
        }
        let mut keyed: Vec<(&str, u32)> = selected
            .iter()
            .filter_map(|id| {
                let t = index.texts.get(id as usize)?.as_ref()?;
                let key = (&*t.name, id);
                let after = match from {
                    None => true,
                    Some(f) if ascending => key > f,
                    Some(f) => key < f,
                };
                after.then_some(key)
            })
            .collect();
        let order = |a: &(&str, u32), b: &(&str, u32)| {
            if ascending { a.cmp(b) } else { b.cmp(a) }
        };
        if keyed.len() > take {
            keyed.select_nth_unstable_by(take, order);
            keyed.truncate(take);
        }
        keyed.sort_unstable_by(order);
        keyed
            .into_iter()
            .map(|(name, id)| (name.to_string(), id))
            .collect()
    }
}

/// By-query through the index must give exactly what a naive evaluation
/// of the same catalog gives: every page, both directions, the totals, and
/// full text on names, titles (mixed case, non-ASCII) and display names;
/// again after a refresh that renames, retitles, moves and removes
/// entities; and again after another handle on the same file writes and
/// trims the change feed.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::{
        Catalog, ChangeFeed, Draft, Filter, FullText, Locations, Order, Origin, PageQuery, Sqlite,
    };
    use crate::catalog::Kinds;

    const N: usize = 4500;
    const WORDS: [&str; 8] = [
        "alpha", "Bravo", "charlie", "delta", "echo", "Foxtrot", "golf", "zeta",
    ];

    /// What the naive evaluation knows of an entity, lower-cased.
    #[derive(Clone)]
    struct Model {
        name: String,
        title: Option<String>,
        display: Option<String>,
        kind: &'static str,
        ty: &'static str,
        owner: String,
        lifecycle: &'static str,
        depends: bool,
    }

    /// Entity `i` as of `round` (0: first; 1: after a refresh that
    /// removes, renames, retitles and moves some).
    fn entity(i: usize, round: u8) -> Option<(Value, Model)> {
        if round == 1 && i.is_multiple_of(13) {
            return None;
        }
        let renamed = if round == 1 && i % 17 == 5 { "-x" } else { "" };
        let name = format!(
            "{}-{}-{:04}{renamed}",
            WORDS[(i * 7) % 8],
            WORDS[(i / 8) % 8],
            (i * 7919) % N
        );
        let owner = if round == 1 && i % 23 == 1 {
            "team-9".to_string()
        } else {
            format!("team-{}", i % 7)
        };
        let lifecycle = ["production", "experimental"][i % 2];
        if i.is_multiple_of(4) {
            let display = format!("Dr {} Ünïcode {}", WORDS[i % 8].to_uppercase(), i % 100);
            let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "User",
                "metadata": {"name": name},
                "spec": {"profile": {"displayName": display}, "memberOf": [owner]}});
            let m = Model {
                name: name.to_lowercase(),
                title: None,
                display: Some(display.to_lowercase()),
                kind: "user",
                ty: "",
                owner: String::new(),
                lifecycle: "",
                depends: false,
            };
            return Some((v, m));
        }
        let ty = ["service", "website", "library"][i % 3];
        let title = match (i % 5, round == 1 && i % 19 == 2) {
            (_, true) => Some(format!("Retitled GRÖSSE {i}")),
            (0, _) => None,
            (1, _) => Some(format!("The {} Größe Service", WORDS[(i + 3) % 8])),
            _ => Some(format!(
                "{} service {}",
                WORDS[(i + 5) % 8].to_uppercase(),
                i
            )),
        };
        let mut spec = json!({"type": ty, "lifecycle": lifecycle, "owner": owner});
        if i.is_multiple_of(11) {
            spec["dependsOn"] = json!(["resource:r-0"]);
        }
        let mut metadata = json!({"name": name});
        if let Some(t) = &title {
            metadata["title"] = json!(t);
        }
        let v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": metadata, "spec": spec});
        let m = Model {
            name: name.to_lowercase(),
            title: title.map(|t| t.to_lowercase()),
            display: None,
            kind: "component",
            ty,
            owner,
            lifecycle,
            depends: i.is_multiple_of(11),
        };
        Some((v, m))
    }

    fn write(store: &Sqlite, location: &str, entities: &[(Value, Model)]) {
        let loc = store
            .ensure_location("file", location, Origin::Config)
            .unwrap();
        let mut tx = store.begin_refresh(&loc.id).unwrap();
        let kinds = Kinds::default();
        for (v, _) in entities {
            let source = format!("file:{location}");
            tx.put(
                Draft::of(kinds.validate(v.clone()).unwrap()).unwrap(),
                &source,
            )
            .unwrap()
            .unwrap();
        }
        tx.commit().unwrap();
    }

    /// One query of the table: the by-query parameters and the naive
    /// predicate they stand for.
    struct Case {
        filter: &'static [&'static str],
        term: Option<(&'static str, &'static [&'static str])>,
        desc: bool,
        limit: usize,
        pred: fn(&Model) -> bool,
    }

    fn contains(text: &Option<String>, term: &str) -> bool {
        text.as_deref().is_some_and(|t| t.contains(term))
    }

    fn cases() -> Vec<Case> {
        let c = |filter, term, desc, limit, pred| Case {
            filter,
            term,
            desc,
            limit,
            pred,
        };
        vec![
            c(&[], None, false, 400, |_| true),
            c(&["kind=component"], None, false, 250, |m| {
                m.kind == "component"
            }),
            c(&["kind=component,spec.type=service"], None, true, 97, |m| {
                m.kind == "component" && m.ty == "service"
            }),
            c(
                &["kind=component,spec.owner=team-3"],
                None,
                false,
                30,
                |m| m.kind == "component" && m.owner == "team-3",
            ),
            c(
                &["kind=user", "spec.owner=team-2,spec.owner=team-9"],
                None,
                true,
                120,
                |m| m.kind == "user" || m.owner == "team-2" || m.owner == "team-9",
            ),
            c(&["spec.dependsOn"], None, false, 25, |m| m.depends),
            c(
                &["relations.dependsOn=resource:default/r-0,spec.lifecycle=production"],
                None,
                false,
                20,
                |m| m.depends && m.lifecycle == "production",
            ),
            // Full text, default fields (name and title), mixed case.
            c(&[], Some(("ALPHA", &[])), false, 60, |m| {
                m.name.contains("alpha") || contains(&m.title, "alpha")
            }),
            c(&["kind=component"], Some(("größe", &[])), true, 45, |m| {
                m.kind == "component" && (m.name.contains("größe") || contains(&m.title, "größe"))
            }),
            // A contiguous run of names (all start with "zeta-"), walked
            // from the far end with a small page: the walk gives up and
            // sorts the selection.
            c(&[], Some(("zeta-", &["metadata.name"])), false, 10, |m| {
                m.name.contains("zeta-")
            }),
            c(&[], Some(("zeta-", &["metadata.name"])), true, 10, |m| {
                m.name.contains("zeta-")
            }),
            c(&[], Some(("Echo", &["metadata.title"])), false, 80, |m| {
                contains(&m.title, "echo")
            }),
            c(
                &[],
                Some(("charlie-bravo", &["metadata.name", "metadata.title"])),
                false,
                15,
                |m| m.name.contains("charlie-bravo") || contains(&m.title, "charlie-bravo"),
            ),
            c(
                &["kind=user"],
                Some(("ünï", &["spec.profile.displayName"])),
                false,
                200,
                |m| m.kind == "user" && contains(&m.display, "ünï"),
            ),
            // One- and two-character terms have no trigram.
            c(&["spec.type=website"], Some(("ö", &[])), false, 50, |m| {
                m.ty == "website" && (m.name.contains('ö') || contains(&m.title, "ö"))
            }),
            c(&["kind=component"], Some(("9", &[])), true, 300, |m| {
                m.kind == "component" && (m.name.contains('9') || contains(&m.title, "9"))
            }),
            // A field the index does not keep goes through SQL.
            c(
                &["kind=component"],
                Some(("periment", &["spec.lifecycle"])),
                false,
                300,
                |m| m.kind == "component" && m.lifecycle.contains("periment"),
            ),
            c(&[], Some(("no-such-thing", &[])), false, 20, |_| false),
        ]
    }

    fn names(items: &[String]) -> Vec<String> {
        items
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e).unwrap()["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
            })
            .collect()
    }

    /// Pages through every case forwards, then back from the last page,
    /// and compares with the naive answer.
    fn check(store: &Sqlite, models: &[Model], when: &str) {
        for (n, case) in cases().iter().enumerate() {
            let mut expected: Vec<String> = models
                .iter()
                .filter(|m| (case.pred)(m))
                .map(|m| m.name.clone())
                .collect();
            expected.sort();
            if case.desc {
                expected.reverse();
            }
            let what = format!("{when}, case {n} ({:?} {:?})", case.filter, case.term);
            let mut q = PageQuery {
                filter: Filter::parse(case.filter.iter().copied()).unwrap(),
                order: Some(
                    Order::parse_suffixed(if case.desc {
                        "metadata.name,desc"
                    } else {
                        "metadata.name,asc"
                    })
                    .unwrap(),
                ),
                full_text: case.term.map(|(t, f)| {
                    FullText::new(t, &f.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                }),
                limit: case.limit,
                fields: vec!["metadata.name".into()],
                ..PageQuery::default()
            };
            let mut pages: Vec<Vec<String>> = Vec::new();
            let mut prev;
            loop {
                let page = store.page(&q).unwrap().unwrap();
                assert_eq!(page.total_items, expected.len() as i64, "total, {what}");
                pages.push(names(&page.items));
                prev = page.prev_cursor;
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
                assert!(pages.len() <= N, "endless paging, {what}");
            }
            assert_eq!(pages.concat(), expected, "forward pages, {what}");
            // Back from the last page to the first.
            let mut back: Vec<Vec<String>> = Vec::new();
            let mut cursor = prev;
            while let Some(c) = cursor {
                q.cursor = Some(c);
                let page = store.page(&q).unwrap().unwrap();
                assert_eq!(page.items.len(), case.limit, "a full page back, {what}");
                back.insert(0, names(&page.items));
                cursor = page.prev_cursor;
            }
            let all_but_last = pages[..pages.len() - 1].concat();
            assert_eq!(back.concat(), all_but_last, "backward pages, {what}");
        }
    }

    #[test]
    fn by_query_agrees_with_a_naive_evaluation_through_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let store = Sqlite::open(&path).unwrap();
        let round =
            |r: u8| -> Vec<(Value, Model)> { (0..N).filter_map(|i| entity(i, r)).collect() };

        let first = round(0);
        write(&store, "x.yaml", &first);
        let mut models: Vec<Model> = first.iter().map(|e| e.1.clone()).collect();
        check(&store, &models, "first ingest");

        // Changes applied to the built index one by one.
        let second = round(1);
        write(&store, "x.yaml", &second);
        models = second.iter().map(|e| e.1.clone()).collect();
        check(&store, &models, "after a refresh");

        // Another handle on the same file writes, then trims the change
        // feed past what this handle's index has read: seen all the same.
        let other = Sqlite::open(&path).unwrap();
        let extra: Vec<(Value, Model)> = (N..N + 300).filter_map(|i| entity(i, 0)).collect();
        write(&other, "y.yaml", &extra);
        other.forget_entity_changes(i64::MAX).unwrap();
        models.extend(extra.iter().map(|e| e.1.clone()));
        check(
            &store,
            &models,
            "after another handle wrote and trimmed the feed",
        );
    }
}
