//! Backstage's catalog filter language (`kind=component,spec.type=service`,
//! repeated `filter=` parameters ORed) and sort orders, parsed. The store
//! plans them; campaigns and plugins' `catalog.query` speak them.

use serde::{Deserialize, Serialize};

/// A bad query: answered with 400 and this message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("invalid filter '{0}': expected key=value or key, separated by commas")]
    Filter(String),
    #[error("invalid order '{0}': expected asc:<field> or desc:<field>")]
    Order(String),
    #[error("invalid cursor: {0}")]
    Cursor(String),
    #[error("{0}")]
    Limit(String),
}

/// One `filter=` parameter: every key must match (AND); the values given
/// for one key are alternatives (OR). An empty value list means "exists".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSet(pub Vec<(String, Vec<String>)>);

/// All `filter=` parameters: any set may match (OR).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter(pub Vec<FilterSet>);

impl FilterSet {
    /// Parses `kind=component,spec.type=service,spec.type=website,metadata.tags`.
    pub fn parse(text: &str) -> Result<FilterSet, QueryError> {
        let mut set: Vec<(String, Vec<String>)> = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            if key.is_empty() || key.len() > 200 {
                return Err(QueryError::Filter(text.to_string()));
            }
            let key = key.to_lowercase();
            let slot = match set.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    set.push((key, Vec::new()));
                    set.len() - 1
                }
            };
            if let Some(v) = value {
                set[slot].1.push(v.to_lowercase());
            }
        }
        if set.is_empty() {
            return Err(QueryError::Filter(text.to_string()));
        }
        Ok(FilterSet(set))
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> FilterSet {
        let text: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        FilterSet::parse(&text.join(",")).unwrap_or_default()
    }
}

impl Filter {
    pub fn parse<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Filter, QueryError> {
        let sets = params
            .into_iter()
            .map(FilterSet::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if sets.iter().map(|s| s.0.len()).sum::<usize>() > 100 {
            return Err(QueryError::Limit(
                "too many filter conditions (at most 100)".into(),
            ));
        }
        Ok(Filter(sets))
    }
}

/// A sort order on one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub field: String,
    pub desc: bool,
}

impl Order {
    /// Parses `/entities`' `asc:metadata.name`.
    pub fn parse_prefixed(text: &str) -> Result<Order, QueryError> {
        match text.split_once(':') {
            Some(("asc", f)) if !f.is_empty() => Ok(Order {
                field: f.to_lowercase(),
                desc: false,
            }),
            Some(("desc", f)) if !f.is_empty() => Ok(Order {
                field: f.to_lowercase(),
                desc: true,
            }),
            _ => Err(QueryError::Order(text.to_string())),
        }
    }

    /// Parses by-query's `metadata.name,asc`.
    pub fn parse_suffixed(text: &str) -> Result<Order, QueryError> {
        let (field, dir) = text.split_once(',').unwrap_or((text, "asc"));
        match dir.trim() {
            "asc" if !field.is_empty() => Ok(Order {
                field: field.trim().to_lowercase(),
                desc: false,
            }),
            "desc" if !field.is_empty() => Ok(Order {
                field: field.trim().to_lowercase(),
                desc: true,
            }),
            _ => Err(QueryError::Order(text.to_string())),
        }
    }
}
