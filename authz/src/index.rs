//! The authorizer's state: roles (in a [`RoleTable`]), bindings by name, and the index that
//! answers "which bindings name this user or this group, cluster-wide or in this namespace"
//! without scanning.
//!
//! ServiceAccount subjects are indexed under the user name they authenticate as
//! (`system:serviceaccount:NS:NAME`), so a lookup needs only the user's name and groups. Bindings
//! refer to their role by a slot in the [`RoleTable`], resolved when the binding arrives and
//! read at decision time, so a role change never touches the index and a decision hashes no
//! role name. Everything an allow needs (compiled rules, the reason text of each subject) is
//! computed once, when an object arrives; a decision allocates only the reason it returns (and,
//! on the rare path of a binding whose role is missing, the not-found text).
//!
//! The maps hash with foldhash (seeded per map, so collisions cannot be planned in advance): the
//! keys come from RBAC objects, which only the cluster's administrators write, and from the
//! authenticated user, who picks one lookup key, not the map's contents.

use crate::objects::{
    Binding, RbacKind, RbacObject, Role, RoleRef, RoleRefKind, Subject, SubjectKind,
};
use crate::quote::{aggregate_errors, go_quote};
use crate::roles::RoleTable;
use crate::rule::{same, CompiledRule, Request};
use kgate_core::{Attributes, Decision, UserInfo};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The prefix of a ServiceAccount's user name, as `k8s.io/apiserver/pkg/authentication/serviceaccount`.
pub(crate) const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// A Role or ClusterRole, compiled.
#[derive(Debug)]
pub(crate) struct CompiledRole {
    pub(crate) rules: Vec<CompiledRule>,
}

/// A subject of a binding, with the user or group name it matches and the reason a grant
/// through it gives.
#[derive(Debug)]
pub(crate) struct CompiledSubject {
    /// As written, a ServiceAccount's empty namespace filled in with the binding's.
    pub(crate) subject: Subject,
    /// For a ServiceAccount, the user name it authenticates as.
    service_account_user: Option<Box<str>>,
    allowed_reason: Box<str>,
}

impl CompiledSubject {
    fn is_group(&self) -> bool {
        self.subject.kind == SubjectKind::Group
    }

    /// The user name (User, ServiceAccount) or group name (Group) this subject matches.
    fn key(&self) -> &str {
        self.service_account_user
            .as_deref()
            .unwrap_or(&self.subject.name)
    }

    /// Kubernetes' `appliesTo` for one subject.
    pub(crate) fn applies_to(&self, user: &UserInfo) -> bool {
        if self.is_group() {
            user.groups.iter().any(|g| same(g, &self.subject.name))
        } else {
            same(&user.name, self.key())
        }
    }
}

/// A RoleBinding (`namespace` set) or ClusterRoleBinding (`namespace` empty), compiled.
#[derive(Debug)]
pub(crate) struct CompiledBinding {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) role_ref: RoleRef,
    /// The subjects that can match someone (a ServiceAccount without any namespace cannot).
    pub(crate) subjects: Vec<CompiledSubject>,
    /// The role's slot in the [`RoleTable`], set when the binding goes into the state.
    role_slot: u32,
}

impl CompiledBinding {
    pub(crate) fn kind(&self) -> RbacKind {
        binding_kind(&self.namespace)
    }

    /// The first subject that applies to `user`: the one Kubernetes names in its reason.
    pub(crate) fn first_subject_for(&self, user: &UserInfo) -> Option<&CompiledSubject> {
        self.subjects.iter().find(|s| s.applies_to(user))
    }

    /// `clusterrole.rbac.authorization.k8s.io "x" not found`, as Kubernetes' listers say it.
    /// Made when needed: a missing role is the rare case, and not keeping the text saves
    /// memory on every binding.
    pub(crate) fn role_not_found(&self) -> String {
        let resource = match self.role_ref.kind {
            RoleRefKind::Role => "role",
            RoleRefKind::ClusterRole => "clusterrole",
        };
        format!(
            "{resource}.rbac.authorization.k8s.io {} not found",
            go_quote(&self.role_ref.name)
        )
    }
}

/// An object ready to go into the state; made outside the lock.
#[derive(Debug)]
pub(crate) enum Compiled {
    /// A Role, or a ClusterRole when `namespace` is empty.
    Role {
        namespace: String,
        name: String,
        role: CompiledRole,
    },
    Binding(CompiledBinding),
}

