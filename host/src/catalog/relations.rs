//! Relations between entities, derived from their specs. Every relation is
//! emitted in both directions so that either end can be read without a join
//! (Backstage's `BuiltinKindsEntityProcessor` does the same).

use super::refs::EntityRef;

/// The relation types and their reverse.
pub const PAIRS: &[(&str, &str)] = &[
    ("ownedBy", "ownerOf"),
    ("providesApi", "apiProvidedBy"),
    ("consumesApi", "apiConsumedBy"),
    ("dependsOn", "dependencyOf"),
    ("partOf", "hasPart"),
    ("memberOf", "hasMember"),
    ("childOf", "parentOf"),
];

/// Returns the reverse of a relation type.
pub fn reverse(kind: &str) -> Option<&'static str> {
    PAIRS.iter().find_map(|&(a, b)| {
        if a == kind {
            Some(b)
        } else if b == kind {
            Some(a)
        } else {
            None
        }
    })
}

/// Returns the relation type spelled as Backstage spells it, for a type that
/// may come in any case (filters are case-insensitive).
pub fn canonical(kind: &str) -> Option<&'static str> {
    PAIRS
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .find(|t| t.eq_ignore_ascii_case(kind))
}

/// One directed relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub source: EntityRef,
    pub kind: &'static str,
    pub target: EntityRef,
}

/// Collects relations for one entity, adding the reverse of each.
#[derive(Debug, Default)]
pub struct RelationSet {
    pub relations: Vec<Relation>,
}

impl RelationSet {
    /// Adds `source -kind-> target` and `target -reverse(kind)-> source`.
    pub fn add(&mut self, source: &EntityRef, kind: &'static str, target: EntityRef) {
        let back = reverse(kind).expect("relation types are taken from PAIRS");
        let rel = Relation {
            source: source.clone(),
            kind,
            target: target.clone(),
        };
        if self.relations.contains(&rel) {
            return;
        }
        self.relations.push(rel);
        self.relations.push(Relation {
            source: target,
            kind: back,
            target: source.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_reverse_both_ways() {
        for &(a, b) in PAIRS {
            assert_eq!(reverse(a), Some(b));
            assert_eq!(reverse(b), Some(a));
        }
        assert_eq!(reverse("likes"), None);
        assert_eq!(canonical("OWNEDBY"), Some("ownedBy"));
    }

    #[test]
    fn adds_both_directions_once() {
        let a = EntityRef::new("component", "default", "a");
        let g = EntityRef::new("group", "default", "g");
        let mut set = RelationSet::default();
        set.add(&a, "ownedBy", g.clone());
        set.add(&a, "ownedBy", g.clone());
        assert_eq!(set.relations.len(), 2);
        assert_eq!(set.relations[1].source, g);
        assert_eq!(set.relations[1].kind, "ownerOf");
    }
}
