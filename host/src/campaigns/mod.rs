//! Campaigns: migrations tracked in the portal instead of a spreadsheet.
//! A campaign names its targets (a catalog filter), a done-check (a
//! [`Predicate`] over facts, annotations, labels and spec), an owner and a
//! deadline. It is a catalog entity (`greenroom.dev/v1alpha1`, kind
//! `Campaign`) or made through the API.
//!
//! Status is computed when asked, from SQL alone: the targets' ids, refs
//! and owners from the filter planner, the values the predicate reads from
//! the facts table and the flattened `search` table, so 10,000 targets
//! never mean 10,000 JSON documents parsed. The burndown replays fact
//! history day by day.

pub mod history;
pub mod notify;
pub mod nudge;
pub mod predicate;
pub mod scorecard;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

pub use predicate::{ParseError, Predicate, Source};

use crate::catalog::EntityRef;
use crate::store::{Filter, FilterSet, Store, StoreError};

/// A campaign, checked.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub title: String,
    pub description: String,
    /// `group:default/team-platform`.
    pub owner: String,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
    /// How often the owners of open targets are nudged (`spec.nudge.every`).
    pub nudge_every: Option<std::time::Duration>,
    /// The filters as written; an entity matching any is a target.
    pub targets: Vec<String>,
    filter: Filter,
    pub done_when: Predicate,
    pub done_when_text: String,
    /// `catalog` or `api`.
    pub source: &'static str,
}

/// A problem with a campaign's definition: the field and what is wrong.
pub type SpecProblem = (String, String);

fn valid_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && text[..4].parse::<u32>().is_ok()
        && text[5..7]
            .parse::<u32>()
            .is_ok_and(|m| (1..=12).contains(&m))
        && text[8..]
            .parse::<u32>()
            .is_ok_and(|d| (1..=31).contains(&d))
}

/// The parts of a campaign's spec, checked.
#[derive(Debug)]
pub struct CheckedSpec {
    pub targets: Vec<String>,
    pub filter: Filter,
    pub done_when: Predicate,
    pub deadline: Option<String>,
    pub nudge_every: Option<std::time::Duration>,
}

/// Teaches the catalog the Campaign kind's spec: its targets, done-check
/// and deadline are checked when a catalog file is read, each problem
/// located at its field.
pub fn register(kinds: &mut crate::catalog::Kinds) {
    kinds.add_spec_check("campaign", |spec| {
        check_spec(spec).err().unwrap_or_default()
    });
}

/// A spec's `targets`: one catalog filter or a list of them (an entity
/// matching any is a target), each problem added to `problems`.
pub(crate) fn check_targets(
    spec: &Value,
    problems: &mut Vec<SpecProblem>,
) -> (Vec<String>, Filter) {
    let targets: Vec<String> = match spec.get("targets") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => {
            problems.push((
                "spec.targets".into(),
                "needs a catalog filter, e.g. kind=component,spec.type=service (or a list of them)"
                    .into(),
            ));
            Vec::new()
        }
    };
    let mut sets = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match FilterSet::parse(t) {
            Ok(set) => sets.push(set),
            Err(e) => problems.push((format!("spec.targets[{i}]"), e.to_string())),
        }
    }
    (targets, Filter(sets))
}

/// `spec.nudge.every`: how often owners of open targets are told.
pub(crate) fn check_nudge_every(
    spec: &Value,
    problems: &mut Vec<SpecProblem>,
) -> Option<std::time::Duration> {
    match &spec["nudge"] {
        Value::Null => None,
        Value::Object(nudge) => match nudge.get("every").and_then(Value::as_str) {
            Some(text) => match humantime::parse_duration(text) {
                Ok(every) if every >= std::time::Duration::from_secs(3600) => Some(every),
                _ => {
                    problems.push((
                        "spec.nudge.every".into(),
                        format!("'{text}' is not a duration of an hour or more, like 7d"),
                    ));
                    None
                }
            },
            None => {
                problems.push((
                    "spec.nudge.every".into(),
                    "needs how often to nudge, like 7d".into(),
                ));
                None
            }
        },
        other => {
            problems.push((
                "spec.nudge".into(),
                format!("expected {{every: 7d}}, got {other}"),
            ));
            None
        }
    }
}

