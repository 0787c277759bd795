//! The roles the authorizer holds, in numbered slots, so that a binding finds its role by index
//! instead of hashing the role's name on every decision.
//!
//! A slot exists while its role exists or a binding refers to it: a binding may arrive before
//! its role (then its slot is empty and the binding grants nothing, as in Kubernetes), and a
//! role may be deleted and re-created under its bindings. Slots are freed and reused when
//! nothing refers to them any more, so churn does not grow the table.

use crate::index::{CompiledRole, FastMap};

#[derive(Debug)]
struct RoleSlot {
    /// Empty for a ClusterRole.
    namespace: String,
    name: String,
    role: Option<CompiledRole>,
    /// How many bindings refer to this slot.
    bindings: usize,
}

impl RoleSlot {
    fn is_unused(&self) -> bool {
        self.role.is_none() && self.bindings == 0
    }
}

/// Roles and ClusterRoles by slot, and the slot of each (namespace, name).
#[derive(Debug, Default)]
pub(crate) struct RoleTable {
    /// namespace (empty for ClusterRoles) → name → slot.
    ids: FastMap<String, FastMap<String, u32>>,
    slots: Vec<Option<RoleSlot>>,
    free: Vec<u32>,
}

impl RoleTable {
    /// The role in slot `id`, if it exists.
    pub(crate) fn get(&self, id: u32) -> Option<&CompiledRole> {
        self.slot(id).and_then(|s| s.role.as_ref())
    }

    /// Adds or replaces a role (namespace empty: a ClusterRole).
    pub(crate) fn set(&mut self, namespace: String, name: String, role: CompiledRole) {
        let id = self.slot_id(&namespace, &name);
        if let Some(slot) = self.slot_mut(id) {
            slot.role = Some(role);
        }
    }

    /// Removes a role; its bindings stay and grant nothing until it comes back.
    pub(crate) fn remove(&mut self, namespace: &str, name: &str) {
        if let Some(id) = self.ids.get(namespace).and_then(|m| m.get(name)).copied() {
            if let Some(slot) = self.slot_mut(id) {
                slot.role = None;
            }
            self.free_if_unused(id);
        }
    }

    /// Removes every ClusterRole (`cluster`) or every Role.
    pub(crate) fn clear(&mut self, cluster: bool) {
        let ids: Vec<u32> = self
            .ids
            .iter()
            .filter(|(ns, _)| ns.is_empty() == cluster)
            .flat_map(|(_, names)| names.values().copied())
            .collect();
        for id in ids {
            if let Some(slot) = self.slot_mut(id) {
                slot.role = None;
            }
            self.free_if_unused(id);
        }
    }

    /// How many ClusterRoles (`cluster`) or Roles exist.
    pub(crate) fn count(&self, cluster: bool) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.role.is_some() && s.namespace.is_empty() == cluster)
            .count()
    }

    /// The role `name` in `namespace` (empty for a ClusterRole), if it exists.
    pub(crate) fn find(&self, namespace: &str, name: &str) -> Option<&CompiledRole> {
        let id = *self.ids.get(namespace)?.get(name)?;
        self.get(id)
    }

    /// The slot a new binding refers to, taken for it.
    pub(crate) fn acquire(&mut self, namespace: &str, name: &str) -> u32 {
        let id = self.slot_id(namespace, name);
        if let Some(slot) = self.slot_mut(id) {
            slot.bindings += 1;
        }
        id
    }

    /// Lets go of a removed binding's slot.
    pub(crate) fn release(&mut self, id: u32) {
        if let Some(slot) = self.slot_mut(id) {
            slot.bindings = slot.bindings.saturating_sub(1);
        }
        self.free_if_unused(id);
    }

    fn slot(&self, id: u32) -> Option<&RoleSlot> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, id: u32) -> Option<&mut RoleSlot> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The slot of (namespace, name), made empty if there is none.
    fn slot_id(&mut self, namespace: &str, name: &str) -> u32 {
        if let Some(id) = self.ids.get(namespace).and_then(|m| m.get(name)) {
            return *id;
        }
        let slot = RoleSlot {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            role: None,
            bindings: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(entry) = self.slots.get_mut(id as usize) {
                    *entry = Some(slot);
                }
                id
            }
            None => {
                // More than four billion distinct role names cannot be held in memory anyway.
                let id = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(slot));
                id
            }
        };
        self.ids
            .entry(namespace.to_owned())
            .or_default()
            .insert(name.to_owned(), id);
        id
    }

    fn free_if_unused(&mut self, id: u32) {
        let Some(entry) = self.slots.get_mut(id as usize) else {
            return;
        };
        if !entry.as_ref().is_some_and(RoleSlot::is_unused) {
            return;
        }
        if let Some(slot) = entry.take() {
            if let Some(names) = self.ids.get_mut(&slot.namespace) {
                names.remove(&slot.name);
                if names.is_empty() {
                    self.ids.remove(&slot.namespace);
                }
            }
            self.free.push(id);
        }
    }

    /// Slots in use, for tests that check nothing leaks.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}
