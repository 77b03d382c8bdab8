//! Nudges: what replaces copying the chase list into chat. For each
//! campaign (and scorecard) that opts in with `spec.nudge.every`, the
//! owners of open targets are told on that schedule and as the deadline
//! nears: one message per team listing its open targets, each with a link
//! and the reason it is open, through the team's own channel (its Group's
//! `slack.com/channel` annotation or `spec.profile.email`) and the
//! organisation's webhook. A team without any contact is recorded as
//! "no channel", never dropped silently. Quiet hours, a minimum interval
//! and per-team snoozes keep it from becoming noise.
//!
//! This module decides who is due and what they are told; `notify`
//! sends it.

use std::time::Duration;

use serde_json::Value;

use super::scorecard::{self, Scorecard};
use super::{Campaign, by_team};
use crate::catalog::EntityRef;
use crate::store::{Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// Targets listed in one message at most; the rest are counted.
pub const LISTED: usize = 50;

/// The annotation on a Group naming its chat channel.
pub const SLACK_CHANNEL: &str = "slack.com/channel";

/// One open target in a nudge.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    pub entity_ref: String,
    pub reason: Option<String>,
}

/// A campaign or scorecard whose owners of open targets are nudged.
#[derive(Debug, Clone)]
pub struct Chase {
    /// `campaign:<name>` or `scorecard:<name>`.
    pub subject: String,
    pub title: String,
    /// The portal page: `/campaigns/<name>` or `/scorecards/<name>`.
    pub path: String,
    pub deadline: Option<String>,
    pub every: Duration,
    /// Teams with open targets, most first.
    pub teams: Vec<(String, Vec<Open>)>,
}

/// The nudge of campaign `c`, if it asks for them.
pub fn of_campaign(store: &Store, c: &Campaign) -> Result<Option<Chase>, StoreError> {
    match c.nudge_every {
        Some(every) => Ok(Some(campaign_chase(store, c, every)?)),
        None => Ok(None),
    }
}

/// Campaign `c`'s teams with open targets, to be told every `every`.
pub fn campaign_chase(store: &Store, c: &Campaign, every: Duration) -> Result<Chase, StoreError> {
    let targets = super::evaluate(store, c)?;
    let teams = by_team(&targets)
        .into_iter()
        .filter(|(owner, _)| owner != super::NO_OWNER)
        .map(|(owner, list)| {
            let open: Vec<Open> = list
                .into_iter()
                .filter(|t| !t.done)
                .map(|t| Open {
                    entity_ref: t.entity_ref.clone(),
                    reason: t.reason.clone(),
                })
                .collect();
            (owner, open)
        })
        .filter(|(_, open)| !open.is_empty())
        .collect();
    Ok(Chase {
        subject: super::history::subject(&c.name),
        title: c.title.clone(),
        path: format!("/campaigns/{}", c.name),
        deadline: c.deadline.clone(),
        every,
        teams,
    })
}

/// The nudge of scorecard `card`: the owners of entities below its nudge
/// level, each entity with the checks it fails up to that level.
pub fn of_scorecard(store: &Store, card: &Scorecard) -> Result<Option<Chase>, StoreError> {
    let Some((every, level)) = card.nudge else {
        return Ok(None);
    };
    let scores = scorecard::evaluate(store, card)?;
    let mut teams: Vec<(String, Vec<Open>)> = scorecard::by_team(&scores)
        .into_iter()
        .filter(|(owner, _)| owner != super::NO_OWNER)
        .map(|(owner, list)| {
            let open: Vec<Open> = list
                .into_iter()
                .filter(|s| s.level.is_none_or(|l| l < level))
                .map(|s| Open {
                    entity_ref: s.entity_ref.clone(),
                    reason: Some(
                        s.failing
                            .iter()
                            .filter(|(ci, _)| card.checks[*ci].level <= level)
                            .map(|(ci, why)| format!("{}: {why}", card.checks[*ci].name))
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                })
                .collect();
            (owner, open)
        })
        .filter(|(_, open)| !open.is_empty())
        .collect();
    teams.sort_by_key(|(owner, open)| (std::cmp::Reverse(open.len()), owner.clone()));
    Ok(Some(Chase {
        subject: format!("scorecard:{}", card.name),
        title: format!("{}: {}", card.title, card.levels[level]),
        path: format!("/scorecards/{}", card.name),
        deadline: None,
        every,
        teams,
    }))
}

/// Every campaign's and scorecard's nudge.
pub fn all(store: &Store) -> Result<Vec<Chase>, StoreError> {
    let mut out = Vec::new();
    for c in super::all(store)? {
        out.extend(of_campaign(store, &c)?);
    }
    for card in scorecard::all(store)? {
        out.extend(of_scorecard(store, &card)?);
    }
    Ok(out)
}

/// How a team is reached: from its Group entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub team: String,
    /// The team's display name.
    pub name: String,
    pub slack_channel: Option<String>,
    pub email: Option<String>,
}

