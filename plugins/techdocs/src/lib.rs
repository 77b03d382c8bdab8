//! TechDocs: documentation written as Markdown beside the code, in the
//! layout Backstage's TechDocs reads (`backstage.io/techdocs-ref: dir:.`
//! pointing at a folder with `mkdocs.yml` and a `docs/` folder), served
//! without Python or MkDocs. The plugin finds pages and builds the
//! navigation; the host renders the Markdown, sanitises it and resolves
//! links. See README.md.

mod markdown;
mod yaml;

use greenroom_plugin_sdk::host;
use greenroom_plugin_sdk::{
    DocPage, Entity, Link, Plugin, PluginError, SearchDocument, manifest, register_plugin,
};
use serde_json::Value;

manifest!(
    r#"{"id": "techdocs", "name": "TechDocs", "version": "0.1.0",
        "description": "Docs as code from mkdocs.yml and Markdown beside each entity, compatible with Backstage TechDocs sources", "applies_to": {"annotations": ["backstage.io/techdocs-ref"]}}"#
);

const ANNOTATION: &str = "backstage.io/techdocs-ref";

/// Pages read for search, and pages listed when building the navigation
/// from folders.
const MAX_PAGES: usize = 500;

/// Folder depth when building the navigation from folders.
const MAX_DEPTH: usize = 6;

/// Text indexed per page.
const MAX_SEARCH_TEXT: usize = 64 * 1024;

struct TechDocs;

/// One entry of the navigation.
#[derive(Debug, Clone)]
enum Nav {
    /// A Markdown file within the docs folder.
    Page {
        title: Option<String>,
        file: String,
    },
    Section {
        title: String,
        items: Vec<Nav>,
    },
    External {
        title: String,
        url: String,
    },
}

/// An entity's docs: where they are and how they are navigated.
struct Site {
    /// The docs folder relative to the entity's catalog file, e.g.
    /// `./docs` or `handbook/docs`.
    docs: String,
    nav: Vec<Nav>,
}

impl Site {
    fn load(entity: &Entity) -> Result<Site, PluginError> {
        let reference = entity
            .annotation(ANNOTATION)
            .ok_or(PluginError::NotApplicable)?;
        let reference = reference.trim();
        let Some(dir) = reference.strip_prefix("dir:") else {
            return Err(PluginError::Config(format!(
                "{ANNOTATION} '{reference}' is not supported: Greenroom reads docs beside the catalog file, so write `dir:.` or `dir:<folder>`"
            )));
        };
        let dir = dir.trim().trim_end_matches('/');
        let dir = if dir.is_empty() { "." } else { dir };
        let (config_file, text) = ["mkdocs.yml", "mkdocs.yaml"]
            .iter()
            .find_map(|name| {
                let path = format!("{dir}/{name}");
                host::read_file(entity, &path).ok().map(|t| (path, t))
            })
            .ok_or_else(|| {
                PluginError::Config(format!(
                    "no mkdocs.yml in '{dir}' ({ANNOTATION} '{reference}')"
                ))
            })?;
        let config = yaml::parse(&text)
            .map_err(|e| PluginError::Config(format!("{config_file} is not valid YAML: {e}")))?;
        let docs_dir = config["docs_dir"].as_str().unwrap_or("docs");
        if !is_relative_path(docs_dir) {
            return Err(PluginError::Config(format!(
                "{config_file}: docs_dir '{docs_dir}' must be a folder inside '{dir}'"
            )));
        }
        let docs = format!("{dir}/{}", docs_dir.trim_end_matches('/'));
        let nav = match config.get("nav") {
            Some(Value::Array(items)) => nav_from_config(items, &config_file, ""),
            _ => nav_from_folder(entity, &docs, "", 0, &mut 0),
        };
        Ok(Site { docs, nav })
    }

