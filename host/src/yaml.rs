//! YAML (multi-document) to JSON values, with line and column positions for
//! error messages.
//!
//! Positions are only collected on demand ([`locate`]): parsing the whole
//! catalog stays allocation-light, and the rare invalid entity pays for a
//! second parse of its file.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, StrInput};
use serde_json::{Map, Number, Value};

use crate::catalog::{FieldPath, PathSeg};

/// Deeper nesting is refused: the reader recurses once per level, and
/// thousands of levels (`- - - - x`, two bytes each) would overflow the
/// stack and abort the process. Real catalog files stay under ten.
pub const MAX_DEPTH: usize = 128;

/// A document may expand (through aliases) to at most this many times the
/// size of its text, counted as JSON bytes, plus [`EXPANSION_FLOOR`]. It
/// guards against alias bombs ("billion laughs", or one large anchored
/// string aliased many times) that would turn a small file into gigabytes.
pub const EXPANSION_FACTOR: usize = 16;
pub const EXPANSION_FLOOR: usize = 64 * 1024;

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    pub value: Value,
    /// 1-based line where the document's content starts.
    pub line: usize,
}

/// A syntax error, with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl YamlError {
    fn at(mark: Marker, message: impl Into<String>) -> Self {
        YamlError {
            line: mark.line(),
            col: mark.col() + 1,
            message: message.into(),
        }
    }
}

impl From<ScanError> for YamlError {
    fn from(e: ScanError) -> Self {
        YamlError::at(*e.marker(), e.info().to_string())
    }
}

/// Parses every document of a YAML stream into JSON values. Empty documents
/// (a lone `---`) are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<YamlDoc>, YamlError> {
    let mut b = Builder::new(text, None);
    let mut docs = Vec::new();
    while let Some((value, line)) = b.next_document()? {
        if !value.is_null() {
            docs.push(YamlDoc { value, line });
        }
    }
    Ok(docs)
}

/// Finds the line and column (1-based) of `path` inside the `doc`-th
/// non-empty document of `text`. When the path does not exist (a missing
/// field), the position of its deepest existing parent is returned.
pub fn locate(text: &str, doc: usize, path: &FieldPath) -> Option<(usize, usize)> {
    let mut positions = Vec::new();
    let mut b = Builder::new(text, Some(&mut positions));
    let mut seen = 0;
    loop {
        if let Some(p) = b.positions.as_deref_mut() {
            p.clear();
        }
        let (value, line) = b.next_document().ok()??;
        if value.is_null() {
            continue;
        }
        if seen == doc {
            let mut best: Option<(usize, Marker)> = None;
            for (p, mark) in b.positions.take()?.iter() {
                let len = p.len();
                if path.0.starts_with(p) && best.is_none_or(|(l, _)| len > l) {
                    best = Some((len, *mark));
                }
            }
            return Some(match best {
                Some((_, m)) => (m.line(), m.col() + 1),
                None => (line, 1),
            });
        }
        seen += 1;
    }
}

struct Builder<'a, 'p> {
    parser: Parser<'a, StrInput<'a>>,
    /// Each anchored value with what it costs to expand (JSON bytes).
    anchors: HashMap<usize, (Value, usize)>,
    /// JSON bytes produced so far, aliases expanded, against `budget`.
    expanded: usize,
    budget: usize,
    depth: usize,
    positions: Option<&'p mut Vec<(Vec<PathSeg>, Marker)>>,
    path: Vec<PathSeg>,
}

impl<'a, 'p> Builder<'a, 'p> {
    fn new(text: &'a str, positions: Option<&'p mut Vec<(Vec<PathSeg>, Marker)>>) -> Self {
        Builder {
            parser: Parser::new_from_str(text),
            anchors: HashMap::new(),
            expanded: 0,
            budget: text
                .len()
                .saturating_mul(EXPANSION_FACTOR)
                .saturating_add(EXPANSION_FLOOR),
            depth: 0,
            positions,
            path: Vec::new(),
        }
    }