impl Contact {
    /// Whether the team itself says how to reach it.
    pub fn has_channel(&self) -> bool {
        self.slack_channel.is_some() || self.email.is_some()
    }
}

/// `team`'s contact, from its Group's `slack.com/channel` annotation and
/// `spec.profile.email`.
pub fn contact(store: &Store, team: &str) -> Result<Contact, StoreError> {
    let entity = match EntityRef::parse(team, Some("group"), "default") {
        Ok(r) => store.catalog.entity_by_ref(&r, &[])?,
        Err(_) => None,
    }
    .and_then(|json| serde_json::from_str::<Value>(&json).ok());
    Ok(contact_in(team, entity.as_ref()))
}

/// [`contact`] from the team's Group entity already read.
pub fn contact_in(team: &str, group: Option<&Value>) -> Contact {
    let Some(e) = group else {
        return Contact {
            team: team.to_string(),
            name: team.to_string(),
            ..Contact::default()
        };
    };
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    Contact {
        team: team.to_string(),
        name: text(&e["spec"]["profile"]["displayName"])
            .or_else(|| text(&e["metadata"]["title"]))
            .unwrap_or_else(|| e["metadata"]["name"].as_str().unwrap_or(team).to_string()),
        slack_channel: text(&e["metadata"]["annotations"][SLACK_CHANNEL]),
        email: text(&e["spec"]["profile"]["email"]).filter(|m| m.contains('@')),
    }
}

/// The schedule rules every nudge follows.
#[derive(Debug, Clone)]
pub struct Rules {
    pub min_interval: Duration,
    /// Days before a deadline that bring a nudge of their own.
    pub before_deadline: Vec<u32>,
    /// Minutes of the day (UTC) in which nothing is sent.
    pub quiet: Option<(u32, u32)>,
}

/// Midnight (UTC, ms) at the start of a `YYYY-MM-DD` date.
fn date_ms(date: &str) -> Option<i64> {
    humantime::parse_rfc3339(&format!("{date}T00:00:00Z"))
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}

impl Rules {
    /// Whether `now_ms` is in the quiet hours.
    pub fn is_quiet(&self, now_ms: i64) -> bool {
        let Some((start, end)) = self.quiet else {
            return false;
        };
        let minute = ((now_ms.rem_euclid(DAY_MS)) / 60_000) as u32;
        if start <= end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        }
    }

    /// Why a team last told at `last` is due for `chase` at `now_ms`, or
    /// `None` when it is not: on its schedule, or because a deadline
    /// milestone passed since; never within the minimum interval.
    pub fn due(&self, chase: &Chase, last: Option<i64>, now_ms: i64) -> Option<String> {
        if let Some(last) = last
            && now_ms - last < self.min_interval.as_millis() as i64
        {
            return None;
        }
        if let Some(deadline) = chase.deadline.as_deref().and_then(date_ms) {
            // The nearest milestone passed since the last nudge.
            let passed = self
                .before_deadline
                .iter()
                .map(|days| (*days, deadline - i64::from(*days) * DAY_MS))
                .filter(|(_, at)| *at <= now_ms && last.is_none_or(|l| l < *at))
                .min_by_key(|(days, _)| *days);
            if let Some((days, _)) = passed
                && now_ms < deadline + DAY_MS
            {
                return Some(match days {
                    0 => "the deadline is today".to_string(),
                    1 => "the deadline is tomorrow".to_string(),
                    d => format!("the deadline is in {d} days"),
                });
            }
        }
        match last {
            None => Some("scheduled".into()),
            Some(last) if now_ms - last >= chase.every.as_millis() as i64 => {
                Some("scheduled".into())
            }
            Some(_) => None,
        }
    }
}

