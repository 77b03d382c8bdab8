//! MkDocs Markdown to the CommonMark the host renders: front matter read
//! for the title, admonitions (`!!! note "Title"`, collapsible `???`)
//! turned into HTML blocks around their Markdown content, and plain text
//! for search.

/// A page ready for the host.
pub struct Prepared {
    pub markdown: String,
    /// `title:` from YAML front matter.
    pub meta_title: Option<String>,
    /// The first `# Heading`.
    pub first_heading: Option<String>,
}

pub fn prepare(text: &str) -> Prepared {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (meta_title, body) = front_matter(text);
    let mut out = String::with_capacity(body.len() + 256);
    admonitions(body, &mut out);
    let first_heading = first_heading(body);
    Prepared {
        markdown: out,
        meta_title,
        first_heading,
    }
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

fn front_matter(text: &str) -> (Option<String>, &str) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let Some(end) = rest.find("\n---") else {
        return (None, text);
    };
    let meta = &rest[..end];
    let after = &rest[end + 4..];
    let body = after.split_once('\n').map_or("", |(_, b)| b);
    let title = crate::yaml::parse(meta)
        .ok()
        .and_then(|v| v["title"].as_str().map(str::to_string));
    (title, body)
}

fn first_heading(text: &str) -> Option<String> {
    let mut fence = Fence::default();
    for line in text.lines() {
        if fence.inside_after(line) {
            continue;
        }
        if let Some(h) = line.strip_prefix("# ") {
            return Some(h.trim().trim_end_matches('#').trim().to_string());
        }
    }
    None
}

/// Whether lines are inside a fenced code block, where Markdown syntax
/// means nothing.
#[derive(Default)]
struct Fence(Option<&'static str>);

impl Fence {
    /// Takes the next line; true when it is inside a code block or opens
    /// or closes one.
    fn inside_after(&mut self, line: &str) -> bool {
        let trimmed = line.trim_start();
        let marker = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        match (self.0, marker) {
            (Some(open), Some(_)) if trimmed.starts_with(open) => {
                self.0 = None;
                true
            }
            (None, Some(m)) => {
                self.0 = Some(m);
                true
            }
            (inside, _) => inside.is_some(),
        }
    }
}

/// Escapes text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `!!! type "Title"` / `??? type` / `???+ type`: the head of an admonition.
struct Head {
    kind: String,
    title: Option<String>,
    collapsible: Option<bool>,
}

fn admonition_head(line: &str) -> Option<Head> {
    let (collapsible, rest) = if let Some(r) = line.strip_prefix("!!! ") {
        (None, r)
    } else if let Some(r) = line.strip_prefix("???+ ") {
        (Some(true), r)
    } else if let Some(r) = line.strip_prefix("??? ") {
        (Some(false), r)
    } else {
        return None;
    };
    let rest = rest.trim();
    let (kinds, title) = match rest.find('"') {
        Some(i) => {
            let title = rest[i + 1..].trim_end().strip_suffix('"')?;
            (&rest[..i], Some(title.to_string()))
        }
        None => (rest, None),
    };
    let kind = kinds.split_whitespace().next()?.to_lowercase();
    if !kind
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let title = match title {
        // `!!! note ""` has no title bar.
        Some(t) if t.is_empty() => None,
        Some(t) => Some(t),
        None => {
            let mut c = kind.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
        }
    };
    Some(Head {
        kind,
        title,
        collapsible,
    })
}

/// Copies `text` to `out`, turning admonitions (outside code fences) into
/// HTML blocks whose content stays Markdown; nested ones too.
fn admonitions(text: &str, out: &mut String) {
    let lines: Vec<&str> = text.lines().collect();
    let mut fence = Fence::default();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let head = if !fence.inside_after(line) {
            admonition_head(line)
        } else {
            None
        };
        let Some(head) = head else {
            out.push_str(line);
            out.push('\n');
            i += 1;
            continue;
        };
        // The body: following lines indented by four spaces (or a tab),
        // with blank lines inside it.
        let mut body = String::new();
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j];
            if let Some(inner) = l.strip_prefix("    ").or_else(|| l.strip_prefix('\t')) {
                body.push_str(inner);
                body.push('\n');
                j += 1;
            } else if l.trim().is_empty()
                && lines[j + 1..]
                    .iter()
                    .find(|n| !n.trim().is_empty())
                    .is_some_and(|n| n.starts_with("    ") || n.starts_with('\t'))
            {
                body.push('\n');
                j += 1;
            } else {
                break;
            }
        }
        let class = escape(&head.kind);
        match head.collapsible {
            Some(open) => {
                out.push_str(&format!(
                    "<details class=\"admonition {class}\"{}>\n<summary>{}</summary>\n\n",
                    if open { " open" } else { "" },
                    escape(head.title.as_deref().unwrap_or(&head.kind))
                ));
                admonitions(&body, out);
                out.push_str("\n</details>\n\n");
            }
            None => {
                out.push_str(&format!("<div class=\"admonition {class}\">\n"));
                if let Some(title) = &head.title {
                    out.push_str(&format!(
                        "<p class=\"admonition-title\">{}</p>\n",
                        escape(title)
                    ));
                }
                out.push('\n');
                admonitions(&body, out);
                out.push_str("\n</div>\n\n");
            }
        }
        i = j;
    }
}

/// Text for search: Markdown and HTML syntax dropped, words kept (code
/// included: people search for commands and error messages).
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut chars = markdown.chars().peekable();
    let mut in_tag = false;
    while let Some(c) = chars.next() {
        match c {
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '/' || *n == '!') =>
            {
                in_tag = true
            }
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            // `[text](url)`: keep the text, drop the URL.
            ']' if chars.peek() == Some(&'(') => {
                for n in chars.by_ref() {
                    if n == ')' {
                        break;
                    }
                }
                out.push(' ');
            }
            '#' | '*' | '_' | '`' | '|' | '[' | ']' | '!' | '>' | '~' => out.push(' '),
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
