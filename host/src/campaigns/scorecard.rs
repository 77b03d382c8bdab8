//! Scorecards: named checks in the campaign predicate language, grouped
//! into levels (bronze, silver, gold), applied to a catalog filter. An
//! entity reaches a level when it passes every check of that level and
//! of every level below; it is told which checks fail and why.
//!
//! A scorecard is a catalog entity (`greenroom.dev/v1alpha1`, kind
//! `Scorecard`):
//!
//! ```yaml
//! spec:
//!   owner: team-sre
//!   targets: kind=component,spec.type=service
//!   levels: [bronze, silver, gold]
//!   checks:
//!     - name: docs
//!       level: bronze
//!       when: annotation backstage.io/techdocs-ref exists
//! ```
//!
//! Its history is recorded per level, as a campaign's is per target:
//! subject `scorecard:<name>/<level>`, done when the entity has reached
//! that level.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Evaluation, Predicate, Source, SpecProblem, check_predicate, check_targets, csv_field,
};
use crate::catalog::EntityRef;
use crate::store::{Filter, FilterSet, ListQuery, Status, Store, StoreError};

/// Levels when a scorecard names none.
pub const DEFAULT_LEVELS: [&str; 3] = ["bronze", "silver", "gold"];

/// One named check.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub title: String,
    /// Index into the scorecard's levels.
    pub level: usize,
    pub when: Predicate,
    pub when_text: String,
}

/// A scorecard, checked.
#[derive(Debug, Clone)]
pub struct Scorecard {
    pub name: String,
    pub title: String,
    pub description: String,
    pub owner: String,
    pub targets: Vec<String>,
    pub filter: Filter,
    /// Lowest first.
    pub levels: Vec<String>,
    pub checks: Vec<Check>,
    /// How often the owners of entities below a level are nudged, and
    /// that level (`spec.nudge: {every, level}`).
    pub nudge: Option<(std::time::Duration, usize)>,
}

/// Teaches the catalog the Scorecard kind's spec.
pub fn register(kinds: &mut crate::catalog::Kinds) {
    kinds.add_spec_check("scorecard", |spec| {
        check_spec(spec).err().unwrap_or_default()
    });
}

/// A scorecard's targets, levels and checks, checked (its name, title and
/// owner left empty); every problem names its field.
pub fn check_spec(spec: &Value) -> Result<Scorecard, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    let (targets, filter) = check_targets(spec, &mut problems);
    let levels: Vec<String> = match spec.get("levels") {
        None | Some(Value::Null) => DEFAULT_LEVELS.iter().map(|l| l.to_string()).collect(),
        Some(Value::Array(list)) if !list.is_empty() => {
            let mut levels: Vec<String> = Vec::new();
            for (i, l) in list.iter().enumerate() {
                match l.as_str().map(str::trim).filter(|l| !l.is_empty()) {
                    Some(name) if levels.iter().any(|seen| seen.eq_ignore_ascii_case(name)) => {
                        problems.push((
                            format!("spec.levels[{i}]"),
                            format!("level '{name}' is named twice; each level needs its own name"),
                        ));
                    }
                    Some(name) => levels.push(name.to_string()),
                    None => problems.push((
                        format!("spec.levels[{i}]"),
                        "needs a level name, e.g. bronze".into(),
                    )),
                }
            }
            levels
        }
        Some(_) => {
            problems.push((
                "spec.levels".into(),
                "needs the level names, lowest first, e.g. [bronze, silver, gold]".into(),
            ));
            Vec::new()
        }
    };
    let mut checks: Vec<Check> = Vec::new();
    match spec.get("checks") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                let at = format!("spec.checks[{i}]");
                let name = c["name"].as_str().unwrap_or_default().trim().to_string();
                if name.is_empty() {
                    problems.push((format!("{at}.name"), "needs a name, e.g. docs".into()));
                } else if checks.iter().any(|seen| seen.name == name) {
                    problems.push((
                        format!("{at}.name"),
                        format!("check '{name}' is named twice"),
                    ));
                }
                let level = match c["level"].as_str() {
                    Some(l) => levels
                        .iter()
                        .position(|known| known.eq_ignore_ascii_case(l)),
                    None => Some(0),
                };
                if level.is_none() {
                    problems.push((
                        format!("{at}.level"),
                        format!(
                            "{} is not one of the levels ({})",
                            c["level"],
                            levels.join(", ")
                        ),
                    ));
                }
                let when = check_predicate(c, "when", &format!("{at}.when"), &mut problems);
                if let (Some(level), Some(when)) = (level, when) {
                    checks.push(Check {
                        title: c["title"].as_str().unwrap_or(&name).to_string(),
                        name,
                        level,
                        when_text: c["when"].as_str().unwrap_or_default().to_string(),
                        when,
                    });
                }
            }
        }
        _ => problems.push((
            "spec.checks".into(),
            "needs a list of checks, each {name, level, when: <predicate>}".into(),
        )),
    }
    let nudge =
        super::check_nudge_every(spec, &mut problems).and_then(
            |every| match spec["nudge"]["level"].as_str() {
                None => Some((every, 0)),
                Some(l) => match levels
                    .iter()
                    .position(|known| known.eq_ignore_ascii_case(l))
                {
                    Some(level) => Some((every, level)),
                    None => {
                        problems.push((
                            "spec.nudge.level".into(),
                            format!("'{l}' is not one of the levels ({})", levels.join(", ")),
                        ));
                        None
                    }
                },
            },
        );
    if problems.is_empty() {
        Ok(Scorecard {
            name: String::new(),
            title: String::new(),
            description: String::new(),
            owner: String::new(),
            targets,
            filter,
            levels,
            checks,
            nudge,
        })
    } else {
        Err(problems)
    }
}