/// The portal link of an entity ref (`component:default/x`).
pub fn entity_path(entity_ref: &str) -> String {
    match EntityRef::parse(entity_ref, None, "default") {
        Ok(r) => format!("/catalog/{}/{}/{}", r.namespace, r.kind, r.name),
        Err(_) => "/catalog".into(),
    }
}

/// A short name for a ref: `payments` for `component:default/payments`.
pub fn short(entity_ref: &str) -> &str {
    entity_ref.rsplit('/').next().unwrap_or(entity_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chase(deadline: Option<&str>) -> Chase {
        Chase {
            subject: "campaign:x".into(),
            title: "X".into(),
            path: "/campaigns/x".into(),
            deadline: deadline.map(str::to_string),
            every: Duration::from_secs(7 * 86_400),
            teams: Vec::new(),
        }
    }

    fn rules() -> Rules {
        Rules {
            min_interval: Duration::from_secs(86_400),
            before_deadline: vec![14, 7, 1],
            quiet: Some((20 * 60, 8 * 60)),
        }
    }

    #[test]
    fn due_on_schedule_and_at_deadline_milestones_never_twice_a_day() {
        let r = rules();
        let deadline = date_ms("2027-03-31").unwrap();
        let c = chase(Some("2027-03-31"));
        let far = deadline - 60 * DAY_MS;
        assert_eq!(r.due(&c, None, far).as_deref(), Some("scheduled"));
        assert_eq!(r.due(&c, Some(far), far + 6 * DAY_MS), None);
        assert_eq!(
            r.due(&c, Some(far), far + 7 * DAY_MS).as_deref(),
            Some("scheduled")
        );
        // Two weeks before: a milestone, even two days after a nudge.
        let two_weeks = deadline - 14 * DAY_MS;
        assert_eq!(
            r.due(&c, Some(two_weeks - 2 * DAY_MS), two_weeks + 3_600_000)
                .as_deref(),
            Some("the deadline is in 14 days")
        );
        // Within the minimum interval: nothing, milestone or not.
        assert_eq!(
            r.due(&c, Some(two_weeks - 3_600_000), two_weeks + 3_600_000),
            None
        );
        // The milestone was told already: back to the schedule.
        assert_eq!(r.due(&c, Some(two_weeks + 1), two_weeks + 3 * DAY_MS), None);
        let eve = deadline - DAY_MS;
        assert_eq!(
            r.due(&c, Some(eve - 3 * DAY_MS), eve + 1).as_deref(),
            Some("the deadline is tomorrow")
        );
        // Long past the deadline: the schedule alone.
        assert_eq!(
            r.due(&c, Some(deadline + 10 * DAY_MS), deadline + 12 * DAY_MS),
            None
        );
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let r = rules();
        let day = 20_000 * DAY_MS;
        assert!(r.is_quiet(day + 21 * 3_600_000));
        assert!(r.is_quiet(day + 3 * 3_600_000));
        assert!(!r.is_quiet(day + 8 * 3_600_000));
        assert!(!r.is_quiet(day + 19 * 3_600_000 + 59 * 60_000));
        let day_only = Rules {
            quiet: Some((12 * 60, 13 * 60)),
            ..rules()
        };
        assert!(day_only.is_quiet(day + 12 * 3_600_000 + 30 * 60_000));
        assert!(!day_only.is_quiet(day + 13 * 3_600_000));
    }
}
