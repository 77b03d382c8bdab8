//! Where catalog files come from: local files (single, directory, glob) and
//! http(s) URLs, read with size and time limits.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::config::Config;
use crate::net::{self, Origin};

/// A place a catalog file is read from. Its `Display` form is the source
/// string stored with entities and problems (`file:/abs/path`,
/// `url:https://…`), as in Backstage's `managed-by-location` annotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    File(PathBuf),
    Url(Url),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(p) => write!(f, "file:{}", p.display()),
            Target::Url(u) => write!(f, "url:{u}"),
        }
    }
}

/// Why a target could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("file not found")]
    NotFound,
    #[error("cannot read: {0}")]
    Io(String),
    #[error(
        "is {size} bytes, over the limit of {limit} bytes ({setting}); make it smaller or raise the limit"
    )]
    TooLarge {
        size: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error("GET returned HTTP {0}")]
    Status(u16),
    #[error("no answer within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("request failed: {0}")]
    Http(String),
    #[error("is not UTF-8 text")]
    NotText,
    #[error("invalid target '{0}': {1}")]
    Invalid(String, String),
    /// An answer that grew past the limit while it streamed.
    #[error("is over the limit of {limit} bytes ({setting}); make it smaller or raise the limit")]
    OverLimit { limit: u64, setting: &'static str },
    /// Outside what may be read: not an allowed origin, or out of the
    /// catalog file's folder.
    #[error("refused: {0}")]
    Outside(String),
}

impl Target {
    /// A target from a location's `type` and `target`, relative paths taken
    /// from `base_dir`.
    pub fn from_location(kind: &str, target: &str, base_dir: &Path) -> Result<Target, ReadError> {
        match kind {
            "url" => Url::parse(target)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(Target::Url)
                .ok_or_else(|| ReadError::Invalid(target.into(), "expected an http(s) URL".into())),
            "file" => {
                let path = Path::new(target);
                let path = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    base_dir.join(path)
                };
                Ok(Target::File(normalize(&path)))
            }
            other => Err(ReadError::Invalid(
                target.into(),
                format!("unknown location type '{other}'; use 'file' or 'url'"),
            )),
        }
    }

    /// Resolves a reference written inside this target's file (a Location
    /// entity's target, a `$text` path).
    pub fn join(&self, reference: &str) -> Result<Target, ReadError> {
        if reference.starts_with("http://") || reference.starts_with("https://") {
            return Target::from_location("url", reference, Path::new("/"));
        }
        match self {
            Target::File(p) => {
                let dir = p.parent().unwrap_or(Path::new("/"));
                Target::from_location("file", reference, dir)
            }
            Target::Url(u) => u
                .join(reference)
                .map(Target::Url)
                .map_err(|e| ReadError::Invalid(reference.into(), e.to_string())),
        }
    }

    /// Whether `self` lies under `root`'s folder (for URLs: on the same
    /// origin and under the same path): substitutions and plugin reads may
    /// not reach elsewhere.
    pub fn is_within(&self, root: &Target) -> bool {
        match (self, root) {
            (Target::File(p), Target::File(r)) => {
                let dir = if r.is_dir() {
                    r.as_path()
                } else {
                    r.parent().unwrap_or(Path::new("/"))
                };
                let dir = glob_base(dir);
                p.starts_with(dir)
            }
            (Target::Url(u), Target::Url(r)) => {
                // Same origin and under the root's folder: on a shared host
                // (a git server's raw files) the next folder is someone
                // else's repository.
                let dir = &r.path()[..r.path().rfind('/').map_or(0, |i| i + 1)];
                u.origin() == r.origin() && u.path().starts_with(dir)
            }
            _ => false,
        }
    }

    /// Like [`Target::is_within`], and for files also once symbolic links
    /// are resolved: a link inside the folder must not lead out of it.
    pub fn is_within_through_links(&self, root: &Target) -> bool {
        if !self.is_within(root) {
            return false;
        }
        let (Target::File(path), Target::File(r)) = (self, root) else {
            return true;
        };
        let dir = if r.is_dir() {
            r.as_path()
        } else {
            r.parent().unwrap_or(Path::new("/"))
        };
        match (
            std::fs::canonicalize(path),
            std::fs::canonicalize(glob_base(dir)),
        ) {
            (Ok(real), Ok(root)) => real.starts_with(root),
            // A missing file is reported as missing by the read itself.
            (Err(_), _) => true,
            (Ok(_), Err(_)) => false,
        }
    }

    /// Expands a file target that is a directory (every `catalog-info.yaml`
    /// below it) or a glob pattern into files, sorted.
    pub fn expand(&self) -> Result<Vec<Target>, ReadError> {
        let Target::File(path) = self else {
            return Ok(vec![self.clone()]);
        };
        let text = path.to_string_lossy();
        let pattern = if text.contains(['*', '?', '[']) {
            text.into_owned()
        } else if path.is_dir() {
            format!("{}/**/catalog-info.y*ml", text.trim_end_matches('/'))
        } else {
            return Ok(vec![self.clone()]);
        };
        let paths =
            glob::glob(&pattern).map_err(|e| ReadError::Invalid(pattern.clone(), e.to_string()))?;
        let mut out: Vec<Target> = paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .map(Target::File)
            .collect();
        out.sort_by_key(ToString::to_string);
        Ok(out)
    }
}

