//! Typed `rbac.authorization.k8s.io/v1` objects, parsed from the JSON the control plane stores.
//!
//! Parsing checks structure only (types, names, namespaces, roleRef and subject kinds): what the
//! authorizer needs to index an object. Rule content (empty verbs, a rule with both resources and
//! nonResourceURLs) is taken as stored and evaluated as Kubernetes' authorizer would; refusing it
//! is the API server's validation, not the authorizer's.

use crate::error::RbacError;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The four RBAC kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RbacKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl RbacKind {
    /// All four, in the order a fresh sync should load them (roles before their bindings).
    pub const ALL: [RbacKind; 4] = [
        RbacKind::ClusterRole,
        RbacKind::Role,
        RbacKind::ClusterRoleBinding,
        RbacKind::RoleBinding,
    ];

    /// The kind from its `kind` string; `None` for any other kind.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Role" => Some(Self::Role),
            "ClusterRole" => Some(Self::ClusterRole),
            "RoleBinding" => Some(Self::RoleBinding),
            "ClusterRoleBinding" => Some(Self::ClusterRoleBinding),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Role => "Role",
            Self::ClusterRole => "ClusterRole",
            Self::RoleBinding => "RoleBinding",
            Self::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    /// Role and RoleBinding live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(self, Self::Role | Self::RoleBinding)
    }
}

impl fmt::Display for RbacKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule of a Role or ClusterRole, as stored. An empty list matches nothing, except
/// `resource_names`, where empty means any name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    /// `resource` or `resource/subresource`; `*` and `*/subresource` are wildcards.
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    /// Paths; `*` is every path, a trailing `*` a prefix.
    pub non_resource_urls: Vec<String>,
}

/// Who a binding grants to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectKind {
    User,
    Group,
    ServiceAccount,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
            Self::ServiceAccount => "ServiceAccount",
        }
    }
}

/// A subject of a binding. `namespace` is meaningful for ServiceAccounts only; in a RoleBinding an
/// empty one means the binding's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectKind,
    pub name: String,
    pub namespace: String,
}

/// What a binding's roleRef may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoleRefKind {
    Role,
    ClusterRole,
}

impl RoleRefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Role => "Role",
            Self::ClusterRole => "ClusterRole",
        }
    }
}

/// The role a binding grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub kind: RoleRefKind,
    pub name: String,
}

/// A Role (namespaced) or ClusterRole (`namespace` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub namespace: String,
    pub rules: Vec<PolicyRule>,
}

/// A RoleBinding (namespaced) or ClusterRoleBinding (`namespace` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub name: String,
    pub namespace: String,
    pub subjects: Vec<Subject>,
    pub role_ref: RoleRef,
}

/// Any of the four RBAC objects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RbacObject {
    Role(Role),
    ClusterRole(Role),
    RoleBinding(Binding),
    ClusterRoleBinding(Binding),
}

impl RbacObject {
    /// Parses an object whose kind is read from its `kind` field.
    pub fn from_value(value: &Value) -> Result<Self, RbacError> {
        let kind_str = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(RbacError::MissingKind)?;
        let kind = RbacKind::from_kind(kind_str).ok_or_else(|| RbacError::UnsupportedKind {
            kind: kind_str.to_owned(),
        })?;
        Self::from_value_as(kind, value)
    }

