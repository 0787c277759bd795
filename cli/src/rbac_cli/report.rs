//! What `kgate rbac` prints: the `who-can` table and the `explain` report with its verdict.
//! Pure formatting of [`kgate_authz`] answers, so it is tested without I/O.

use kgate_authz::objects::SubjectKind;
use kgate_authz::{Explanation, Grant};
use kgate_core::user::SYSTEM_PRIVILEGED_GROUP;
use kgate_core::{Decision, Status};
use std::fmt::Write as _;

const HEADERS: [&str; 5] = ["SUBJECT KIND", "SUBJECT", "NAMESPACE", "BINDING", "ROLE"];

/// The `who-can` answer: a line naming the request, the table (or a line saying no subject is
/// allowed) and a note on `system:masters`, which RBAC does not list.
pub fn who_can(request: &str, grants: &[Grant]) -> String {
    let mut out = format!("who can {request}:\n");
    if grants.is_empty() {
        out.push_str("no subject: no RBAC binding allows it\n");
    } else {
        let rows: Vec<[String; 5]> = grants
            .iter()
            .map(|g| {
                let namespace = if g.subject.kind == SubjectKind::ServiceAccount {
                    g.subject.namespace.clone()
                } else {
                    String::new()
                };
                [
                    g.subject.kind.as_str().to_owned(),
                    g.subject.name.clone(),
                    namespace,
                    g.binding.to_string(),
                    format!("{} {:?}", g.role.kind.as_str(), g.role.name),
                ]
            })
            .collect();
        let mut widths = HEADERS.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        write_row(&mut out, &HEADERS.map(str::to_owned), &widths);
        for row in &rows {
            write_row(&mut out, row, &widths);
        }
    }
    let _ = writeln!(
        out,
        "\nAlso allowed: members of group {SYSTEM_PRIVILEGED_GROUP:?}, who may do anything \
         whatever RBAC says (kube-apiserver's privileged group)."
    );
    out
}

/// Cells padded to `widths`, three spaces apart, no trailing spaces.
fn write_row(out: &mut String, cells: &[String; 5], widths: &[usize; 5]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            let _ = write!(line, "{cell:<width$}   ");
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The `explain` verdict: allowed by the privileged group, allowed by RBAC, or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A deny line of the policy file refuses it, for this reason.
    PolicyDenied { reason: String },
    /// The user is in `system:masters`: allowed before RBAC is asked.
    Privileged,
    /// RBAC allows it, for this reason.
    Allowed { reason: String },
    /// Nothing allows it: kube-apiserver's 403 message.
    Denied { message: String },
}

impl Verdict {
    /// The verdict of kube-apiserver's chain of system:masters then RBAC.
    pub fn of(explanation: &Explanation, privileged: bool) -> Self {
        if privileged {
            return Self::Privileged;
        }
        match &explanation.decision {
            Decision::Allow { reason } => Self::Allowed {
                reason: reason.clone(),
            },
            other => Self::Denied {
                message: Status::forbidden(&explanation.attributes, other.reason()).message,
            },
        }
    }

    /// The verdict with a policy file's two layers around it, in the gateway's order: its deny
    /// lines first (kgate's front door lets them refuse even system:masters), its allow lines
    /// for what nothing else allowed.
    pub fn with_policy(self, deny: &Decision, allow: &Decision) -> Self {
        if let Decision::Deny { reason } = deny {
            return Self::PolicyDenied {
                reason: reason.clone(),
            };
        }
        match (self, allow) {
            (Self::Denied { .. }, Decision::Allow { reason }) => Self::Allowed {
                reason: reason.clone(),
            },
            (verdict, _) => verdict,
        }
    }

    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied { .. } | Self::PolicyDenied { .. })
    }
}