impl Scorecard {
    /// From a stored Scorecard entity.
    pub fn from_entity(entity: &Value) -> Result<Scorecard, Vec<SpecProblem>> {
        let meta = &entity["metadata"];
        let spec = &entity["spec"];
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        Ok(Scorecard {
            title: meta["title"].as_str().unwrap_or(&name).to_string(),
            description: meta["description"].as_str().unwrap_or_default().to_string(),
            owner: spec["owner"]
                .as_str()
                .and_then(|o| EntityRef::parse(o, Some("group"), "default").ok())
                .map(|r| r.to_string())
                .unwrap_or_default(),
            name,
            ..check_spec(spec)?
        })
    }

    /// From a dry run's body: `{targets, levels, checks}` as a spec has
    /// them (problems named without `spec.`).
    pub fn from_api(body: &Value) -> Result<Scorecard, Vec<SpecProblem>> {
        let card = check_spec(body).map_err(|problems| {
            problems
                .into_iter()
                .map(|(f, m)| (f.trim_start_matches("spec.").to_string(), m))
                .collect::<Vec<_>>()
        })?;
        Ok(Scorecard {
            name: body["name"].as_str().unwrap_or("dry-run").to_string(),
            ..card
        })
    }

    /// Every input any check reads, once.
    fn inputs(&self) -> Vec<(Source, String)> {
        let mut all: Vec<(Source, String)> = Vec::new();
        for c in &self.checks {
            for input in c.when.inputs() {
                if !all.contains(&input) {
                    all.push(input);
                }
            }
        }
        all
    }

    pub fn summary_json(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "owner": self.owner,
            "targets": self.targets,
            "levels": self.levels,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "title": c.title,
                "level": self.levels[c.level],
                "when": c.when_text,
            })).collect::<Vec<_>>(),
        })
    }

    /// The index of the level named `name` (`none`: below the first),
    /// or what the levels are.
    pub fn level_named(&self, name: &str) -> Result<Option<usize>, String> {
        if name == "none" {
            return Ok(None);
        }
        self.levels
            .iter()
            .position(|l| l == name)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "scorecard {} has no level '{name}'; its levels are {} (or none)",
                    self.name,
                    self.levels.join(", ")
                )
            })
    }

    /// The history subject of level `level`.
    pub fn subject(&self, level: usize) -> String {
        format!("scorecard:{}/{}", self.name, self.levels[level])
    }
}

/// Every scorecard in the catalog, by name.
pub fn all(store: &Store) -> Result<Vec<Scorecard>, StoreError> {
    let q = ListQuery {
        filter: Filter(vec![FilterSet::from_pairs([("kind", "scorecard")])]),
        ..Default::default()
    };
    let mut out = Vec::new();
    store.catalog.list_each(&q, &mut |json| {
        if let Ok(v) = serde_json::from_str::<Value>(&json)
            && let Ok(s) = Scorecard::from_entity(&v)
        {
            out.push(s);
        }
        true
    })?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The scorecard named `name`.
pub fn find(store: &Store, name: &str) -> Result<Option<Scorecard>, StoreError> {
    Ok(all(store)?.into_iter().find(|s| s.name == name))
}

/// One entity's standing on a scorecard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The entity's id in the store.
    #[serde(skip)]
    pub id: i64,
    pub entity_ref: String,
    pub owner: Option<String>,
    /// The highest level reached (index), if any.
    #[serde(skip)]
    pub level: Option<usize>,
    /// Each failing check: its index and why.
    #[serde(skip)]
    pub failing: Vec<(usize, String)>,
}

