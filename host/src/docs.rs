//! Documentation pages as the portal serves them: Markdown from a docs
//! plugin rendered to HTML (headings with anchors, tables, code blocks,
//! footnotes), relative links turned into portal links, and the result
//! sanitised so that no script, event handler or `javascript:` URL
//! reaches a reader. Also the things the host knows about an entity's
//! docs: where TechDocs keeps their files and where to report an issue.
//!
//! **Invariant:** every byte of plugin-made HTML goes through [`render`],
//! which ends in the sanitiser.

use std::collections::HashMap;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;
use serde_json::Value;

/// A heading of the page, for its table of contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TocEntry {
    pub level: u8,
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub toc: Vec<TocEntry>,
}

/// Where a page's links point.
pub struct Links<'a> {
    /// The portal route of the docs: `/docs/default/component/payments`.
    pub pages: &'a str,
    /// The asset route: `/api/docs/component/default/payments`.
    pub assets: &'a str,
    /// The folder of the page's Markdown file within the docs: `guide`.
    pub folder: &'a str,
}

/// The page address of a Markdown file: `guide/setup.md` → `guide/setup`,
/// `guide/index.md` → `guide`, `index.md` → ``.
pub fn address(file: &str) -> String {
    let stem = file.strip_suffix(".md").unwrap_or(file);
    for home in ["index", "README"] {
        if stem == home {
            return String::new();
        }
        if let Some(dir) = stem.strip_suffix(&format!("/{home}")) {
            return dir.to_string();
        }
    }
    stem.to_string()
}

/// Joins `relative` to `folder` (both within the docs), resolving `.` and
/// `..`; `None` when it would leave the docs.
fn join(folder: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Whether the web UI may follow `href`: an http(s) URL, or a path on the
/// portal itself. Refuses `javascript:` and `data:`, and paths browsers read
/// as another site: `//evil.example`, `/\evil.example`, and `/<TAB>/evil`
/// (URL parsers drop tabs and newlines, and read `\` as `/`).
/// The web UI's `ui::safe_href` applies the same rule.
pub fn followable(href: &str) -> bool {
    if href.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = href.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return true;
    }
    match href.strip_prefix('/') {
        Some(rest) => !rest.starts_with(['/', '\\']) && !href.contains('\\'),
        None => false,
    }
}

/// Whether a URL names its own scheme (`https:`, `mailto:`, `javascript:`).
fn has_scheme(url: &str) -> bool {
    match url.find(':') {
        Some(i) => {
            let scheme = &url[..i];
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

impl Links<'_> {
    /// A link's target in the portal: `other.md#x` → the page's route,
    /// `img/a.png` → the asset route; absolute URLs and anchors stay.
    fn rewrite(&self, url: &str, image: bool) -> String {
        if url.starts_with('#') || url.starts_with('/') || has_scheme(url) {
            return url.to_string();
        }
        let (path, fragment) = match url.find(['#', '?']) {
            Some(i) => (&url[..i], &url[i..]),
            None => (url, ""),
        };
        let fragment = if fragment.starts_with('#') {
            fragment
        } else {
            ""
        };
        let Some(target) = join(self.folder, path) else {
            // Leaves the docs: a dead link rather than a way out.
            return "#".into();
        };
        let is_page = !image
            && (path.is_empty()
                || path.ends_with(".md")
                || path.ends_with('/')
                || !target.rsplit('/').next().unwrap_or("").contains('.'));
        if is_page {
            let address = address(&target);
            let slash = if address.is_empty() { "" } else { "/" };
            format!("{}{slash}{address}{fragment}", self.pages)
        } else {
            format!("{}/{target}", self.assets)
        }
    }
}

/// A heading's anchor: lower case words joined by `-`.
fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if (c.is_whitespace() || c == '-' || c == '_') && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "section".into()
    } else {
        out
    }
}

