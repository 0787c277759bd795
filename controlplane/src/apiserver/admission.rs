//! The admission seam: the chain of plugins every write passes through, as kube-apiserver's
//! `k8s.io/apiserver/pkg/admission` (`Attributes`, `MutationInterface`, `ValidationInterface`,
//! the ordered `chainAdmissionHandler`).
//!
//! # What it owns
//!
//! - [`Attributes`]: what a plugin is told of one request: the operation (CREATE, UPDATE,
//!   DELETE, CONNECT), the resource and subresource, kind, namespace, name, the object (which
//!   the mutating phase may change) and the stored object it replaces, the user, dry run, and
//!   the operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`).
//! - [`AdmissionPlugin`]: one plugin, with a mutating and a validating phase (either may do
//!   nothing) and the operations it handles.
//! - [`Admission`]: the ordered chain, and the two phases' places in a write: **mutate** after
//!   decoding and before the resource's strategy ([`super::strategy`]: prepare, default,
//!   validate), **validate** after the strategy's validation and before the store. A refusal is
//!   the plugin's [`Status`], sent as it is (kube's Forbidden, NotFound, Invalid...).
//!
//! The built-in plugins live below this module (they import it; it imports none of them), and
//! [`super::state`] chains them in kube's order (`AllOrderedPlugins`): NamespaceLifecycle
//! ([`namespace_lifecycle`]), ServiceAccount ([`service_accounts`]), DefaultTolerationSeconds
//! ([`default_tolerations`]). The admission issue adds after them the
//! mutating webhooks, then (validate phase) ValidatingAdmissionPolicy and the validating
//! webhooks, as kube-apiserver orders them.
//!
//! What it does not own: the RBAC escalation checks ([`super::escalation`]), which kube runs in
//! the RBAC registry between the two phases, on the object as admitted and before its system
//! fields; authorization (the gateway's).

pub mod default_tolerations;
pub(crate) mod namespace_lifecycle;
pub(crate) mod service_accounts;

use std::sync::Arc;

use async_trait::async_trait;
use kgate_core::{Status, UserInfo};
use serde_json::{json, Value};

use crate::resources::ResourceDef;

/// kube's `admission.Operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
    /// exec, attach, port-forward: this server serves none of them yet (the gateway answers).
    #[expect(
        dead_code,
        reason = "the admission of connect subresources is the admission issue's"
    )]
    Connect,
}

impl Operation {
    /// As kube spells it (`CREATE`...), for AdmissionReview.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// The options kind of the operation, as AdmissionReview's `options` carries it.
    fn options_kind(self) -> &'static str {
        match self {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
            Operation::Connect => "",
        }
    }
}

