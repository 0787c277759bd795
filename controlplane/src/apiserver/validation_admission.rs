//! The validation of admissionregistration.k8s.io/v1 (webhook configurations, validating
//! admission policies and their bindings), after kube's
//! `pkg/apis/admissionregistration/validation`: the rules a user is most likely to meet, with
//! kube's field paths and wording. Not here: variables, audit
//! annotations, and the CEL compilation of expressions (kube compiles every expression; here an
//! expression is only required to be non-empty).

use kgate_core::status::StatusCause;
use serde_json::Value;

use super::{
    cause, go_value, invalid_value, is_dns1123_subdomain, not_supported, qualified_name_errors,
    required, required_because, DNS1123_SUBDOMAIN_MSG,
};

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
/// The side effect classes a v1 webhook may declare (`noSideEffectClasses`).
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
const VALIDATION_ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
const POLICY_REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge"];
/// `AcceptedAdmissionReviewVersions`.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const URL_FORM: &str = "; desired format: https://host[/path]";

fn duplicate(field: &str, value: Option<&Value>) -> StatusCause {
    cause(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", go_value(value)),
    )
}

/// The strings of the list at `obj[key]` (an absent list is empty).
fn strings<'a>(obj: &'a Value, key: &str) -> Vec<&'a str> {
    obj.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or(""))
        .collect()
}

fn items<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn present<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `obj[key]`, when set, is one of `allowed`.
fn one_of(obj: &Value, key: &str, path: &str, allowed: &[&str], out: &mut Vec<StatusCause>) {
    if let Some(v) = present(obj, key) {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            out.push(not_supported(
                &format!("{path}.{key}"),
                &go_value(Some(v)),
                allowed,
            ));
        }
    }
}

/// The causes of a ValidatingWebhookConfiguration or MutatingWebhookConfiguration
/// (`validateValidatingWebhookConfiguration`, `validateMutatingWebhookConfiguration`).
pub(super) fn webhook_configuration(obj: &Value, mutating: bool, out: &mut Vec<StatusCause>) {
    let mut names = Vec::new();
    for (i, hook) in items(obj, "webhooks").iter().enumerate() {
        let path = format!("webhooks[{i}]");
        webhook(hook, mutating, &path, out);
        review_versions(hook, &format!("{path}.admissionReviewVersions"), out);
        let name = hook.get("name").and_then(Value::as_str).unwrap_or("");
        if !name.is_empty() {
            if names.contains(&name) {
                out.push(duplicate(&format!("{path}.name"), hook.get("name")));
            } else {
                names.push(name);
            }
        }
    }
}