/// Renders a page's Markdown to sanitised HTML with heading anchors and
/// portal links.
pub fn render(markdown: &str, links: &Links<'_>) -> Rendered {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut toc = Vec::new();
    let mut used: HashMap<String, usize> = HashMap::new();
    // Where the open heading's start event is, and its text so far.
    let mut heading: Option<(usize, String)> = None;
    for event in Parser::new_ext(markdown, options) {
        let event = match event {
            Event::Start(Tag::Heading { .. }) => {
                heading = Some((events.len(), String::new()));
                event
            }
            Event::Text(ref t) | Event::Code(ref t) => {
                if let Some((_, text)) = heading.as_mut() {
                    text.push_str(t);
                }
                event
            }
            Event::End(TagEnd::Heading(level)) => {
                if let Some((at, text)) = heading.take()
                    && let Event::Start(Tag::Heading { id, .. }) = &mut events[at]
                {
                    let base = id.as_deref().map_or_else(|| slug(&text), slug);
                    let n = used.entry(base.clone()).or_insert(0);
                    let unique = if *n == 0 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    };
                    *n += 1;
                    *id = Some(CowStr::from(unique.clone()));
                    toc.push(TocEntry {
                        level: level as u8,
                        id: unique,
                        text: text.trim().to_string(),
                    });
                }
                event
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Link {
                link_type,
                dest_url: links.rewrite(&dest_url, false).into(),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => Event::Start(Tag::Image {
                link_type,
                dest_url: links.rewrite(&dest_url, true).into(),
                title,
                id,
            }),
            other => other,
        };
        events.push(event);
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    Rendered {
        html: sanitizer().clean(&html).to_string(),
        toc,
    }
}

/// A plugin card's Markdown as sanitised HTML. A card has no docs folder,
/// so relative links stay within the portal.
pub fn render_fragment(markdown: &str) -> String {
    let links = Links {
        pages: "",
        assets: "",
        folder: "",
    };
    render(markdown, &links).html
}

/// What may stay in a page: ammonia's safe defaults (no script, style,
/// event handlers or `javascript:` URLs), plus heading anchors,
/// collapsible admonitions and classes for admonitions and code.
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: std::sync::OnceLock<ammonia::Builder<'static>> = std::sync::OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut b = ammonia::Builder::default();
        b.add_tags(["details", "summary"])
            .add_generic_attributes(["class"])
            .add_tag_attributes("details", ["open"])
            .url_schemes(["http", "https", "mailto"].into())
            .link_rel(Some("noopener noreferrer"));
        for tag in ["h1", "h2", "h3", "h4", "h5", "h6", "sup", "div", "li"] {
            b.add_tag_attributes(tag, ["id"]);
        }
        b
    })
}

/// Where an entity's TechDocs live beside its catalog file: the folder of
/// `backstage.io/techdocs-ref: dir:<folder>` plus mkdocs.yml's `docs_dir`,
/// and mkdocs.yml's `repo_url`.
pub struct TechDocsSource {
    pub docs: String,
    pub repo_url: Option<String>,
}

impl TechDocsSource {
    /// `read` reads a file relative to the entity's catalog file.
    pub fn of(entity: &Value, read: impl Fn(&str) -> Option<String>) -> Option<TechDocsSource> {
        let reference = entity["metadata"]["annotations"]["backstage.io/techdocs-ref"].as_str()?;
        let dir = reference
            .trim()
            .strip_prefix("dir:")?
            .trim()
            .trim_end_matches('/');
        let dir = if dir.is_empty() { "." } else { dir };
        let config = ["mkdocs.yml", "mkdocs.yaml"]
            .iter()
            .find_map(|name| read(&format!("{dir}/{name}")))?;
        let config = crate::yaml::parse_documents(&config)
            .ok()
            .and_then(|docs| docs.into_iter().next())
            .map(|d| d.value)
            .unwrap_or(Value::Null);
        let docs_dir = config["docs_dir"]
            .as_str()
            .unwrap_or("docs")
            .trim_end_matches('/');
        Some(TechDocsSource {
            docs: format!("{dir}/{docs_dir}"),
            repo_url: config["repo_url"].as_str().map(str::to_string),
        })
    }
}

