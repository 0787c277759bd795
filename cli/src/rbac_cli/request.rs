//! The request a `kgate rbac` question is about: VERB and RESOURCE read as `kubectl auth can-i`
//! reads them (`pods`, `pods/log`, `deployments.apps/scale`, `/healthz`), and the user
//! `explain` asks for, with the groups kube-apiserver would add. No discovery is done: RESOURCE
//! is the plural resource name as RBAC rules write it, so short names (`po`) match nothing.

use super::RbacCliError;
use crate::args::RbacRequestArgs;
use kgate_core::user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS};
use kgate_core::{Attributes, UserInfo};

/// A ServiceAccount's user name: `system:serviceaccount:<namespace>:<name>`.
const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// The request, checked; turned into [`Attributes`] once the user is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestSpec {
    /// A request for an API resource.
    Resource {
        verb: String,
        api_group: String,
        resource: String,
        subresource: String,
        /// Empty: the cluster scope.
        namespace: String,
        name: String,
    },
    /// A request for a non-resource URL such as `/healthz`.
    NonResource { verb: String, path: String },
}

fn invalid(what: &'static str, reason: impl Into<String>) -> RbacCliError {
    RbacCliError::Argument {
        what,
        reason: reason.into(),
    }
}

/// A word without spaces: verbs, resources, groups, names and namespaces all are.
fn check_word(what: &'static str, value: &str) -> Result<(), RbacCliError> {
    if value.is_empty() {
        return Err(invalid(what, "must not be empty"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(invalid(what, format!("{value:?} must not contain spaces")));
    }
    Ok(())
}

impl RbacRequestArgs {
    /// Reads VERB, RESOURCE, NAME and the flags into a [`RequestSpec`].
    pub fn validate(&self) -> Result<RequestSpec, RbacCliError> {
        check_word("VERB", &self.verb)?;
        let name = self
            .name
            .clone()
            .or_else(|| self.object_name.clone())
            .unwrap_or_default();
        if self.resource.starts_with('/') {
            // A non-resource URL has no namespace, name or subresource; refusing them rather
            // than ignoring them keeps a mistyped question from being answered for another.
            for (flag, given) in [
                ("--namespace", self.namespace.is_some()),
                ("NAME", !name.is_empty()),
                ("--subresource", self.subresource.is_some()),
            ] {
                if given {
                    return Err(invalid(flag, "does not apply to a non-resource URL"));
                }
            }
            check_word("RESOURCE", &self.resource)?;
            return Ok(RequestSpec::NonResource {
                verb: self.verb.clone(),
                path: self.resource.clone(),
            });
        }
        let (resource, subresource) = parse_resource(&self.resource)?;
        let (resource, api_group) = match resource.split_once('.') {
            Some((resource, group)) => {
                check_word("RESOURCE", group).map_err(|_| {
                    invalid(
                        "RESOURCE",
                        format!("{:?} has an empty group", self.resource),
                    )
                })?;
                (resource, group)
            }
            None => (resource, ""),
        };
        check_word("RESOURCE", resource)?;
        let subresource = match (subresource, self.subresource.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(invalid(
                    "--subresource",
                    format!("{b:?} differs from the one in RESOURCE ({a:?})"),
                ))
            }
            (Some(s), _) | (None, Some(s)) => {
                check_word("--subresource", s)?;
                s
            }
            (None, None) => "",
        };
        if !name.is_empty() {
            check_word("NAME", &name)?;
        }
        let namespace = self.namespace.clone().unwrap_or_default();
        if self.namespace.is_some() {
            check_word("--namespace", &namespace)?;
        }
        Ok(RequestSpec::Resource {
            verb: self.verb.clone(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            namespace,
            name,
        })
    }
}

/// `resource[.group]` and the subresource after a `/`, if any.
fn parse_resource(text: &str) -> Result<(&str, Option<&str>), RbacCliError> {
    match text.split_once('/') {
        None => Ok((text, None)),
        Some((_, sub)) if sub.contains('/') => Err(invalid(
            "RESOURCE",
            format!("{text:?}: expected resource[.group][/subresource]"),
        )),
        Some((resource, sub)) => {
            check_word("RESOURCE", sub)
                .map_err(|_| invalid("RESOURCE", format!("{text:?} has an empty subresource")))?;
            Ok((resource, Some(sub)))
        }
    }
}

impl RequestSpec {
    /// The attributes of this request made by `user`.
    pub fn attributes(&self, user: UserInfo) -> Attributes {
        match self {
            Self::Resource {
                verb,
                api_group,
                resource,
                subresource,
                namespace,
                name,
            } => {
                let mut a = Attributes::resource(user, verb, api_group, resource, namespace);
                a.subresource = subresource.clone();
                a.name = name.clone();
                a
            }
            Self::NonResource { verb, path } => Attributes::non_resource(user, verb, path),
        }
    }

    /// `list resource "pods" in API group "" in the namespace "team"` or `get path "/healthz"`,
    /// in kube-apiserver's words.
    pub fn describe(&self) -> String {
        match self {
            Self::NonResource { verb, path } => format!("{verb} path {path:?}"),
            Self::Resource {
                verb,
                api_group,
                resource,
                subresource,
                namespace,
                name,
            } => {
                let resource = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                let mut text = format!("{verb} resource {resource:?} in API group {api_group:?}");
                if namespace.is_empty() {
                    text.push_str(" at the cluster scope");
                } else {
                    text.push_str(&format!(" in the namespace {namespace:?}"));
                }
                if !name.is_empty() {
                    text.push_str(&format!(", name {name:?}"));
                }
                text
            }
        }
    }
}

/// The user `explain` asks about: `name` with `groups`, plus, unless `implicit_groups` is off,
/// the groups kube-apiserver's impersonation adds (what an authenticator would have given):
/// `system:authenticated` for everyone but `system:anonymous` (who gets
/// `system:unauthenticated`), and for a ServiceAccount named without groups,
/// `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
pub fn user_info(
    name: &str,
    groups: &[String],
    implicit_groups: bool,
) -> Result<UserInfo, RbacCliError> {
    // User names may contain spaces (a certificate's CN may); only an empty one is wrong.
    if name.trim().is_empty() {
        return Err(invalid("--as", "must not be empty"));
    }
    if groups.iter().any(|g| g.trim().is_empty()) {
        return Err(invalid("--as-group", "must not be empty"));
    }
    let mut all: Vec<String> = Vec::with_capacity(groups.len() + 3);
    for group in groups {
        if !all.contains(group) {
            all.push(group.clone());
        }
    }
    if implicit_groups {
        let has = |all: &[String], g: &str| all.iter().any(|x| x == g);
        if name == ANONYMOUS {
            if !has(&all, ALL_UNAUTHENTICATED) {
                all.push(ALL_UNAUTHENTICATED.to_owned());
            }
        } else {
            if groups.is_empty() {
                if let Some(namespace) = service_account_namespace(name) {
                    all.push("system:serviceaccounts".to_owned());
                    all.push(format!("system:serviceaccounts:{namespace}"));
                }
            }
            if !has(&all, ALL_AUTHENTICATED) && !has(&all, ALL_UNAUTHENTICATED) {
                all.push(ALL_AUTHENTICATED.to_owned());
            }
        }
    }
    Ok(UserInfo::new(name).with_groups(all))
}

/// The namespace of `system:serviceaccount:<namespace>:<name>`, if `user` is one.
fn service_account_namespace(user: &str) -> Option<&str> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some(namespace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(verb: &str, resource: &str) -> RbacRequestArgs {
        RbacRequestArgs {
            verb: verb.into(),
            resource: resource.into(),
            name: None,
            namespace: None,
            object_name: None,
            subresource: None,
        }
    }

    fn resource(group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> RequestSpec {
        RequestSpec::Resource {
            verb: "get".into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn resource_forms() {
        let table = [
            ("pods", resource("", "pods", "", "", "")),
            ("pods/log", resource("", "pods", "log", "", "")),
            (
                "deployments.apps",
                resource("apps", "deployments", "", "", ""),
            ),
            (
                "deployments.apps/scale",
                resource("apps", "deployments", "scale", "", ""),
            ),
            (
                "roles.rbac.authorization.k8s.io",
                resource("rbac.authorization.k8s.io", "roles", "", "", ""),
            ),
            ("*", resource("", "*", "", "", "")),
        ];
        for (text, want) in table {
            assert_eq!(args("get", text).validate().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn name_namespace_and_subresource_flags() {
        let mut a = args("get", "pods");
        a.name = Some("web".into());
        a.namespace = Some("team".into());
        a.subresource = Some("log".into());
        assert_eq!(
            a.validate().unwrap(),
            resource("", "pods", "log", "team", "web")
        );

        let mut a = args("get", "pods/log");
        a.object_name = Some("web".into());
        a.subresource = Some("log".into());
        assert_eq!(
            a.validate().unwrap(),
            resource("", "pods", "log", "", "web")
        );

        let mut a = args("get", "pods/log");
        a.subresource = Some("exec".into());
        assert!(a.validate().is_err());
    }

    #[test]
    fn non_resource_urls() {
        assert_eq!(
            args("get", "/healthz").validate().unwrap(),
            RequestSpec::NonResource {
                verb: "get".into(),
                path: "/healthz".into()
            }
        );
        assert_eq!(
            args("get", "/").validate().unwrap(),
            RequestSpec::NonResource {
                verb: "get".into(),
                path: "/".into()
            }
        );
        let mut a = args("get", "/healthz");
        a.namespace = Some("team".into());
        assert!(a.validate().is_err());
    }

    #[test]
    fn malformed_requests_are_refused() {
        for (verb, text) in [
            ("get", ""),
            ("get", "pods/"),
            ("get", "pods/log/x"),
            ("get", "deployments."),
            ("get", ".apps"),
            ("get", "po ds"),
            ("", "pods"),
            ("li st", "pods"),
        ] {
            assert!(args(verb, text).validate().is_err(), "{verb} {text}");
        }
        let mut a = args("get", "pods");
        a.namespace = Some(String::new());
        assert!(a.validate().is_err());
    }

    #[test]
    fn attributes_and_description() {
        let mut a = args("get", "pods/log");
        a.namespace = Some("team".into());
        a.name = Some("web".into());
        let spec = a.validate().unwrap();
        let attrs = spec.attributes(UserInfo::new("alice"));
        assert!(attrs.resource_request);
        assert_eq!(attrs.resource_with_subresource(), "pods/log");
        assert_eq!(attrs.name, "web");
        assert_eq!(
            spec.describe(),
            r#"get resource "pods/log" in API group "" in the namespace "team", name "web""#
        );
        let spec = args("get", "/healthz").validate().unwrap();
        let attrs = spec.attributes(UserInfo::new("alice"));
        assert!(!attrs.resource_request);
        assert_eq!(spec.describe(), r#"get path "/healthz""#);
    }

    #[test]
    fn implicit_groups_follow_impersonation() {
        let groups = |name: &str, given: &[&str], implicit: bool| {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            user_info(name, &given, implicit).unwrap().groups
        };
        assert_eq!(
            groups("alice", &["dev"], true),
            ["dev", "system:authenticated"]
        );
        assert_eq!(groups("alice", &["dev"], false), ["dev"]);
        assert_eq!(
            groups("alice", &["system:authenticated", "dev"], true),
            ["system:authenticated", "dev"]
        );
        assert_eq!(
            groups("system:anonymous", &[], true),
            ["system:unauthenticated"]
        );
        assert_eq!(
            groups("system:serviceaccount:team:builder", &[], true),
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        assert!(user_info("", &[], true).is_err());
        assert!(user_info("alice", &[String::new()], true).is_err());
    }
}