    /// Parses an object known to be of `kind` (list items often omit `kind`); an object that
    /// names a different kind is refused.
    pub fn from_value_as(kind: RbacKind, value: &Value) -> Result<Self, RbacError> {
        if let Some(found) = value.get("kind").and_then(Value::as_str) {
            if found != kind.as_str() {
                return Err(RbacError::KindMismatch {
                    expected: kind,
                    found: found.to_owned(),
                });
            }
        }
        let mut wire = WireObject::deserialize(value)
            .map_err(|source| RbacError::Malformed { kind, source })?;
        let meta = wire.metadata.take().unwrap_or_default();
        let name = meta.name.unwrap_or_default();
        if name.is_empty() {
            return Err(RbacError::MissingName { kind });
        }
        let namespace = if kind.is_namespaced() {
            let ns = meta.namespace.unwrap_or_default();
            if ns.is_empty() {
                return Err(RbacError::MissingNamespace { kind, name });
            }
            ns
        } else {
            // A cluster-scoped object's stray namespace means nothing.
            String::new()
        };
        match kind {
            RbacKind::Role | RbacKind::ClusterRole => {
                let rules = wire
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(WireRule::into_rule)
                    .collect();
                let role = Role {
                    name,
                    namespace,
                    rules,
                };
                Ok(if kind == RbacKind::Role {
                    Self::Role(role)
                } else {
                    Self::ClusterRole(role)
                })
            }
            RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
                let binding = parse_binding(kind, name, namespace, wire)?;
                Ok(if kind == RbacKind::RoleBinding {
                    Self::RoleBinding(binding)
                } else {
                    Self::ClusterRoleBinding(binding)
                })
            }
        }
    }

    pub fn kind(&self) -> RbacKind {
        match self {
            Self::Role(_) => RbacKind::Role,
            Self::ClusterRole(_) => RbacKind::ClusterRole,
            Self::RoleBinding(_) => RbacKind::RoleBinding,
            Self::ClusterRoleBinding(_) => RbacKind::ClusterRoleBinding,
        }
    }
}

fn parse_binding(
    kind: RbacKind,
    name: String,
    namespace: String,
    wire: WireObject,
) -> Result<Binding, RbacError> {
    let role_ref = wire.role_ref.unwrap_or_default();
    let role_kind = role_ref.kind.unwrap_or_default();
    let role_name = role_ref.name.unwrap_or_default();
    let ref_kind = match role_kind.as_str() {
        "ClusterRole" => Some(RoleRefKind::ClusterRole),
        // A ClusterRoleBinding has no namespace to find a Role in.
        "Role" if kind == RbacKind::RoleBinding => Some(RoleRefKind::Role),
        _ => None,
    };
    let Some(ref_kind) = ref_kind.filter(|_| !role_name.is_empty()) else {
        return Err(RbacError::InvalidRoleRef {
            kind,
            name,
            role_kind,
            role_name,
        });
    };
    let mut subjects = Vec::new();
    for s in wire.subjects.unwrap_or_default() {
        let subject_kind = s.kind.unwrap_or_default();
        let subject_name = s.name.unwrap_or_default();
        let sk = match subject_kind.as_str() {
            "User" => Some(SubjectKind::User),
            "Group" => Some(SubjectKind::Group),
            "ServiceAccount" => Some(SubjectKind::ServiceAccount),
            _ => None,
        };
        let Some(sk) = sk.filter(|_| !subject_name.is_empty()) else {
            return Err(RbacError::InvalidSubject {
                kind,
                name,
                subject_kind,
                subject_name,
            });
        };
        let subject_namespace = s.namespace.unwrap_or_default();
        if sk == SubjectKind::ServiceAccount
            && subject_namespace.is_empty()
            && kind == RbacKind::ClusterRoleBinding
        {
            return Err(RbacError::ServiceAccountWithoutNamespace {
                kind,
                name,
                subject_name,
            });
        }
        subjects.push(Subject {
            kind: sk,
            name: subject_name,
            namespace: subject_namespace,
        });
    }
    Ok(Binding {
        name,
        namespace,
        subjects,
        role_ref: RoleRef {
            kind: ref_kind,
            name: role_name,
        },
    })
}

// The wire shapes: every field optional (and `null` accepted), unknown fields ignored, so that
// only a wrong type is a parse error and the checks above give the precise one.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireObject {
    metadata: Option<WireMeta>,
    rules: Option<Vec<WireRule>>,
    subjects: Option<Vec<WireSubject>>,
    role_ref: Option<WireRoleRef>,
}