/// The repository's "new issue" form, prefilled with a title and a body,
/// for repositories on GitHub or GitLab. The repository comes from
/// mkdocs.yml's `repo_url`, else `backstage.io/source-location`, else
/// `github.com/project-slug` (on `github_web`).
pub fn report_issue_url(
    entity: &Value,
    repo_url: Option<&str>,
    github_web: &str,
    title: &str,
    body: &str,
) -> Option<String> {
    let annotations = &entity["metadata"]["annotations"];
    let repo = repo_url
        .map(str::to_string)
        .or_else(|| {
            let location = annotations["backstage.io/source-location"].as_str()?;
            let url = location.strip_prefix("url:").unwrap_or(location);
            // `https://github.com/o/r/tree/main/x` → `https://github.com/o/r`.
            let url = reqwest::Url::parse(url).ok()?;
            let parts: Vec<&str> = url.path_segments()?.filter(|p| !p.is_empty()).collect();
            let end = parts
                .iter()
                .position(|p| *p == "-" || *p == "tree" || *p == "blob")
                .unwrap_or(parts.len());
            (end >= 2).then(|| {
                format!(
                    "{}://{}/{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    parts[..end].join("/")
                )
            })
        })
        .or_else(|| {
            let slug = annotations["github.com/project-slug"].as_str()?;
            Some(format!(
                "{}/{}",
                github_web.trim_end_matches('/'),
                slug.trim()
            ))
        })?;
    let repo = repo.trim_end_matches('/').trim_end_matches(".git");
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    if repo.contains("gitlab") {
        Some(format!(
            "{repo}/-/issues/new?issue[title]={}&issue[description]={}",
            encode(title),
            encode(body)
        ))
    } else if repo.starts_with("https://") || repo.starts_with("http://") {
        Some(format!(
            "{repo}/issues/new?title={}&body={}",
            encode(title),
            encode(body)
        ))
    } else {
        None
    }
}

/// A navigation entry as the API serves it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NavNode {
    pub title: String,
    /// A page's address within the docs (absent for sections and
    /// external links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<NavNode>,
}

/// The WIT's flat navigation (empty `href` opens the section named by the
/// label, `A / B` nested, empty label the top) as a tree. Links that are
/// neither Markdown pages inside the docs nor `http(s)` URLs are dropped.
pub fn nav_tree(links: &[(String, String)], pages: &str) -> Vec<NavNode> {
    let mut root: Vec<NavNode> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    fn section<'a>(nodes: &'a mut Vec<NavNode>, path: &[String]) -> &'a mut Vec<NavNode> {
        let Some((first, rest)) = path.split_first() else {
            return nodes;
        };
        let i = match nodes
            .iter()
            .position(|n| n.path.is_none() && n.url.is_none() && &n.title == first)
        {
            Some(i) => i,
            None => {
                nodes.push(NavNode {
                    title: first.clone(),
                    path: None,
                    url: None,
                    children: Vec::new(),
                });
                nodes.len() - 1
            }
        };
        section(&mut nodes[i].children, rest)
    }
    for (label, href) in links {
        if href.is_empty() {
            current = label
                .split(" / ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            section(&mut root, &current);
            continue;
        }
        let node = if href.starts_with("https://") || href.starts_with("http://") {
            NavNode {
                title: label.clone(),
                path: None,
                url: Some(href.clone()),
                children: Vec::new(),
            }
        } else if href.ends_with(".md") && join("", href).is_some() && !href.starts_with('/') {
            let address = address(href);
            let slash = if address.is_empty() { "" } else { "/" };
            NavNode {
                title: label.clone(),
                url: Some(format!("{pages}{slash}{address}")),
                path: Some(address),
                children: Vec::new(),
            }
        } else {
            continue;
        };
        section(&mut root, &current).push(node);
    }
    root
}

