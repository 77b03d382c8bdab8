//! The done-check of a campaign: a small predicate language over an
//! entity's facts, annotations, labels and spec.
//!
//! ```text
//! fact runtime.python >= 3
//! annotation backstage.io/techdocs-ref exists
//! fact coverage.lines >= 70 and not label tier == "1"
//! (spec.lifecycle == deprecated or fact ci.last_status == success)
//! ```
//!
//! `and` binds tighter than `or`; `not` and parentheses as usual. A test
//! is `exists`, `missing`, or a comparison (`==`, `!=`, `>=`, `<=`, `>`,
//! `<`) with a number, `true`/`false`, a word or a "quoted string". Text
//! compares without regard to case; a comparison with a number compares
//! numerically when the value reads as a number ("3.11" >= 3). A value
//! that is missing fails every comparison.

use std::fmt;

/// Where a tested value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Fact,
    Annotation,
    Label,
    Spec,
}

impl Source {
    fn word(self) -> &'static str {
        match self {
            Source::Fact => "fact",
            Source::Annotation => "annotation",
            Source::Label => "label",
            Source::Spec => "spec",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Ge => ">=",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Lt => "<",
        }
    }
}

/// A value in a predicate, or the value an entity has.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Flag(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Flag(b) => write!(f, "{b}"),
            Value::Text(t) => {
                write!(f, "\"")?;
                for c in t.chars() {
                    if c == '"' || c == '\\' {
                        write!(f, "\\")?;
                    }
                    write!(f, "{c}")?;
                }
                write!(f, "\"")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Exists,
    Missing,
    Compare(Op, Value),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Test {
        source: Source,
        name: String,
        test: Test,
    },
    Not(Box<Predicate>),
    And(Box<Predicate>, Box<Predicate>),
    Or(Box<Predicate>, Box<Predicate>),
}

/// Prints the predicate so that parsing it gives it back.
impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Test { source, name, test } => {
                write!(f, "{} {name}", source.word())?;
                match test {
                    Test::Exists => write!(f, " exists"),
                    Test::Missing => write!(f, " missing"),
                    Test::Compare(op, v) => write!(f, " {} {v}", op.symbol()),
                }
            }
            Predicate::Not(p) => write!(f, "not ({p})"),
            Predicate::And(a, b) => write!(f, "({a}) and ({b})"),
            Predicate::Or(a, b) => write!(f, "({a}) or ({b})"),
        }
    }
}

/// Why a predicate did not parse: what and at which character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {at})")]
pub struct ParseError {
    pub at: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    Open,
    Close,
}

