//! Global search: a tantivy index on disk beside the store, of every
//! entity (name, title, description, tags, kind, type, owner, system,
//! links, annotation values) and of the documents plugins contribute
//! (TechDocs pages and the like).
//!
//! Relevance is built, not parsed: a query is split into words like the
//! index splits text; every word must match somewhere; a word matches the
//! name before the title, the title before tags and description, those
//! before the rest; the last word matches as a prefix (as you type); words
//! of four letters or more forgive a typo (eight or more, two). An exact
//! name outranks everything. No query syntax means no syntax errors.
//!
//! The index is rebuilt when it is missing, unreadable or of another
//! schema version; otherwise it follows the catalog through the
//! `entity_changes` table, where the store records every entity change.

pub mod background;
pub mod indexer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::query::{
    AutomatonWeight, BooleanQuery, BoostQuery, DfaWrapper, EnableScoring, FuzzyTermQuery, Occur,
    Query, TermQuery, Weight,
};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, OwnedValue, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// A typo or prefix automaton built once and matched in several fields:
/// what `FuzzyTermQuery` does per field, with one build instead of one per
/// field (scores are the same: both are an `AutomatonWeight`).
#[derive(Clone)]
struct Shared {
    /// `None` when the word cannot make one (it then matches nothing).
    automaton: Option<Arc<DfaWrapper>>,
    field: Field,
}

impl Shared {
    fn automaton(query: FuzzyTermQuery) -> Shared {
        Shared {
            automaton: query.automaton().ok().map(Arc::new),
            field: Field::from_field_id(0),
        }
    }

    fn on(&self, field: Field) -> Box<dyn Query> {
        Box::new(Shared {
            automaton: self.automaton.clone(),
            field,
        })
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("field", &self.field)
            .finish()
    }
}

impl Query for Shared {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(match &self.automaton {
            Some(a) => Box::new(AutomatonWeight::<DfaWrapper>::new(self.field, a.clone())),
            None => Box::new(tantivy::query::EmptyWeight),
        })
    }
}

/// Bump when the fields change: an index of another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 2;

const TOKENIZER: &str = "greenroom";

/// Longest query read, and most words used from it.
const MAX_QUERY_CHARS: usize = 256;
const MAX_WORDS: usize = 12;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    doc_type: Field,
    entity_ref: Field,
    kind: Field,
    owner: Field,
    spec_type: Field,
    name_exact: Field,
    name: Field,
    title: Field,
    tags: Field,
    description: Field,
    body: Field,
    location: Field,
    /// Hashes of kind, type and owner, for counting facets without
    /// touching term dictionaries (see `FacetNames`).
    facet_codes: [Field; 3],
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        doc_type: b.add_text_field("doc_type", STRING | STORED),
        entity_ref: b.add_text_field("entity_ref", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        owner: b.add_text_field("owner", STRING | STORED),
        spec_type: b.add_text_field("spec_type", STRING | STORED),
        name_exact: b.add_text_field("name_exact", STRING),
        name: b.add_text_field("name", text(true)),
        title: b.add_text_field("title", text(true)),
        tags: b.add_text_field("tags", text(false)),
        description: b.add_text_field("description", text(true)),
        body: b.add_text_field("body", text(true)),
        location: b.add_text_field("location", STORED),
        facet_codes: FACETS.map(|name| b.add_u64_field(&format!("facet_{name}"), FAST)),
    };
    (b.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .build()
}

