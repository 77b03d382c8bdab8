//! Enough YAML for `mkdocs.yml`: mappings, sequences and scalars as JSON
//! values. Tags (`!!python/name:…`, `!ENV`) are read as their scalar text,
//! and aliases as null: MkDocs plugins use them, Greenroom needs neither.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Most nodes read, against a hostile file.
const MAX_NODES: usize = 100_000;

/// Deepest nesting read, as in the host's reader: deeper would run the
/// sandbox's stack out, which ends the call with a less helpful trap.
const MAX_DEPTH: usize = 128;

pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser::new_from_str(text);
    let mut nodes = 0usize;
    loop {
        match next(&mut parser)? {
            Event::StreamStart | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                let first = next(&mut parser)?;
                if matches!(first, Event::DocumentEnd) {
                    return Ok(Value::Null);
                }
                return node(&mut parser, first, &mut nodes, 0);
            }
            Event::StreamEnd => return Ok(Value::Null),
            other => return Err(format!("unexpected YAML event {other:?}")),
        }
    }
}

fn next<'a>(parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>) -> Result<Event<'a>, String> {
    match parser.next_event() {
        Some(Ok((event, _))) => Ok(event),
        Some(Err(e)) => Err(format!(
            "line {}, column {}: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        )),
        None => Err("unexpected end of the file".into()),
    }
}

fn node<'a>(
    parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
    event: Event<'a>,
    nodes: &mut usize,
    depth: usize,
) -> Result<Value, String> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(format!("more than {MAX_NODES} YAML nodes"));
    }
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    match event {
        Event::Scalar(text, style, _, _) => Ok(if style == ScalarStyle::Plain {
            match text.as_ref() {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                t => Value::String(t.to_string()),
            }
        } else {
            Value::String(text.into_owned())
        }),
        Event::Alias(_) => Ok(Value::Null),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                let event = next(parser)?;
                if matches!(event, Event::SequenceEnd) {
                    return Ok(Value::Array(items));
                }
                items.push(node(parser, event, nodes, depth + 1)?);
            }
        }
        Event::MappingStart(..) => {
            let mut map = Map::new();
            loop {
                let event = next(parser)?;
                if matches!(event, Event::MappingEnd) {
                    return Ok(Value::Object(map));
                }
                let key = match node(parser, event, nodes, depth + 1)? {
                    Value::String(s) => s,
                    Value::Null => "null".into(),
                    other => other.to_string(),
                };
                let event = next(parser)?;
                let value = node(parser, event, nodes, depth + 1)?;
                map.insert(key, value);
            }
        }
        other => Err(format!("unexpected YAML event {other:?}")),
    }
}
