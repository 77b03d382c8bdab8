//! Test coverage from the report a CI job publishes: a card with line and
//! branch coverage and the least covered files, and the facts
//! `coverage.lines` and `coverage.branches`. See README.md for the
//! annotation.

mod report;

use greenroom_plugin_sdk::host::{self, Response};
use greenroom_plugin_sdk::{
    Card, CardBuilder, Cell, Entity, Fact, FactValue, Plugin, PluginError, Tone, manifest,
    register_plugin,
};

use report::{FileCoverage, Report, percent};

manifest!(
    r#"{"id": "coverage", "name": "Test coverage", "version": "0.1.0",
        "description": "Line and branch coverage from lcov or Cobertura reports, the least covered files, and coverage facts",
        "hosts": ["*"], "applies_to": {"annotations": ["greenroom.dev/coverage-report"]}}"#
);

/// The annotation naming the report: an `http(s)` URL, or a path relative
/// to the entity's catalog file.
const ANNOTATION: &str = "greenroom.dev/coverage-report";

/// How many of the least covered files the card lists.
const WORST_FILES: usize = 5;

struct Coverage;

/// The report an entity names, read and parsed, with where it came from.
struct Loaded {
    report: Report,
    source: String,
    url: Option<String>,
}

fn load(entity: &Entity) -> Result<Loaded, PluginError> {
    let Some(source) = entity.annotation(ANNOTATION) else {
        return Err(PluginError::NotApplicable);
    };
    let source = source.trim().to_string();
    let is_url = source.starts_with("https://") || source.starts_with("http://");
    let text = if is_url {
        let response = host::get(&source, &[("Accept", "text/plain, application/xml, */*")])
            .map_err(|e| with_source(PluginError::from(e), &source))?;
        text_of(&source, response)?
    } else {
        host::read_file(entity, &source).map_err(|e| {
            PluginError::Upstream(format!(
                "cannot read the coverage report {e} ({ANNOTATION})"
            ))
        })?
    };
    let report = report::parse(&text).map_err(|e| {
        PluginError::Upstream(format!("the coverage report {source} is unreadable: {e}"))
    })?;
    if report.files.is_empty() {
        return Err(PluginError::Upstream(format!(
            "the coverage report {source} lists no source files"
        )));
    }
    Ok(Loaded {
        report,
        url: is_url.then(|| source.clone()),
        source,
    })
}

fn with_source(e: PluginError, source: &str) -> PluginError {
    match e {
        PluginError::Upstream(m) => PluginError::Upstream(format!("{source}: {m}")),
        PluginError::Config(m) => PluginError::Config(format!("{source}: {m}")),
        other => other,
    }
}

fn text_of(url: &str, response: Response) -> Result<String, PluginError> {
    if !response.is_success() {
        return Err(PluginError::Upstream(format!(
            "GET {url} answered HTTP {}",
            response.status
        )));
    }
    String::from_utf8(response.body)
        .map_err(|_| PluginError::Upstream(format!("{url} is not a text report")))
}

fn tone_for(pct: f64) -> Tone {
    match pct {
        p if p >= 80.0 => Tone::Good,
        p if p >= 60.0 => Tone::Warning,
        _ => Tone::Critical,
    }
}

/// Paths relative to the folder all files share, so absolute paths from a
/// CI machine read as repository paths.
fn display_paths(files: &[FileCoverage]) -> Vec<String> {
    let dirs = |p: &str| -> Vec<String> {
        let mut parts: Vec<String> = p.split('/').map(str::to_string).collect();
        parts.pop();
        parts
    };
    let mut common = files.first().map(|f| dirs(&f.path)).unwrap_or_default();
    for f in files.iter().skip(1) {
        let d = dirs(&f.path);
        let same = common.iter().zip(&d).take_while(|(a, b)| a == b).count();
        common.truncate(same);
    }
    let prefix = common.join("/");
    files
        .iter()
        .map(|f| {
            if prefix.is_empty() {
                f.path.clone()
            } else {
                f.path
                    .strip_prefix(&prefix)
                    .map(|p| p.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| f.path.clone())
            }
        })
        .collect()
}

impl Plugin for Coverage {
    fn cards(entity: Entity) -> Result<Vec<Card>, PluginError> {
        let Loaded {
            report,
            source,
            url,
        } = load(&entity)?;
        let (lines_found, lines_hit) = report.lines();
        let (branches_found, branches_hit) = report.branches();
        let mut card = CardBuilder::new("coverage", "Test coverage");
        if let Some(pct) = percent(lines_hit, lines_found) {
            card = card
                .field("Lines", &format!("{pct:.1}%"), Some(tone_for(pct)))
                .progress(
                    pct,
                    100.0,
                    Some(&format!("{lines_hit} of {lines_found} lines covered")),
                );
        }
        if let Some(pct) = percent(branches_hit, branches_found) {
            card = card
                .field("Branches", &format!("{pct:.1}%"), Some(tone_for(pct)))
                .progress(
                    pct,
                    100.0,
                    Some(&format!(
                        "{branches_hit} of {branches_found} branches covered"
                    )),
                );
        }
        let names = display_paths(&report.files);
        let mut worst: Vec<(&FileCoverage, &String, f64)> = report
            .files
            .iter()
            .zip(&names)
            .filter_map(|(f, n)| percent(f.lines_hit, f.lines_found).map(|p| (f, n, p)))
            .filter(|(f, _, _)| f.lines_hit < f.lines_found)
            .collect();
        worst.sort_by(|a, b| {
            a.2.total_cmp(&b.2)
                .then((b.0.lines_found - b.0.lines_hit).cmp(&(a.0.lines_found - a.0.lines_hit)))
        });
        if !worst.is_empty() {
            let rows = worst
                .iter()
                .take(WORST_FILES)
                .map(|(f, name, pct)| {
                    vec![
                        Cell::Text(name.to_string()),
                        Cell::Text(format!("{pct:.1}%")),
                        Cell::Text((f.lines_found - f.lines_hit).to_string()),
                    ]
                })
                .collect();
            card = card
                .heading("Least covered files")
                .table(&["File", "Lines", "Missed lines"], rows);
        }
        card = card.text(&format!(
            "{} report, {} files",
            report.format,
            report.files.len()
        ));
        card = match &url {
            Some(u) => card.link("Full report", u),
            None => card.field("Report", &source, None),
        };
        Ok(vec![card.build()])
    }

    fn facts(entity: Entity) -> Result<Vec<Fact>, PluginError> {
        let loaded = load(&entity)?;
        let (lines_found, lines_hit) = loaded.report.lines();
        let (branches_found, branches_hit) = loaded.report.branches();
        let fact = |name: &str, pct: f64| Fact {
            name: name.to_string(),
            value: FactValue::Number(pct),
            url: loaded.url.clone(),
        };
        Ok([
            percent(lines_hit, lines_found).map(|p| fact("coverage.lines", p)),
            percent(branches_hit, branches_found).map(|p| fact("coverage.branches", p)),
        ]
        .into_iter()
        .flatten()
        .collect())
    }
}

register_plugin!(Coverage);