/// One document to index.
#[derive(Debug, Clone, Default)]
pub struct SearchDoc {
    /// Unique in the index: `entity:<ref>` or `plugin:<id>:<ref>:<doc id>`.
    pub id: String,
    /// `entity` or `document`.
    pub doc_type: String,
    pub entity_ref: String,
    /// Lower case: `component`, or for documents `docs`.
    pub kind: String,
    pub owner: String,
    pub spec_type: String,
    pub name: String,
    pub title: String,
    pub tags: Vec<String>,
    pub description: String,
    pub body: String,
    /// Where the portal shows it.
    pub location: String,
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    pub kind: Option<String>,
    pub owner: Option<String>,
    pub spec_type: Option<String>,
    /// Only documents of this type: `entity`, or a plugin's (`docs`, …).
    pub doc_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    pub score: f32,
    #[serde(rename = "type")]
    pub doc_type: String,
    pub entity_ref: String,
    pub kind: String,
    pub name: String,
    pub title: String,
    pub owner: String,
    pub location: String,
    /// HTML with matched words in `<b>`; everything else escaped.
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Counts per kind, type and owner over every match.
    pub facets: std::collections::BTreeMap<String, Vec<(String, u64)>>,
}

/// The facets, in the order of `Fields::facet_codes`.
const FACETS: [&str; 3] = ["kind", "type", "owner"];

/// Facet values by their hash. Counting hashes read from a fast field is
/// cheap; turning term ordinals back into text means decompressing
/// dictionary blocks (half of a 35 ms query when measured). The names are
/// learnt as documents are added and, for an index opened from disk, from
/// the store's values (`remember`).
#[derive(Default)]
pub struct FacetNames(std::sync::RwLock<std::collections::HashMap<u64, String>>);

impl FacetNames {
    /// FNV-1a of the value: stable across runs and processes.
    fn hash(value: &str) -> u64 {
        value.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    fn code(&self, value: &str) -> u64 {
        let code = Self::hash(value);
        let known = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&code);
        if !known {
            self.0
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(code, value.to_string());
        }
        code
    }

    pub fn remember<'a>(&self, values: impl IntoIterator<Item = &'a str>) {
        for v in values {
            self.code(v);
        }
    }

    fn name(&self, code: u64) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&code)
            .cloned()
    }
}

type FacetCounts = [std::collections::HashMap<u64, u64>; 3];

/// Counts the facet codes of every matching document.
struct FacetCounter(Vec<String>);

struct FacetSegment(Vec<tantivy::columnar::Column<u64>>, FacetCounts);

impl Collector for FacetCounter {
    type Fruit = FacetCounts;
    type Child = FacetSegment;

