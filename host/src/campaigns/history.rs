//! A campaign's history: what each target was (open, done, gone) and since
//! when, recorded by the host whenever the catalog or a fact changes
//! ([`record_all`]), so burndowns, "done this week" and "who regressed"
//! work for any predicate: annotations, labels and spec as well as facts.
//!
//! Before the host recorded anything for a campaign, its history is
//! replayed from the facts' own history ([`Evaluation::replay`]): a new
//! campaign over a fact CI has pushed for months starts with months of
//! burndown. Today is always the live evaluation.

use std::collections::HashMap;

use super::{Campaign, Evaluation, TargetStatus};
use crate::store::{Status, StatusChange, Store, StoreError};

const DAY: i64 = 86_400_000;

/// Movers are what changed in the last week.
pub const MOVERS_WINDOW: i64 = 7 * DAY;

/// The history subject of campaign `name`.
pub fn subject(name: &str) -> String {
    format!("campaign:{name}")
}

fn status_of(t: &TargetStatus) -> Status {
    if t.done { Status::Done } else { Status::Open }
}

/// Records how `statuses` (ref, status) differ from what was last
/// recorded for `subject` (new targets, changed ones, and those no longer
/// there, as gone), at `at_ms`; answers how many changed.
pub fn record_subject<'a>(
    store: &Store,
    subject: &str,
    statuses: impl Iterator<Item = (&'a str, Status)>,
    at_ms: i64,
) -> Result<usize, StoreError> {
    let mut last: HashMap<String, Status> = store
        .statuses
        .latest_statuses(subject)?
        .into_iter()
        .collect();
    let mut changes = Vec::new();
    for (r, now) in statuses {
        if last.remove(r) != Some(now) {
            changes.push((r.to_string(), now));
        }
    }
    changes.extend(
        last.into_iter()
            .filter(|(_, s)| *s != Status::Gone)
            .map(|(r, _)| (r, Status::Gone)),
    );
    store.statuses.record_statuses(subject, at_ms, &changes)?;
    Ok(changes.len())
}

/// Records how `targets` differ from what was last recorded for
/// `campaign`, at `at_ms`; answers how many changed.
pub fn record(
    store: &Store,
    campaign: &Campaign,
    targets: &[TargetStatus],
    at_ms: i64,
) -> Result<usize, StoreError> {
    let statuses = targets
        .iter()
        .map(|t| (t.entity_ref.as_str(), status_of(t)));
    record_subject(store, &subject(&campaign.name), statuses, at_ms)
}

/// Records every campaign's and scorecard's changes at `at_ms`; answers
/// how many targets changed. Blocking.
pub fn record_all(store: &Store, at_ms: i64) -> Result<usize, StoreError> {
    let mut changed = 0;
    for c in super::all(store)? {
        let targets = super::evaluate(store, &c)?;
        changed += record(store, &c, &targets, at_ms)?;
    }
    for card in super::scorecard::all(store)? {
        let scores = super::scorecard::evaluate(store, &card)?;
        changed += super::scorecard::record(store, &card, &scores, at_ms)?;
    }
    Ok(changed)
}

/// Prunes every history to `keep_days` before `now_ms`, and forgets the
/// history of campaigns and scorecard levels that are gone; answers the
/// rows removed. Blocking.
pub fn prune(store: &Store, keep_days: u32, now_ms: i64) -> Result<usize, StoreError> {
    let mut names: Vec<String> = super::all(store)?
        .iter()
        .map(|c| subject(&c.name))
        .collect();
    for card in super::scorecard::all(store)? {
        names.extend((0..card.levels.len()).map(|l| card.subject(l)));
    }
    for s in store.statuses.status_subjects()? {
        if !names.contains(&s) {
            store.statuses.forget_statuses(&s)?;
        }
    }
    store
        .statuses
        .prune_statuses(now_ms - i64::from(keep_days) * DAY)
}

/// One day of a burndown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub done: usize,
    pub total: usize,
}

/// A campaign's burndown, overall and per owning team.
#[derive(Debug, Clone, PartialEq)]
pub struct Burndowns {
    pub overall: Vec<Day>,
    /// Teams as `teams` was given, each with how many of its targets were
    /// left (not done) on each day of `overall`: numbers, not days, as a
    /// hundred teams times 90 days are many objects to make and send.
    pub teams: Vec<(String, Vec<usize>)>,
}

/// A target whose status changed in the last week.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mover {
    pub entity_ref: String,
    pub owner: Option<String>,
    /// When it changed, if the host recorded it (a replayed change from
    /// fact history is known to the day only).
    pub at_ms: Option<i64>,
    /// Why it is open again (regressions).
    pub reason: Option<String>,
}

