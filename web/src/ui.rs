//! Small pieces every page uses: entity references and their links,
//! loading/empty/error states, badges, time and browser storage.

use serde_json::Value;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::Route;
use crate::api::Load;

/// `kind:namespace/name`, as the API writes references.
#[derive(Clone, PartialEq, Debug)]
pub struct Ref {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Ref {
    /// Reads `kind:namespace/name`, `kind:name` or `name` (with the given
    /// default kind), as Backstage does.
    pub fn parse(text: &str, default_kind: &str) -> Ref {
        let (kind, rest) = match text.split_once(':') {
            Some((k, r)) => (k.to_string(), r),
            None => (default_kind.to_string(), text),
        };
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, n)) => (ns.to_string(), n.to_string()),
            None => ("default".to_string(), rest.to_string()),
        };
        Ref {
            kind: kind.to_lowercase(),
            namespace,
            name,
        }
    }

    /// The reference of an entity's JSON.
    pub fn of(entity: &Value) -> Ref {
        Ref {
            kind: entity["kind"].as_str().unwrap_or("").to_lowercase(),
            namespace: entity["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: entity["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        }
    }

    pub fn route(&self) -> Route {
        Route::Entity {
            namespace: self.namespace.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
        }
    }

    pub fn tab(&self, tab: &str) -> Route {
        Route::EntityTab {
            namespace: self.namespace.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            tab: tab.to_string(),
        }
    }

    /// `kind/namespace/name` for `/api/...` paths.
    pub fn api_path(&self) -> String {
        format!(
            "{}/{}/{}",
            crate::api::enc(&self.kind),
            crate::api::enc(&self.namespace),
            crate::api::enc(&self.name)
        )
    }

    /// The name, with the namespace when it is not the default one.
    pub fn short(&self) -> String {
        if self.namespace == "default" {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

/// A link to an entity's page, labelled with its short name.
pub fn ref_link(text: &str, default_kind: &str) -> Html {
    let r = Ref::parse(text, default_kind);
    html! { <Link<Route> to={r.route()}>{ r.short() }</Link<Route>> }
}

/// A string field of a JSON value, or "".
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Renders a load: a placeholder while loading, an error box on failure.
pub fn loaded<T>(load: &Load<T>, what: &str, f: impl FnOnce(&T) -> Html) -> Html {
    match load {
        Load::Loading => loading(what),
        Load::Failed(e) => error_box(&format!("Could not load {what}"), e),
        Load::Ready(v) => f(v),
    }
}

pub fn loading(what: &str) -> Html {
    html! {
        <div class="placeholder" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>{ format!("Loading {what}…") }
        </div>
    }
}

pub fn error_box(title: &str, detail: &str) -> Html {
    html! {
        <div class="error-box" role="alert">
            <strong>{ title.to_string() }</strong>
            <p>{ detail.to_string() }</p>
        </div>
    }
}

pub fn empty(text: &str) -> Html {
    html! { <p class="empty">{ text.to_string() }</p> }
}

/// A coloured status word; `tone` is neutral, info, good, warning or
/// critical.
pub fn badge(label: &str, tone: &str) -> Html {
    let tone = match tone {
        "info" | "good" | "warning" | "critical" => tone,
        _ => "neutral",
    };
    html! { <span class={classes!("badge", format!("tone-{tone}"))}>{ label.to_string() }</span> }
}

/// "3 min ago" for a time in milliseconds since the epoch.
pub fn ago(at_ms: f64) -> String {
    let secs = ((js_sys::Date::now() - at_ms) / 1000.0).max(0.0) as u64;
    match secs {
        0..=59 => "just now".to_string(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// Only `http(s)` links and same-origin paths are followed; anything else
/// (`javascript:`, `data:`) is shown as text. The host applies the same
/// rule to plugin cards (`docs::followable`).
pub fn safe_href(href: &str) -> Option<String> {
    let href = href.trim();
    let lower = href.to_ascii_lowercase();
    let ok = ((lower.starts_with("https://") || lower.starts_with("http://"))
        && !href.chars().any(char::is_control))
        || is_portal_path(href);
    ok.then(|| href.to_string())
}

/// A path on this portal: one `/`, then nothing a browser reads as another
/// site. `//evil.example`, `/\evil.example` and `/<TAB>/evil.example` all
/// leave (URL parsers drop tabs and newlines and read `\` as `/`).
pub fn is_portal_path(href: &str) -> bool {
    match href.strip_prefix('/') {
        Some(rest) => {
            !rest.starts_with('/') && !href.contains('\\') && !href.chars().any(char::is_control)
        }
        None => false,
    }
}

/// A link that leaves the portal in a new tab, or plain text when the
/// address is not one we follow.
pub fn out_link(label: &str, href: &str) -> Html {
    match safe_href(href) {
        Some(h) if h.starts_with('/') => html! { <a href={h}>{ label.to_string() }</a> },
        Some(h) => html! {
            <a href={h} target="_blank" rel="noopener noreferrer">{ label.to_string() }</a>
        },
        None => {
            html! { <span title="link not shown: only http(s) and portal links are">{ label.to_string() }</span> }
        }
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub fn stored(key: &str) -> Option<String> {
    local_storage()?
        .get_item(key)
        .ok()?
        .filter(|v| !v.is_empty())
}

pub fn store(key: &str, value: Option<&str>) {
    if let Some(s) = local_storage() {
        let _ = match value {
            Some(v) => s.set_item(key, v),
            None => s.remove_item(key),
        };
    }
}

/// A fact's value as text: numbers with at most one decimal.
pub fn fact_text(name: &str, v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let text = if f.fract() == 0.0 {
                format!("{f:.0}")
            } else {
                format!("{f:.1}")
            };
            if name.starts_with("coverage.") || name.ends_with("rate_7d") {
                format!("{text}%")
            } else {
                text
            }
        }
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::String(t) => t.clone(),
        _ => String::new(),
    }
}

/// How a fact reads at a glance: CI failing or coverage under 50% is
/// critical, and so on.
pub fn fact_tone(name: &str, v: &Value) -> &'static str {
    let n = v.as_f64();
    match (name, n, v.as_str()) {
        ("ci.last_status", _, Some("success")) => "good",
        ("ci.last_status", _, Some("failure")) => "critical",
        ("ci.last_status", _, _) => "warning",
        (n2, Some(x), _) if n2.starts_with("coverage.") => {
            if x >= 70.0 {
                "good"
            } else if x >= 50.0 {
                "warning"
            } else {
                "critical"
            }
        }
        ("sentry.unresolved_issues", Some(x), _) => {
            if x == 0.0 {
                "good"
            } else if x < 10.0 {
                "warning"
            } else {
                "critical"
            }
        }
        _ => "neutral",
    }
}

/// The facts that say how healthy a service is, as badges.
pub fn health(facts: &Value) -> Html {
    const SHOWN: [(&str, &str); 4] = [
        ("ci.last_status", "CI"),
        ("coverage.lines", "coverage"),
        ("sentry.unresolved_issues", "issues"),
        ("ci.success_rate_7d", "CI 7d"),
    ];
    let list = facts.as_array().cloned().unwrap_or_default();
    let badges: Html = SHOWN
        .iter()
        .filter_map(|(name, label)| {
            let f = list.iter().find(|f| f["name"] == *name)?;
            let text = format!("{label} {}", fact_text(name, &f["value"]));
            Some(badge(&text, fact_tone(name, &f["value"])))
        })
        .collect();
    html! { <span class="health">{ badges }</span> }
}

/// A bar filled to `value` of `max`, as SVG (no inline styles: the CSP
/// forbids them).
pub fn bar(value: f64, max: f64, label: &str) -> Html {
    let fraction = if max > 0.0 {
        (value / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let width = format!("{:.1}", fraction * 100.0);
    html! {
        <span class="bar">
            <svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label={label.to_string()}>
                <rect class="bar-track" x="0" y="0" width="100" height="8" rx="4" />
                <rect class="bar-fill" x="0" y="0" width={width} height="8" rx="4" />
            </svg>
            <span class="bar-label">{ label.to_string() }</span>
        </span>
    }
}

/// The value of the input element with this id.
pub fn input_value(id: &str) -> Option<String> {
    use wasm_bindgen::JsCast;
    web_sys::window()?
        .document()?
        .get_element_by_id(id)?
        .dyn_into::<web_sys::HtmlInputElement>()
        .ok()
        .map(|i| i.value())
}
