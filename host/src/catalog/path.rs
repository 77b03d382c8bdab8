//! Paths into an entity document, as problems name them: `spec.owner`,
//! `metadata.tags[2]`. The catalog model's own; the YAML reader records
//! where each path starts in a file.

use std::fmt;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A path into a document, shown as `spec.owner` or `metadata.tags[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathSeg>);

impl FieldPath {
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(PathSeg::Key(key.to_string()));
        self
    }
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(PathSeg::Index(index));
        self
    }
    pub fn parse_dotted(path: &str) -> Self {
        FieldPath(
            path.split('.')
                .map(|k| PathSeg::Key(k.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) if i == 0 => write!(f, "{k}")?,
                PathSeg::Key(k) if k.contains('.') || k.contains('/') => write!(f, "[\"{k}\"]")?,
                PathSeg::Key(k) => write!(f, ".{k}")?,
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