    fn for_segment(
        &self,
        _: tantivy::SegmentOrdinal,
        segment: &tantivy::SegmentReader,
    ) -> tantivy::Result<FacetSegment> {
        let columns = self
            .0
            .iter()
            .map(|name| segment.fast_fields().u64(name))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(FacetSegment(columns, Default::default()))
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetCounts>) -> tantivy::Result<FacetCounts> {
        let mut out: FacetCounts = Default::default();
        for fruit in fruits {
            for (into, from) in out.iter_mut().zip(fruit) {
                for (code, n) in from {
                    *into.entry(code).or_default() += n;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for FacetSegment {
    type Fruit = FacetCounts;

    fn collect(&mut self, doc: tantivy::DocId, _: tantivy::Score) {
        for (column, counts) in self.0.iter().zip(self.1.iter_mut()) {
            if let Some(code) = column.first(doc) {
                *counts.entry(code).or_default() += 1;
            }
        }
    }

    fn harvest(self) -> FacetCounts {
        self.1
    }
}

pub struct SearchIndex {
    reader: IndexReader,
    pub facet_names: FacetNames,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    pub dir: PathBuf,
}

/// Memory the index writer buffers before it writes a segment.
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

/// The marker file naming the schema version of an index folder.
const MARKER: &str = "greenroom-search.json";

impl SearchIndex {
    /// Opens the index in `dir`, or makes a new, empty one when it is
    /// missing, unreadable or of another schema version (the caller then
    /// rebuilds it). Returns whether it is new.
    pub fn open(dir: &Path) -> anyhow::Result<(SearchIndex, bool)> {
        let (schema, fields) = schema();
        let marker = dir.join(MARKER);
        let version = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["schemaVersion"].as_u64());
        let existing = match version {
            Some(v) if v == u64::from(SCHEMA_VERSION) => match Index::open_in_dir(dir) {
                Ok(index) if index.schema() == schema => Some(index),
                Ok(_) => {
                    tracing::warn!(dir = %dir.display(), "search index has another schema; rebuilding it");
                    None
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "search index is unreadable; rebuilding it");
                    None
                }
            },
            Some(v) => {
                tracing::info!(dir = %dir.display(), from = v, to = SCHEMA_VERSION, "search index schema changed; rebuilding it");
                None
            }
            None if dir.exists() => {
                tracing::warn!(dir = %dir.display(), "search index has no version marker; rebuilding it");
                None
            }
            None => None,
        };
        let fresh = existing.is_none();
        let index = match existing {
            Some(index) => index,
            None => {
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir)?;
                let index = Index::create_in_dir(dir, schema.clone())?;
                std::fs::write(
                    &marker,
                    serde_json::json!({"schemaVersion": SCHEMA_VERSION}).to_string(),
                )?;
                index
            }
        };
        index.tokenizers().register(TOKENIZER, analyzer());
        let (index, writer, fresh) = match low_priority_writer(&index) {
            Ok(writer) => (index, writer, fresh),
            // Another process (or portal) writes this index: this one
            // keeps its own in memory rather than fail to start.
            Err(tantivy::TantivyError::LockFailure(..)) => {
                tracing::warn!(dir = %dir.display(), "the search index is in use by another Greenroom; this one keeps its index in memory");
                let index = Index::create_in_ram(schema);
                index.tokenizers().register(TOKENIZER, analyzer());
                let writer = low_priority_writer(&index)?;
                (index, writer, true)
            }
            Err(e) => return Err(e.into()),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            SearchIndex {
                facet_names: FacetNames::default(),
                reader,
                writer: Mutex::new(writer),
                fields,
                dir: dir.to_path_buf(),
            },
            fresh,
        ))
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes every document of an entity (itself and its plugin
    /// documents).
    pub fn remove_entity(&self, entity_ref: &str) {
        self.writer()
            .delete_term(Term::from_field_text(self.fields.entity_ref, entity_ref));
    }

    pub fn remove_all(&self) -> anyhow::Result<()> {
        self.writer().delete_all_documents()?;
        Ok(())
    }

    pub fn add(&self, doc: &SearchDoc) -> anyhow::Result<()> {
        let f = &self.fields;
        let mut d = TantivyDocument::default();
        d.add_text(f.id, &doc.id);
        d.add_text(f.doc_type, &doc.doc_type);
        d.add_text(f.entity_ref, &doc.entity_ref);
        d.add_text(f.kind, &doc.kind);
        d.add_text(f.owner, &doc.owner);
        d.add_text(f.spec_type, &doc.spec_type);
        d.add_text(f.name_exact, doc.name.to_lowercase());
        d.add_text(f.name, &doc.name);
        d.add_text(f.title, &doc.title);
        for t in &doc.tags {
            d.add_text(f.tags, t);
        }
        d.add_text(f.description, &doc.description);
        d.add_text(f.body, &doc.body);
        d.add_text(f.location, &doc.location);
        let values = [&doc.kind, &doc.spec_type, &doc.owner];
        for (field, value) in f.facet_codes.iter().zip(values) {
            d.add_u64(*field, self.facet_names.code(value));
        }
        self.writer().add_document(d)?;
        Ok(())
    }

    /// Makes what was added and removed searchable.
    pub fn commit(&self) -> anyhow::Result<()> {
        self.writer().commit()?;
        self.reader.reload()?;
        Ok(())
    }

    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn words(text: &str) -> Vec<String> {
        let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(&text);
        let mut words = Vec::new();
        while stream.advance() {
            if words.len() == MAX_WORDS {
                break;
            }
            words.push(stream.token().text.clone());
        }
        words
    }

    fn build_query(&self, q: &SearchQuery) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let words = Self::words(&q.text);
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let boosted = |query: Box<dyn Query>, boost: f32| -> (Occur, Box<dyn Query>) {
            (Occur::Should, Box::new(BoostQuery::new(query, boost)))
        };
        let term = |field: Field, word: &str| Term::from_field_text(field, word);
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len();
            let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in [
                (f.name, 6.0),
                (f.title, 4.0),
                (f.tags, 3.0),
                (f.description, 1.5),
                (f.body, 1.0),
            ] {
                should.push(boosted(
                    Box::new(TermQuery::new(
                        term(field, word),
                        IndexRecordOption::WithFreqs,
                    )),
                    boost,
                ));
            }
            // One automaton per word, shared by the fields it is matched
            // in: building a typo automaton costs more than running it.
            if last {
                let prefix =
                    Shared::automaton(FuzzyTermQuery::new_prefix(term(f.name, word), 0, true));
                for (field, boost) in [(f.name, 3.0), (f.title, 2.0), (f.tags, 1.5), (f.body, 0.3)]
                {
                    should.push(boosted(prefix.on(field), boost));
                }
            }
            let typos = match word.chars().count() {
                0..=3 => 0,
                4..=7 => 1,
                _ => 2,
            };
            if typos > 0 {
                let fuzzy = Shared::automaton(FuzzyTermQuery::new(term(f.name, word), typos, true));
                for (field, boost) in [
                    (f.name, 2.0),
                    (f.title, 1.5),
                    (f.tags, 1.0),
                    (f.description, 0.5),
                ] {
                    should.push(boosted(fuzzy.on(field), boost));
                }
            }
            must.push((Occur::Must, Box::new(BooleanQuery::new(should))));
        }
        // The whole query as a name, with words joined as names are.
        if !words.is_empty() {
            must.push(boosted(
                Box::new(TermQuery::new(
                    term(f.name_exact, &words.join("-")),
                    IndexRecordOption::Basic,
                )),
                20.0,
            ));
            must.push(boosted(
                Box::new(TermQuery::new(
                    term(f.doc_type, "entity"),
                    IndexRecordOption::Basic,
                )),
                1.0,
            ));
        }
        let filters = [
            (f.kind, q.kind.as_deref()),
            (f.owner, q.owner.as_deref()),
            (f.spec_type, q.spec_type.as_deref()),
            (f.doc_type, q.doc_type.as_deref()),
        ];
        let mut any_filter = false;
        for (field, value) in filters {
            if let Some(v) = value {
                any_filter = true;
                must.push((
                    Occur::Must,
                    Box::new(TermQuery::new(term(field, v), IndexRecordOption::Basic)),
                ));
            }
        }
        if words.is_empty() && !any_filter {
            return None;
        }
        if words.is_empty() {
            must.push((Occur::Must, Box::new(tantivy::query::AllQuery)));
        }
        Some(Box::new(BooleanQuery::new(must)))
    }

    pub fn search(&self, q: &SearchQuery) -> anyhow::Result<Found> {
        let Some(query) = self.build_query(q) else {
            return Ok(Found {
                total: 0,
                hits: Vec::new(),
                facets: Default::default(),
            });
        };
        let searcher = self.reader.searcher();
        let facets = FacetCounter(FACETS.iter().map(|n| format!("facet_{n}")).collect());
        let top = TopDocs::with_limit(q.limit.max(1))
            .and_offset(q.offset)
            .order_by_score();
        let (top, total, facet_counts) = searcher.search(&query, &(top, Count, facets))?;
        let f = &self.fields;
        let mut snippets = [f.description, f.body]
            .map(|field| tantivy::snippet::SnippetGenerator::create(&searcher, &*query, field));
        for s in snippets.iter_mut().flatten() {
            s.set_max_num_chars(160);
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field: Field| -> String {
                doc.get_first(field)
                    .and_then(|v| match OwnedValue::from(v) {
                        OwnedValue::Str(s) => Some(s),
                        _ => None,
                    })
                    .unwrap_or_default()
            };
            let mut snippet = String::new();
            for g in snippets.iter().flatten() {
                let s = g.snippet_from_doc(&doc);
                if !s.highlighted().is_empty() || snippet.is_empty() {
                    snippet = s.to_html();
                }
                if !s.highlighted().is_empty() {
                    break;
                }
            }
            hits.push(Hit {
                score,
                doc_type: text(f.doc_type),
                entity_ref: text(f.entity_ref),
                kind: text(f.kind),
                name: text(f.name),
                title: text(f.title),
                owner: text(f.owner),
                location: text(f.location),
                snippet,
            });
        }
        let mut out = std::collections::BTreeMap::new();
        for (name, counts) in FACETS.iter().zip(facet_counts) {
            let mut counts: Vec<(u64, u64)> = counts.into_iter().collect();
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let named: Vec<(String, u64)> = counts
                .into_iter()
                .filter_map(|(code, n)| self.facet_names.name(code).map(|v| (v, n)))
                .filter(|(v, _)| !v.is_empty())
                .take(20)
                .collect();
            out.insert(name.to_string(), named);
        }
        Ok(Found {
            total,
            hits,
            facets: out,
        })
    }
}

/// The index's writer, its indexing and merge threads started from a
/// thread at low priority (they inherit it): see `background`.
fn low_priority_writer(index: &Index) -> tantivy::Result<IndexWriter> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                background::lower_priority();
                index.writer(WRITER_MEMORY)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(tantivy::TantivyError::SystemError(
                    "starting the search index writer panicked".into(),
                ))
            })
    })
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn index() -> &'static SearchIndex {
        static INDEX: std::sync::OnceLock<(tempfile::TempDir, SearchIndex)> =
            std::sync::OnceLock::new();
        &INDEX
            .get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let (index, _) = SearchIndex::open(dir.path()).unwrap();
                for (i, name) in ["order-service", "payments", "search"].iter().enumerate() {
                    index
                        .add(&SearchDoc {
                            id: format!("entity:component:default/{name}"),
                            doc_type: "entity".into(),
                            entity_ref: format!("component:default/{name}"),
                            kind: "component".into(),
                            owner: "group:default/team-a".into(),
                            spec_type: "service".into(),
                            name: (*name).into(),
                            title: format!("Service {i}"),
                            tags: vec!["rust".into()],
                            description: "takes orders (and payments) fast".into(),
                            body: String::new(),
                            location: String::new(),
                        })
                        .unwrap();
                }
                index.commit().unwrap();
                (dir, index)
            })
            .1
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("order"),
            Just(" "),
            Just("\""),
            Just("("),
            Just(")"),
            Just("*"),
            Just("~"),
            Just("AND"),
            Just("OR"),
            Just("NOT"),
            Just("-"),
            Just("+"),
            Just(":"),
            Just("name:"),
            Just("["),
            Just("]"),
            Just("{"),
            Just("^2"),
            Just("\\"),
            Just("é"),
            Just("\u{0}"),
        ]
    }

    proptest! {
        /// The search box takes any text: an answer, never a panic or an
        /// error for what a person typed.
        #[test]
        fn fuzz_search_queries(pieces in proptest::collection::vec(piece(), 0..60), text in "\\PC{0,100}",
                               kind in proptest::option::of("\\PC{0,20}"), offset in 0usize..100_000) {
            for text in [pieces.concat(), text.clone()] {
                let q = SearchQuery {
                    text,
                    kind: kind.clone(),
                    owner: kind.clone(),
                    spec_type: None,
                    doc_type: None,
                    limit: 20,
                    offset,
                };
                prop_assert!(index().search(&q).is_ok());
            }
        }
    }
}
