//! The subresources: `status` (GET/PUT/PATCH touching only `.status`), `scale` of Deployments,
//! ReplicaSets, StatefulSets and ReplicationControllers (an `autoscaling/v1` Scale whose writes
//! set the parent's `spec.replicas`),
//! `pods/binding` (POST a Binding: sets `spec.nodeName` once) and `namespaces/finalize` (PUT:
//! sets `spec.finalizers`), and `serviceaccounts/token` (POST a TokenRequest: see
//! [`super::token_request`]).

use std::sync::Arc;

use http::StatusCode;
use kgate_core::status::GroupResource;
use kgate_core::Status;
use serde_json::{json, Value};

use kgate_core::UserInfo;

use super::admission::{Attributes, Operation};
use super::decode::{check_name, check_type};
use super::escalation::front_proxy_user;
use super::keys::precondition_of;
use super::meta::meta_str;
use super::request::{Reply, Req};
use super::state::Shared;
use super::storage::{get_current, guaranteed_update};
use super::strategy::{self, StatusFrom};
use super::write::{apply_patch, check_patched_version, PatchType};
use crate::resources::ResourceDef;
use crate::schema::printers::label_selector;

/// Routes a subresource request (the subresource is known to exist for the resource).
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req, verb: &str) -> Result<Reply, Status> {
    let method_not_allowed = Status::no_route_for_method;
    match (req.subresource.as_str(), verb) {
        ("status", "get") => get_current(shared.store.as_ref(), &req.target())
            .await
            .map(|(_, o)| Reply::ok(o)),
        ("status", "update") => status_update(shared, req).await,
        ("status", "patch") => status_patch(shared, req).await,
        ("scale", "get") => {
            let (_, o) = get_current(shared.store.as_ref(), &req.target()).await?;
            Ok(Reply::ok(scale_of(req.def, &o)))
        }
        ("scale", "update" | "patch") => scale_write(shared, req, verb == "patch").await,
        ("binding", "create") if req.def.kind == "Pod" => bind(shared, req).await,
        ("finalize", "update") if req.def.kind == "Namespace" => finalize(shared, req).await,
        ("token", "create") if req.def.kind == "ServiceAccount" => {
            super::token_request::create(shared, req).await
        }
        _ => Err(method_not_allowed()),
    }
}

/// The steps of a subresource write inside its guaranteed update, as a main resource's update:
/// mutating admission, the strategy (prepare, default, validate; status from the new object),
/// validating admission. Admission is told the subresource and given the parent object; a
/// binding is a CREATE, the others UPDATEs, as in kube.
#[derive(Clone, Copy)]
struct SubresourceWrite<'a> {
    shared: &'a Shared,
    req: &'a Req,
    user: Option<&'a UserInfo>,
    dry_run: bool,
}

impl<'a> SubresourceWrite<'a> {
    fn new(shared: &'a Shared, req: &'a Req, user: Option<&'a UserInfo>) -> Result<Self, Status> {
        Ok(SubresourceWrite {
            shared,
            req,
            user,
            dry_run: req.dry_run()?,
        })
    }

    async fn run(&self, current: &Value, next: Value) -> Result<Value, Status> {
        let req = self.req;
        let operation = if req.subresource == "binding" {
            Operation::Create
        } else {
            Operation::Update
        };
        let attrs = Attributes::new(
            operation,
            req.def,
            req.namespace.as_deref().unwrap_or(""),
            &req.name,
        )
        .with_subresource(&req.subresource)
        .with_object(next)
        .with_old(current)
        .with_user(self.user)
        .with_dry_run(self.dry_run);
        self.shared
            .admission
            .around(attrs, |next| {
                strategy::for_resource(req.def).before_update(current, next, StatusFrom::New)
            })
            .await
    }
}

/// What a write of the status subresource makes of the client's object `from`, as kube's
/// status strategies' `PrepareForUpdate`: everything but the spec, which stays the stored one;
/// a Deployment also keeps its labels, a Pod its ownerReferences (old kubelets corrupted them).
/// The metadata otherwise follows the client (the real deployment controller records
/// `deployment.kubernetes.io/revision` through `deployments/status`); the system fields are
/// carried over after this by the strategy, as for any update.
fn status_write(def: &ResourceDef, current: &Value, from: &Value) -> Value {
    let mut next = from.clone();
    let Value::Object(map) = &mut next else {
        return current.clone();
    };
    match current.get("spec") {
        Some(s) => map.insert("spec".into(), s.clone()),
        None => map.remove("spec"),
    };
    let keep: &[&str] = match (def.group, def.kind) {
        ("apps", "Deployment") => &["labels"],
        ("", "Pod") => &["ownerReferences"],
        _ => &[],
    };
    if (def.group, def.kind) == ("", "PersistentVolume") {
        phase_transition_time(current, &mut next);
    }
    if !keep.is_empty() {
        let old_meta = current.get("metadata");
        let meta = super::meta::meta_mut(&mut next);
        for field in keep {
            match old_meta.and_then(|m| m.get(*field)) {
                Some(v) => meta.insert((*field).into(), v.clone()),
                None => meta.remove(*field),
            };
        }
    }
    next
}