/// Done and regressed in the last week.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Movers {
    pub done: Vec<Mover>,
    pub regressed: Vec<Mover>,
}

/// A campaign's recorded history.
pub struct History {
    /// Oldest first.
    changes: Vec<StatusChange>,
}

/// The end (exclusive, ms) of each of the last `days` days (UTC), today
/// last.
fn day_ends(days: usize, now_ms: i64) -> Vec<i64> {
    let today_end = (now_ms / DAY + 1) * DAY;
    (0..days as i64)
        .rev()
        .map(|back| today_end - back * DAY)
        .collect()
}

fn day_name(end: i64) -> String {
    let day = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((end - DAY).max(0) as u64),
    )
    .to_string();
    day[..10].to_string()
}

/// Done and total counts, overall (index 0) and per team (1..).
type Counts = Vec<(usize, usize)>;

impl History {
    pub fn load(store: &Store, campaign: &Campaign) -> Result<History, StoreError> {
        History::of(store, &subject(&campaign.name))
    }

    /// The history of any subject (a scorecard's level).
    pub fn of(store: &Store, subject: &str) -> Result<History, StoreError> {
        Ok(History {
            changes: store.statuses.status_changes(subject)?,
        })
    }

    /// Done and total for each of the last `days` days, today last and
    /// `today` as given (the live count): the recorded days only, so the
    /// series starts on the day recording began.
    pub fn series(&self, days: usize, now_ms: i64, today: (usize, usize)) -> Vec<Day> {
        let ends = day_ends(days.max(1), now_ms);
        let (past, last) = ends.split_at(ends.len() - 1);
        let first = self.first_ms();
        let recorded: Vec<i64> = past
            .iter()
            .copied()
            .filter(|&end| first.is_some_and(|f| end > f))
            .collect();
        let mut out: Vec<Day> = recorded
            .iter()
            .zip(self.sweep(&recorded, 0, &|_| None))
            .map(|(&end, counts)| Day {
                day: day_name(end),
                done: counts[0].0,
                total: counts[0].1,
            })
            .collect();
        out.push(Day {
            day: day_name(last[0]),
            done: today.0,
            total: today.1,
        });
        out
    }

    /// When the host first recorded this campaign.
    pub fn first_ms(&self) -> Option<i64> {
        self.changes.first().map(|c| c.at_ms)
    }

    /// Each target's status just before `at`, and when it became that.
    fn statuses_before(&self, at: i64) -> HashMap<&str, (Status, i64)> {
        let mut now = HashMap::new();
        for c in self.changes.iter().take_while(|c| c.at_ms < at) {
            now.insert(c.entity_ref.as_str(), (c.status, c.at_ms));
        }
        now
    }

    /// Counts just before each of `ends` (ascending), with each target's
    /// group from `group` (index into the counts, past 0).
    fn sweep(
        &self,
        ends: &[i64],
        groups: usize,
        group: &dyn Fn(&str) -> Option<usize>,
    ) -> Vec<Counts> {
        let mut counts: Counts = vec![(0, 0); groups + 1];
        let mut now: HashMap<&str, Status> = HashMap::new();
        let mut changes = self.changes.iter().peekable();
        let mut out = Vec::with_capacity(ends.len());
        for &end in ends {
            while let Some(c) = changes.next_if(|c| c.at_ms < end) {
                let before = now.insert(c.entity_ref.as_str(), c.status);
                let g = group(&c.entity_ref);
                for index in std::iter::once(0).chain(g.map(|g| g + 1)) {
                    let slot = &mut counts[index];
                    match before {
                        Some(Status::Done) => {
                            slot.0 -= 1;
                            slot.1 -= 1;
                        }
                        Some(Status::Open) => slot.1 -= 1,
                        Some(Status::Gone) | None => {}
                    }
                    match c.status {
                        Status::Done => {
                            slot.0 += 1;
                            slot.1 += 1;
                        }
                        Status::Open => slot.1 += 1,
                        Status::Gone => {}
                    }
                }
            }
            out.push(counts.clone());
        }
        out
    }
}

/// A campaign's targets now, its recorded history, and what the two say
/// together: burndowns and movers.
pub struct Timeline<'a> {
    pub store: &'a Store,
    pub campaign: &'a Campaign,
    pub evaluation: &'a Evaluation,
    /// The live statuses, in the evaluation's target order.
    pub statuses: &'a [TargetStatus],
    pub history: &'a History,
}