/// The directory part of a path that may hold glob characters.
fn glob_base(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        out.push(c);
    }
    out
}

/// Removes `.` and `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The runtime URL reads run on. Reading happens on blocking threads (a
/// refresh streams into a SQLite transaction), which may not drive the
/// server's runtime; this one lives for the whole process and is never
/// dropped, so it can be entered from any non-async thread.
pub(crate) fn io_runtime() -> Result<&'static tokio::runtime::Runtime, ReadError> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("greenroom-fetch")
        .enable_all()
        .build()
        .map_err(|e| ReadError::Io(format!("cannot start the fetch runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Reads targets with limits. Call only from blocking threads.
///
/// URLs go through the host's one guarded client (`crate::net`): only to
/// `catalog.allowed_origins`, never to private addresses unless allowed by
/// address, and with the folder rule re-checked on every redirect hop.
#[derive(Clone)]
pub struct Reader {
    guard: net::Guard,
    allowed: Arc<[Origin]>,
    max_bytes: u64,
    timeout: Duration,
    /// The settings that set the two limits, named in errors.
    settings: (&'static str, &'static str),
}

impl Reader {
    /// A reader with the catalog's file size and fetch time limits.
    pub fn for_catalog(config: &Config) -> anyhow::Result<Reader> {
        let catalog = &config.catalog;
        Reader::new(config, catalog.max_file_bytes, catalog.fetch_timeout)
    }

    /// A reader for plugins' `source` reads and docs assets, with the
    /// limits of plugin HTTP. They read files beside entities, so URLs are
    /// still limited to the catalog's allowed origins.
    pub fn for_plugins(config: &Config) -> anyhow::Result<Reader> {
        let plugins = &config.plugins;
        let mut reader = Reader::new(config, plugins.http_max_bytes, plugins.http_timeout)?;
        reader.settings = ("plugins.http_max_bytes", "plugins.http_timeout");
        Ok(reader)
    }

    fn new(config: &Config, max_bytes: u64, timeout: Duration) -> anyhow::Result<Reader> {
        Ok(Reader {
            guard: config.outbound_guard()?,
            allowed: config.catalog_origins()?.into(),
            max_bytes,
            timeout,
            settings: ("catalog.max_file_bytes", "catalog.fetch_timeout"),
        })
    }

    /// A reader with limits alone and no allowed origin (tests, tools).
    pub fn local(max_bytes: u64, timeout: Duration) -> Reader {
        Reader {
            guard: net::Guard::default(),
            allowed: Arc::from([]),
            max_bytes,
            timeout,
            settings: ("catalog.max_file_bytes", "catalog.fetch_timeout"),
        }
    }

    /// Reads a location's file.
    pub fn read(&self, target: &Target) -> Result<String, ReadError> {
        self.read_within(target, &[], None)
    }

    /// Reads `target`, which must stay within one of `scope` (lexically,
    /// through symbolic links, and on every redirect hop), before
    /// `deadline` when one is given. An empty scope reads anything the
    /// allowed origins permit.
    pub fn read_within(
        &self,
        target: &Target,
        scope: &[&Target],
        deadline: Option<std::time::Instant>,
    ) -> Result<String, ReadError> {
        let bytes = self.read_bytes_within(target, scope, deadline)?;
        String::from_utf8(bytes).map_err(|_| ReadError::NotText)
    }

    pub fn read_bytes_within(
        &self,
        target: &Target,
        scope: &[&Target],
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<u8>, ReadError> {
        Ok(match target {
            Target::File(path) => {
                if !scope.is_empty() && !scope.iter().any(|s| target.is_within_through_links(s)) {
                    return Err(ReadError::Outside(
                        "leaves its folder through a symbolic link".into(),
                    ));
                }
                let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ReadError::NotFound,
                    _ => ReadError::Io(e.to_string()),
                })?;
                if meta.is_dir() {
                    return Err(ReadError::Io("is a directory".into()));
                }
                if meta.len() > self.max_bytes {
                    return Err(self.too_large(meta.len()));
                }
                std::fs::read(path).map_err(|e| ReadError::Io(e.to_string()))?
            }
            Target::Url(url) => {
                let timeout = match deadline {
                    Some(d) => d
                        .saturating_duration_since(std::time::Instant::now())
                        .min(self.timeout),
                    None => self.timeout,
                };
                io_runtime()?.block_on(self.fetch(url, scope, timeout))?
            }
        })
    }

    async fn fetch(
        &self,
        url: &Url,
        scope: &[&Target],
        timeout: Duration,
    ) -> Result<Vec<u8>, ReadError> {
        let allow = |url: &Url| -> Result<Origin, net::Error> {
            let origin = self.allowed_origin(url)?;
            let here = Target::Url(url.clone());
            if !scope.is_empty() && !scope.iter().any(|s| here.is_within(s)) {
                return Err(net::Error::NotAllowed(format!(
                    "{url} is outside the catalog file's folder"
                )));
            }
            Ok(origin)
        };
        let resp = self
            .guard
            .send(
                net::Request::get(url.clone()),
                timeout,
                self.max_bytes,
                &allow,
            )
            .await
            .map_err(|e| match e {
                net::Error::Timeout => ReadError::Timeout(timeout, self.settings.1),
                net::Error::TooLarge { limit } => ReadError::OverLimit {
                    limit,
                    setting: self.settings.0,
                },
                net::Error::NotAllowed(m) => ReadError::Outside(m),
                other => ReadError::Http(other.to_string()),
            })?;
        if !(200..300).contains(&resp.status) {
            return Err(ReadError::Status(resp.status));
        }
        Ok(resp.body)
    }

    /// The URL's origin, if `catalog.allowed_origins` lists it.
    pub fn allowed_origin(&self, url: &Url) -> Result<Origin, net::Error> {
        let origin = Origin::of(url)
            .ok_or_else(|| net::Error::Refused(format!("'{url}' is not an http(s) URL")))?;
        if !self.allowed.contains(&origin) {
            return Err(net::Error::NotAllowed(format!(
                "{origin} is not in catalog.allowed_origins; an administrator adds it there to read catalog files from it"
            )));
        }
        Ok(origin)
    }

    fn too_large(&self, size: u64) -> ReadError {
        ReadError::TooLarge {
            size,
            limit: self.max_bytes,
            setting: self.settings.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_targets() {
        let root =
            Target::from_location("file", "org/catalog-info.yaml", Path::new("/srv/catalog"))
                .unwrap();
        assert_eq!(root.to_string(), "file:/srv/catalog/org/catalog-info.yaml");
        let child = root.join("../apis/./pay.yaml").unwrap();
        assert_eq!(child.to_string(), "file:/srv/catalog/apis/pay.yaml");
        let url = Target::from_location(
            "url",
            "https://git.example.com/org/repo/catalog-info.yaml",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(
            url.join("docs/openapi.yaml").unwrap().to_string(),
            "url:https://git.example.com/org/repo/docs/openapi.yaml"
        );
        assert!(Target::from_location("ftp", "x", Path::new("/")).is_err());
        assert!(Target::from_location("url", "file:///etc/passwd", Path::new("/")).is_err());
    }

    #[test]
    fn substitutions_stay_within_the_root() {
        let root = Target::File("/srv/catalog/all.yaml".into());
        assert!(Target::File("/srv/catalog/apis/a.yaml".into()).is_within(&root));
        assert!(!Target::File("/etc/passwd".into()).is_within(&root));
        let glob_root = Target::File("/srv/catalog/*/catalog-info.yaml".into());
        assert!(Target::File("/srv/catalog/x/openapi.yaml".into()).is_within(&glob_root));
        let repo =
            Target::Url(Url::parse("https://git.example/org/repo/catalog-info.yaml").unwrap());
        assert!(
            Target::Url(Url::parse("https://git.example/org/repo/docs/a.md").unwrap())
                .is_within(&repo)
        );
        assert!(
            !Target::Url(Url::parse("https://git.example/org/other/a.md").unwrap())
                .is_within(&repo)
        );
        assert!(!repo.join("../other/secrets.txt").unwrap().is_within(&repo));
        let u = Target::Url(Url::parse("https://a.example/x.yaml").unwrap());
        assert!(Target::Url(Url::parse("https://a.example/y").unwrap()).is_within(&u));
        assert!(!Target::Url(Url::parse("https://b.example/y").unwrap()).is_within(&u));
    }

    #[test]
    fn expands_directories_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        for p in [
            "a/catalog-info.yaml",
            "b/c/catalog-info.yaml",
            "b/other.yaml",
        ] {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x: 1").unwrap();
        }
        let found = Target::File(dir.path().to_path_buf()).expand().unwrap();
        assert_eq!(found.len(), 2);
        let found = Target::File(dir.path().join("b/*.yaml")).expand().unwrap();
        assert_eq!(found, vec![Target::File(dir.path().join("b/other.yaml"))]);
    }

    #[test]
    fn refuses_large_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        let reader = Reader::local(1024, Duration::from_secs(1));
        assert_eq!(
            reader.read(&Target::File(big)),
            Err(ReadError::TooLarge {
                size: 2048,
                limit: 1024,
                setting: "catalog.max_file_bytes"
            })
        );
        assert_eq!(
            reader.read(&Target::File(dir.path().join("none.yaml"))),
            Err(ReadError::NotFound)
        );
    }
}