/// The longest predicate accepted.
const MAX_LEN: usize = 4096;

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((at, Token::Open));
                i += 1;
            }
            ')' => {
                out.push((at, Token::Close));
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, c)) = chars.get(i) else {
                        return Err(ParseError {
                            at,
                            message: "a quoted string is not closed".into(),
                        });
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => match chars.get(i) {
                            Some(&(_, e)) => {
                                s.push(e);
                                i += 1;
                            }
                            None => {
                                return Err(ParseError {
                                    at,
                                    message: "a quoted string ends in a backslash".into(),
                                });
                            }
                        },
                        c => s.push(c),
                    }
                }
                out.push((at, Token::Quoted(s)));
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).map(|&(_, c)| c);
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('=', _) => (Op::Eq, 1),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', _) => (Op::Gt, 1),
                    ('<', _) => (Op::Lt, 1),
                    _ => {
                        return Err(ParseError {
                            at,
                            message: "'!' must be followed by '=' (use `not` to negate)".into(),
                        });
                    }
                };
                out.push((at, Token::Op(op)));
                i += len;
            }
            _ => {
                let start = i;
                while i < chars.len() {
                    let c = chars[i].1;
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"' | '=' | '!' | '<' | '>') {
                        break;
                    }
                    i += 1;
                }
                let word: String = chars[start..i].iter().map(|&(_, c)| c).collect();
                out.push((at, Token::Word(word)));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(a, _)| *a)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            at: self.at(),
            message: message.into(),
        })
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self, depth: usize) -> Result<Predicate, ParseError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Predicate::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Predicate, ParseError> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary(depth)?;
            left = Predicate::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Predicate, ParseError> {
        if depth > 64 {
            return self.error("nested too deeply");
        }
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Predicate::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or(depth + 1)?;
            if self.peek() != Some(&Token::Close) {
                return self.error("expected ')'");
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.clause()
    }

    fn clause(&mut self) -> Result<Predicate, ParseError> {
        let Some(Token::Word(word)) = self.peek().cloned() else {
            return self.error("expected `fact`, `annotation`, `label` or `spec`");
        };
        let word_at = self.at();
        self.pos += 1;
        let (source, inline) = match word.to_ascii_lowercase().as_str() {
            "fact" => (Source::Fact, None),
            "annotation" => (Source::Annotation, None),
            "label" => (Source::Label, None),
            "spec" => (Source::Spec, None),
            w if w.starts_with("spec.") && w.len() > 5 => {
                (Source::Spec, Some(word[5..].to_string()))
            }
            _ => {
                self.pos -= 1;
                return self.error(format!(
                    "'{word}' is not `fact`, `annotation`, `label` or `spec`"
                ));
            }
        };
        let name_at = if inline.is_some() { word_at } else { self.at() };
        let name = match inline {
            Some(n) => n,
            None => match self.peek().cloned() {
                Some(Token::Word(n)) if !is_keyword(&n) => {
                    self.pos += 1;
                    n
                }
                _ => return self.error(format!("expected the name of the {}", source.word())),
            },
        };
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'));
        if !valid_name {
            return Err(ParseError {
                at: name_at,
                message: format!("'{name}' is not a valid {} name", source.word()),
            });
        }
        let test = match self.peek().cloned() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("exists") => {
                self.pos += 1;
                Test::Exists
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("missing") => {
                self.pos += 1;
                Test::Missing
            }
            Some(Token::Op(op)) => {
                self.pos += 1;
                let value = match self.peek().cloned() {
                    Some(Token::Quoted(s)) => Value::Text(s),
                    Some(Token::Word(w)) if !is_keyword(&w) => match w.as_str() {
                        "true" => Value::Flag(true),
                        "false" => Value::Flag(false),
                        _ => match w.parse::<f64>() {
                            Ok(n) if n.is_finite() => Value::Number(n),
                            _ => Value::Text(w),
                        },
                    },
                    _ => return self.error(format!("expected a value after {}", op.symbol())),
                };
                self.pos += 1;
                Test::Compare(op, value)
            }
            _ => {
                return self.error(format!(
                    "after `{} {name}` expected `exists`, `missing` or a comparison like >= 3",
                    source.word()
                ));
            }
        };
        Ok(Predicate::Test { source, name, test })
    }
}

