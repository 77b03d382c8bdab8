//! Facts and events: the rules they obey, in one place, for what CI
//! pushes over HTTP and what plugins answer alike. The two senders differ
//! only in what happens to a value that breaks a rule: a push is refused
//! whole, naming the field (its sender can fix it); a plugin's answer keeps
//! what passes and logs the rest (its author reads the log).

use std::collections::HashMap;

use crate::store::{EventRecord, FactRecord, FactValue, Store, StoreError};

/// Longest fact text, in characters.
pub const MAX_FACT_TEXT: usize = 1000;
/// Longest event id, in characters.
pub const MAX_EVENT_ID: usize = 200;
/// Longest event kind (`deployment`), in characters.
pub const MAX_EVENT_KIND: usize = 40;
/// Longest event title, in characters.
pub const MAX_EVENT_TITLE: usize = 300;
/// Longest actor name, in characters (longer ones are cut).
pub const MAX_ACTOR: usize = 200;
/// Longest link, in bytes.
pub const MAX_URL: usize = 2000;
/// How an event reads.
pub const TONES: &[&str] = &["neutral", "info", "good", "warning", "critical"];

/// A rule broken: the field (relative to the item) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub field: String,
    pub message: String,
}

impl Broken {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Broken {
        Broken {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A fact name: lower-case dotted words, like `coverage.lines`.
pub fn check_fact_name(name: &str) -> Result<(), Broken> {
    if crate::store::valid_fact_name(name) {
        Ok(())
    } else {
        Err(Broken::new(
            format!("facts.{name}"),
            "a fact name is lower-case dotted words, like coverage.lines",
        ))
    }
}

/// A fact value: a finite number, text of at most [`MAX_FACT_TEXT`]
/// characters, or a flag.
pub fn check_fact_value(name: &str, value: &FactValue) -> Result<(), Broken> {
    let good = match value {
        FactValue::Number(n) => n.is_finite(),
        FactValue::Text(t) => t.chars().count() <= MAX_FACT_TEXT,
        FactValue::Flag(_) => true,
    };
    if good {
        Ok(())
    } else {
        Err(bad_fact_value(name))
    }
}

/// What a value that is no fact value breaks (JSON `null`, an object...).
pub fn bad_fact_value(name: &str) -> Broken {
    Broken::new(
        format!("facts.{name}"),
        format!("expected a number, text (at most {MAX_FACT_TEXT} characters) or true/false"),
    )
}

/// A link shown with a fact or an event: http(s), at most [`MAX_URL`]
/// bytes.
pub fn check_url(url: Option<&str>) -> Result<Option<String>, Broken> {
    match url {
        None => Ok(None),
        Some(u)
            if (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= MAX_URL =>
        {
            Ok(Some(u.to_string()))
        }
        Some(u) => Err(Broken::new("url", format!("'{u}' is not an http(s) URL"))),
    }
}

/// An event as stored: id, kind (lower-cased), title and tone checked, the
/// actor cut to [`MAX_ACTOR`] characters, the title trimmed.
pub fn check_event(mut e: EventRecord) -> Result<EventRecord, Broken> {
    e.kind = e.kind.to_lowercase();
    if e.id.is_empty() || e.id.chars().count() > MAX_EVENT_ID {
        return Err(Broken::new("id", format!("1 to {MAX_EVENT_ID} characters")));
    }
    let kind_ok = !e.kind.is_empty()
        && e.kind.chars().count() <= MAX_EVENT_KIND
        && e.kind.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    if !kind_ok {
        return Err(Broken::new(
            "kind",
            "needed, lower-case like deployment, build, incident",
        ));
    }
    let title = e.title.trim();
    if title.is_empty() || title.chars().count() > MAX_EVENT_TITLE {
        return Err(Broken::new(
            "title",
            format!("needed, at most {MAX_EVENT_TITLE} characters"),
        ));
    }
    e.title = title.to_string();
    if !TONES.contains(&e.tone.as_str()) {
        return Err(Broken::new(
            "tone",
            format!("'{}': one of {}", e.tone, TONES.join(", ")),
        ));
    }
    e.url = check_url(e.url.as_deref())?;
    e.actor = e.actor.map(|a| a.chars().take(MAX_ACTOR).collect());
    Ok(e)
}

/// Why pushed facts were not stored.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// A fact name holds one type, in one request and in the store.
    #[error("{0}; nothing was stored")]
    Type(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores pushed facts, all or none: each fact name keeps one type, within
/// the request and against what is stored. Answers (stored, changed).
pub fn put_pushed_facts(store: &Store, facts: &[FactRecord]) -> Result<(usize, usize), Refused> {
    let mut types: HashMap<&str, &'static str> = HashMap::new();
    for f in facts {
        let t = f.value.type_name();
        if let Some(other) = types.insert(&f.name, t).filter(|o| *o != t) {
            return Err(Refused::Type(format!(
                "fact {} is given as {other} and as {t}",
                f.name
            )));
        }
    }
    for (name, t) in &types {
        if let Some(existing) = store.facts.fact_type(name)?
            && existing != *t
        {
            return Err(Refused::Type(format!(
                "fact {name} holds {existing} values; got {t}"
            )));
        }
    }
    let changed = store.facts.put_facts(facts)?;
    Ok((facts.len(), changed))
}

/// Stores what a plugin answered for an entity, keeping each fact that
/// obeys the rules and logging the others. Answers how many were stored.
pub fn put_plugin_facts(store: &Store, plugin: &str, facts: Vec<FactRecord>) -> usize {
    let mut kept = Vec::with_capacity(facts.len());
    for f in facts {
        let checked = check_fact_name(&f.name).and_then(|()| check_fact_value(&f.name, &f.value));
        if let Err(b) = checked {
            tracing::warn!(plugin, fact = %f.name, "{}: {}; skipped", b.field, b.message);
            continue;
        }
        match store.facts.fact_type(&f.name) {
            Ok(Some(t)) if t != f.value.type_name() => {
                tracing::warn!(plugin, fact = %f.name, stored = %t, given = f.value.type_name(), "fact has another type; skipped");
                continue;
            }
            Err(_) => continue,
            _ => {}
        }
        kept.push(FactRecord {
            // A bad link is dropped, not the fact.
            url: check_url(f.url.as_deref()).ok().flatten(),
            ..f
        });
    }
    match store.facts.put_facts(&kept) {
        Ok(_) => kept.len(),
        Err(e) => {
            tracing::error!(plugin, error = %e, "cannot store facts");
            0
        }
    }
}

/// Stores what a plugin answered for events, keeping each event that
/// obeys the rules and logging the others. Answers how many were new.
pub fn put_plugin_events(store: &Store, plugin: &str, events: Vec<EventRecord>) -> usize {
    let kept: Vec<EventRecord> = events
        .into_iter()
        .filter_map(|e| {
            let id = e.id.clone();
            check_event(e)
                .map_err(|b| {
                    tracing::warn!(plugin, event = %id, "{}: {}; skipped", b.field, b.message);
                })
                .ok()
        })
        .collect();
    match store.events.put_events(&kept) {
        Ok(added) => added,
        Err(e) => {
            tracing::error!(plugin, error = %e, "cannot store events");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, title: &str) -> EventRecord {
        EventRecord {
            source: "push:ci".into(),
            id: "1".into(),
            kind: kind.into(),
            entity_ref: None,
            title: title.into(),
            url: None,
            at_ms: 1,
            tone: "info".into(),
            actor: Some("a".repeat(300)),
            owner: None,
        }
    }

    #[test]
    fn text_is_counted_in_characters_by_every_sender() {
        let at_limit = FactValue::Text("é".repeat(MAX_FACT_TEXT));
        assert!(
            check_fact_value("x", &at_limit).is_ok(),
            "1000 characters, 2000 bytes"
        );
        let over = FactValue::Text("a".repeat(MAX_FACT_TEXT + 1));
        assert_eq!(check_fact_value("x", &over).unwrap_err().field, "facts.x");
        assert!(check_fact_value("x", &FactValue::Number(f64::NAN)).is_err());
        assert!(check_fact_name("Coverage").is_err());
    }

    #[test]
    fn events_are_checked_trimmed_and_cut() {
        let e = check_event(event("deployment", "  Deployed  ")).unwrap();
        assert_eq!(e.title, "Deployed");
        assert_eq!(e.actor.unwrap().chars().count(), MAX_ACTOR);
        assert_eq!(
            check_event(event("Deploy!", "x")).unwrap_err().field,
            "kind"
        );
        assert_eq!(check_event(event("Build", "x")).unwrap().kind, "build");
        assert_eq!(
            check_event(event("build", "  ")).unwrap_err().field,
            "title"
        );
        let long = "é".repeat(MAX_EVENT_TITLE);
        assert!(
            check_event(event("build", &long)).is_ok(),
            "characters, not bytes"
        );
        let bad_url = EventRecord {
            url: Some("javascript:alert(1)".into()),
            ..event("build", "x")
        };
        assert_eq!(check_event(bad_url).unwrap_err().field, "url");
    }
}
