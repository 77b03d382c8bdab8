//! Plugin cards: every node type of the WIT's `card` (see
//! wit/0.1.0/greenroom-plugin.wit). Text is always text; `markdown` arrives as
//! HTML the host rendered and sanitised; links go only to http(s) or the
//! portal itself.

use serde_json::Value;
use yew::prelude::*;

use crate::ui::{badge, bar, out_link, s};

/// One card as `/api/cards` serves it; an error card names its plugin and
/// what went wrong.
pub fn card(c: &Value) -> Html {
    let plugin = s(c, "plugin");
    let footer = html! {
        <footer class="card-source">{ format!("from plugin {plugin} {}", s(c, "pluginVersion")) }</footer>
    };
    if let Some(error) = c["error"].as_str() {
        return html! {
            <section class="card card-error" aria-label={format!("{} (failed)", s(c, "title"))}>
                <h3>{ s(c, "title") }</h3>
                <p role="alert">{ error }</p>
                { footer }
            </section>
        };
    }
    let nodes: Html = c["nodes"]
        .as_array()
        .map(|n| n.iter().map(node).collect())
        .unwrap_or_default();
    html! {
        <section class="card" data-plugin={plugin.to_string()} aria-label={s(c, "title").to_string()}>
            <h3>{ s(c, "title") }</h3>
            { nodes }
            { footer }
        </section>
    }
}

pub fn node(n: &Value) -> Html {
    match s(n, "type") {
        "heading" => html! { <h4>{ s(n, "text") }</h4> },
        "text" => html! { <p>{ s(n, "text") }</p> },
        // The host renders Markdown and sanitises the HTML (ammonia).
        "markdown" => match n["html"].as_str() {
            Some(h) => html! {
                <div class="markdown">{ Html::from_html_unchecked(h.to_string().into()) }</div>
            },
            None => html! { <p>{ s(n, "markdown") }</p> },
        },
        "field" => html! {
            <div class="field">
                <span class="field-label">{ s(n, "label") }</span>
                {
                    match n["tone"].as_str() {
                        Some(t) => badge(s(n, "value"), t),
                        None => html! { <span class="field-value">{ s(n, "value") }</span> },
                    }
                }
            </div>
        },
        "link" => html! { <p>{ out_link(s(n, "label"), s(n, "href")) }</p> },
        "badge" => badge(s(n, "label"), s(n, "tone")),
        "progress" => {
            let (value, max) = (
                n["value"].as_f64().unwrap_or(0.0),
                n["max"].as_f64().unwrap_or(0.0),
            );
            let label = n["label"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{value} of {max}"));
            bar(value, max, &label)
        }
        "sparkline" => sparkline(
            &n["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
        "table" => table(n),
        "code" => html! { <pre class="code"><code>{ s(n, "text") }</code></pre> },
        "divider" => html! { <hr /> },
        // A node type from a newer contract than this UI knows.
        other => html! { <p class="muted">{ format!("({other} not shown)") }</p> },
    }
}

fn cell(c: &Value) -> Html {
    match s(c, "type") {
        "link" => out_link(s(c, "label"), s(c, "href")),
        "badge" => badge(s(c, "label"), s(c, "tone")),
        _ => html! { { s(c, "text") } },
    }
}

fn table(n: &Value) -> Html {
    let columns: Html = n["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| html! { <th scope="col">{ c.as_str().unwrap_or("") }</th> })
                .collect()
        })
        .unwrap_or_default();
    let rows: Html = n["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    let cells: Html = r
                        .as_array()
                        .map(|c| c.iter().map(|c| html! { <td>{ cell(c) }</td> }).collect())
                        .unwrap_or_default();
                    html! { <tr>{ cells }</tr> }
                })
                .collect()
        })
        .unwrap_or_default();
    html! {
        <div class="table-wrap">
            <table><thead><tr>{ columns }</tr></thead><tbody>{ rows }</tbody></table>
        </div>
    }
}

/// A small line chart, oldest value first.
pub fn sparkline(values: &[f64]) -> Html {
    if values.is_empty() {
        return html! {};
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    let span = if max > min { max - min } else { 1.0 };
    let step = if values.len() > 1 {
        100.0 / (values.len() - 1) as f64
    } else {
        0.0
    };
    let points: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1} ",
                i as f64 * step,
                22.0 - (v - min) / span * 20.0
            )
        })
        .collect();
    let label = format!(
        "{} values from {} to {}, last {}",
        values.len(),
        min,
        max,
        values[values.len() - 1]
    );
    html! {
        <svg class="sparkline" viewBox="0 0 100 24" preserveAspectRatio="none" role="img" aria-label={label}>
            <polyline points={points} fill="none" />
        </svg>
    }
}