impl Compiled {
    pub(crate) fn new(object: &RbacObject) -> Self {
        match object {
            RbacObject::Role(r) | RbacObject::ClusterRole(r) => Self::role(r),
            RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => {
                Self::Binding(compile_binding(b))
            }
        }
    }

    fn role(r: &Role) -> Self {
        Self::Role {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            role: CompiledRole {
                rules: r.rules.iter().map(CompiledRule::compile).collect(),
            },
        }
    }
}

/// `ClusterRoleBinding "x"` or `RoleBinding "x/ns"`, as Kubernetes' describers print a binding.
pub(crate) fn describe_binding(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("ClusterRoleBinding {}", go_quote(name))
    } else {
        format!("RoleBinding {}", go_quote(&format!("{name}/{namespace}")))
    }
}

/// `User "alice"`, `Group "dev"`, `ServiceAccount "sa/ns"`, as Kubernetes' describers print a
/// subject.
pub(crate) fn describe_subject(subject: &Subject) -> String {
    let shown = if subject.kind == SubjectKind::ServiceAccount {
        format!("{}/{}", subject.name, subject.namespace)
    } else {
        subject.name.clone()
    };
    format!("{} {}", subject.kind.as_str(), go_quote(&shown))
}

fn compile_binding(b: &Binding) -> CompiledBinding {
    // `ClusterRoleBinding "x" of ClusterRole "y" to User "z"` and
    // `RoleBinding "x/ns" of Role "y" to ServiceAccount "sa/ns"`.
    let source = format!(
        "{} of {} {}",
        describe_binding(&b.namespace, &b.name),
        b.role_ref.kind.as_str(),
        go_quote(&b.role_ref.name)
    );
    let subjects = b
        .subjects
        .iter()
        .filter_map(|s| {
            let mut subject = s.clone();
            let mut service_account_user = None;
            if s.kind == SubjectKind::ServiceAccount {
                // An unqualified ServiceAccount means one in the binding's namespace.
                if subject.namespace.is_empty() {
                    subject.namespace = b.namespace.clone();
                }
                if subject.namespace.is_empty() {
                    return None; // can match no one
                }
                service_account_user = Some(
                    format!(
                        "{SERVICE_ACCOUNT_USER_PREFIX}{}:{}",
                        subject.namespace, subject.name
                    )
                    .into_boxed_str(),
                );
            }
            let allowed_reason = format!(
                "RBAC: allowed by {source} to {}",
                describe_subject(&subject)
            );
            Some(CompiledSubject {
                subject,
                service_account_user,
                allowed_reason: allowed_reason.into_boxed_str(),
            })
        })
        .collect();
    CompiledBinding {
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        role_ref: b.role_ref.clone(),
        subjects,
        role_slot: u32::MAX,
    }
}

/// Bindings of one scope (cluster-wide, or one namespace), sorted by name: a stable visiting
/// order, and a few words of memory where most subjects have one or two bindings.
#[derive(Debug, Default)]
struct BindingList(Vec<Arc<CompiledBinding>>);

impl BindingList {
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|b| b.name.as_str().cmp(name))
    }

    fn insert(&mut self, binding: Arc<CompiledBinding>) {
        match self.position(&binding.name) {
            Ok(at) => self.0[at] = binding,
            Err(at) => self.0.insert(at, binding),
        }
    }

    fn remove(&mut self, name: &str) {
        if let Ok(at) = self.position(name) {
            self.0.remove(at);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &CompiledBinding> {
        self.0.iter().map(|b| &**b)
    }
}

/// The bindings that name one user or one group.
#[derive(Debug, Default)]
struct Bucket {
    cluster: BindingList,
    namespaced: FastMap<String, BindingList>,
}

impl Bucket {
    fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.namespaced.is_empty()
    }
}

/// The buckets of one user and its groups, kept on the stack for the usual handful.
struct SubjectBuckets<'s> {
    inline: [Option<&'s Bucket>; 8],
    len: usize,
    spilled: Vec<&'s Bucket>,
}

impl<'s> SubjectBuckets<'s> {
    fn push(&mut self, bucket: &'s Bucket) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(bucket);
                self.len += 1;
            }
            None => self.spilled.push(bucket),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'s Bucket> + '_ {
        self.inline
            .iter()
            .take(self.len)
            .flatten()
            .copied()
            .chain(self.spilled.iter().copied())
    }
}

/// All RBAC objects the authorizer knows, and the subject index.
#[derive(Debug, Default)]
pub(crate) struct State {
    roles: RoleTable,
    cluster_bindings: FastMap<String, Arc<CompiledBinding>>,
    role_bindings: FastMap<String, FastMap<String, Arc<CompiledBinding>>>,
    by_user: FastMap<String, Bucket>,
    by_group: FastMap<String, Bucket>,
}

