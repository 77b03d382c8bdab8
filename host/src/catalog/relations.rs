//! Relations between entities, derived from their specs. Each has a
//! reverse (`ownedBy` / `ownerOf`); both ends see the relation.

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

/// A relation from the entity that declares it to `target`. Only this
/// direction is stored; the reverse (`ownerOf` for `ownedBy`) is derived when
/// the target is read, so a change to one entity never rewrites another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub kind: &'static str,
    pub target: EntityRef,
}

/// Collects an entity's outgoing relations without duplicates.
#[derive(Debug, Default)]
pub struct RelationSet {
    pub relations: Vec<Relation>,
}

impl RelationSet {
    pub fn add(&mut self, kind: &'static str, target: EntityRef) {
        let rel = Relation { kind, target };
        if !self.relations.contains(&rel) {
            self.relations.push(rel);
        }
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
    fn adds_each_relation_once() {
        let g = EntityRef::new("group", "default", "g");
        let mut set = RelationSet::default();
        set.add("ownedBy", g.clone());
        set.add("ownedBy", g.clone());
        set.add("dependsOn", g);
        assert_eq!(set.relations.len(), 2);
    }
}