#[derive(Deserialize, Default)]
struct WireMeta {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRule {
    verbs: Option<Vec<String>>,
    api_groups: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    resource_names: Option<Vec<String>>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Option<Vec<String>>,
}

impl WireRule {
    fn into_rule(self) -> PolicyRule {
        PolicyRule {
            verbs: self.verbs.unwrap_or_default(),
            api_groups: self.api_groups.unwrap_or_default(),
            resources: self.resources.unwrap_or_default(),
            resource_names: self.resource_names.unwrap_or_default(),
            non_resource_urls: self.non_resource_urls.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct WireSubject {
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireRoleRef {
    kind: Option<String>,
    name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_role_binding_with_every_subject_kind() {
        let obj = RbacObject::from_value(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "Group", "name": "dev"},
                {"kind": "ServiceAccount", "name": "ci"}
            ]
        }))
        .unwrap();
        let RbacObject::RoleBinding(b) = obj else {
            panic!("not a RoleBinding")
        };
        assert_eq!(b.namespace, "team");
        assert_eq!(b.role_ref.kind, RoleRefKind::ClusterRole);
        assert_eq!(b.subjects.len(), 3);
        assert_eq!(b.subjects[2].kind, SubjectKind::ServiceAccount);
        assert_eq!(b.subjects[2].namespace, "");
    }

    #[test]
    fn parses_rules_with_nulls_and_unknown_fields() {
        let obj = RbacObject::from_value(&json!({
            "kind": "ClusterRole", "metadata": {"name": "r", "uid": "x"},
            "aggregationRule": {"clusterRoleSelectors": []},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": null},
                      {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
        }))
        .unwrap();
        let RbacObject::ClusterRole(r) = obj else {
            panic!("not a ClusterRole")
        };
        assert_eq!(r.rules[0].resources, ["pods"]);
        assert!(r.rules[0].resource_names.is_empty());
        assert_eq!(r.rules[1].non_resource_urls, ["/healthz"]);
        // A role without rules (an aggregated one before aggregation) is valid.
        assert!(RbacObject::from_value(
            &json!({"kind": "ClusterRole", "metadata": {"name": "a"}, "rules": null})
        )
        .is_ok());
    }

    #[test]
    fn bad_objects_give_typed_errors() {
        let cases = [
            (json!({"metadata": {"name": "x"}}), "MissingKind"),
            (
                json!({"kind": "Pod", "metadata": {"name": "x"}}),
                "UnsupportedKind",
            ),
            (
                json!({"kind": "ClusterRole", "metadata": {}}),
                "MissingName",
            ),
            (
                json!({"kind": "Role", "metadata": {"name": "x"}}),
                "MissingNamespace",
            ),
            (
                json!({"kind": "ClusterRole", "metadata": {"name": "x"}, "rules": [{"verbs": "get"}]}),
                "Malformed",
            ),
            (json!({"kind": "ClusterRole", "metadata": "x"}), "Malformed"),
            (
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                       "roleRef": {"kind": "Role", "name": "r"}}),
                "InvalidRoleRef",
            ),
            (
                json!({"kind": "RoleBinding", "metadata": {"name": "x", "namespace": "n"},
                       "roleRef": {"kind": "ClusterRole", "name": ""}}),
                "InvalidRoleRef",
            ),
            (
                json!({"kind": "RoleBinding", "metadata": {"name": "x", "namespace": "n"}}),
                "InvalidRoleRef",
            ),
            (
                json!({"kind": "RoleBinding", "metadata": {"name": "x", "namespace": "n"},
                       "roleRef": {"kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "Robot", "name": "r2"}]}),
                "InvalidSubject",
            ),
            (
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                       "roleRef": {"kind": "ClusterRole", "name": "view"},
                       "subjects": [{"kind": "ServiceAccount", "name": "ci"}]}),
                "ServiceAccountWithoutNamespace",
            ),
        ];
        for (value, want) in cases {
            let err = RbacObject::from_value(&value).unwrap_err();
            let got = format!("{err:?}");
            assert!(got.starts_with(want), "{value}: got {got}, want {want}");
        }
    }

    #[test]
    fn from_value_as_checks_a_present_kind() {
        let v = json!({"kind": "Role", "metadata": {"name": "x", "namespace": "n"}});
        assert!(matches!(
            RbacObject::from_value_as(RbacKind::ClusterRole, &v),
            Err(RbacError::KindMismatch { .. })
        ));
        let untyped = json!({"metadata": {"name": "x", "namespace": "n"}});
        assert_eq!(
            RbacObject::from_value_as(RbacKind::Role, &untyped)
                .unwrap()
                .kind(),
            RbacKind::Role
        );
    }
}