fn is_keyword(word: &str) -> bool {
    ["and", "or", "not", "exists", "missing"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

impl Predicate {
    pub fn parse(text: &str) -> Result<Predicate, ParseError> {
        if text.len() > MAX_LEN {
            return Err(ParseError {
                at: MAX_LEN,
                message: format!("longer than {MAX_LEN} characters"),
            });
        }
        let mut parser = Parser {
            tokens: tokenize(text)?,
            pos: 0,
            end: text.len(),
        };
        if parser.tokens.is_empty() {
            return parser.error("the predicate is empty");
        }
        let predicate = parser.or(0)?;
        if parser.pos < parser.tokens.len() {
            return parser
                .error("unexpected text after the predicate; join tests with `and` or `or`");
        }
        Ok(predicate)
    }

    /// Every value the predicate reads, as (source, name).
    pub fn inputs(&self) -> Vec<(Source, String)> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
        out.dedup();
        out
    }

    fn collect(&self, out: &mut Vec<(Source, String)>) {
        match self {
            Predicate::Test { source, name, .. } => out.push((*source, name.clone())),
            Predicate::Not(p) => p.collect(out),
            Predicate::And(a, b) | Predicate::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// Whether an entity passes, with `get` giving its values.
    pub fn eval(&self, get: &dyn Fn(Source, &str) -> Option<Value>) -> bool {
        self.explain(get).is_none()
    }

    /// `None` when the entity passes; otherwise why not, in words.
    pub fn explain(&self, get: &dyn Fn(Source, &str) -> Option<Value>) -> Option<String> {
        match self {
            Predicate::Test { source, name, test } => {
                let value = get(*source, name);
                let what = format!("{} {name}", source.word());
                match (test, value) {
                    (Test::Exists, Some(_)) | (Test::Missing, None) => None,
                    (Test::Exists, None) => Some(format!("no {what}")),
                    (Test::Missing, Some(v)) => Some(format!("{what} is set ({v})")),
                    (Test::Compare(op, want), Some(have)) => (!compare(&have, *op, want))
                        .then(|| format!("{what} is {have}, needs {} {want}", op.symbol())),
                    (Test::Compare(op, want), None) => {
                        Some(format!("no {what} (needs {} {want})", op.symbol()))
                    }
                }
            }
            Predicate::Not(p) => match p.explain(get) {
                Some(_) => None,
                None => Some(format!("not ({p}) fails")),
            },
            Predicate::And(a, b) => a.explain(get).or_else(|| b.explain(get)),
            Predicate::Or(a, b) => match (a.explain(get), b.explain(get)) {
                (Some(x), Some(y)) => Some(format!("{x}; and {y}")),
                _ => None,
            },
        }
    }
}

/// `have op want`: numbers numerically (text that reads as a number too),
/// flags by truth, text without regard to case.
fn compare(have: &Value, op: Op, want: &Value) -> bool {
    use std::cmp::Ordering;
    let as_number = |v: &Value| match v {
        Value::Number(n) => Some(*n),
        Value::Text(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        Value::Flag(_) => None,
    };
    let ordering = match (have, want) {
        (Value::Flag(a), Value::Flag(b)) => Some(a.cmp(b)),
        (_, Value::Number(_)) | (Value::Number(_), _) => match (as_number(have), as_number(want)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::Text(a), Value::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Value::Text(a), Value::Flag(b)) => Some(a.to_lowercase().cmp(&b.to_string())),
        (Value::Flag(a), Value::Text(b)) => Some(a.to_string().cmp(&b.to_lowercase())),
    };
    match (ordering, op) {
        (None, Op::Ne) => true,
        (None, _) => false,
        (Some(o), Op::Eq) => o == Ordering::Equal,
        (Some(o), Op::Ne) => o != Ordering::Equal,
        (Some(o), Op::Ge) => o != Ordering::Less,
        (Some(o), Op::Le) => o != Ordering::Greater,
        (Some(o), Op::Gt) => o == Ordering::Greater,
        (Some(o), Op::Lt) => o == Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(pairs: &[(Source, &str, Value)]) -> impl Fn(Source, &str) -> Option<Value> + use<> {
        let owned: Vec<(Source, String, Value)> = pairs
            .iter()
            .map(|(s, n, v)| (*s, n.to_string(), v.clone()))
            .collect();
        move |s, n| {
            owned
                .iter()
                .find(|(s2, n2, _)| *s2 == s && n2 == n)
                .map(|(_, _, v)| v.clone())
        }
    }

    #[test]
    fn reads_the_examples() {
        let p = Predicate::parse("fact runtime.python >= 3").unwrap();
        assert_eq!(
            p,
            Predicate::Test {
                source: Source::Fact,
                name: "runtime.python".into(),
                test: Test::Compare(Op::Ge, Value::Number(3.0))
            }
        );
        let get = values(&[(Source::Fact, "runtime.python", Value::Text("3.11".into()))]);
        assert!(p.eval(&get));
        let get = values(&[(Source::Fact, "runtime.python", Value::Number(2.7))]);
        assert_eq!(
            p.explain(&get).unwrap(),
            "fact runtime.python is 2.7, needs >= 3"
        );
        assert_eq!(
            p.explain(&values(&[])).unwrap(),
            "no fact runtime.python (needs >= 3)"
        );

        let p = Predicate::parse("annotation backstage.io/techdocs-ref exists").unwrap();
        assert!(p.eval(&values(&[(
            Source::Annotation,
            "backstage.io/techdocs-ref",
            Value::Text("dir:.".into())
        )])));
        assert!(!p.eval(&values(&[])));

        let p = Predicate::parse(
            "fact coverage.lines >= 70 and not label tier == \"1\" or spec.lifecycle == Deprecated",
        )
        .unwrap();
        let get = values(&[
            (Source::Fact, "coverage.lines", Value::Number(50.0)),
            (Source::Spec, "lifecycle", Value::Text("deprecated".into())),
        ]);
        assert!(p.eval(&get), "or binds looser than and; text ignores case");
    }

    #[test]
    fn errors_say_what_and_where() {
        for (text, at, says) in [
            ("", 0, "empty"),
            ("fact", 4, "expected the name of the fact"),
            ("fact x >=", 9, "expected a value after >="),
            (
                "fact x 3",
                7,
                "expected `exists`, `missing` or a comparison",
            ),
            ("facts x exists", 0, "'facts' is not"),
            (
                "fact x exists fact y exists",
                14,
                "unexpected text after the predicate",
            ),
            ("(fact x exists", 14, "expected ')'"),
            ("fact x == \"open", 10, "not closed"),
            ("fact x ! 3", 7, "use `not`"),
            ("fact x$ exists", 5, "not a valid fact name"),
        ] {
            let e = Predicate::parse(text).unwrap_err();
            assert!(e.message.contains(says), "{text}: {e}");
            assert_eq!(e.at, at, "{text}: {e}");
        }
        assert!(
            Predicate::parse(&"(".repeat(100))
                .unwrap_err()
                .message
                .contains("nested too deeply")
        );
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_-]{0,6}(\\.[a-z0-9_-]{1,6}){0,2}(/[a-z0-9-]{1,6})?"
            .prop_filter("keywords are not names", |n| !is_keyword(n))
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-1e6f64..1e6f64).prop_map(|n| Value::Number((n * 100.0).round() / 100.0)),
            any::<bool>().prop_map(Value::Flag),
            "[ -~]{0,12}".prop_map(Value::Text),
        ]
    }

    fn predicate() -> impl Strategy<Value = Predicate> {
        let source = prop_oneof![
            Just(Source::Fact),
            Just(Source::Annotation),
            Just(Source::Label),
            Just(Source::Spec)
        ];
        let op = prop_oneof![
            Just(Op::Eq),
            Just(Op::Ne),
            Just(Op::Ge),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Lt)
        ];
        let test = prop_oneof![
            Just(Test::Exists),
            Just(Test::Missing),
            (op, value()).prop_map(|(o, v)| Test::Compare(o, v)),
        ];
        let leaf = (source, name(), test).prop_map(|(source, name, test)| Predicate::Test {
            source,
            name,
            test,
        });
        leaf.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|p| Predicate::Not(Box::new(p))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Predicate::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Predicate::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        /// Printing a predicate and parsing it gives the same predicate.
        #[test]
        fn printed_predicates_parse_back(p in predicate()) {
            let text = p.to_string();
            let back = Predicate::parse(&text);
            prop_assert_eq!(back.as_ref(), Ok(&p), "{}", text);
        }

        /// Any text at all is answered, never a panic; an error points
        /// inside the text.
        #[test]
        fn fuzz_predicate_any_text(text in "\\PC{0,80}") {
            if let Err(e) = Predicate::parse(&text) {
                prop_assert!(e.at <= text.len());
                prop_assert!(!e.message.is_empty());
            }
        }

        /// Text made of the language's own pieces, in any order.
        #[test]
        fn fuzz_predicate_tokens(words in proptest::collection::vec(
            prop_oneof![Just("fact"), Just("spec.x"), Just("a.b"), Just(">="), Just("=="), Just("and"),
                        Just("or"), Just("not"), Just("("), Just(")"), Just("exists"), Just("3"), Just("\"t\"")], 0..12)) {
            let text = words.join(" ");
            if let Ok(p) = Predicate::parse(&text) {
                prop_assert_eq!(Predicate::parse(&p.to_string()), Ok(p));
            }
        }

        /// `not` inverts, and `and`/`or` agree with their meaning.
        #[test]
        fn logic_holds(a in predicate(), b in predicate(), n in -10f64..10f64) {
            let get = |_: Source, name: &str| (!name.len().is_multiple_of(3)).then_some(Value::Number(n));
            let not_a = Predicate::Not(Box::new(a.clone()));
            prop_assert_eq!(not_a.eval(&get), !a.eval(&get));
            let and = Predicate::And(Box::new(a.clone()), Box::new(b.clone()));
            prop_assert_eq!(and.eval(&get), a.eval(&get) && b.eval(&get));
            let or = Predicate::Or(Box::new(a.clone()), Box::new(b.clone()));
            prop_assert_eq!(or.eval(&get), a.eval(&get) || b.eval(&get));
        }
    }
}