fn scores_of(card: &Scorecard, evaluation: &Evaluation) -> Vec<Score> {
    (0..evaluation.targets().len())
        .map(|i| {
            let (id, r, owner) = &evaluation.targets()[i];
            let failing: Vec<(usize, String)> = card
                .checks
                .iter()
                .enumerate()
                .filter_map(|(ci, c)| evaluation.explain(i, &c.when).map(|why| (ci, why)))
                .collect();
            let lowest_failing = failing
                .iter()
                .map(|(ci, _)| card.checks[*ci].level)
                .min()
                .unwrap_or(card.levels.len());
            Score {
                id: *id,
                entity_ref: r.clone(),
                owner: owner.clone(),
                level: lowest_failing.checked_sub(1),
                failing,
            }
        })
        .collect()
}

/// Every target's score, in id order.
pub fn evaluate(store: &Store, card: &Scorecard) -> Result<Vec<Score>, StoreError> {
    let evaluation = Evaluation::over(store, &card.filter, &card.inputs())?;
    Ok(scores_of(card, &evaluation))
}

/// `entity`'s score on `card`, if the card targets it: a few rows read,
/// never the whole catalog.
pub fn score_of(
    store: &Store,
    card: &Scorecard,
    entity: &EntityRef,
) -> Result<Option<Score>, StoreError> {
    let evaluation = Evaluation::one(store, &card.filter, entity, &card.inputs())?;
    Ok(scores_of(card, &evaluation).pop())
}

/// Every target's level as the history recorder last saw it (an index;
/// `None` below the first level), by entity ref: what the catalog's level
/// facet counts and filters by, without evaluating a check. It is at most
/// one `[campaigns] record_interval` behind the catalog; a scorecard never
/// recorded is evaluated and recorded now.
pub fn recorded_levels(
    store: &Store,
    card: &Scorecard,
) -> Result<HashMap<String, Option<usize>>, StoreError> {
    let mut out: HashMap<String, Option<usize>> = HashMap::new();
    // Levels are cumulative (reaching silver means bronze too), so the
    // last level recorded done is the entity's level.
    for level in 0..card.levels.len() {
        for (r, status) in store.statuses.latest_statuses(&card.subject(level))? {
            match status {
                Status::Done => {
                    out.insert(r, Some(level));
                }
                Status::Open => {
                    out.entry(r).or_insert(None);
                }
                Status::Gone => {}
            }
        }
    }
    if out.is_empty() {
        let scores = evaluate(store, card)?;
        record(store, card, &scores, crate::store::now_ms())?;
        out = scores
            .into_iter()
            .map(|s| (s.entity_ref, s.level))
            .collect();
    }
    Ok(out)
}

/// The entities at exactly `level` (`None`: below the first) as last
/// recorded, among `among` (every target when `None`), in ref order.
pub fn refs_at_level(
    store: &Store,
    card: &Scorecard,
    level: Option<usize>,
    among: Option<&std::collections::HashSet<String>>,
) -> Result<Vec<String>, StoreError> {
    let mut refs: Vec<String> = recorded_levels(store, card)?
        .into_iter()
        .filter(|(r, l)| *l == level && among.is_none_or(|c| c.contains(r)))
        .map(|(r, _)| r)
        .collect();
    refs.sort_unstable();
    Ok(refs)
}

/// `entity`'s score on every scorecard that targets it.
pub fn of_entity(store: &Store, entity: &EntityRef) -> Result<Vec<(Scorecard, Score)>, StoreError> {
    let mut out = Vec::new();
    for card in all(store)? {
        if let Some(score) = score_of(store, &card, entity)? {
            out.push((card, score));
        }
    }
    Ok(out)
}

