//! The kinds this control plane serves: one row per resource, read by discovery, OpenAPI, the
//! REST handlers and Table printing, so that they never disagree about what exists.

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural, as in URLs.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`.
    pub subresources: &'static [&'static str],
    /// The `Warning` kube adds to every request to this resource, if the version served is
    /// deprecated.
    pub deprecation: Option<&'static str>,
    /// The version kube-apiserver stores this resource at, where it is not the served one: kube
    /// 1.34 keeps storing what it made GA at the previous version, so that a downgrade can read
    /// it. Only discovery's `storageVersionHash` (opaque to clients, compared by storage
    /// migrators) says it; kgate stores the served version.
    pub storage_version: Option<&'static str>,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key prefix of this resource, as kube-apiserver lays out etcd
    /// (`/registry/pods/`, `/registry/deployments.apps/` is not used: kube uses the plural alone
    /// for core and most groups; we always qualify non-core groups to stay collision free).
    pub fn key_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/registry/{}/", self.plural)
        } else {
            format!("/registry/{}.{}/", self.plural, self.group)
        }
    }

    /// A review API (SubjectAccessReview, SelfSubjectReview, ...): answered by the gateway, which
    /// holds the authenticator and the authorizer; never stored.
    pub fn is_review(&self) -> bool {
        matches!(self.group, AUTHORIZATION | AUTHENTICATION)
    }

    /// What routing needs: the scope, and whether a collection path across namespaces exists.
    pub fn known(&self) -> kgate_core::scope::KnownResource {
        kgate_core::scope::KnownResource {
            namespaced: self.namespaced,
            listable: self.verbs.contains(&"list"),
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

/// The usual verbs of a resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces cannot be deleted as a collection.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

// A positional constructor keeps the table below one row per resource, readable as a table.
#[allow(clippy::too_many_arguments)]
const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        verbs,
        subresources,
        deprecation: None,
        storage_version: None,
    }
}

impl ResourceDef {
    /// This resource with kube's deprecation warning.
    const fn deprecated(self, warning: &'static str) -> ResourceDef {
        ResourceDef {
            deprecation: Some(warning),
            ..self
        }
    }

    /// This resource, stored by kube at `version`.
    const fn stored_as(self, version: &'static str) -> ResourceDef {
        ResourceDef {
            storage_version: Some(version),
            ..self
        }
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";
const STORAGE: &str = "storage.k8s.io";
/// Admission configuration: stored and served (the admission chain that reads it is not built yet).
const ADMISSION: &str = "admissionregistration.k8s.io";
/// Dynamic resource allocation: GA (`v1`) in Kubernetes 1.34, served as 1.34 serves it, because
/// kube-scheduler 1.34's default profile lists these.
const RESOURCE: &str = "resource.k8s.io";
/// Reviews are questions, not objects: they can only be created, and nothing is stored.
const REVIEW_VERBS: &[&str] = &["create"];

/// Every resource served, in discovery order.
#[rustfmt::skip]
pub static RESOURCES: &[ResourceDef] = &[
    def("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], &[], NAMESPACE_VERBS, &["status", "finalize"]),
    def("", "v1", "Node", "nodes", "node", false, &["no"], &[], ALL_VERBS, &["status"]),
    def("", "v1", "Pod", "pods", "pod", true, &["po"], &["all"], ALL_VERBS, &["status", "binding"]),
    def("", "v1", "Service", "services", "service", true, &["svc"], &["all"], ALL_VERBS, &["status"]),
    def("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], &[], ALL_VERBS, &[])
        .deprecated("299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\""),
    def("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], &[], ALL_VERBS, &[]),
    def("", "v1", "Secret", "secrets", "secret", true, &[], &[], ALL_VERBS, &[]),
    def("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], &[], ALL_VERBS, &["token"]),
    def("", "v1", "Event", "events", "event", true, &["ev"], &[], ALL_VERBS, &[]),
    def("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false, &["pv"], &[], ALL_VERBS, &["status"]),
    def("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true, &["pvc"], &[], ALL_VERBS, &["status"]),
    def("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true, &["rc"], &["all"], ALL_VERBS, &["status", "scale"]),
    def("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], &["all"], ALL_VERBS, &["status", "scale"]),
    def("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, &["ds"], &["all"], ALL_VERBS, &["status"]),
    def("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], &["all"], ALL_VERBS, &["status", "scale"]),
    def("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, &["sts"], &["all"], ALL_VERBS, &["status", "scale"]),
    def("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true, &["pdb"], &[], ALL_VERBS, &["status"]),
    def(RBAC, "v1", "Role", "roles", "role", true, &[], &[], ALL_VERBS, &[]),
    def(RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", false, &[], &[], ALL_VERBS, &[]),
    def(RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", true, &[], &[], ALL_VERBS, &[]),
    def(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false, &[], &[], ALL_VERBS, &[]),
    def("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, &[], &[], ALL_VERBS, &[]),
    def("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, &[], &[], ALL_VERBS, &[]),
    def(STORAGE, "v1", "CSIDriver", "csidrivers", "csidriver", false, &[], &[], ALL_VERBS, &[]),
    def(STORAGE, "v1", "CSINode", "csinodes", "csinode", false, &[], &[], ALL_VERBS, &[]),
    def(STORAGE, "v1", "CSIStorageCapacity", "csistoragecapacities", "csistoragecapacity", true, &[], &[], ALL_VERBS, &[]),
    def(STORAGE, "v1", "StorageClass", "storageclasses", "storageclass", false, &["sc"], &[], ALL_VERBS, &[]),
    def(STORAGE, "v1", "VolumeAttachment", "volumeattachments", "volumeattachment", false, &[], &[], ALL_VERBS, &["status"]),
    def(STORAGE, "v1", "VolumeAttributesClass", "volumeattributesclasses", "volumeattributesclass", false, &["vac"], &[], ALL_VERBS, &[]).stored_as("v1beta1"),
    def(RESOURCE, "v1", "DeviceClass", "deviceclasses", "deviceclass", false, &[], &[], ALL_VERBS, &[]).stored_as("v1beta2"),
    def(RESOURCE, "v1", "ResourceClaim", "resourceclaims", "resourceclaim", true, &[], &[], ALL_VERBS, &["status"]).stored_as("v1beta2"),
    def(RESOURCE, "v1", "ResourceClaimTemplate", "resourceclaimtemplates", "resourceclaimtemplate", true, &[], &[], ALL_VERBS, &[]).stored_as("v1beta2"),
    def(RESOURCE, "v1", "ResourceSlice", "resourceslices", "resourceslice", false, &[], &[], ALL_VERBS, &[]).stored_as("v1beta2"),
    def(ADMISSION, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", false, &[], &["api-extensions"], ALL_VERBS, &[]),
    def(ADMISSION, "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", "validatingadmissionpolicy", false, &[], &["api-extensions"], ALL_VERBS, &["status"]),
    def(ADMISSION, "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", "validatingadmissionpolicybinding", false, &[], &["api-extensions"], ALL_VERBS, &[]),
    def(ADMISSION, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", "validatingwebhookconfiguration", false, &[], &["api-extensions"], ALL_VERBS, &[]),
    def(AUTHENTICATION, "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false, &[], &[], REVIEW_VERBS, &[]),
    def(AUTHENTICATION, "v1", "TokenReview", "tokenreviews", "tokenreview", false, &[], &[], REVIEW_VERBS, &[]),
    def(AUTHORIZATION, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", "localsubjectaccessreview", true, &[], &[], REVIEW_VERBS, &[]),
    def(AUTHORIZATION, "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false, &[], &[], REVIEW_VERBS, &[]),
    def(AUTHORIZATION, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", false, &[], &[], REVIEW_VERBS, &[]),
    def(AUTHORIZATION, "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", false, &[], &[], REVIEW_VERBS, &[]),
];

/// The resource served at `group/version/plural`.
/// This table as the gateway's routing sees it: the resources the embedded API server serves,
/// the review APIs (answered by the gateway) included.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinResources;

impl kgate_core::scope::ResourceScopes for BuiltinResources {
    fn lookup(
        &self,
        group: &str,
        version: &str,
        resource: &str,
    ) -> Option<kgate_core::scope::KnownResource> {
        lookup(group, version, resource).map(ResourceDef::known)
    }
}

pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of a kind.
pub fn lookup_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The group versions served, core first, in discovery order.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_and_found() {
        for r in RESOURCES {
            assert_eq!(lookup(r.group, r.version, r.plural), Some(r));
            assert_eq!(lookup_kind(r.group, r.version, r.kind), Some(r));
        }
        assert_eq!(group_versions()[0], ("", "v1"));
    }
}