impl State {
    /// The role `name` in `namespace` (empty for a ClusterRole).
    pub(crate) fn role(&self, namespace: &str, name: &str) -> Option<&CompiledRole> {
        self.roles.find(namespace, name)
    }

    /// Adds or replaces one object.
    pub(crate) fn insert(&mut self, compiled: Compiled) {
        match compiled {
            Compiled::Role {
                namespace,
                name,
                role,
            } => self.roles.set(namespace, name, role),
            Compiled::Binding(mut binding) => {
                let ns = binding.namespace.clone();
                self.remove(binding_kind(&ns), &ns, &binding.name);
                // A Role is looked for in the binding's namespace, a ClusterRole cluster-wide.
                let role_namespace = match binding.role_ref.kind {
                    RoleRefKind::Role => ns.as_str(),
                    RoleRefKind::ClusterRole => "",
                };
                binding.role_slot = self.roles.acquire(role_namespace, &binding.role_ref.name);
                let binding = Arc::new(binding);
                let primary = if ns.is_empty() {
                    &mut self.cluster_bindings
                } else {
                    self.role_bindings.entry(ns.clone()).or_default()
                };
                primary.insert(binding.name.clone(), binding.clone());
                for s in &binding.subjects {
                    let index = if s.is_group() {
                        &mut self.by_group
                    } else {
                        &mut self.by_user
                    };
                    let bucket = index.entry(s.key().to_owned()).or_default();
                    let slot = if ns.is_empty() {
                        &mut bucket.cluster
                    } else {
                        bucket.namespaced.entry(ns.clone()).or_default()
                    };
                    slot.insert(binding.clone());
                }
            }
        }
    }

    /// Removes one object; absent objects are ignored.
    pub(crate) fn remove(&mut self, kind: RbacKind, namespace: &str, name: &str) {
        match kind {
            RbacKind::ClusterRole => self.roles.remove("", name),
            RbacKind::Role => self.roles.remove(namespace, name),
            RbacKind::ClusterRoleBinding => {
                if let Some(old) = self.cluster_bindings.remove(name) {
                    self.unindex(&old);
                }
            }
            RbacKind::RoleBinding => {
                if let Some(old) = remove_nested(&mut self.role_bindings, namespace, name) {
                    self.unindex(&old);
                }
            }
        }
    }

    /// Removes every object of `kind`.
    pub(crate) fn clear(&mut self, kind: RbacKind) {
        match kind {
            RbacKind::ClusterRole => self.roles.clear(true),
            RbacKind::Role => self.roles.clear(false),
            RbacKind::ClusterRoleBinding => {
                for binding in self.cluster_bindings.values() {
                    self.roles.release(binding.role_slot);
                }
                self.cluster_bindings.clear();
                for index in [&mut self.by_user, &mut self.by_group] {
                    index.retain(|_, bucket| {
                        bucket.cluster.0.clear();
                        !bucket.is_empty()
                    });
                }
            }
            RbacKind::RoleBinding => {
                for binding in self.role_bindings.values().flat_map(|m| m.values()) {
                    self.roles.release(binding.role_slot);
                }
                self.role_bindings.clear();
                for index in [&mut self.by_user, &mut self.by_group] {
                    index.retain(|_, bucket| {
                        bucket.namespaced.clear();
                        !bucket.is_empty()
                    });
                }
            }
        }
    }

    pub(crate) fn count(&self, kind: RbacKind) -> usize {
        match kind {
            RbacKind::ClusterRole => self.roles.count(true),
            RbacKind::Role => self.roles.count(false),
            RbacKind::ClusterRoleBinding => self.cluster_bindings.len(),
            RbacKind::RoleBinding => self.role_bindings.values().map(HashMap::len).sum(),
        }
    }

    fn unindex(&mut self, old: &CompiledBinding) {
        self.roles.release(old.role_slot);
        for s in &old.subjects {
            let index = if s.is_group() {
                &mut self.by_group
            } else {
                &mut self.by_user
            };
            let Some(bucket) = index.get_mut(s.key()) else {
                continue;
            };
            if old.namespace.is_empty() {
                bucket.cluster.remove(&old.name);
            } else if let Some(m) = bucket.namespaced.get_mut(&old.namespace) {
                m.remove(&old.name);
                if m.is_empty() {
                    bucket.namespaced.remove(&old.namespace);
                }
            }
            if bucket.is_empty() {
                index.remove(s.key());
            }
        }
    }