/// A PersistentVolume's `status.lastPhaseTransitionTime`, as kube's status strategy keeps it:
/// the stored one while the phase stays, now when the phase moves and the client did not set
/// a new time itself.
fn phase_transition_time(current: &Value, next: &mut Value) {
    let old_phase = current.pointer("/status/phase");
    let old_time = current.pointer("/status/lastPhaseTransitionTime").cloned();
    let Some(status) = next.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    let time = status
        .get("lastPhaseTransitionTime")
        .filter(|t| !t.is_null())
        .cloned();
    if status.get("phase") == old_phase {
        if time.is_none() {
            if let Some(t) = old_time {
                status.insert("lastPhaseTransitionTime".into(), t);
            }
        }
    } else if time.is_none() || time == old_time {
        status.insert(
            "lastPhaseTransitionTime".into(),
            json!(super::meta::now_timestamp()),
        );
    }
}

async fn status_update(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let user = front_proxy_user(&req.headers);
    let steps = SubresourceWrite::new(shared, req, user.as_ref())?;
    let mut body = req.body_value()?;
    check_type(req.def, &mut body)?;
    check_name(&req.name, &mut body)?;
    let precondition = precondition_of(&body)?;
    let body = &body;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &req.target(),
        precondition,
        req.dry_run()?,
        |current: Arc<Value>| async move {
            let current = &*current;
            steps
                .run(current, status_write(req.def, current, body))
                .await
        },
    )
    .await?;
    Ok(Reply::ok(stored))
}

async fn status_patch(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let user = front_proxy_user(&req.headers);
    let steps = SubresourceWrite::new(shared, req, user.as_ref())?;
    let kind = PatchType::from_content_type(req.content_type())?;
    let patch = req.body_value()?;
    let target = req.target();
    let patch = &patch;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &target,
        None,
        req.dry_run()?,
        |current: Arc<Value>| async move {
            let current = &*current;
            let patched = apply_patch(req.def, kind, current, patch)?;
            check_patched_version(&target, current, &patched)?;
            steps
                .run(current, status_write(req.def, current, &patched))
                .await
        },
    )
    .await?;
    Ok(Reply::ok(stored))
}

/// The selector of a scalable object as its Scale's `status.selector` says it: a
/// ReplicationController's plain map as `labels.SelectorFromSet` prints it (sorted `k=v`), the
/// others' `metav1.LabelSelector` as `LabelSelectorAsSelector` does.
fn scale_selector(def: &ResourceDef, obj: &Value) -> String {
    let selector = obj.pointer("/spec/selector");
    if def.group.is_empty() && def.kind == "ReplicationController" {
        let mut pairs: Vec<String> = selector
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        return pairs.join(",");
    }
    let text = label_selector(selector);
    if text == "<none>" {
        String::new()
    } else {
        text
    }
}

/// The `autoscaling/v1` Scale of a scalable object.
pub(crate) fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |f: &str| meta.get(f).cloned().unwrap_or(Value::Null);
    let selector = scale_selector(def, obj);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"),
            "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// The replicas a Scale asks for: a non-negative integer (422 otherwise, as kube).
fn wanted_replicas(scale: &Value, name: &str) -> Result<i64, Status> {
    let invalid = |v: String, msg: &str| {
        Status::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![kgate_core::status::StatusCause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {v}: {msg}"),
                field: "spec.replicas".into(),
            }],
        )
    };
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(n),
            Some(n) => Err(invalid(n.to_string(), "must be greater than or equal to 0")),
            None => Err(Status::bad_request(format!(
                "Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: expected integer, got {v}"
            ))),
        },
    }
}

async fn scale_write(shared: &Arc<Shared>, req: &Req, patch: bool) -> Result<Reply, Status> {
    let user = front_proxy_user(&req.headers);
    let steps = SubresourceWrite::new(shared, req, user.as_ref())?;
    let target = req.target();
    let body = req.body_value()?;
    let (kind, precondition) = if patch {
        (
            Some(PatchType::from_content_type(req.content_type())?),
            None,
        )
    } else {
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            if kind != "Scale" {
                return Err(Status::bad_request(format!(
                    "{kind} in version \"v1\" cannot be handled as a Scale: converting ({kind}) to (Scale): unknown conversion"
                )));
            }
        }
        (None, precondition_of(&body)?)
    };
    let body = &body;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &target,
        precondition,
        req.dry_run()?,
        |current: Arc<Value>| async move {
            let current = &*current;
            let scale = match kind {
                Some(k) => {
                    let patched = apply_patch(req.def, k, &scale_of(req.def, current), body)?;
                    check_patched_version(&target, current, &patched)?;
                    patched
                }
                None => body.clone(),
            };
            let replicas = wanted_replicas(&scale, &req.name)?;
            let mut next = current.clone();
            if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(replicas));
            }
            steps.run(current, next).await
        },
    )
    .await?;
    Ok(Reply::ok(scale_of(req.def, &stored)))
}