/// The predicate in `spec[key]`, its problem named `field`.
pub(crate) fn check_predicate(
    spec: &Value,
    key: &str,
    field: &str,
    problems: &mut Vec<SpecProblem>,
) -> Option<Predicate> {
    match spec.get(key) {
        Some(Value::String(text)) => match Predicate::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push((field.into(), format!("invalid predicate '{text}': {e}")));
                None
            }
        },
        _ => {
            problems.push((
                field.into(),
                "needs a predicate, e.g. fact coverage.lines >= 70".into(),
            ));
            None
        }
    }
}

/// Checks a campaign's `spec` (as an entity has it); every problem names
/// its field, the done-check's with where in the predicate.
pub fn check_spec(spec: &Value) -> Result<CheckedSpec, Vec<SpecProblem>> {
    let mut problems = Vec::new();
    let (targets, filter) = check_targets(spec, &mut problems);
    let predicate = check_predicate(spec, "doneWhen", "spec.doneWhen", &mut problems);
    let nudge_every = check_nudge_every(spec, &mut problems);
    let deadline = match spec.get("deadline") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if valid_date(d) => Some(d.clone()),
        Some(other) => {
            problems.push((
                "spec.deadline".into(),
                format!("{other} is not a date like 2027-03-31"),
            ));
            None
        }
    };
    match predicate {
        Some(done_when) if problems.is_empty() => Ok(CheckedSpec {
            targets,
            filter,
            done_when,
            deadline,
            nudge_every,
        }),
        _ => Err(problems),
    }
}

impl Campaign {
    /// From a stored Campaign entity.
    pub fn from_entity(entity: &Value) -> Result<Campaign, Vec<SpecProblem>> {
        let meta = &entity["metadata"];
        let spec = &entity["spec"];
        let CheckedSpec {
            targets,
            filter,
            done_when,
            deadline,
            nudge_every,
        } = check_spec(spec)?;
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        Ok(Campaign {
            title: meta["title"].as_str().unwrap_or(&name).to_string(),
            description: meta["description"].as_str().unwrap_or_default().to_string(),
            owner: spec["owner"]
                .as_str()
                .and_then(|o| EntityRef::parse(o, Some("group"), "default").ok())
                .map(|r| r.to_string())
                .unwrap_or_default(),
            deadline,
            nudge_every,
            targets,
            filter,
            done_when_text: spec["doneWhen"].as_str().unwrap_or_default().to_string(),
            done_when,
            source: "catalog",
            name,
        })
    }

    /// From an API body: `{name, title, description, owner, deadline,
    /// targets, doneWhen}`.
    pub fn from_api(body: &Value) -> Result<Campaign, Vec<SpecProblem>> {
        let mut problems = Vec::new();
        let name = body["name"].as_str().unwrap_or_default();
        if crate::catalog::refs::check_name(name).is_err() {
            problems.push((
                "name".into(),
                format!("'{name}' is not a valid entity name (lower-case letters, digits and -)"),
            ));
        }
        let owner = body["owner"]
            .as_str()
            .and_then(|o| EntityRef::parse(o, Some("group"), "default").ok());
        if owner.is_none() {
            problems.push((
                "owner".into(),
                "needs the owning team, e.g. team-platform".into(),
            ));
        }
        let checked = check_spec(body);
        let CheckedSpec {
            targets,
            filter,
            done_when,
            deadline,
            nudge_every,
        } = match checked {
            Ok(c) if problems.is_empty() => c,
            Ok(_) => return Err(problems),
            Err(more) => {
                problems.extend(
                    more.into_iter()
                        .map(|(f, m)| (f.trim_start_matches("spec.").to_string(), m)),
                );
                return Err(problems);
            }
        };
        Ok(Campaign {
            name: name.to_string(),
            title: body["title"].as_str().unwrap_or(name).to_string(),
            description: body["description"].as_str().unwrap_or_default().to_string(),
            owner: owner.map(|r| r.to_string()).unwrap_or_default(),
            deadline,
            nudge_every,
            targets,
            filter,
            done_when_text: body["doneWhen"].as_str().unwrap_or_default().to_string(),
            done_when,
            source: "api",
        })
    }

    pub fn summary_json(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "owner": self.owner,
            "deadline": self.deadline,
            "nudge": self.nudge_every.map(|every| json!({"every": humantime::format_duration(every).to_string()})),
            "targets": self.targets,
            "doneWhen": self.done_when_text,
            "source": self.source,
        })
    }
}