    fn next_event(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(e.into()),
            None => Err(YamlError {
                line: 0,
                col: 0,
                message: "unexpected end of input".into(),
            }),
        }
    }

    /// Returns the next document and its first line, or `None` at the end.
    fn next_document(&mut self) -> Result<Option<(Value, usize)>, YamlError> {
        loop {
            let (ev, span) = self.next_event()?;
            match ev {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    let (first, first_span) = self.next_event()?;
                    if matches!(first, Event::DocumentEnd) {
                        return Ok(Some((Value::Null, span.start.line())));
                    }
                    let line = first_span.start.line();
                    let value = self.node(first, first_span)?;
                    return Ok(Some((value, line)));
                }
                other => {
                    return Err(YamlError::at(
                        span.start,
                        format!("unexpected YAML event {other:?}"),
                    ));
                }
            }
        }
    }

    fn record(&mut self, mark: Marker) {
        if let Some(p) = self.positions.as_deref_mut() {
            p.push((self.path.clone(), mark));
        }
    }

    /// Adds `bytes` of JSON to what the document expands to; refuses it
    /// past the budget, before the bytes are made.
    fn count(&mut self, mark: Marker, bytes: usize) -> Result<(), YamlError> {
        self.expanded = self.expanded.saturating_add(bytes);
        if self.expanded > self.budget {
            return Err(YamlError::at(
                mark,
                format!(
                    "aliases expand this file past {} bytes ({EXPANSION_FACTOR} times its size); write the repeated parts out or split the file",
                    self.budget
                ),
            ));
        }
        Ok(())
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Value, YamlError> {
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                // A JSON string's quotes and separator.
                let cost = text.len() + 3;
                self.count(span.start, cost)?;
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_string {
                    resolve_plain(&text)
                } else {
                    Value::String(text.into_owned())
                };
                (value, (anchor > 0).then_some((anchor, cost)))
            }
            Event::Alias(id) => {
                let Some(&(_, cost)) = self.anchors.get(&id) else {
                    return Err(YamlError::at(
                        span.start,
                        "alias refers to an unknown anchor",
                    ));
                };
                // Counted before the copy is made, so a bomb is refused
                // before it takes memory.
                self.count(span.start, cost)?;
                (self.anchors[&id].0.clone(), None)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.depth >= MAX_DEPTH {
                    return Err(YamlError::at(
                        span.start,
                        format!(
                            "nesting is deeper than {MAX_DEPTH} levels, the most Greenroom reads; flatten the document"
                        ),
                    ));
                }
                let before = self.expanded;
                self.count(span.start, 2)?;
                self.depth += 1;
                let value = if matches!(ev, Event::SequenceStart(..)) {
                    self.sequence()
                } else {
                    self.mapping()
                };
                self.depth -= 1;
                (
                    value?,
                    (anchor > 0).then(|| (anchor, self.expanded - before)),
                )
            }
            other => {
                return Err(YamlError::at(
                    span.start,
                    format!("unexpected YAML event {other:?}"),
                ));
            }
        };
        if let Some((anchor, cost)) = anchor {
            self.anchors.insert(anchor, (value.clone(), cost));
        }
        Ok(value)
    }

    fn sequence(&mut self) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        loop {
            let (ev, span) = self.next_event()?;
            if matches!(ev, Event::SequenceEnd) {
                return Ok(Value::Array(items));
            }
            self.path.push(PathSeg::Index(items.len()));
            self.record(span.start);
            let item = self.node(ev, span);
            self.path.pop();
            items.push(item?);
        }
    }

    fn mapping(&mut self) -> Result<Value, YamlError> {
        let mut map = Map::new();
        let mut merged = Map::new();
        loop {
            let (ev, key_span) = self.next_event()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key = match self.node(ev, key_span)? {
                Value::String(s) => s,
                Value::Null => "null".to_string(),
                other => other.to_string(),
            };
            let (ev, span) = self.next_event()?;
            if key == "<<" {
                // YAML merge key: fold the referenced mapping(s) in, keys
                // written in this mapping win.
                let sources = match self.node(ev, span)? {
                    Value::Array(list) => list,
                    other => vec![other],
                };
                for source in sources {
                    let Value::Object(m) = source else {
                        return Err(YamlError::at(
                            key_span.start,
                            "merge key '<<' needs a mapping",
                        ));
                    };
                    for (k, v) in m {
                        merged.entry(k).or_insert(v);
                    }
                }
                continue;
            }
            self.path.push(PathSeg::Key(key.clone()));
            self.record(key_span.start);
            let value = self.node(ev, span);
            self.path.pop();
            let value = value?;
            if map.insert(key.clone(), value).is_some() {
                return Err(YamlError::at(
                    key_span.start,
                    format!("duplicate key '{key}'"),
                ));
            }
        }
        for (k, v) in merged {
            map.entry(k).or_insert(v);
        }
        Ok(Value::Object(map))
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities or NaN; keep the text.
            return Value::String(s.to_string());
        }
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Some(hex) = s.strip_prefix("0x")
            && let Ok(n) = i64::from_str_radix(hex, 16)
        {
            return Value::Number(n.into());
        }
        if let Some(oct) = s.strip_prefix("0o")
            && let Ok(n) = i64::from_str_radix(oct, 8)
        {
            return Value::Number(n.into());
        }
        let digits = s.trim_start_matches(['-', '+']);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = s.parse::<i64>() {
                return Value::Number(n.into());
            }
            if let Ok(n) = s.parse::<u64>() {
                return Value::Number(n.into());
            }
        }
        let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        if looks_float
            && let Ok(f) = s.parse::<f64>()
            && let Some(n) = Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_multi_document_streams_with_lines() {
        let text = "apiVersion: v1\nkind: Component\n---\n# comment\nkind: Group\nmetadata:\n  name: a\n---\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 1);
        assert_eq!(docs[1].line, 5);
        assert_eq!(
            docs[1].value,
            json!({"kind": "Group", "metadata": {"name": "a"}})
        );
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let v = &parse_documents(
            "a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: 0x10\ng: hello world\nh: 1.2.3\ni: !!str 7\n",
        )
        .unwrap()[0]
            .value;
        assert_eq!(
            v,
            &json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": 16, "g": "hello world", "h": "1.2.3", "i": "7"})
        );
    }

    #[test]
    fn supports_anchors_aliases_and_merge_keys() {
        let v = &parse_documents("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\nlist: [*b]\n")
            .unwrap()[0]
            .value;
        assert_eq!(v["use"], json!({"x": 1, "y": 3}));
        assert_eq!(v["list"], json!([{"x": 1, "y": 2}]));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (2, "duplicate key 'a'"));
    }

    #[test]
    fn refuses_alias_bombs() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("aliases expand this file"), "{err}");
    }

    #[test]
    fn refuses_one_large_string_aliased_many_times() {
        // 1 MiB anchored once and aliased 1,000 times: 1 MB of YAML that
        // would become 1 GB of JSON. Refused at the alias that crosses the
        // budget, with its line.
        let mut text = format!("big: &s \"{}\"\nrefs:\n", "x".repeat(1 << 20));
        for _ in 0..1000 {
            text.push_str("  - *s\n");
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("16 times its size"), "{err}");
        assert!(err.line >= 3 && err.line < 3 + 20, "{err}");
        // A few aliases of it are fine.
        let few = format!("big: &s \"{}\"\nrefs: [*s, *s]\n", "x".repeat(1 << 20));
        assert_eq!(
            parse_documents(&few).unwrap()[0].value["refs"][1]
                .as_str()
                .unwrap()
                .len(),
            1 << 20
        );
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        // 3,000 levels in 6 KB used to overflow the stack and abort.
        for text in [
            "- ".repeat(3000) + "x\n",
            "a:\n".to_string()
                + &(1..3000)
                    .map(|i| format!("{}b:\n", " ".repeat(i)))
                    .collect::<String>(),
        ] {
            let err = parse_documents(&text).unwrap_err();
            assert!(err.message.contains("deeper than 128 levels"), "{err}");
            assert!(err.line <= 129, "{err}");
        }
        // Flow collections: the parser's own limit (256 levels) may answer
        // first; either way a located error, not a crash.
        for text in [
            "[".repeat(3000) + &"]".repeat(3000),
            "{a: ".repeat(3000) + &"}".repeat(3000),
        ] {
            let err = parse_documents(&text).unwrap_err();
            assert_eq!(err.line, 1, "{err}");
        }
        // Exactly the limit is read.
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_documents(&ok).is_ok());
        let over = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse_documents(&over).is_err());
        // locate() shares the guard.
        assert_eq!(
            locate(&("- ".repeat(3000) + "x\n"), 0, &FieldPath::default()),
            None
        );
    }

    #[test]
    fn locates_fields_and_missing_fields() {
        let text = "kind: A\n---\nkind: Component\nmetadata:\n  name: x\n  tags:\n    - ok\n    - Bad Tag\nspec:\n  type: service\n";
        let path = FieldPath::default().key("metadata").key("tags").index(1);
        assert_eq!(locate(text, 1, &path), Some((8, 7)));
        let missing = FieldPath::default().key("spec").key("owner");
        assert_eq!(locate(text, 1, &missing), Some((9, 1)));
        assert_eq!(path.to_string(), "metadata.tags[1]");
    }

    /// Fuzz targets (proptest): any input is answered with values or a
    /// located error, never a panic, a stack overflow or a blow-up.
    /// `cargo xtask fuzz` runs every `fuzz_` property for longer.
    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        fn check(text: &str) -> Result<(), TestCaseError> {
            match parse_documents(text) {
                Ok(docs) => {
                    let size: usize = docs.iter().map(|d| d.value.to_string().len()).sum();
                    prop_assert!(size <= text.len() * EXPANSION_FACTOR + EXPANSION_FLOOR);
                }
                Err(e) => prop_assert!(e.line <= text.lines().count() + 1, "{e}"),
            }
            let _ = locate(text, 0, &FieldPath::default().key("a").index(0));
            Ok(())
        }

        fn piece() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("- "),
                Just("["),
                Just("]"),
                Just("{"),
                Just("}"),
                Just(": "),
                Just(", "),
                Just("&a "),
                Just("*a"),
                Just("&b "),
                Just("*b"),
                Just("<<: "),
                Just("\n"),
                Just("  "),
                Just("'"),
                Just("\""),
                Just("!!str "),
                Just("---\n"),
                Just("? "),
                Just("|\n"),
                Just(">\n"),
                Just("key"),
                Just("1.5"),
                Just("~"),
                Just("#"),
                Just("\t"),
                Just("%YAML 1.2\n"),
                Just("..."),
            ]
        }

        proptest! {
            #[test]
            fn fuzz_yaml_any_text(text in "\\PC{0,300}") {
                check(&text)?;
            }

            #[test]
            fn fuzz_yaml_token_soup(pieces in proptest::collection::vec(piece(), 0..300)) {
                check(&pieces.concat())?;
            }

            /// Nesting and aliases in amounts a file could hold.
            #[test]
            fn fuzz_yaml_deep_and_aliased(depth in 0usize..400, refs in 0usize..400, width in 0usize..2000) {
                let text = format!(
                    "a: &x \"{}\"\nb: {}{}{}\nc: [{}]\n",
                    "y".repeat(width),
                    "[".repeat(depth),
                    "1",
                    "]".repeat(depth),
                    vec!["*x"; refs].join(", ")
                );
                check(&text)?;
            }
        }
    }
}