    /// The Markdown file for a page address (`guide/setup`, `guide/setup/`,
    /// `guide/setup.md`, or `` for the home page) and its text.
    fn find(&self, entity: &Entity, address: &str) -> Option<(String, String)> {
        let address = address.trim_matches('/');
        if !address.is_empty() && !is_relative_path(address) {
            return None;
        }
        let candidates: Vec<String> = if address.is_empty() {
            vec!["index.md".into(), "README.md".into()]
        } else if address.ends_with(".md") {
            vec![address.to_string()]
        } else {
            vec![
                format!("{address}.md"),
                format!("{address}/index.md"),
                format!("{address}/README.md"),
            ]
        };
        candidates.into_iter().find_map(|file| {
            host::read_file(entity, &format!("{}/{file}", self.docs))
                .ok()
                .map(|text| (file, text))
        })
    }

    /// Every page file in navigation order.
    fn pages(&self) -> Vec<(Option<String>, String)> {
        fn walk(items: &[Nav], out: &mut Vec<(Option<String>, String)>) {
            for item in items {
                match item {
                    Nav::Page { title, file } => out.push((title.clone(), file.clone())),
                    Nav::Section { items, .. } => walk(items, out),
                    Nav::External { .. } => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nav, &mut out);
        out.dedup_by(|a, b| a.1 == b.1);
        out
    }

    fn title_in_nav(&self, file: &str) -> Option<String> {
        self.pages()
            .into_iter()
            .find(|(_, f)| f == file)
            .and_then(|(t, _)| t)
    }

    /// The navigation as the WIT's flat list of links.
    fn nav_links(&self) -> Vec<Link> {
        fn walk(items: &[Nav], section: &str, out: &mut Vec<Link>) {
            for item in items {
                match item {
                    Nav::Page { title, file } => out.push(Link {
                        label: title.clone().unwrap_or_else(|| title_from_file(file)),
                        href: file.clone(),
                    }),
                    Nav::External { title, url } => out.push(Link {
                        label: title.clone(),
                        href: url.clone(),
                    }),
                    Nav::Section { title, items } => {
                        let label = if section.is_empty() {
                            title.clone()
                        } else {
                            format!("{section} / {title}")
                        };
                        out.push(Link {
                            label: label.clone(),
                            href: String::new(),
                        });
                        walk(items, &label, out);
                        // Back to the enclosing section (empty: the top).
                        out.push(Link {
                            label: section.to_string(),
                            href: String::new(),
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nav, "", &mut out);
        out
    }
}

/// A relative path that stays inside its folder: no `..`, not absolute,
/// no scheme, no backslashes.
fn is_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains("://")
        && !path.contains(':')
        && path.split('/').all(|part| part != "..")
}

/// `nav:` from mkdocs.yml: `- page.md`, `- Title: page.md`,
/// `- Section: [...]`, `- Title: https://…`. Entries that leave the docs
/// folder (`../`, absolute paths) or that are not Markdown are skipped and
/// logged: one bad entry never hides the docs.
fn nav_from_config(items: &[Value], config_file: &str, section: &str) -> Vec<Nav> {
    let mut out = Vec::new();
    for item in items {
        let (title, target) = match item {
            Value::String(file) => (None, Value::String(file.clone())),
            Value::Object(map) if map.len() == 1 => {
                let (title, target) = map.iter().next().expect("one entry");
                (Some(title.clone()), target.clone())
            }
            other => {
                skip(
                    config_file,
                    &format!("{other}"),
                    "is not `file`, `Title: file` or `Section: [...]`",
                );
                continue;
            }
        };
        match target {
            Value::Array(children) => {
                let title = title.unwrap_or_default();
                let path = if section.is_empty() {
                    title.clone()
                } else {
                    format!("{section} / {title}")
                };
                out.push(Nav::Section {
                    items: nav_from_config(&children, config_file, &path),
                    title,
                });
            }
            Value::String(target) => {
                if target.starts_with("https://") || target.starts_with("http://") {
                    out.push(Nav::External {
                        title: title.unwrap_or_else(|| target.clone()),
                        url: target,
                    });
                } else if !is_relative_path(&target) {
                    skip(config_file, &target, "leaves the docs folder");
                } else if !target.ends_with(".md") {
                    skip(config_file, &target, "is not a Markdown file");
                } else {
                    out.push(Nav::Page {
                        title,
                        file: target,
                    });
                }
            }
            other => skip(config_file, &format!("{other}"), "has no page"),
        }
    }
    out
}

fn skip(config_file: &str, entry: &str, why: &str) {
    host::log(
        host::Level::Warn,
        &format!("{config_file}: nav entry '{entry}' {why}; skipped"),
    );
}

/// Without `nav:`, MkDocs lists the docs folder: `index.md` (or
/// `README.md`) first, then pages and sub-folders by name.
fn nav_from_folder(
    entity: &Entity,
    docs: &str,
    prefix: &str,
    depth: usize,
    count: &mut usize,
) -> Vec<Nav> {
    if depth > MAX_DEPTH {
        return Vec::new();
    }
    let folder = if prefix.is_empty() {
        docs.to_string()
    } else {
        format!("{docs}/{prefix}")
    };
    let Ok(names) = host::list_dir(entity, &folder) else {
        return Vec::new();
    };
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        }
    };
    let home = names
        .iter()
        .find(|n| *n == "index.md")
        .or_else(|| names.iter().find(|n| *n == "README.md"));
    let mut out = Vec::new();
    if let Some(home) = home {
        *count += 1;
        out.push(Nav::Page {
            title: if prefix.is_empty() {
                Some("Home".into())
            } else {
                None
            },
            file: path(home),
        });
    }
    for name in &names {
        if *count >= MAX_PAGES {
            break;
        }
        if Some(name) == home {
            continue;
        }
        if let Some(dir) = name.strip_suffix('/') {
            let items = nav_from_folder(entity, docs, &path(dir), depth + 1, count);
            if !items.is_empty() {
                out.push(Nav::Section {
                    title: title_from_file(dir),
                    items,
                });
            }
        } else if name.ends_with(".md") {
            *count += 1;
            out.push(Nav::Page {
                title: None,
                file: path(name),
            });
        }
    }
    out
}

/// `getting-started.md` → `Getting started`; `guide/index.md` → `Guide`.
fn title_from_file(file: &str) -> String {
    let mut parts = file.trim_end_matches('/').rsplit('/');
    let mut name = parts.next().unwrap_or(file);
    if matches!(name, "index.md" | "README.md")
        && let Some(folder) = parts.next()
    {
        name = folder;
    }
    let name = name.strip_suffix(".md").unwrap_or(name);
    let spaced = name.replace(['-', '_'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Plugin for TechDocs {
    fn doc_page(entity: Entity, path: String) -> Result<DocPage, PluginError> {
        let site = Site::load(&entity)?;
        // No such page: nothing to show, which the host answers with 404.
        let (file, text) = site
            .find(&entity, &path)
            .ok_or(PluginError::NotApplicable)?;
        let page = markdown::prepare(&text);
        let title = page
            .meta_title
            .clone()
            .or_else(|| site.title_in_nav(&file))
            .or_else(|| page.first_heading.clone())
            .unwrap_or_else(|| title_from_file(&file));
        Ok(DocPage {
            path: file,
            title,
            markdown: page.markdown,
            nav: site.nav_links(),
        })
    }

    fn search_documents(entity: Entity) -> Result<Vec<SearchDocument>, PluginError> {
        let site = Site::load(&entity)?;
        let mut documents = Vec::new();
        for (title, file) in site.pages().into_iter().take(MAX_PAGES) {
            let Ok(text) = host::read_file(&entity, &format!("{}/{file}", site.docs)) else {
                continue;
            };
            let page = markdown::prepare(&text);
            let title = page
                .meta_title
                .clone()
                .or(title)
                .or(page.first_heading.clone())
                .unwrap_or_else(|| title_from_file(&file));
            let mut plain = markdown::plain_text(&page.markdown);
            if plain.len() > MAX_SEARCH_TEXT {
                let mut end = MAX_SEARCH_TEXT;
                while !plain.is_char_boundary(end) {
                    end -= 1;
                }
                plain.truncate(end);
            }
            let address = markdown::address(&file);
            let slash = if address.is_empty() { "" } else { "/" };
            documents.push(SearchDocument {
                id: format!("{}#{file}", entity.entity_ref),
                title,
                text: plain,
                location: format!(
                    "/docs/{}/{}/{}{slash}{address}",
                    entity.namespace,
                    entity.kind.to_lowercase(),
                    entity.name
                ),
            });
        }
        Ok(documents)
    }
}

register_plugin!(TechDocs);