/// `validateValidatingWebhook` / `validateMutatingWebhook`.
fn webhook(hook: &Value, mutating: bool, path: &str, out: &mut Vec<StatusCause>) {
    fully_qualified_name(hook.get("name"), &format!("{path}.name"), out);
    for (i, rule) in items(hook, "rules").iter().enumerate() {
        rule_with_operations(rule, &format!("{path}.rules[{i}]"), out);
    }
    one_of(hook, "failurePolicy", path, FAILURE_POLICIES, out);
    one_of(hook, "matchPolicy", path, MATCH_POLICIES, out);
    match present(hook, "sideEffects") {
        None => out.push(required_because(
            &format!("{path}.sideEffects"),
            &format!("must specify one of {}", NO_SIDE_EFFECTS.join(", ")),
        )),
        Some(_) => one_of(hook, "sideEffects", path, NO_SIDE_EFFECTS, out),
    }
    if let Some(t) = present(hook, "timeoutSeconds") {
        if !t.as_i64().is_some_and(|t| (1..=30).contains(&t)) {
            out.push(invalid_value(
                &format!("{path}.timeoutSeconds"),
                Some(t),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
    }
    for key in ["namespaceSelector", "objectSelector"] {
        if let Some(selector) = present(hook, key) {
            label_selector(selector, &format!("{path}.{key}"), out);
        }
    }
    if mutating {
        one_of(hook, "reinvocationPolicy", path, REINVOCATION_POLICIES, out);
    }
    let config = hook.get("clientConfig").unwrap_or(&Value::Null);
    let cc = format!("{path}.clientConfig");
    match (present(config, "url"), present(config, "service")) {
        (Some(url), None) => webhook_url(url.as_str().unwrap_or(""), &format!("{cc}.url"), out),
        (None, Some(service)) => webhook_service(service, &format!("{cc}.service"), out),
        _ => out.push(required_because(
            &cc,
            "exactly one of url or service is required",
        )),
    }
    match_conditions(hook, &format!("{path}.matchConditions"), out);
}

/// `validateMatchConditions`, without compiling the expressions.
fn match_conditions(obj: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let conditions = items(obj, "matchConditions");
    if conditions.len() > 64 {
        out.push(cause(
            "FieldValueTooMany",
            path,
            format!("Too many: {}: must have at most 64 items", conditions.len()),
        ));
    }
    let mut names = Vec::new();
    for (i, c) in conditions.iter().enumerate() {
        let item = format!("{path}[{i}]");
        let text = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or("");
        if text("expression").trim().is_empty() {
            out.push(required(&format!("{item}.expression")));
        }
        let name = text("name");
        if name.is_empty() {
            out.push(required(&format!("{item}.name")));
        } else {
            for e in qualified_name_errors(name) {
                out.push(invalid_value(&format!("{item}.name"), c.get("name"), &e));
            }
            if names.contains(&name) {
                out.push(duplicate(&format!("{item}.name"), c.get("name")));
            } else {
                names.push(name);
            }
        }
    }
}

/// `utilvalidation.IsFullyQualifiedName`.
fn fully_qualified_name(v: Option<&Value>, path: &str, out: &mut Vec<StatusCause>) {
    let name = v.and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        out.push(required(path));
    } else if let Some(errs) = subdomain_errors(name) {
        out.push(invalid_value(path, v, &errs));
    } else if name.split('.').count() < 3 {
        out.push(invalid_value(
            path,
            v,
            "should be a domain with at least three segments separated by dots",
        ));
    }
}

/// `IsDNS1123Subdomain`'s errors.
fn subdomain_error_list(s: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters");
    }
    if !is_dns1123_subdomain(s) {
        errs.push(DNS1123_SUBDOMAIN_MSG);
    }
    errs
}

/// `IsDNS1123Subdomain`'s errors, joined with `,`, when there are any.
fn subdomain_errors(s: &str) -> Option<String> {
    let errs = subdomain_error_list(s);
    (!errs.is_empty()).then(|| errs.join(","))
}

/// `validateAdmissionReviewVersions` (a recognised version required, as on create).
fn review_versions(hook: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let versions = strings(hook, "admissionReviewVersions");
    if versions.is_empty() {
        out.push(required_because(
            path,
            &format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        ));
        return;
    }
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let item = format!("{path}[{i}]");
        let value = Value::String((*v).to_owned());
        if seen.contains(v) {
            out.push(invalid_value(&item, Some(&value), "duplicate version"));
            continue;
        }
        seen.push(v);
        if v.len() > 63 {
            out.push(invalid_value(
                &item,
                Some(&value),
                "must be no more than 63 characters",
            ));
        }
        if !super::is_dns1035_label(v) {
            out.push(invalid_value(&item, Some(&value), super::DNS1035_LABEL_MSG));
        }
    }
    if !versions.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
        out.push(invalid_value(
            path,
            hook.get("admissionReviewVersions"),
            &format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
}

/// `validateRuleWithOperations` (subresources allowed).
fn rule_with_operations(rule: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let operations = strings(rule, "operations");
    if operations.is_empty() {
        out.push(required(&format!("{path}.operations")));
    }
    if operations.len() > 1 && operations.contains(&"*") {
        out.push(invalid_value(
            &format!("{path}.operations"),
            rule.get("operations"),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in items(rule, "operations").iter().enumerate() {
        if !op.as_str().is_some_and(|s| OPERATIONS.contains(&s)) {
            out.push(not_supported(
                &format!("{path}.operations[{i}]"),
                &go_value(Some(op)),
                OPERATIONS,
            ));
        }
    }
    // validateRule.
    let groups = strings(rule, "apiGroups");
    if groups.is_empty() {
        out.push(required(&format!("{path}.apiGroups")));
    }
    if groups.len() > 1 && groups.contains(&"*") {
        out.push(invalid_value(
            &format!("{path}.apiGroups"),
            rule.get("apiGroups"),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings(rule, "apiVersions");
    if versions.is_empty() {
        out.push(required(&format!("{path}.apiVersions")));
    }
    if versions.len() > 1 && versions.contains(&"*") {
        out.push(invalid_value(
            &format!("{path}.apiVersions"),
            rule.get("apiVersions"),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            out.push(required(&format!("{path}.apiVersions[{i}]")));
        }
    }
    resources(rule, &format!("{path}.resources"), out);
    one_of(rule, "scope", path, SCOPES, out);
}

/// `validateResources`: subresources and their wildcards.
fn resources(rule: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let resources = strings(rule, "resources");
    if resources.is_empty() {
        out.push(required(path));
    }
    let mut wildcard_sub: Vec<&str> = Vec::new();
    let mut wildcard_res: Vec<&str> = Vec::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, r) in resources.iter().enumerate() {
        let item = format!("{path}[{i}]");
        if r.is_empty() {
            out.push(required(&item));
            continue;
        }
        double |= *r == "*/*";
        single |= *r == "*";
        let Some((res, sub)) = r.split_once('/') else {
            plain = *r != "*";
            continue;
        };
        let value = Value::String((*r).to_owned());
        if wildcard_sub.contains(&res) {
            out.push(invalid_value(
                &item,
                Some(&value),
                &format!("if '{res}/*' is present, must not specify {r}"),
            ));
        }
        if wildcard_res.contains(&sub) {
            out.push(invalid_value(
                &item,
                Some(&value),
                &format!("if '*/{sub}' is present, must not specify {r}"),
            ));
        }
        if sub == "*" {
            wildcard_sub.push(res);
        }
        if res == "*" {
            wildcard_res.push(sub);
        }
    }
    if resources.len() > 1 && double {
        out.push(invalid_value(
            path,
            rule.get("resources"),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        out.push(invalid_value(
            path,
            rule.get("resources"),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
}

/// `webhook.ValidateWebhookURL` with https required. Go's `url.Parse` is approximated: the
/// scheme, the authority (user information and host) and the query and fragment are split
/// as it splits them for the URLs a webhook is given.
fn webhook_url(url: &str, path: &str, out: &mut Vec<StatusCause>) {
    let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let scheme_end = rest.find(':').filter(|&i| {
        rest[..i].starts_with(|c: char| c.is_ascii_alphabetic())
            && rest[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let (scheme, rest) = match scheme_end {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    let (user, host) = match rest.strip_prefix("//") {
        Some(authority) => {
            let authority = authority.split('/').next().unwrap_or("");
            match authority.rsplit_once('@') {
                Some((user, host)) => (Some(user), host),
                None => (None, authority),
            }
        }
        None => (None, ""),
    };
    let text = |s: &str| Value::String(s.to_owned());
    if scheme != "https" {
        out.push(invalid_value(
            path,
            Some(&text(&scheme.to_ascii_lowercase())),
            &format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    if host.is_empty() {
        out.push(invalid_value(
            path,
            Some(&text(host)),
            &format!("host must be specified{URL_FORM}"),
        ));
    }
    if let Some(user) = user {
        out.push(invalid_value(
            path,
            Some(&text(user)),
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        out.push(invalid_value(
            path,
            Some(&text(fragment)),
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        out.push(invalid_value(
            path,
            Some(&text(query)),
            "query parameters are not permitted in the URL",
        ));
    }
}

/// `webhook.ValidateWebhookService`: name, namespace, port and path.
fn webhook_service(service: &Value, path: &str, out: &mut Vec<StatusCause>) {
    for key in ["name", "namespace"] {
        if service
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            out.push(required(&format!("{path}.{key}")));
        }
    }
    if let Some(port) = present(service, "port") {
        if !port.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
            out.push(invalid_value(
                &format!("{path}.port"),
                Some(port),
                "port is not valid: must be between 1 and 65535, inclusive",
            ));
        }
    }
    let Some(url_path) = present(service, "path") else {
        return;
    };
    let text = url_path.as_str().unwrap_or("");
    let field = format!("{path}.path");
    if text.is_empty() || text == "/" {
        return;
    }
    if text == "//" {
        out.push(invalid_value(
            &field,
            Some(url_path),
            "segment[0] may not be empty",
        ));
        return;
    }
    if !text.starts_with('/') {
        out.push(invalid_value(
            &field,
            Some(url_path),
            "must start with a '/'",
        ));
    }
    // Go slices off the first byte whatever it is, and one trailing '/'.
    let rest = text.get(1..).unwrap_or("");
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for (i, step) in rest.split('/').enumerate() {
        if step.is_empty() {
            out.push(invalid_value(
                &field,
                Some(url_path),
                &format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for e in subdomain_error_list(step) {
            out.push(invalid_value(
                &field,
                Some(url_path),
                &format!("segment[{i}]: {e}"),
            ));
        }
    }
}

/// `metav1validation.ValidateLabelSelector` (label values in expressions checked, as for every
/// selector of these kinds on create).
fn label_selector(selector: &Value, path: &str, out: &mut Vec<StatusCause>) {
    let labels_path = format!("{path}.matchLabels");
    let labels = selector.get("matchLabels").and_then(Value::as_object);
    for (key, value) in labels.into_iter().flatten() {
        label_key(key, &labels_path, out);
        label_value(value.as_str().unwrap_or(""), &labels_path, out);
    }
    for (i, req) in items(selector, "matchExpressions").iter().enumerate() {
        let item = format!("{path}.matchExpressions[{i}]");
        let values = items(req, "values");
        match req.get("operator").and_then(Value::as_str) {
            Some("In" | "NotIn") if values.is_empty() => out.push(required_because(
                &format!("{item}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("Exists" | "DoesNotExist") if !values.is_empty() => out.push(cause(
                "FieldValueForbidden",
                &format!("{item}.values"),
                "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    .to_owned(),
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            _ => out.push(invalid_value(
                &format!("{item}.operator"),
                Some(req.get("operator").unwrap_or(&Value::String(String::new()))),
                "not a valid selector operator",
            )),
        }
        label_key(
            req.get("key").and_then(Value::as_str).unwrap_or(""),
            &format!("{item}.key"),
            out,
        );
        for (j, v) in values.iter().enumerate() {
            label_value(
                v.as_str().unwrap_or(""),
                &format!("{item}.values[{j}]"),
                out,
            );
        }
    }
}

fn label_key(key: &str, path: &str, out: &mut Vec<StatusCause>) {
    let value = Value::String(key.to_owned());
    for e in qualified_name_errors(key) {
        out.push(invalid_value(path, Some(&value), &e));
    }
}

/// `IsValidLabelValue`.
fn label_value(v: &str, path: &str, out: &mut Vec<StatusCause>) {
    let value = Value::String(v.to_owned());
    if v.len() > 63 {
        out.push(invalid_value(
            path,
            Some(&value),
            "must be no more than 63 characters",
        ));
    }
    if !v.is_empty() && !super::is_qualified_name_part(v) {
        out.push(invalid_value(path, Some(&value), super::LABEL_VALUE_MSG));
    }
}

/// `validateValidatingAdmissionPolicySpec` (without the CEL compilation).
pub(super) fn policy(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match present(spec, "failurePolicy") {
        None => out.push(required("spec.failurePolicy")),
        Some(_) => one_of(spec, "failurePolicy", "spec", FAILURE_POLICIES, out),
    }
    if let Some(kind) = present(spec, "paramKind") {
        param_kind(kind, out);
    }
    match present(spec, "matchConstraints") {
        None => out.push(required("spec.matchConstraints")),
        Some(m) => {
            match_resources(m, "spec.matchConstraints", out);
            if items(m, "resourceRules").is_empty() {
                out.push(required("spec.matchConstraints.resourceRules"));
            }
        }
    }
    match_conditions(spec, "spec.matchConditions", out);
    let validations = items(spec, "validations");
    if validations.is_empty() && items(spec, "auditAnnotations").is_empty() {
        let detail = "validations or auditAnnotations must contain at least one item";
        out.push(required_because("spec.validations", detail));
        out.push(required_because("spec.auditAnnotations", detail));
        return;
    }
    for (i, v) in validations.iter().enumerate() {
        let path = format!("spec.validations[{i}]");
        let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
        if text("expression").trim().is_empty() {
            out.push(required_because(
                &format!("{path}.expression"),
                "expression is not specified",
            ));
        }
        let message_expression = text("messageExpression");
        if !message_expression.is_empty() && message_expression.trim().is_empty() {
            out.push(invalid_value(
                &format!("{path}.messageExpression"),
                v.get("messageExpression"),
                "must be non-empty if specified",
            ));
        }
        let message = text("message");
        if !message.is_empty() && message.trim().is_empty() {
            out.push(invalid_value(
                &format!("{path}.message"),
                v.get("message"),
                "must be non-empty if specified",
            ));
        } else if message.trim().contains('\n') {
            out.push(invalid_value(
                &format!("{path}.message"),
                v.get("message"),
                "must not contain line breaks",
            ));
        }
        one_of(v, "reason", &path, POLICY_REASONS, out);
    }
}

/// `IsDNS1035Label`'s errors, joined with `,`.
fn dns1035_errors(s: &str) -> Option<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters");
    }
    if !super::is_dns1035_label(s) {
        errs.push(super::DNS1035_LABEL_MSG);
    }
    (!errs.is_empty()).then(|| errs.join(","))
}

/// `validateParamKind`.
fn param_kind(kind: &Value, out: &mut Vec<StatusCause>) {
    let text = |v: &str| Value::String(v.to_owned());
    let field = "spec.paramKind.apiVersion";
    let api_version = kind.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version.is_empty() {
        out.push(required(field));
    } else if api_version.matches('/').count() > 1 {
        out.push(invalid_value(
            field,
            Some(&text(api_version)),
            &format!("unexpected GroupVersion string: {api_version}"),
        ));
    } else {
        let (group, version) = match api_version {
            "/" => ("", ""),
            gv => gv.split_once('/').unwrap_or(("", gv)),
        };
        if !group.is_empty() {
            if let Some(e) = subdomain_errors(group) {
                out.push(invalid_value(field, Some(&text(group)), &e));
            }
        }
        if version.is_empty() {
            out.push(invalid_value(
                field,
                Some(&text(api_version)),
                "version must be specified",
            ));
        } else if let Some(e) = dns1035_errors(version) {
            out.push(invalid_value(field, Some(&text(version)), &e));
        }
    }
    let name = kind.get("kind").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        out.push(required("spec.paramKind.kind"));
    } else if let Some(e) = dns1035_errors(&name.to_ascii_lowercase()) {
        out.push(invalid_value(
            "spec.paramKind.kind",
            Some(&text(name)),
            &format!("may have mixed case, but should otherwise match: {e}"),
        ));
    }
}

/// `validateMatchResources` (the selectors' syntax not checked here).
fn match_resources(m: &Value, path: &str, out: &mut Vec<StatusCause>) {
    match present(m, "matchPolicy") {
        None => out.push(required(&format!("{path}.matchPolicy"))),
        Some(_) => one_of(m, "matchPolicy", path, MATCH_POLICIES, out),
    }
    for key in ["namespaceSelector", "objectSelector"] {
        match present(m, key) {
            None => out.push(required(&format!("{path}.{key}"))),
            Some(selector) => label_selector(selector, &format!("{path}.{key}"), out),
        }
    }
    for key in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in items(m, key).iter().enumerate() {
            rule_with_operations(rule, &format!("{path}.{key}[{i}]"), out);
        }
    }
}

/// `validateValidatingAdmissionPolicyBindingSpec` (paramRef: its required fields).
pub(super) fn binding(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let name = spec.get("policyName").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        out.push(required("spec.policyName"));
    } else {
        if name.len() > 253 {
            out.push(invalid_value(
                "spec.policyName",
                spec.get("policyName"),
                "must be no more than 253 characters",
            ));
        }
        if !is_dns1123_subdomain(name) {
            out.push(invalid_value(
                "spec.policyName",
                spec.get("policyName"),
                DNS1123_SUBDOMAIN_MSG,
            ));
        }
    }
    if let Some(param) = present(spec, "paramRef") {
        let name = param.get("name").and_then(Value::as_str).unwrap_or("");
        let named = !name.is_empty();
        // ValidatePathSegmentName.
        let mut segment_errors = Vec::new();
        if name == "." || name == ".." {
            segment_errors.push(format!("may not be '{name}'"));
        }
        for bad in ['/', '%'] {
            if name.contains(bad) {
                segment_errors.push(format!("may not contain '{bad}'"));
            }
        }
        for e in segment_errors {
            out.push(invalid_value("spec.paramRef.name", param.get("name"), &e));
        }
        let selector = present(param, "selector");
        let selected = selector.is_some();
        let exclusive = |key: &str| {
            cause(
                "FieldValueForbidden",
                &format!("spec.paramRef.{key}"),
                "Forbidden: name and selector are mutually exclusive".to_owned(),
            )
        };
        if named && selected {
            out.push(exclusive("name"));
        }
        if let Some(selector) = selector {
            label_selector(selector, "spec.paramRef.selector", out);
            if named {
                out.push(exclusive("selector"));
            }
        }
        if !named && !selected {
            out.push(required_because(
                "spec.paramRef",
                "one of name or selector must be specified",
            ));
        }
        let action = param.get("parameterNotFoundAction");
        match action.and_then(Value::as_str) {
            None | Some("") => out.push(required("spec.paramRef.parameterNotFoundAction")),
            Some("Deny" | "Allow") => {}
            Some(_) => out.push(not_supported(
                "spec.paramRef.parameterNotFoundAction",
                &go_value(action),
                &["Deny", "Allow"],
            )),
        }
    }
    if let Some(m) = present(spec, "matchResources") {
        match_resources(m, "spec.matchResources", out);
    }
    // validateValidationActions.
    let path = "spec.validationActions";
    let mut seen = Vec::new();
    for (i, action) in items(spec, "validationActions").iter().enumerate() {
        let item = format!("{path}[{i}]");
        let s = action.as_str().unwrap_or("");
        if !VALIDATION_ACTIONS.contains(&s) {
            out.push(not_supported(
                &item,
                &go_value(Some(action)),
                VALIDATION_ACTIONS,
            ));
        }
        if seen.contains(&s) {
            out.push(duplicate(&item, Some(action)));
        }
        seen.push(s);
    }
    if seen.contains(&"Deny") && seen.contains(&"Warn") {
        out.push(invalid_value(
            path,
            spec.get("validationActions"),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        out.push(required_because(
            path,
            "at least one validation action is required",
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{validate_create, DNS1123_SUBDOMAIN_MSG};
    use crate::resources::lookup;

    const ADM: &str = "admissionregistration.k8s.io";

    /// The message of the 422 a create of `obj` as `plural` gets.
    fn refused(plural: &str, obj: serde_json::Value) -> String {
        let def = lookup(ADM, "v1", plural).expect("served");
        validate_create(def, &obj).expect_err("refused").message
    }

    fn hook(extra: serde_json::Value) -> serde_json::Value {
        let mut h = json!({"name": "v.example.com", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "clientConfig": {"url": "https://example.com/x"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"]}]});
        for (k, v) in extra.as_object().into_iter().flatten() {
            h[k] = v.clone();
        }
        h
    }

    fn config(hooks: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": "c"}, "webhooks": hooks})
    }

    #[test]
    fn a_valid_webhook_configuration_is_taken() {
        let def = lookup(ADM, "v1", "validatingwebhookconfigurations").expect("served");
        validate_create(def, &config(json!([hook(json!({}))]))).expect("valid");
        let service = hook(json!({"clientConfig": {"service": {"namespace": "n", "name": "s"}}}));
        validate_create(def, &config(json!([service]))).expect("a service reference");
    }

    #[test]
    fn webhooks_are_refused_with_kubes_paths_and_words() {
        let v = "validatingwebhookconfigurations";
        assert_eq!(
            refused(v, config(json!([hook(json!({"timeoutSeconds": 31}))]))),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"c\" is invalid: \
             webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"
        );
        let mut no_side_effects = hook(json!({}));
        no_side_effects
            .as_object_mut()
            .map(|h| h.remove("sideEffects"));
        assert!(refused(v, config(json!([no_side_effects]))).ends_with(
            "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"
        ));
        assert!(refused(v, config(json!([hook(json!({"sideEffects": "Some"}))]))).ends_with(
            "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""
        ));
        assert!(refused(
            v,
            config(json!([hook(json!({"clientConfig": {"url": "http://h/p?q=1"}}))]))
        )
        .ends_with(
            "[webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; \
             desired format: https://host[/path], webhooks[0].clientConfig.url: Invalid value: \"q=1\": \
             query parameters are not permitted in the URL]"
        ));
        assert!(refused(v, config(json!([hook(json!({"clientConfig": {}}))])))
            .ends_with("webhooks[0].clientConfig: Required value: exactly one of url or service is required"));
        assert!(
            refused(v, config(json!([hook(json!({})), hook(json!({}))])))
                .ends_with("webhooks[1].name: Duplicate value: \"v.example.com\"")
        );
        assert!(refused(v, config(json!([hook(json!({"name": "a.b"}))]))).ends_with(
            "webhooks[0].name: Invalid value: \"a.b\": should be a domain with at least three segments separated by dots"
        ));
        assert!(refused(v, config(json!([hook(json!({"admissionReviewVersions": ["v2"]}))])))
            .ends_with("webhooks[0].admissionReviewVersions: Invalid value: [\"v2\"]: must include at least one of v1, v1beta1"));
        let rules = json!({"rules": [{"operations": [], "apiGroups": ["*", "apps"],
            "apiVersions": ["v1"], "resources": ["*", "pods"], "scope": "All"}]});
        assert_eq!(
            refused(v, config(json!([hook(rules)]))),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"c\" is invalid: [\
             webhooks[0].rules[0].operations: Required value, \
             webhooks[0].rules[0].apiGroups: Invalid value: [\"*\",\"apps\"]: if '*' is present, must not specify other API groups, \
             webhooks[0].rules[0].resources: Invalid value: [\"*\",\"pods\"]: if '*' is present, must not specify other resources without subresources, \
             webhooks[0].rules[0].scope: Unsupported value: \"All\": supported values: \"*\", \"Cluster\", \"Namespaced\"]"
        );
        let conditions = json!({"matchConditions": [{"name": "a", "expression": "true"},
            {"name": "a", "expression": " "}, {"name": "-x", "expression": "true"}]});
        assert_eq!(
            refused(v, config(json!([hook(conditions)]))),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"c\" is invalid: [\
             webhooks[0].matchConditions[1].expression: Required value, \
             webhooks[0].matchConditions[1].name: Duplicate value: \"a\", \
             webhooks[0].matchConditions[2].name: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]"
        );
        let selector = json!({"namespaceSelector": {"matchLabels": {"a": "-"},
            "matchExpressions": [{"key": "k", "operator": "In"}, {"key": "k", "operator": "Has"}]}});
        assert_eq!(
            refused(v, config(json!([hook(selector)]))),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"c\" is invalid: [\
             webhooks[0].namespaceSelector.matchLabels: Invalid value: \"-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'), \
             webhooks[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn', \
             webhooks[0].namespaceSelector.matchExpressions[1].operator: Invalid value: \"Has\": not a valid selector operator]"
        );
        let service = |path: &str| {
            hook(
                json!({"clientConfig": {"service": {"namespace": "n", "name": "s", "path": path}}}),
            )
        };
        // Go drops the first byte whatever it is: "v" is also one empty segment.
        assert!(refused(v, config(json!([service("v")]))).ends_with(
            "[webhooks[0].clientConfig.service.path: Invalid value: \"v\": must start with a '/', \
             webhooks[0].clientConfig.service.path: Invalid value: \"v\": segment[0] may not be empty]"
        ));
        assert!(refused(v, config(json!([service("/a//B/")]))).ends_with(&format!(
            "[webhooks[0].clientConfig.service.path: Invalid value: \"/a//B/\": segment[1] may not be empty, \
             webhooks[0].clientConfig.service.path: Invalid value: \"/a//B/\": segment[2]: {DNS1123_SUBDOMAIN_MSG}]"
        )));
        // reinvocationPolicy is the mutating webhooks' own.
        let m = "mutatingwebhookconfigurations";
        assert!(refused(m, config(json!([hook(json!({"reinvocationPolicy": "Always"}))])))
            .ends_with("webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\""));
    }

    #[test]
    fn policies_and_bindings_are_refused_with_kubes_paths_and_words() {
        let p = "validatingadmissionpolicies";
        assert_eq!(
            refused(p, json!({"metadata": {"name": "p"}, "spec": {"failurePolicy": "Fail"}})),
            "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"p\" is invalid: [\
             spec.matchConstraints: Required value, \
             spec.validations: Required value: validations or auditAnnotations must contain at least one item, \
             spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item]"
        );
        let b = "validatingadmissionpolicybindings";
        assert_eq!(
            refused(b, json!({"metadata": {"name": "b"}, "spec": {}})),
            "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io \"b\" is invalid: [\
             spec.policyName: Required value, \
             spec.validationActions: Required value: at least one validation action is required]"
        );
        assert!(refused(
            b,
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny", "Warn"]}})
        )
        .ends_with("must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"));
        assert!(refused(
            p,
            json!({"metadata": {"name": "p"}, "spec": {"failurePolicy": "Fail",
                "validations": [{"expression": "true"}],
                "matchConstraints": {"matchPolicy": "Exact", "namespaceSelector": {}, "objectSelector": {},
                    "resourceRules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]},
                "paramKind": {"apiVersion": "Ex.com/v1", "kind": "Config_Map"}}})
        )
        .contains("spec.paramKind.kind: Invalid value: \"Config_Map\": may have mixed case, but should otherwise match: "));
        assert!(refused(
            b,
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny"],
                "paramRef": {"name": "a/b", "parameterNotFoundAction": "Deny"}}})
        )
        .ends_with("spec.paramRef.name: Invalid value: \"a/b\": may not contain '/'"));
        let def = lookup(ADM, "v1", b).expect("served");
        validate_create(
            def,
            &json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny"],
                "paramRef": {"name": "x", "parameterNotFoundAction": "Allow"}}}),
        )
        .expect("valid");
    }
}
