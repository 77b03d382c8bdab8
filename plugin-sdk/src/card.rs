//! Building cards without spelling out every node.

use crate::{Badge, Card, Cell, Field, Link, Node, Progress, Table, Tone};

/// Builds a [`Card`] node by node.
pub struct CardBuilder {
    card: Card,
}

impl CardBuilder {
    pub fn new(id: &str, title: &str) -> Self {
        CardBuilder {
            card: Card {
                id: id.to_string(),
                title: title.to_string(),
                nodes: Vec::new(),
            },
        }
    }

    fn push(mut self, node: Node) -> Self {
        self.card.nodes.push(node);
        self
    }

    pub fn heading(self, text: &str) -> Self {
        self.push(Node::Heading(text.to_string()))
    }

    pub fn text(self, text: &str) -> Self {
        self.push(Node::Text(text.to_string()))
    }

    pub fn markdown(self, markdown: &str) -> Self {
        self.push(Node::Markdown(markdown.to_string()))
    }

    pub fn field(self, label: &str, value: &str, tone: Option<Tone>) -> Self {
        self.push(Node::Field(Field {
            label: label.to_string(),
            value: value.to_string(),
            tone,
        }))
    }

    pub fn link(self, label: &str, href: &str) -> Self {
        self.push(Node::Link(Link {
            label: label.to_string(),
            href: href.to_string(),
        }))
    }

    pub fn badge(self, label: &str, tone: Tone) -> Self {
        self.push(Node::Badge(Badge {
            label: label.to_string(),
            tone,
        }))
    }

    pub fn progress(self, value: f64, max: f64, label: Option<&str>) -> Self {
        self.push(Node::Progress(Progress {
            value,
            max,
            label: label.map(str::to_string),
        }))
    }

    pub fn sparkline(self, values: Vec<f64>) -> Self {
        self.push(Node::Sparkline(values))
    }

    pub fn table(self, columns: &[&str], rows: Vec<Vec<Cell>>) -> Self {
        self.push(Node::Table(Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }))
    }

    pub fn code(self, text: &str) -> Self {
        self.push(Node::Code(text.to_string()))
    }

    pub fn divider(self) -> Self {
        self.push(Node::Divider)
    }

    pub fn build(self) -> Card {
        self.card
    }
}