/// The `explain` report: RBAC's explanation (the request, its decision and every binding and
/// rule that took part), then the verdict of the whole chain.
pub fn explain(explanation: &Explanation, verdict: &Verdict) -> String {
    let mut out = explanation.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let user = &explanation.attributes.user.name;
    let _ = match verdict {
        Verdict::Privileged => writeln!(
            out,
            "result:   allowed: User {user:?} is in group {SYSTEM_PRIVILEGED_GROUP:?}, which may \
             do anything; kube-apiserver allows it before asking RBAC"
        ),
        Verdict::Allowed { reason } => writeln!(out, "result:   allowed: {reason}"),
        Verdict::Denied { message } => writeln!(out, "result:   denied: {message}"),
        Verdict::PolicyDenied { reason } => writeln!(out, "result:   denied: {reason}"),
    };
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_deny_line_wins_and_an_allow_line_allows_what_rbac_refused() {
        let denied = || Verdict::Denied {
            message: "no".into(),
        };
        let deny = Decision::deny("policy: denied by line 4");
        let allow = Decision::allow("policy: allowed by line 5");
        let none = Decision::no_opinion("");
        assert_eq!(
            Verdict::Privileged.with_policy(&deny, &none),
            Verdict::PolicyDenied {
                reason: "policy: denied by line 4".into()
            }
        );
        assert!(!Verdict::Privileged.with_policy(&deny, &none).is_allowed());
        assert_eq!(
            denied().with_policy(&none, &allow),
            Verdict::Allowed {
                reason: "policy: allowed by line 5".into()
            }
        );
        assert_eq!(denied().with_policy(&none, &none), denied());
        assert_eq!(
            Verdict::Privileged.with_policy(&none, &allow),
            Verdict::Privileged
        );
    }
    use kgate_authz::RbacAuthorizer;
    use kgate_core::{Attributes, UserInfo};
    use serde_json::json;

    fn policy() -> RbacAuthorizer {
        let authorizer = RbacAuthorizer::new();
        for object in [
            json!({"kind": "ClusterRole", "metadata": {"name": "view"},
                   "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": [""],
                              "resources": ["pods"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "alice-view", "namespace": "team"},
                   "roleRef": {"kind": "ClusterRole", "name": "view",
                               "apiGroup": "rbac.authorization.k8s.io"},
                   "subjects": [{"kind": "User", "name": "alice"},
                                {"kind": "ServiceAccount", "name": "ci"}]}),
        ] {
            authorizer.upsert(&object).unwrap();
        }
        authorizer
    }

    #[test]
    fn who_can_prints_a_table_and_the_privileged_note() {
        let request = Attributes::resource(UserInfo::new(""), "list", "", "pods", "team");
        let grants = policy().who_can(&request);
        let text = who_can(
            r#"list resource "pods" in API group "" in the namespace "team""#,
            &grants,
        );
        let want = r#"who can list resource "pods" in API group "" in the namespace "team":
SUBJECT KIND     SUBJECT   NAMESPACE   BINDING                         ROLE
User             alice                 RoleBinding "alice-view/team"   ClusterRole "view"
ServiceAccount   ci        team        RoleBinding "alice-view/team"   ClusterRole "view"

Also allowed: members of group "system:masters", who may do anything whatever RBAC says (kube-apiserver's privileged group).
"#;
        assert_eq!(text, want);
        let none = who_can("x", &[]);
        assert!(none.contains("no subject"), "{none}");
        assert!(none.contains("system:masters"), "{none}");
    }

    #[test]
    fn explain_reports_the_verdict() {
        let authorizer = policy();
        let alice = UserInfo::new("alice").with_groups(["dev", "system:authenticated"]);
        let allowed = authorizer.explain(&Attributes::resource(
            alice.clone(),
            "list",
            "",
            "pods",
            "team",
        ));
        let verdict = Verdict::of(&allowed, false);
        assert!(verdict.is_allowed());
        let text = explain(&allowed, &verdict);
        assert!(
            text.ends_with(
                "result:   allowed: RBAC: allowed by RoleBinding \"alice-view/team\" of ClusterRole \"view\" to User \"alice\"\n"
            ),
            "{text}"
        );
        assert!(text.contains("match"), "{text}");

        let denied = authorizer.explain(&Attributes::resource(alice, "delete", "", "pods", "team"));
        let verdict = Verdict::of(&denied, false);
        assert!(!verdict.is_allowed());
        let text = explain(&denied, &verdict);
        assert!(
            text.ends_with(
                "result:   denied: pods is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\"\n"
            ),
            "{text}"
        );

        let admin = UserInfo::new("admin").with_groups(["system:masters"]);
        let anything = authorizer.explain(&Attributes::resource(admin, "delete", "", "nodes", ""));
        let verdict = Verdict::of(&anything, true);
        assert!(verdict.is_allowed());
        assert!(explain(&anything, &verdict).contains("is in group \"system:masters\""));
    }
}