impl Timeline<'_> {
    /// The last `days` days, today last, overall and for each of `teams`
    /// (owner refs; a target counts for the team that owns it now).
    /// Days before the host recorded this campaign are replayed from fact
    /// history; today is the live evaluation.
    pub fn burndowns(
        &self,
        days: usize,
        now_ms: i64,
        teams: &[String],
    ) -> Result<Burndowns, StoreError> {
        let ends = day_ends(days.max(1), now_ms);
        let (past, _today) = ends.split_at(ends.len() - 1);
        let first = self.history.first_ms();
        let split = past.partition_point(|&end| first.is_none_or(|f| end <= f));
        let (replayed, recorded) = past.split_at(split);
        let team_index: HashMap<&str, usize> = teams
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let target_team: Vec<Option<usize>> = self
            .statuses
            .iter()
            .map(|t| {
                team_index
                    .get(t.owner.as_deref().unwrap_or(super::NO_OWNER))
                    .copied()
            })
            .collect();
        let by_ref: HashMap<&str, Option<usize>> = self
            .statuses
            .iter()
            .zip(&target_team)
            .map(|(t, g)| (t.entity_ref.as_str(), *g))
            .collect();
        let mut per_day: Vec<Counts> = Vec::with_capacity(ends.len());
        let count = |done: &mut dyn Iterator<Item = bool>| {
            let mut c: Counts = vec![(0, 0); teams.len() + 1];
            for (d, g) in done.zip(&target_team) {
                for index in std::iter::once(0).chain(g.map(|g| g + 1)) {
                    c[index].0 += usize::from(d);
                    c[index].1 += 1;
                }
            }
            c
        };
        for done in self
            .evaluation
            .replay(self.store, self.campaign, replayed)?
        {
            per_day.push(count(&mut done.into_iter()));
        }
        per_day.extend(
            self.history
                .sweep(recorded, teams.len(), &|r| by_ref.get(r).copied().flatten()),
        );
        per_day.push(count(&mut self.statuses.iter().map(|t| t.done)));
        let names: Vec<String> = ends.iter().map(|&end| day_name(end)).collect();
        Ok(Burndowns {
            overall: names
                .into_iter()
                .zip(&per_day)
                .map(|(day, c)| Day {
                    day,
                    done: c[0].0,
                    total: c[0].1,
                })
                .collect(),
            teams: teams
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let left = per_day.iter().map(|c| c[i + 1].1 - c[i + 1].0).collect();
                    (t.clone(), left)
                })
                .collect(),
        })
    }

    /// Targets done, and targets open again, since `now_ms` less a week.
    /// What a target was a week ago is what the host recorded then; for a
    /// target first recorded since, what it was first recorded as; for one
    /// never recorded, what fact history replays.
    pub fn movers(&self, now_ms: i64) -> Result<Movers, StoreError> {
        let since = now_ms - MOVERS_WINDOW;
        let before = self.history.statuses_before(since);
        let mut first: HashMap<&str, Status> = HashMap::new();
        for c in &self.history.changes {
            first.entry(c.entity_ref.as_str()).or_insert(c.status);
        }
        let was_done = |s: Status| match s {
            Status::Done => Some(true),
            Status::Open => Some(false),
            Status::Gone => None,
        };
        let mut then: Vec<Option<bool>> = self
            .statuses
            .iter()
            .map(|t| {
                let r = t.entity_ref.as_str();
                match before.get(r) {
                    Some((s, _)) => was_done(*s),
                    None => first.get(r).and_then(|s| was_done(*s)),
                }
            })
            .collect();
        if then.iter().any(Option::is_none) {
            let replayed = self
                .evaluation
                .replay(self.store, self.campaign, &[since])?
                .pop()
                .unwrap_or_default();
            for (was, replayed) in then.iter_mut().zip(replayed) {
                was.get_or_insert(replayed);
            }
        }
        let latest = self.history.statuses_before(now_ms + 1);
        let mut movers = Movers::default();
        for (t, was) in self.statuses.iter().zip(then) {
            let at = latest
                .get(t.entity_ref.as_str())
                .filter(|(s, at)| *s == status_of(t) && *at >= since)
                .map(|(_, at)| *at);
            let mover = || Mover {
                entity_ref: t.entity_ref.clone(),
                owner: t.owner.clone(),
                at_ms: at,
                reason: t.reason.clone(),
            };
            match (was, t.done) {
                (Some(false), true) => movers.done.push(mover()),
                (Some(true), false) => movers.regressed.push(mover()),
                _ => {}
            }
        }
        Ok(movers)
    }
}
