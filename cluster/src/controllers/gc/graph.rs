//! The collector's picture of the cluster: every watched object reduced to what garbage
//! collection needs (identity, owner references, finalizers, whether it is being deleted) and
//! the index from an owner's uid to its dependents' uids. Pure data: the decisions on it
//! ([`decide`]) are made here, the API calls in the parent module.

use std::collections::{BTreeSet, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The finalizer of a delete with `propagationPolicy: Orphan`.
pub const ORPHAN: &str = "orphan";
/// The finalizer of a delete with `propagationPolicy: Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";

/// One object as the collector keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Index of its resource in the collector's resource list.
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Item {
    /// The object's item; `None` when it has no uid (never from a real server).
    pub fn from_object(resource: usize, meta: &ObjectMeta) -> Option<Item> {
        Some(Item {
            resource,
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: waiting for its dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Being deleted with the orphan finalizer: its dependents must let go of it.
    pub fn orphaning(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN)
    }

    /// Whether the collector has work on it: it has owners, or it waits for the collector.
    pub fn needs_attention(&self) -> bool {
        !self.owners.is_empty() || self.deleting_dependents() || self.orphaning()
    }

    /// Its reference to `owner` blocks the owner's foreground deletion.
    pub fn blocks(&self, owner: &str) -> bool {
        self.owners
            .iter()
            .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
    }
}

/// Every known object by uid, and who depends on whom.
#[derive(Debug, Default)]
pub struct Graph {
    items: HashMap<String, Item>,
    /// Owner uid (present or not) to the uids of the objects that name it.
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Item> {
        self.items.get(uid)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The uids of the objects that name `owner` as an owner.
    pub fn dependents(&self, owner: &str) -> Vec<String> {
        self.dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The uids of one resource's objects.
    pub fn uids_of(&self, resource: usize) -> HashSet<String> {
        self.items
            .values()
            .filter(|i| i.resource == resource)
            .map(|i| i.uid.clone())
            .collect()
    }

    /// Every uid the collector has work on.
    pub fn needing_attention(&self) -> Vec<String> {
        self.items
            .values()
            .filter(|i| i.needs_attention())
            .map(|i| i.uid.clone())
            .collect()
    }

    /// Records an added or changed object; returns the uids to look at again.
    pub fn apply(&mut self, item: Item) -> Vec<String> {
        let mut dirty = Vec::new();
        let old = self.items.remove(&item.uid);
        if let Some(old) = &old {
            self.unindex(old);
            // An owner whose dependents changed may be done waiting.
            dirty.extend(old.owners.iter().map(|r| r.uid.clone()));
        }
        for r in &item.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(item.uid.clone());
            dirty.push(r.uid.clone());
        }
        if item.needs_attention() {
            dirty.push(item.uid.clone());
        }
        // A new owner or one that changed its mind changes how its dependents are classified.
        let became = |i: Option<&Item>| i.map(|i| (i.deleting, i.deleting_dependents()));
        if old.is_none() || became(old.as_ref()) != became(Some(&item)) {
            dirty.extend(self.dependents(&item.uid));
        }
        self.items.insert(item.uid.clone(), item);
        dirty.retain(|u| self.items.get(u).is_some_and(Item::needs_attention));
        dirty
    }

    /// Forgets a deleted object; returns the uids to look at again (its dependents, which may
    /// have lost their last owner, and its owners, which may have been waiting for it).
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let Some(old) = self.items.remove(uid) else {
            return Vec::new();
        };
        self.unindex(&old);
        let mut dirty = self.dependents(uid);
        dirty.extend(old.owners.iter().map(|r| r.uid.clone()));
        dirty.retain(|u| self.items.get(u).is_some_and(Item::needs_attention));
        dirty
    }

    fn unindex(&mut self, item: &Item) {
        for r in &item.owners {
            if let Some(set) = self.dependents.get_mut(&r.uid) {
                set.remove(&item.uid);
                if set.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
    }
}

/// What became of one owner reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not deleting its dependents.
    Solid,
    /// The owner is gone (or never existed, or is another object of the same name).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
    /// The owner's kind is not served: nothing can be said, nothing is done.
    Unknown,
}

/// `propagationPolicy` of the collector's own deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Orphan,
    Background,
    Foreground,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Orphan => "Orphan",
            Policy::Background => "Background",
            Policy::Foreground => "Foreground",
        }
    }
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Drop the references to these owner uids (it keeps a live owner).
    RemoveOwners(Vec<String>),
    /// Delete it with this policy: no live owner is left.
    Delete(Policy),
}

/// kube's `attemptToDeleteItem` for one dependent, from the states of its owner references:
/// with a live owner it stays (and lets go of gone or foreground-deleting ones); without, it
/// is deleted in the foreground when an owner waits and it has dependents of its own, else as
/// its own finalizers say (Background by default).
pub fn decide(item: &Item, states: &[(String, OwnerState)], has_dependents: bool) -> Action {
    if item.deleting || states.is_empty() {
        return Action::Nothing;
    }
    if states.iter().any(|(_, s)| *s == OwnerState::Unknown) {
        // Only the removal of certainly gone owners is safe.
        let gone: Vec<String> = states
            .iter()
            .filter(|(_, s)| *s == OwnerState::Dangling)
            .map(|(u, _)| u.clone())
            .collect();
        let keeps_one = states
            .iter()
            .any(|(_, s)| matches!(s, OwnerState::Solid | OwnerState::Unknown));
        return if gone.is_empty() || !keeps_one {
            Action::Nothing
        } else {
            Action::RemoveOwners(gone)
        };
    }
    if states.iter().any(|(_, s)| *s == OwnerState::Solid) {
        let drop: Vec<String> = states
            .iter()
            .filter(|(_, s)| *s != OwnerState::Solid)
            .map(|(u, _)| u.clone())
            .collect();
        return if drop.is_empty() {
            Action::Nothing
        } else {
            Action::RemoveOwners(drop)
        };
    }
    let waiting = states.iter().any(|(_, s)| *s == OwnerState::Waiting);
    if waiting && has_dependents {
        return Action::Delete(Policy::Foreground);
    }
    if item.has_finalizer(ORPHAN) {
        Action::Delete(Policy::Orphan)
    } else if item.has_finalizer(FOREGROUND) {
        Action::Delete(Policy::Foreground)
    } else {
        Action::Delete(Policy::Background)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_ref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("owner-{uid}"),
            uid: uid.into(),
            block_owner_deletion: block.then_some(true),
            controller: None,
        }
    }

    fn item(uid: &str, owners: &[&str]) -> Item {
        Item {
            resource: 0,
            namespace: Some("default".into()),
            name: uid.into(),
            uid: uid.into(),
            owners: owners.iter().map(|o| owner_ref(o, true)).collect(),
            finalizers: vec![],
            deleting: false,
        }
    }

    #[test]
    fn the_index_follows_owner_references() {
        let mut g = Graph::default();
        g.apply(item("o", &[]));
        let dirty = g.apply(item("d1", &["o"]));
        assert_eq!(dirty, vec!["d1".to_owned()]);
        g.apply(item("d2", &["o", "x"]));
        assert_eq!(g.dependents("o"), vec!["d1".to_owned(), "d2".to_owned()]);
        assert_eq!(g.dependents("x"), vec!["d2".to_owned()]);
        // The owner goes: both dependents are looked at again.
        let mut dirty = g.remove("o");
        dirty.sort();
        assert_eq!(dirty, vec!["d1".to_owned(), "d2".to_owned()]);
        // A dependent lets go of x.
        g.apply(item("d2", &["o"]));
        assert!(g.dependents("x").is_empty());
        g.remove("d2");
        assert_eq!(g.dependents("o"), vec!["d1".to_owned()]);
    }

    #[test]
    fn a_foreground_owner_is_looked_at_when_a_dependent_goes() {
        let mut g = Graph::default();
        let mut owner = item("o", &[]);
        owner.deleting = true;
        owner.finalizers = vec![FOREGROUND.into()];
        g.apply(owner);
        g.apply(item("d", &["o"]));
        assert_eq!(g.remove("d"), vec!["o".to_owned()]);
        assert_eq!(g.uids_of(0).len(), 1);
    }

    #[test]
    fn decisions_follow_kubes_rules() {
        use OwnerState::*;
        let d = item("d", &["a", "b"]);
        let st = |a, b| vec![("a".to_owned(), a), ("b".to_owned(), b)];
        assert_eq!(decide(&d, &st(Solid, Solid), false), Action::Nothing);
        assert_eq!(
            decide(&d, &st(Solid, Dangling), false),
            Action::RemoveOwners(vec!["b".into()])
        );
        assert_eq!(
            decide(&d, &st(Waiting, Solid), false),
            Action::RemoveOwners(vec!["a".into()])
        );
        assert_eq!(
            decide(&d, &st(Dangling, Dangling), false),
            Action::Delete(Policy::Background)
        );
        assert_eq!(
            decide(&d, &st(Waiting, Dangling), true),
            Action::Delete(Policy::Foreground)
        );
        assert_eq!(
            decide(&d, &st(Waiting, Dangling), false),
            Action::Delete(Policy::Background)
        );
        assert_eq!(
            decide(&d, &st(Unknown, Dangling), false),
            Action::RemoveOwners(vec!["b".into()])
        );
        assert_eq!(decide(&d, &st(Unknown, Waiting), false), Action::Nothing);
        let mut orphaning = item("d", &["a"]);
        orphaning.finalizers = vec![ORPHAN.into()];
        assert_eq!(
            decide(&orphaning, &[("a".into(), Dangling)], false),
            Action::Delete(Policy::Orphan)
        );
        let mut deleting = item("d", &["a"]);
        deleting.deleting = true;
        assert_eq!(
            decide(&deleting, &[("a".into(), Dangling)], false),
            Action::Nothing
        );
    }
}