/// Content types of the assets docs may show; anything else is refused.
pub fn asset_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links<'static> {
        Links {
            pages: "/docs/default/component/pay",
            assets: "/api/docs/component/default/pay",
            folder: "guide",
        }
    }

    #[test]
    fn only_http_links_and_portal_paths_are_followable() {
        for ok in [
            "https://github.com/x",
            "HTTP://ci.example/run/1",
            "/catalog/default/component/x",
            "/docs/default/component/x/guide",
        ] {
            assert!(followable(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\/evil.example",
            "mailto:a@example.com",
            "relative/path",
            "",
        ] {
            assert!(!followable(bad), "{bad:?}");
        }
    }

    #[test]
    fn headings_get_unique_anchors_and_a_toc() {
        let r = render(
            "# Title\n\n## Set up\n\n## Set up\n\n### `cargo` & you\n",
            &links(),
        );
        assert!(
            r.html.contains("<h2 id=\"set-up\">Set up</h2>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("<h2 id=\"set-up-1\">"), "{}", r.html);
        assert_eq!(
            r.toc
                .iter()
                .map(|t| (t.level, t.id.as_str()))
                .collect::<Vec<_>>(),
            [
                (1, "title"),
                (2, "set-up"),
                (2, "set-up-1"),
                (3, "cargo-you")
            ]
        );
    }

    #[test]
    fn relative_links_become_portal_links() {
        let l = links();
        assert_eq!(
            l.rewrite("setup.md", false),
            "/docs/default/component/pay/guide/setup"
        );
        assert_eq!(
            l.rewrite("../index.md#top", false),
            "/docs/default/component/pay#top"
        );
        assert_eq!(
            l.rewrite("../ops/", false),
            "/docs/default/component/pay/ops"
        );
        assert_eq!(
            l.rewrite("img/flow.png", true),
            "/api/docs/component/default/pay/guide/img/flow.png"
        );
        assert_eq!(l.rewrite("../../../etc/passwd", false), "#");
        assert_eq!(
            l.rewrite("https://example.com/x.md", false),
            "https://example.com/x.md"
        );
        assert_eq!(l.rewrite("#anchor", false), "#anchor");
    }

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let md = "<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)> <a href=\"JaVaScRiPt:alert(4)\">y</a>\n\n<div class=\"admonition note\" onclick=\"alert(5)\">\n\nok\n\n</div>\n";
        let html = render(md, &links()).html;
        for bad in [
            "<script",
            "alert(1)",
            "javascript:",
            "JaVaScRiPt",
            "onerror",
            "onclick",
        ] {
            assert!(
                !html.to_lowercase().contains(&bad.to_lowercase()),
                "{bad} in {html}"
            );
        }
        assert!(html.contains("<div class=\"admonition note\">"), "{html}");
    }

    #[test]
    fn flat_navigation_becomes_a_tree() {
        let nav = [
            ("Home", "index.md"),
            ("Guide", ""),
            ("Setup", "guide/setup.md"),
            ("Guide / Deep", ""),
            ("Internals", "guide/deep/internals.md"),
            ("Guide", ""),
            ("FAQ", "guide/faq.md"),
            ("", ""),
            ("Status", "https://status.example.com"),
            ("Bad", "../secret.md"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        let tree = nav_tree(&nav, "/docs/d/component/x");
        let titles: Vec<&str> = tree.iter().map(|n| n.title.as_str()).collect();
        assert_eq!(titles, ["Home", "Guide", "Status"]);
        let guide: Vec<&str> = tree[1].children.iter().map(|n| n.title.as_str()).collect();
        assert_eq!(guide, ["Setup", "Deep", "FAQ"]);
        assert_eq!(
            tree[1].children[1].children[0].path.as_deref(),
            Some("guide/deep/internals")
        );
        assert_eq!(tree[0].url.as_deref(), Some("/docs/d/component/x"));
    }

    #[test]
    fn report_links_prefill_github_and_gitlab_forms() {
        let e = serde_json::json!({"metadata": {"annotations": {
            "backstage.io/source-location": "url:https://gitlab.example.com/pay/api/-/tree/main/"
        }}});
        assert_eq!(
            report_issue_url(&e, None, "https://github.com", "Docs: Setup", "Page: x").unwrap(),
            "https://gitlab.example.com/pay/api/-/issues/new?issue[title]=Docs%3A+Setup&issue[description]=Page%3A+x"
        );
        let e = serde_json::json!({"metadata": {"annotations": {"github.com/project-slug": "acme/pay"}}});
        assert_eq!(
            report_issue_url(&e, None, "https://github.com", "t", "b").unwrap(),
            "https://github.com/acme/pay/issues/new?title=t&body=b"
        );
        assert_eq!(
            report_issue_url(
                &e,
                Some("https://github.com/acme/docs/"),
                "https://github.com",
                "t",
                "b"
            )
            .unwrap(),
            "https://github.com/acme/docs/issues/new?title=t&body=b"
        );
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;

        fn piece() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("<script>alert(1)</script>"),
                Just("<img src=x onerror=alert(1)>"),
                Just("[x](javascript:alert(1))"),
                Just("[y](JaVaScRiPt:alert(1))"),
                Just("<a href=\"javascript:x\">a</a>"),
                Just("<svg onload=alert(1)>"),
                Just("<iframe src=//evil>"),
                Just("![i](data:text/html,x)"),
                Just("`code`"),
                Just("\n\n"),
                Just("# h\n"),
                Just("> q\n"),
                Just("- l\n"),
                Just("<div "),
                Just("onclick=\"x\" "),
                Just(">"),
                Just("<"),
                Just("&#106;avascript:"),
                Just("[z](/\\\\evil.example)"),
                Just("<style>*{}</style>"),
                Just("***"),
                Just("| a | b |\n|---|---|\n"),
                Just("!!! note\n    x\n"),
                Just("<form action=x>"),
            ]
        }

        /// Every tag of the output (text's `<` is escaped, so each `<` left
        /// opens a real tag) is harmless: no script-like element, no event
        /// handler attribute, no script URL.
        fn assert_clean(html: &str) -> Result<(), TestCaseError> {
            for tag in html.split('<').skip(1) {
                let tag = tag
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let (name, mut rest) = tag.split_once(char::is_whitespace).unwrap_or((&tag, ""));
                for bad in ["script", "iframe", "style", "form", "object", "embed"] {
                    prop_assert!(name != bad, "<{tag}> in {html}");
                }
                // Attributes: name, then `="…"`, `='…'` or a bare value.
                loop {
                    rest = rest.trim_start();
                    if rest.is_empty() || rest == "/" {
                        break;
                    }
                    let end = rest
                        .find(|c: char| c == '=' || c.is_whitespace())
                        .unwrap_or(rest.len());
                    let attr = &rest[..end];
                    rest = &rest[end..];
                    let mut value = "";
                    if let Some(after) = rest.strip_prefix('=') {
                        let (v, r) = match after.chars().next() {
                            Some(q @ ('"' | '\'')) => {
                                let close = after[1..].find(q).map_or(after.len(), |k| k + 1);
                                (&after[1..close], after.get(close + 1..).unwrap_or(""))
                            }
                            _ => after
                                .split_at(after.find(char::is_whitespace).unwrap_or(after.len())),
                        };
                        value = v;
                        rest = r;
                    }
                    prop_assert!(!attr.starts_with("on"), "{attr} in <{tag}> of {html}");
                    let value = value.trim_start();
                    for bad in ["javascript:", "vbscript:", "data:text/html"] {
                        prop_assert!(!value.starts_with(bad), "{attr}={value} in {html}");
                    }
                }
            }
            Ok(())
        }

        proptest! {
            /// Whatever a docs page or card says, the HTML the host hands
            /// the browser has no script, handler or script URL.
            #[test]
            fn fuzz_markdown_stays_sanitised(pieces in proptest::collection::vec(piece(), 0..40), text in "\\PC{0,200}") {
                let md = pieces.concat() + &text;
                assert_clean(&render_fragment(&md))?;
                let links = Links {
                    pages: "/docs/default/component/x",
                    assets: "/api/docs/component/default/x",
                    folder: "guide",
                };
                assert_clean(&render(&md, &links).html)?;
            }

            #[test]
            fn fuzz_followable_links_stay_here_or_on_the_web(text in "\\PC{0,60}") {
                if followable(&text) {
                    let lower = text.to_ascii_lowercase();
                    prop_assert!(
                        lower.starts_with("http://") || lower.starts_with("https://")
                            || (text.starts_with('/') && !text[1..].starts_with(['/', '\\']) && !text.contains('\\'))
                    );
                }
            }
        }
    }
}