/// POST pods/{name}/binding: assigns the pod to a node, once.
async fn bind(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let user = front_proxy_user(&req.headers);
    let steps = SubresourceWrite::new(shared, req, user.as_ref())?;
    let body = req.body_value()?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let binding_gr = GroupResource::new("", "pods/binding");
    if node.is_empty() {
        return Err(Status::invalid(
            "",
            "Binding",
            &req.name,
            vec![kgate_core::status::StatusCause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    if let Some(name) = meta_str(&body, "name").filter(|n| !n.is_empty() && *n != req.name) {
        return Err(Status::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            req.name
        )));
    }
    let target = req.target();
    let node = &node;
    guaranteed_update(shared.store.as_ref(), &target, None, req.dry_run()?, |current: Arc<Value>| async move {
            let current = &*current;
        let assigned = current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
        if !assigned.is_empty() {
            return Err(Status::conflict(
                binding_gr,
                &req.name,
                &format!("pod {} is already assigned to node {assigned:?}", req.name),
            ));
        }
        let mut next = current.clone();
        if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        if let Some(map) = next.as_object_mut() {
            let status = map.entry("status").or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                let conditions = status.entry("conditions").or_insert_with(|| json!([]));
                if let Some(list) = conditions.as_array_mut() {
                    list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                    list.push(json!({"type": "PodScheduled", "status": "True",
                        "lastProbeTime": null, "lastTransitionTime": super::meta::now_timestamp()}));
                }
            }
        }
        steps.run(current, next).await
    })
    .await?;
    let mut success = Status::success(None);
    success.code = StatusCode::CREATED.as_u16();
    let body = serde_json::to_value(&success).unwrap_or_else(|_| json!({}));
    Ok(Reply::new(StatusCode::CREATED, body))
}

/// PUT namespaces/{name}/finalize: sets `spec.finalizers`; a Terminating namespace left with
/// none is removed.
async fn finalize(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let user = front_proxy_user(&req.headers);
    let steps = SubresourceWrite::new(shared, req, user.as_ref())?;
    let mut body = req.body_value()?;
    check_type(req.def, &mut body)?;
    check_name(&req.name, &mut body)?;
    let precondition = precondition_of(&body)?;
    let finalizers = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let finalizers = &finalizers;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &req.target(),
        precondition,
        req.dry_run()?,
        |current: Arc<Value>| async move {
            let current = &*current;
            let mut next = current.clone();
            if let Some(map) = next.as_object_mut() {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Some(spec) = spec.as_object_mut() {
                    spec.insert("finalizers".into(), finalizers.clone());
                }
            }
            steps.run(current, next).await
        },
    )
    .await?;
    Ok(Reply::ok(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    /// The Scale's selector: an RC's map sorted as `labels.SelectorFromSet` prints it, a
    /// StatefulSet's LabelSelector as `LabelSelectorAsSelector` does.
    #[test]
    fn scales_print_each_kinds_selector() {
        let rcs = lookup("", "v1", "replicationcontrollers").expect("rcs");
        let rc = json!({"metadata": {"name": "r"}, "spec": {"replicas": 2, "selector": {"b": "2", "a": "1"}},
            "status": {"replicas": 1}});
        let scale = scale_of(rcs, &rc);
        assert_eq!(
            scale["status"],
            json!({"replicas": 1, "selector": "a=1,b=2"})
        );
        assert_eq!(scale["spec"], json!({"replicas": 2}));
        let stss = lookup("apps", "v1", "statefulsets").expect("stss");
        let sts = json!({"metadata": {"name": "s"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}});
        assert_eq!(scale_of(stss, &sts)["status"]["selector"], "app=db");
    }

    /// A volume's phase time stays while its phase does, and moves with it.
    #[test]
    fn a_volumes_phase_time_moves_with_its_phase() {
        let pvs = lookup("", "v1", "persistentvolumes").expect("pvs");
        let current = json!({"spec": {"a": 1}, "status": {"phase": "Pending",
            "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}});
        let same = status_write(
            pvs,
            &current,
            &json!({"spec": {"a": 2}, "status": {"phase": "Pending"}}),
        );
        assert_eq!(
            same["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(same["spec"], json!({"a": 1}));
        let bound = status_write(
            pvs,
            &current,
            &json!({"status": {"phase": "Bound",
            "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}}),
        );
        assert_ne!(
            bound["status"]["lastPhaseTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        let told = status_write(
            pvs,
            &current,
            &json!({"status": {"phase": "Bound",
            "lastPhaseTransitionTime": "2021-01-01T00:00:00Z"}}),
        );
        assert_eq!(
            told["status"]["lastPhaseTransitionTime"],
            "2021-01-01T00:00:00Z"
        );
    }
}