impl Score {
    /// The level's name, if one is reached.
    pub fn level_name<'a>(&self, card: &'a Scorecard) -> Option<&'a str> {
        self.level.map(|l| card.levels[l].as_str())
    }

    /// The score with every check, passing or not, for an entity's page.
    pub fn json(&self, card: &Scorecard) -> Value {
        json!({
            "entityRef": self.entity_ref,
            "owner": self.owner,
            "level": self.level_name(card),
            "failing": self.failing.iter().map(|(ci, why)| json!({
                "check": card.checks[*ci].name,
                "level": card.levels[card.checks[*ci].level],
                "reason": why,
            })).collect::<Vec<_>>(),
        })
    }
}

/// How many entities stand at each level, exactly (`none` below the
/// first), and how many pass each check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollup {
    pub total: usize,
    pub none: usize,
    /// Per level, lowest first: (name, entities at exactly that level).
    pub levels: Vec<(String, usize)>,
}

pub fn rollup(card: &Scorecard, scores: &[&Score]) -> Rollup {
    let mut at = vec![0usize; card.levels.len()];
    let mut none = 0;
    for s in scores {
        match s.level {
            Some(l) => at[l] += 1,
            None => none += 1,
        }
    }
    Rollup {
        total: scores.len(),
        none,
        levels: card.levels.iter().cloned().zip(at).collect(),
    }
}

/// Scores grouped by owning team, by name.
pub fn by_team(scores: &[Score]) -> BTreeMap<String, Vec<&Score>> {
    let mut teams: BTreeMap<String, Vec<&Score>> = BTreeMap::new();
    for s in scores {
        teams
            .entry(s.owner.clone().unwrap_or_else(|| super::NO_OWNER.into()))
            .or_default()
            .push(s);
    }
    teams
}

/// Scores grouped by domain (through each target's `spec.system` and that
/// system's `spec.domain`), by domain ref; targets in no domain under
/// `(no domain)`.
pub fn by_domain<'a>(
    store: &Store,
    scores: &'a [Score],
) -> Result<BTreeMap<String, Vec<&'a Score>>, StoreError> {
    let refs_of = |key: &str, kind: &str| -> Result<HashMap<i64, String>, StoreError> {
        Ok(store
            .catalog
            .values_of_key(key)?
            .into_iter()
            .filter_map(|(id, v)| {
                EntityRef::parse(&v, Some(kind), "default")
                    .ok()
                    .map(|r| (id, r.to_string()))
            })
            .collect())
    };
    let domain_by_id = refs_of("spec.domain", "domain")?;
    let system_of = refs_of("spec.system", "system")?;
    let domain_of_system: HashMap<String, &String> = store
        .catalog
        .filter_refs(&Filter(vec![FilterSet::from_pairs([("kind", "system")])]))?
        .into_iter()
        .filter_map(|(id, r, _)| domain_by_id.get(&id).map(|d| (r, d)))
        .collect();
    let mut out: BTreeMap<String, Vec<&Score>> = BTreeMap::new();
    for s in scores {
        let domain = system_of
            .get(&s.id)
            .and_then(|system| domain_of_system.get(system))
            .map_or_else(|| NO_DOMAIN.to_string(), |d| (*d).clone());
        out.entry(domain).or_default().push(s);
    }
    Ok(out)
}

/// The roll-up of targets in no domain.
pub const NO_DOMAIN: &str = "(no domain)";

/// Records each level's changes (an entity has reached it or not) at
/// `at_ms`; answers how many changed.
pub fn record(
    store: &Store,
    card: &Scorecard,
    scores: &[Score],
    at_ms: i64,
) -> Result<usize, StoreError> {
    let mut changed = 0;
    for level in 0..card.levels.len() {
        let statuses = scores.iter().map(|s| {
            let reached = s.level.is_some_and(|l| l >= level);
            (
                s.entity_ref.as_str(),
                if reached { Status::Done } else { Status::Open },
            )
        });
        changed += super::history::record_subject(store, &card.subject(level), statuses, at_ms)?;
    }
    Ok(changed)
}

/// Every target with its level and failing checks, as CSV.
pub fn scores_csv(card: &Scorecard, scores: &[Score]) -> String {
    let mut out = String::from("entity,owner,level,failing\n");
    for s in scores {
        let failing: Vec<String> = s
            .failing
            .iter()
            .map(|(ci, why)| format!("{}: {why}", card.checks[*ci].name))
            .collect();
        out.push_str(&format!(
            "{},{},{},{}\n",
            csv_field(&s.entity_ref),
            csv_field(s.owner.as_deref().unwrap_or_default()),
            csv_field(s.level_name(card).unwrap_or("none")),
            csv_field(&failing.join("; ")),
        ));
    }
    out
}