/// One request as admission sees it (kube's `admission.Attributes`).
#[derive(Debug)]
pub(crate) struct Attributes<'a> {
    pub operation: Operation,
    /// The resource (group, version, plural).
    pub resource: &'static ResourceDef,
    /// The kind of [`Self::object`]: the resource's, or a subresource's own (`TokenRequest`).
    pub kind: &'static str,
    /// Empty for the main resource.
    pub subresource: &'a str,
    /// Empty for a cluster-scoped resource.
    pub namespace: &'a str,
    /// Empty for a create with `generateName` and for a collection.
    pub name: &'a str,
    /// The object being written (none for a delete). The mutating phase may change it.
    pub object: Option<Value>,
    /// The stored object an update or delete replaces.
    pub old_object: Option<&'a Value>,
    /// Who asks; `None` when the server was reached without front-proxy identity.
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`, `UpdateOptions`, `DeleteOptions`), as JSON.
    pub options: Value,
}

impl<'a> Attributes<'a> {
    /// The attributes of `operation` on `resource`: no object, no user, not a dry run, options
    /// with nothing set. Filled in by the caller.
    pub fn new(
        operation: Operation,
        resource: &'static ResourceDef,
        namespace: &'a str,
        name: &'a str,
    ) -> Self {
        let options = match operation.options_kind() {
            "" => Value::Null,
            kind => json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"}),
        };
        Attributes {
            operation,
            resource,
            kind: resource.kind,
            subresource: "",
            namespace,
            name,
            object: None,
            old_object: None,
            user: None,
            dry_run: false,
            options,
        }
    }

    pub fn with_object(mut self, object: Value) -> Self {
        self.object = Some(object);
        self
    }

    pub fn with_old(mut self, old: &'a Value) -> Self {
        self.old_object = Some(old);
        self
    }

    pub fn with_user(mut self, user: Option<&'a UserInfo>) -> Self {
        self.user = user;
        self
    }

    /// Marks a dry run, in the flag and in the options (`dryRun: ["All"]`).
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        if let (true, Value::Object(options)) = (dry_run, &mut self.options) {
            options.insert("dryRun".into(), json!(["All"]));
        }
        self
    }

    pub fn with_subresource(mut self, subresource: &'a str) -> Self {
        self.subresource = subresource;
        self
    }

    /// A subresource whose object is of its own kind (`TokenRequest` for `serviceaccounts/token`).
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    /// Whether this is a write of the core `pods` resource itself (no subresource).
    pub fn is_pod(&self) -> bool {
        self.resource.group.is_empty() && self.resource.kind == "Pod" && self.subresource.is_empty()
    }

    /// The object, after the mutating phase (what the caller stores).
    pub fn into_object(self) -> Option<Value> {
        self.object
    }
}

/// One admission plugin (kube's `admission.Interface` with `MutationInterface` and
/// `ValidationInterface`). A refusal is a [`Status`] with kube's reason and wording.
#[async_trait]
pub(crate) trait AdmissionPlugin: Send + Sync {
    /// The plugin's name, as kube names it (`NamespaceLifecycle`).
    fn name(&self) -> &'static str;

    /// Whether the plugin looks at `operation` at all.
    fn handles(&self, operation: Operation) -> bool;

    /// The mutating phase: may change `attrs.object`, or refuse.
    async fn admit(&self, _attrs: &mut Attributes<'_>) -> Result<(), Status> {
        Ok(())
    }

    /// The validating phase: may refuse, never change.
    async fn validate(&self, _attrs: &Attributes<'_>) -> Result<(), Status> {
        Ok(())
    }
}

/// The ordered chain of admission plugins. Cheap to share (`Arc` it).
#[derive(Default)]
pub(crate) struct Admission {
    plugins: Vec<Arc<dyn AdmissionPlugin>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl Admission {
    /// A chain of `plugins`, run in this order.
    pub fn new(plugins: Vec<Arc<dyn AdmissionPlugin>>) -> Self {
        Admission { plugins }
    }

    /// The mutating phase: every plugin that handles the operation, in order; the first refusal
    /// ends it.
    pub async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        for plugin in &self.plugins {
            if plugin.handles(attrs.operation) {
                plugin
                    .admit(attrs)
                    .await
                    .inspect_err(|status| refused(plugin.as_ref(), attrs, status))?;
            }
        }
        Ok(())
    }

    /// The validating phase: every plugin that handles the operation, in order; the first
    /// refusal ends it.
    pub async fn validate(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        for plugin in &self.plugins {
            if plugin.handles(attrs.operation) {
                plugin
                    .validate(attrs)
                    .await
                    .inspect_err(|status| refused(plugin.as_ref(), attrs, status))?;
            }
        }
        Ok(())
    }

    /// One write's admission around what the write does between the phases: the mutating
    /// phase on `attrs`' object, `step` on the admitted object (the strategy, and whatever the
    /// write checks or fills in on the way), then the validating phase on what `step` made.
    /// Returns the object to store.
    pub async fn around(
        &self,
        mut attrs: Attributes<'_>,
        step: impl FnOnce(Value) -> Result<Value, Status>,
    ) -> Result<Value, Status> {
        self.admit(&mut attrs).await?;
        let admitted = attrs.object.take().unwrap_or_default();
        attrs.object = Some(step(admitted)?);
        self.validate(&attrs).await?;
        Ok(attrs.into_object().unwrap_or_default())
    }
}

/// Logs a refusal: which plugin, which request (never the object).
fn refused(plugin: &dyn AdmissionPlugin, attrs: &Attributes<'_>, status: &Status) {
    tracing::debug!(
        plugin = plugin.name(),
        operation = attrs.operation.as_str(),
        resource = attrs.resource.plural,
        namespace = attrs.namespace,
        name = attrs.name,
        code = status.code,
        "admission refused the request"
    );
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