    /// The role a binding refers to, if it exists: a Role in the binding's namespace or a
    /// ClusterRole.
    pub(crate) fn role_of(&self, binding: &CompiledBinding) -> Option<&CompiledRole> {
        self.roles.get(binding.role_slot)
    }

    /// Role slots in use, for tests that check nothing leaks.
    #[cfg(test)]
    pub(crate) fn role_slots_in_use(&self) -> usize {
        self.roles.slots_in_use()
    }

    /// Visits, as Kubernetes' `VisitRulesFor` does, the ClusterRoleBindings that name `user` (by
    /// name, ServiceAccount or group) and then, if `namespace` is not empty, its RoleBindings
    /// there, until `visit` breaks. Found through the index, so bindings of other subjects cost
    /// nothing; a binding naming the user several ways is visited once per way.
    pub(crate) fn visit_bindings_for<'s, B>(
        &'s self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&'s CompiledBinding) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        let mut buckets = SubjectBuckets {
            inline: [None; 8],
            len: 0,
            spilled: Vec::new(),
        };
        if let Some(b) = self.by_user.get(user.name.as_str()) {
            buckets.push(b);
        }
        for group in &user.groups {
            if let Some(b) = self.by_group.get(group.as_str()) {
                buckets.push(b);
            }
        }
        for bucket in buckets.iter() {
            for binding in bucket.cluster.iter() {
                visit(binding)?;
            }
        }
        if !namespace.is_empty() {
            for bucket in buckets.iter() {
                if let Some(bindings) = bucket.namespaced.get(namespace) {
                    for binding in bindings.iter() {
                        visit(binding)?;
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Every ClusterRoleBinding and, if `namespace` is not empty, every RoleBinding there: a
    /// scan, for the offline queries that ask about all subjects.
    pub(crate) fn bindings_in_scope<'s>(
        &'s self,
        namespace: &str,
    ) -> impl Iterator<Item = &'s CompiledBinding> + 's {
        let namespaced = if namespace.is_empty() {
            None
        } else {
            self.role_bindings.get(namespace)
        };
        self.cluster_bindings
            .values()
            .chain(namespaced.into_iter().flat_map(|m| m.values()))
            .map(|b| &**b)
    }

    /// The decision for a request, as Kubernetes' RBAC authorizer makes it: ClusterRoleBindings
    /// that name the user first, then RoleBindings in the request's namespace; the first rule
    /// that allows wins. Otherwise NoOpinion, whose reason lists the missing roles of bindings
    /// that named the user (empty when there were none): RBAC never denies.
    pub(crate) fn decide(&self, a: &Attributes) -> Decision {
        let request = Request::new(a);
        let mut missing: Vec<&CompiledBinding> = Vec::new();
        let flow = self.visit_bindings_for(&a.user, scope_namespace(a), |binding| {
            let Some(role) = self.role_of(binding) else {
                missing.push(binding);
                return ControlFlow::Continue(());
            };
            if !role.rules.iter().any(|r| r.allows_request(&request)) {
                return ControlFlow::Continue(());
            }
            match binding.first_subject_for(&a.user) {
                Some(s) => ControlFlow::Break(&*s.allowed_reason),
                None => ControlFlow::Continue(()),
            }
        });
        match flow {
            ControlFlow::Break(reason) => Decision::allow(reason),
            ControlFlow::Continue(()) if missing.is_empty() => Decision::no_opinion(""),
            ControlFlow::Continue(()) => {
                let errors: Vec<String> = missing.iter().map(|b| b.role_not_found()).collect();
                Decision::no_opinion(format!("RBAC: {}", aggregate_errors(&errors)))
            }
        }
    }
}

/// The namespace whose RoleBindings may grant the request. RoleBindings never grant
/// non-resource URLs: Kubernetes visits them only for a request's namespace, and a non-resource
/// request has none; checked here so that a caller's stray namespace cannot change that.
pub(crate) fn scope_namespace(a: &Attributes) -> &str {
    if a.resource_request {
        &a.namespace
    } else {
        ""
    }
}

fn binding_kind(namespace: &str) -> RbacKind {
    if namespace.is_empty() {
        RbacKind::ClusterRoleBinding
    } else {
        RbacKind::RoleBinding
    }
}

fn remove_nested<V>(
    map: &mut FastMap<String, FastMap<String, V>>,
    namespace: &str,
    name: &str,
) -> Option<V> {
    let inner = map.get_mut(namespace)?;
    let old = inner.remove(name);
    if inner.is_empty() {
        map.remove(namespace);
    }
    old
}