/// Every campaign: catalog entities, then API ones whose names are free.
pub fn all(store: &Store) -> Result<Vec<Campaign>, StoreError> {
    let q = crate::store::ListQuery {
        filter: Filter(vec![FilterSet::from_pairs([("kind", "campaign")])]),
        ..Default::default()
    };
    let mut out = Vec::new();
    store.catalog.list_each(&q, &mut |json| {
        if let Ok(v) = serde_json::from_str::<Value>(&json)
            && let Ok(c) = Campaign::from_entity(&v)
        {
            out.push(c);
        }
        true
    })?;
    for (name, body) in store.campaigns.api_campaigns()? {
        if out.iter().any(|c| c.name == name) {
            continue;
        }
        if let Ok(c) = serde_json::from_str::<Value>(&body)
            .map_err(|_| ())
            .and_then(|v| Campaign::from_api(&v).map_err(|_| ()))
        {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// One target's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetStatus {
    pub entity_ref: String,
    pub owner: Option<String>,
    pub done: bool,
    /// Why it is not done yet.
    pub reason: Option<String>,
}

/// The values a predicate reads, for every entity that has them. Looked
/// up by a scan over the few inputs, so that no lookup allocates.
pub struct Inputs {
    /// Per fact name: values by entity ref.
    facts: Vec<(String, HashMap<String, predicate::Value>)>,
    /// Per other input: values by entity id.
    fields: Vec<(Source, String, HashMap<i64, predicate::Value>)>,
}

fn to_value(v: crate::store::FactValue) -> predicate::Value {
    match v {
        crate::store::FactValue::Number(n) => predicate::Value::Number(n),
        crate::store::FactValue::Text(t) => predicate::Value::Text(t),
        crate::store::FactValue::Flag(b) => predicate::Value::Flag(b),
    }
}

fn field_key(source: Source, name: &str) -> String {
    let name = name.to_lowercase();
    match source {
        Source::Annotation => format!("metadata.annotations.{name}"),
        Source::Label => format!("metadata.labels.{name}"),
        Source::Spec | Source::Fact => format!("spec.{name}"),
    }
}

impl Inputs {
    /// The values of `inputs` for every entity that has them.
    fn load(store: &Store, inputs: &[(Source, String)]) -> Result<Inputs, StoreError> {
        let mut facts = Vec::new();
        let mut fields = Vec::new();
        for (source, name) in inputs.iter().cloned() {
            if source == Source::Fact {
                let values = store
                    .facts
                    .facts_named(&name)?
                    .into_iter()
                    .map(|(r, v)| (r, to_value(v)))
                    .collect();
                facts.push((name, values));
            } else {
                let mut values = HashMap::new();
                for (id, text) in store.catalog.values_of_key(&field_key(source, &name))? {
                    values.entry(id).or_insert(predicate::Value::Text(text));
                }
                fields.push((source, name, values));
            }
        }
        Ok(Inputs { facts, fields })
    }

    /// The values of `inputs` for one entity: a few rows by its id and
    /// ref rather than every entity's.
    fn for_entity(
        store: &Store,
        id: i64,
        entity_ref: &str,
        inputs: &[(Source, String)],
    ) -> Result<Inputs, StoreError> {
        let values = store.catalog.entity_values(id)?;
        let facts_now = store.facts.entity_facts(entity_ref)?;
        let mut facts = Vec::new();
        let mut fields = Vec::new();
        for (source, name) in inputs.iter().cloned() {
            if source == Source::Fact {
                let values = facts_now
                    .iter()
                    .filter(|f| f.name == name)
                    .map(|f| (entity_ref.to_string(), to_value(f.value.clone())))
                    .collect();
                facts.push((name, values));
            } else {
                let key = field_key(source, &name);
                let values = values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (id, predicate::Value::Text(v.clone())))
                    .into_iter()
                    .collect();
                fields.push((source, name, values));
            }
        }
        Ok(Inputs { facts, fields })
    }

    fn get(
        &self,
        id: i64,
        entity_ref: &str,
        source: Source,
        name: &str,
    ) -> Option<predicate::Value> {
        match source {
            Source::Fact => self
                .facts
                .iter()
                .find(|(n, _)| n == name)?
                .1
                .get(entity_ref)
                .cloned(),
            _ => self
                .fields
                .iter()
                .find(|(s, n, _)| *s == source && n == name)?
                .2
                .get(&id)
                .cloned(),
        }
    }
}

/// A fact's changes for one entity: (time, value), oldest first.
type Timeline = Vec<(i64, predicate::Value)>;

/// A campaign's targets (id, ref, owner) and the values its done-check
/// reads, loaded once for its status and its burndown.
pub struct Evaluation {
    targets: Vec<(i64, String, Option<String>)>,
    inputs: Inputs,
}

impl Evaluation {
    pub fn load(store: &Store, campaign: &Campaign) -> Result<Evaluation, StoreError> {
        Evaluation::over(store, &campaign.filter, &campaign.done_when.inputs())
    }

    /// The entities `filter` selects (never campaigns or scorecards) and
    /// the values of `inputs` for them.
    pub fn over(
        store: &Store,
        filter: &Filter,
        inputs: &[(Source, String)],
    ) -> Result<Evaluation, StoreError> {
        let targets = store
            .catalog
            .filter_refs(filter)?
            .into_iter()
            .filter(|(_, r, _)| !r.starts_with("campaign:") && !r.starts_with("scorecard:"))
            .collect();
        Ok(Evaluation {
            targets,
            inputs: Inputs::load(store, inputs)?,
        })
    }

    /// One entity, if `filter` selects it, and the values of `inputs` for
    /// it alone.
    pub fn one(
        store: &Store,
        filter: &Filter,
        entity: &EntityRef,
        inputs: &[(Source, String)],
    ) -> Result<Evaluation, StoreError> {
        // Each set narrowed to the entity, so the planner walks one row; a
        // set that names another kind, namespace or name cannot match.
        let pins = [
            ("kind", entity.kind.to_lowercase()),
            ("metadata.namespace", entity.namespace.to_lowercase()),
            ("metadata.name", entity.name.to_lowercase()),
        ];
        let narrowed = Filter(
            filter
                .0
                .iter()
                .filter_map(|set| {
                    let mut set = set.clone();
                    for (key, value) in &pins {
                        match set.0.iter_mut().find(|(k, _)| k == key) {
                            Some((_, values)) if values.is_empty() || values.contains(value) => {
                                *values = vec![value.clone()];
                            }
                            Some(_) => return None,
                            None => set.0.push((key.to_string(), vec![value.clone()])),
                        }
                    }
                    Some(set)
                })
                .collect(),
        );
        if narrowed.0.is_empty() {
            return Ok(Evaluation {
                targets: Vec::new(),
                inputs: Inputs {
                    facts: Vec::new(),
                    fields: Vec::new(),
                },
            });
        }
        let targets: Vec<(i64, String, Option<String>)> = store
            .catalog
            .filter_refs(&narrowed)?
            .into_iter()
            .filter(|(_, r, _)| !r.starts_with("campaign:") && !r.starts_with("scorecard:"))
            .collect();
        let inputs = match targets.first() {
            Some((id, r, _)) => Inputs::for_entity(store, *id, r, inputs)?,
            None => Inputs {
                facts: Vec::new(),
                fields: Vec::new(),
            },
        };
        Ok(Evaluation { targets, inputs })
    }

    /// Why target `index` fails `predicate`, or `None` when it passes.
    pub fn explain(&self, index: usize, predicate: &Predicate) -> Option<String> {
        let (id, r, _) = &self.targets[index];
        predicate.explain(&|s, n| self.inputs.get(*id, r, s, n))
    }

    /// Each target's status, in id order.
    pub fn statuses(&self, campaign: &Campaign) -> Vec<TargetStatus> {
        self.targets
            .iter()
            .map(|(id, r, owner)| {
                let reason = campaign
                    .done_when
                    .explain(&|s, n| self.inputs.get(*id, r, s, n));
                TargetStatus {
                    done: reason.is_none(),
                    reason,
                    entity_ref: r.clone(),
                    owner: owner.clone(),
                }
            })
            .collect()
    }

    /// The targets, in id order: (id, ref, owner).
    pub fn targets(&self) -> &[(i64, String, Option<String>)] {
        &self.targets
    }

    /// Whether each target (in id order) was done at each of `ends` (ms):
    /// facts as they were then (from their history), other fields as they
    /// are now, today's targets throughout. What a campaign's history
    /// starts from before the host recorded any.
    pub fn replay(
        &self,
        store: &Store,
        campaign: &Campaign,
        ends: &[i64],
    ) -> Result<Vec<Vec<bool>>, StoreError> {
        // Nothing to replay (the host recorded every day asked for): the
        // fact history is not read at all.
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let inputs = campaign.done_when.inputs();
        // Per fact: each entity's changes, oldest first.
        let mut history: Vec<(String, HashMap<String, Timeline>)> = Vec::new();
        for (source, name) in &inputs {
            if *source == Source::Fact {
                let mut by_ref: HashMap<String, Timeline> = HashMap::new();
                for (r, at, v) in store.facts.fact_changes(name)? {
                    by_ref.entry(r).or_default().push((at, to_value(v)));
                }
                history.push((name.clone(), by_ref));
            }
        }
        // Per target, every input resolved once: a fact's timeline, or
        // another field's value now.
        enum Resolved<'a> {
            Timeline(&'a [(i64, predicate::Value)]),
            Now(Option<predicate::Value>),
        }
        let resolved: Vec<Vec<(Source, &str, Resolved<'_>)>> = self
            .targets
            .iter()
            .map(|(id, r, _)| {
                inputs
                    .iter()
                    .map(|(source, name)| {
                        let value = if *source == Source::Fact {
                            Resolved::Timeline(
                                history
                                    .iter()
                                    .find(|(n, _)| n == name)
                                    .and_then(|(_, by_ref)| by_ref.get(r.as_str()))
                                    .map_or(&[][..], Vec::as_slice),
                            )
                        } else {
                            Resolved::Now(self.inputs.get(*id, r, *source, name))
                        };
                        (*source, name.as_str(), value)
                    })
                    .collect()
            })
            .collect();
        Ok(ends
            .iter()
            .map(|&end| {
                resolved
                    .iter()
                    .map(|values| {
                        campaign.done_when.eval(&|s, n| match &values
                            .iter()
                            .find(|(vs, vn, _)| *vs == s && *vn == n)?
                            .2
                        {
                            Resolved::Now(v) => v.clone(),
                            Resolved::Timeline(changes) => changes
                                .iter()
                                .rev()
                                .find(|(at, _)| *at < end)
                                .map(|(_, v)| v.clone()),
                        })
                    })
                    .collect()
            })
            .collect())
    }
}

/// A campaign's evaluation and its targets' statuses, in id order.
pub struct Evaluated {
    pub evaluation: Evaluation,
    pub statuses: Vec<TargetStatus>,
}

/// Campaign evaluations kept while nothing they read moved: the catalog's
/// change feed (targets, owners, annotations, labels, spec) and the fact
/// history (every fact value that changes is written there). Both heads
/// are shared by every replica, so a change made through another replica
/// is seen too. A page view then costs two reads instead of planning the
/// filter and loading every input; the first view after a change pays
/// the full evaluation. At most 16 campaigns are kept, all of the store
/// as it is now (an evaluation holds its targets and the values its
/// check reads, a few MB at 100,000 entities), then it starts again.
#[derive(Default)]
pub struct Evaluations(Mutex<HashMap<String, (Heads, Arc<Evaluated>)>>);

/// The change feed's and the fact history's heads.
type Heads = (i64, i64);

impl Evaluations {
    const KEPT: usize = 16;

    /// `campaign` evaluated now, or as kept when nothing moved since.
    pub fn get(&self, store: &Store, campaign: &Campaign) -> Result<Arc<Evaluated>, StoreError> {
        let heads = (
            store.changes.last_entity_change()?,
            store.facts.fact_history_head()?,
        );
        // The name and what decides the answer: a campaign changed under
        // the same name is evaluated again.
        let key = format!(
            "{}|{:?}|{:?}",
            campaign.name, campaign.filter, campaign.done_when
        );
        if let Some((at, kept)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && *at == heads
        {
            return Ok(kept.clone());
        }
        let evaluation = Evaluation::load(store, campaign)?;
        let statuses = evaluation.statuses(campaign);
        let evaluated = Arc::new(Evaluated {
            evaluation,
            statuses,
        });
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Only evaluations of the store as it is now are worth memory.
        kept.retain(|_, (at, _)| *at == heads);
        if kept.len() >= Self::KEPT {
            kept.clear();
        }
        kept.insert(key, (heads, evaluated.clone()));
        Ok(evaluated)
    }
}

/// The targets of a campaign and whether each is done.
pub fn evaluate(store: &Store, campaign: &Campaign) -> Result<Vec<TargetStatus>, StoreError> {
    Ok(Evaluation::load(store, campaign)?.statuses(campaign))
}

/// What may be wrong with a predicate that parses: facts it reads that
/// nothing has pushed yet (a typo, or a plugin not installed), each with
/// the fact names that do exist.
pub fn predicate_warnings(
    store: &Store,
    predicates: &[&Predicate],
) -> Result<Vec<String>, StoreError> {
    let mut unknown: Vec<String> = Vec::new();
    for p in predicates {
        for (source, name) in p.inputs() {
            if source == Source::Fact
                && !unknown.contains(&name)
                && store.facts.fact_type(&name)?.is_none()
            {
                unknown.push(name);
            }
        }
    }
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let known: Vec<String> = store
        .facts
        .fact_names()?
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    Ok(unknown
        .into_iter()
        .map(|name| {
            let known = if known.is_empty() {
                "no fact has been pushed yet".to_string()
            } else {
                format!("known facts: {}", known.join(", "))
            };
            format!(
                "fact {name} is unknown: no entity has it yet, so every target counts as not done until CI or a plugin pushes it ({known})"
            )
        })
        .collect())
}

/// The team of targets without an owner, in per-team views.
pub const NO_OWNER: &str = "(no owner)";

/// Progress by owning team, the teams with most left first.
pub fn by_team(targets: &[TargetStatus]) -> Vec<(String, Vec<&TargetStatus>)> {
    let mut teams: BTreeMap<String, Vec<&TargetStatus>> = BTreeMap::new();
    for t in targets {
        teams
            .entry(t.owner.clone().unwrap_or_else(|| NO_OWNER.into()))
            .or_default()
            .push(t);
    }
    let mut out: Vec<(String, Vec<&TargetStatus>)> = teams.into_iter().collect();
    out.sort_by_key(|(owner, list)| {
        (
            std::cmp::Reverse(list.iter().filter(|t| !t.done).count()),
            owner.clone(),
        )
    });
    out
}

/// How to reach a team: its name, e-mail and links, from its Group entity.
pub fn contact(store: &Store, owner: &str) -> Value {
    contact_of(owner, group_entity(store, owner).as_ref())
}

/// The Group entity `owner` names, if the catalog has it.
pub fn group_entity(store: &Store, owner: &str) -> Option<Value> {
    EntityRef::parse(owner, Some("group"), "default")
        .ok()
        .and_then(|r| store.catalog.entity_by_ref(&r, &[]).ok().flatten())
        .and_then(|json| serde_json::from_str::<Value>(&json).ok())
}

/// [`contact`] from the Group entity already read.
pub fn contact_of(owner: &str, group: Option<&Value>) -> Value {
    let Some(e) = group else {
        return json!({"name": owner, "inCatalog": false});
    };
    let profile = &e["spec"]["profile"];
    json!({
        "name": profile["displayName"].as_str().or(e["metadata"]["title"].as_str()).or(e["metadata"]["name"].as_str()),
        "email": profile["email"],
        "links": e["metadata"]["links"].as_array().cloned().unwrap_or_default()
            .into_iter()
            .filter(|l| l["url"].as_str().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://") || u.starts_with("mailto:")))
            .collect::<Vec<_>>(),
        "inCatalog": true,
    })
}

/// One CSV field, quoted when needed; text that a spreadsheet would run
/// as a formula is prefixed with `'`.
pub(crate) fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The targets as CSV: entity, owner, status, reason.
pub fn targets_csv(targets: &[TargetStatus]) -> String {
    let mut out = String::from("entity,owner,status,reason\n");
    for t in targets {
        let row = [
            csv_field(&t.entity_ref),
            csv_field(t.owner.as_deref().unwrap_or("")),
            (if t.done { "done" } else { "todo" }).to_string(),
            csv_field(t.reason.as_deref().unwrap_or("")),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let t = TargetStatus {
            entity_ref: "component:default/x".into(),
            owner: Some("group:default/a".into()),
            done: false,
            reason: Some("fact x is \"2\", needs >= 3".into()),
        };
        let evil = TargetStatus {
            entity_ref: "=HYPERLINK(\"http://evil\")".into(),
            owner: None,
            done: true,
            reason: None,
        };
        assert_eq!(
            targets_csv(&[t, evil]),
            "entity,owner,status,reason\ncomponent:default/x,group:default/a,todo,\"fact x is \"\"2\"\", needs >= 3\"\n\"'=HYPERLINK(\"\"http://evil\"\")\",,done,\n"
        );
    }

    #[test]
    fn specs_name_every_problem() {
        let bad = json!({"targets": "=component", "doneWhen": "fact x >=", "deadline": "soon"});
        let problems = check_spec(&bad).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["spec.targets[0]", "spec.doneWhen", "spec.deadline"]
        );
        assert!(
            problems[1].1.contains("invalid predicate 'fact x >='"),
            "{problems:?}"
        );
        assert!(check_spec(&json!({"targets": ["kind=component"], "doneWhen": "fact a.b exists", "deadline": "2027-03-31"})).is_ok());
    }
}
