//! Defaulting as kube-apiserver's `SetDefaults_*` functions do, so that objects read back look as
//! they do on a real cluster (kubectl describe, get -o yaml, and `kubectl apply`'s three-way diff
//! all see the defaulted fields). Only fields a client is likely to look at are defaulted.
//! Every function only fills what is absent: it never overwrites a value the client sent (the
//! one exception is the type of a StatefulSet's claim templates, which kube's conversion writes).

use serde_json::{json, Map, Value};

use super::meta::{meta_mut, meta_str};
use crate::resources::ResourceDef;

/// Sets `obj[key]` to `value` when absent.
fn default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key).or_insert(value);
}

/// `obj[key]` as an object, created when absent (a non-object is left alone: `None`).
fn child<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    obj.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// Applies the defaults of `def`'s kind to `obj`.
pub(crate) fn apply(def: &ResourceDef, obj: &mut Value) {
    let name = meta_str(obj, "name").unwrap_or("").to_owned();
    if def.kind == "Namespace" {
        // kube labels every namespace with its own name (NamespaceDefaultLabelName).
        if let Some(labels) = child(meta_mut(obj), "labels") {
            labels.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(name.clone()),
            );
        }
    }
    let Value::Object(map) = obj else {
        return;
    };
    match def.kind {
        "Pod" => {
            if let Some(spec) = child(map, "spec") {
                pod_spec(spec);
                // SetDefaults_Pod (not the PodSpec of templates).
                default(spec, "enableServiceLinks", json!(true));
                // The ServiceAccount admission plugin names the default account.
                if !spec.contains_key("serviceAccountName") {
                    let sa = spec
                        .get("serviceAccount")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_owned();
                    spec.insert("serviceAccountName".into(), json!(sa));
                }
                // The Priority admission plugin, with no PriorityClass named and none global
                // default: priority 0, preempting lower priorities.
                if !spec.contains_key("priorityClassName") {
                    default(spec, "priority", json!(0));
                }
                default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            }
            if let Some(status) = child(map, "status") {
                default(status, "phase", json!("Pending"));
            }
            let qos = qos_class(map.get("spec"));
            if let Some(status) = child(map, "status") {
                default(status, "qosClass", json!(qos));
            }
        }
        "Deployment" => {
            if let Some(spec) = child(map, "spec") {
                default(spec, "replicas", json!(1));
                // kube's SetDefaults_Deployment: field by field, so `strategy: {}` (what
                // `kubectl create deployment` sends) is filled too.
                if let Some(strategy) = child(spec, "strategy") {
                    default(strategy, "type", json!("RollingUpdate"));
                    if strategy.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(rolling) = child(strategy, "rollingUpdate") {
                            default(rolling, "maxUnavailable", json!("25%"));
                            default(rolling, "maxSurge", json!("25%"));
                        }
                    }
                }
                default(spec, "revisionHistoryLimit", json!(10));
                default(spec, "progressDeadlineSeconds", json!(600));
                pod_template(spec);
            }
            // DeploymentStatus has no field kube always writes: an empty status.
            default(map, "status", json!({}));
        }
        "ReplicaSet" => {
            if let Some(spec) = child(map, "spec") {
                default(spec, "replicas", json!(1));
                pod_template(spec);
            }
            // ReplicaSetStatus.replicas is written even when 0.
            if let Some(status) = child(map, "status") {
                default(status, "replicas", json!(0));
            }
        }
        "DaemonSet" => {
            if let Some(spec) = child(map, "spec") {
                // kube's SetDefaults_DaemonSet.
                if let Some(strategy) = child(spec, "updateStrategy") {
                    default(strategy, "type", json!("RollingUpdate"));
                    if strategy.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(rolling) = child(strategy, "rollingUpdate") {
                            default(rolling, "maxUnavailable", json!(1));
                            default(rolling, "maxSurge", json!(0));
                        }
                    }
                }
                default(spec, "revisionHistoryLimit", json!(10));
                pod_template(spec);
            }
        }
        "Service" => {
            if let Some(spec) = child(map, "spec") {
                service_spec(spec);
            }
            // ServiceStatus.loadBalancer is a struct kube always writes.
            if let Some(status) = child(map, "status") {
                default(status, "loadBalancer", json!({}));
            }
        }
        "Node" => {
            // Convert_v1_NodeSpec_To_core_NodeSpec: podCIDR alone fills podCIDRs.
            if let Some(spec) = child(map, "spec") {
                if let Some(cidr) = spec.get("podCIDR").and_then(Value::as_str) {
                    if !cidr.is_empty() {
                        let cidr = cidr.to_owned();
                        default(spec, "podCIDRs", json!([cidr]));
                    }
                }
            }
            // NodeStatus.daemonEndpoints and nodeInfo are structs kube always writes.
            if let Some(status) = child(map, "status") {
                default(
                    status,
                    "daemonEndpoints",
                    json!({"kubeletEndpoint": {"Port": 0}}),
                );
                if let Some(info) = child(status, "nodeInfo") {
                    for field in [
                        "machineID",
                        "systemUUID",
                        "bootID",
                        "kernelVersion",
                        "osImage",
                        "containerRuntimeVersion",
                        "kubeletVersion",
                        "kubeProxyVersion",
                        "operatingSystem",
                        "architecture",
                    ] {
                        default(info, field, json!(""));
                    }
                }
            }
        }
        "Event" if def.group.is_empty() => {
            // core/v1 Event's times are structs kube writes even when unset (null).
            for time in ["firstTimestamp", "lastTimestamp", "eventTime"] {
                default(map, time, Value::Null);
            }
            for field in ["reportingComponent", "reportingInstance"] {
                default(map, field, json!(""));
            }
            default(map, "source", json!({}));
        }
        "EndpointSlice" => {
            // Endpoint.conditions is a struct kube always writes.
            if let Some(endpoints) = map.get_mut("endpoints").and_then(Value::as_array_mut) {
                for e in endpoints.iter_mut().filter_map(Value::as_object_mut) {
                    default(e, "conditions", json!({}));
                }
            }
        }
        "Namespace" => {
            if let Some(spec) = child(map, "spec") {
                default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = child(map, "status") {
                default(status, "phase", json!("Active"));
            }
        }
        "Secret" => {
            default(map, "type", json!("Opaque"));
            fold_string_data(map);
        }
        "Endpoints" => {
            // SetDefaults_EndpointPort.
            for subset in map
                .get_mut("subsets")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for port in subset
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    default(port, "protocol", json!("TCP"));
                }
            }
        }
        "PersistentVolume" if def.group.is_empty() => {
            if let Some(spec) = child(map, "spec") {
                // SetDefaults_PersistentVolume.
                default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                default(spec, "volumeMode", json!("Filesystem"));
                // SetDefaults_HostPathVolumeSource.
                if let Some(host_path) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
                    default(host_path, "type", json!(""));
                }
            }
            // The strategy's PrepareForCreate starts a new volume Pending, stamped now; an
            // update keeps the stored status, which has its phase.
            if let Some(status) = child(map, "status") {
                if !status.contains_key("phase") {
                    status.insert("phase".into(), json!("Pending"));
                    status.insert(
                        "lastPhaseTransitionTime".into(),
                        json!(super::meta::now_timestamp()),
                    );
                }
            }
        }
        "PersistentVolumeClaim" if def.group.is_empty() => claim_defaults(map),
        "ReplicationController" if def.group.is_empty() => {
            // SetDefaults_ReplicationController: the template's labels are the selector and
            // the labels when those are empty.
            let labels = map
                .get("spec")
                .and_then(|s| s.pointer("/template/metadata/labels"))
                .filter(|l| l.is_object())
                .cloned();
            if let Some(spec) = child(map, "spec") {
                if let Some(labels) = &labels {
                    if spec
                        .get("selector")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty)
                    {
                        spec.insert("selector".into(), labels.clone());
                    }
                }
                default(spec, "replicas", json!(1));
                // The template is a pointer in kube's RC: an absent one stays absent.
                if spec.contains_key("template") {
                    pod_template(spec);
                }
            }
            if let Some(labels) = labels {
                let meta = meta_mut(obj);
                if meta
                    .get("labels")
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty)
                {
                    meta.insert("labels".into(), labels);
                }
            }
            if let Some(status) = obj.as_object_mut().and_then(|m| child(m, "status")) {
                default(status, "replicas", json!(0));
            }
        }
        "StatefulSet" => {
            if let Some(spec) = child(map, "spec") {
                // SetDefaults_StatefulSet (MaxUnavailableStatefulSet is off in 1.34).
                default(spec, "podManagementPolicy", json!("OrderedReady"));
                if let Some(strategy) = child(spec, "updateStrategy") {
                    if !strategy.contains_key("type") {
                        strategy.insert("type".into(), json!("RollingUpdate"));
                        default(strategy, "rollingUpdate", json!({}));
                    }
                    if strategy.get("type") == Some(&json!("RollingUpdate")) {
                        if let Some(rolling) = strategy
                            .get_mut("rollingUpdate")
                            .and_then(Value::as_object_mut)
                        {
                            default(rolling, "partition", json!(0));
                        }
                    }
                }
                if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
                    default(policy, "whenDeleted", json!("Retain"));
                    default(policy, "whenScaled", json!("Retain"));
                }
                default(spec, "replicas", json!(1));
                default(spec, "revisionHistoryLimit", json!(10));
                pod_template(spec);
                // Each volume claim template is defaulted as a claim is, and carries the type
                // apps/v1's conversion writes on every template, whatever the client sent
                // (Convert_apps_StatefulSetSpec_To_v1_StatefulSetSpec).
                let templates = spec
                    .get_mut("volumeClaimTemplates")
                    .and_then(Value::as_array_mut);
                for claim in templates
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    claim.insert("apiVersion".into(), json!("v1"));
                    claim.insert("kind".into(), json!("PersistentVolumeClaim"));
                    claim_defaults(claim);
                }
            }
            // StatefulSetStatus.replicas and availableReplicas are written even when 0.
            if let Some(status) = child(map, "status") {
                default(status, "replicas", json!(0));
                default(status, "availableReplicas", json!(0));
            }
        }
        "PodDisruptionBudget" => {
            // PodDisruptionBudgetStatus's counts are written even when 0.
            if let Some(status) = child(map, "status") {
                for field in [
                    "disruptionsAllowed",
                    "currentHealthy",
                    "desiredHealthy",
                    "expectedPods",
                ] {
                    default(status, field, json!(0));
                }
            }
        }
        "StorageClass" => {
            default(map, "reclaimPolicy", json!("Delete"));
            default(map, "volumeBindingMode", json!("Immediate"));
        }
        "CSIDriver" => {
            if let Some(spec) = child(map, "spec") {
                // SetDefaults_CSIDriver (SELinuxMountReadWriteOncePod is on in 1.34).
                default(spec, "attachRequired", json!(true));
                default(spec, "podInfoOnMount", json!(false));
                default(spec, "storageCapacity", json!(false));
                default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
                if spec
                    .get("volumeLifecycleModes")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                {
                    spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
                }
                default(spec, "requiresRepublish", json!(false));
                default(spec, "seLinuxMount", json!(false));
            }
        }
        "VolumeAttachment" => {
            // VolumeAttachmentStatus.attached is written even when false.
            if let Some(status) = child(map, "status") {
                default(status, "attached", json!(false));
            }
        }
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
            if def.group == "admissionregistration.k8s.io" =>
        {
            let mutating = def.kind == "MutatingWebhookConfiguration";
            for hook in objects_in(map, "webhooks") {
                webhook(hook, mutating);
            }
        }
        "ValidatingAdmissionPolicy" if def.group == "admissionregistration.k8s.io" => {
            if let Some(spec) = child(map, "spec") {
                // SetDefaults_ValidatingAdmissionPolicySpec.
                default(spec, "failurePolicy", json!("Fail"));
                if let Some(m) = spec
                    .get_mut("matchConstraints")
                    .and_then(Value::as_object_mut)
                {
                    match_resources(m);
                }
            }
            // ValidatingAdmissionPolicyStatus is a struct kube always writes.
            default(map, "status", json!({}));
        }
        "ValidatingAdmissionPolicyBinding" if def.group == "admissionregistration.k8s.io" => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                if let Some(m) = spec
                    .get_mut("matchResources")
                    .and_then(Value::as_object_mut)
                {
                    match_resources(m);
                }
            }
        }
        "ResourceClaim" if def.group == "resource.k8s.io" => {
            if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                claim_spec(spec);
            }
            // ResourceClaimStatus is a struct kube always writes.
            default(map, "status", json!({}));
        }
        "ResourceClaimTemplate" if def.group == "resource.k8s.io" => {
            if let Some(template) = child(map, "spec") {
                // The template's ObjectMeta is a struct kube always writes.
                default(template, "metadata", json!({}));
                if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
                    claim_spec(spec);
                }
            }
        }
        _ => {}
    }
}

/// The objects in the list `obj[key]` (none when absent or not a list).
fn objects_in<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook, with their service references
/// (SetDefaults_ServiceReference) and rules (SetDefaults_Rule).
fn webhook(hook: &mut Map<String, Value>, mutating: bool) {
    default(hook, "failurePolicy", json!("Fail"));
    default(hook, "matchPolicy", json!("Equivalent"));
    default(hook, "namespaceSelector", json!({}));
    default(hook, "objectSelector", json!({}));
    default(hook, "timeoutSeconds", json!(10));
    if mutating {
        default(hook, "reinvocationPolicy", json!("Never"));
    }
    if let Some(service) = hook
        .get_mut("clientConfig")
        .and_then(Value::as_object_mut)
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        default(service, "port", json!(443));
    }
    for rule in objects_in(hook, "rules") {
        default(rule, "scope", json!("*"));
    }
}

/// SetDefaults_MatchResources, with the rules' SetDefaults_Rule.
fn match_resources(m: &mut Map<String, Value>) {
    default(m, "matchPolicy", json!("Equivalent"));
    default(m, "namespaceSelector", json!({}));
    default(m, "objectSelector", json!({}));
    for key in ["resourceRules", "excludeResourceRules"] {
        for rule in objects_in(m, key) {
            default(rule, "scope", json!("*"));
        }
    }
}

/// SetDefaults_PersistentVolumeClaim and SetDefaults_PersistentVolumeClaimSpec, of a claim or
/// a StatefulSet's claim template.
fn claim_defaults(claim: &mut Map<String, Value>) {
    if let Some(spec) = child(claim, "spec") {
        default(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(claim, "status") {
        default(status, "phase", json!("Pending"));
    }
}

/// The defaults of a `resource.k8s.io/v1` ResourceClaimSpec (SetObjectDefaults_ResourceClaim):
/// a request or subrequest asks for exactly one device unless told otherwise, and a toleration's
/// operator is `Equal`.
fn claim_spec(spec: &mut Map<String, Value>) {
    let requests = spec
        .get_mut("devices")
        .and_then(|d| d.get_mut("requests"))
        .and_then(Value::as_array_mut);
    for request in requests
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        if let Some(exactly) = request.get_mut("exactly").and_then(Value::as_object_mut) {
            device_request(exactly);
        }
        let subrequests = request
            .get_mut("firstAvailable")
            .and_then(Value::as_array_mut);
        for sub in subrequests
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            device_request(sub);
        }
    }
}

/// SetDefaults_ExactDeviceRequest and SetDefaults_DeviceSubRequest, with their tolerations.
fn device_request(request: &mut Map<String, Value>) {
    default(request, "allocationMode", json!("ExactCount"));
    let count = request.get("count").and_then(Value::as_i64).unwrap_or(0);
    if request.get("allocationMode") == Some(&json!("ExactCount")) && count == 0 {
        request.insert("count".into(), json!(1));
    }
    let tolerations = request.get_mut("tolerations").and_then(Value::as_array_mut);
    for t in tolerations
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        default(t, "operator", json!("Equal"));
    }
}

/// `stringData` is write-only: kube merges it into `data` (base64, winning over `data`) and
/// never stores it.
fn fold_string_data(secret: &mut Map<String, Value>) {
    use base64::Engine as _;
    let Some(Value::Object(strings)) = secret.remove("stringData") else {
        return;
    };
    if let Some(data) = child(secret, "data") {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k, Value::String(encoded));
        }
    }
}

fn pod_template(spec: &mut Map<String, Value>) {
    if let Some(template) = child(spec, "template") {
        if let Some(pod) = child(template, "spec") {
            pod_spec(pod);
        }
    }
}

fn pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                container(c);
            }
        }
    }
}

fn container(c: &mut Map<String, Value>) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    default(c, "imagePullPolicy", json!(pull_policy(image)));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent` (a digest counts as a tag).
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    // The tag follows the last ':' after the last '/' (a registry port is not a tag).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// kube's QoS class: BestEffort without any requests or limits, Guaranteed when every
/// container's limits equal its requests for cpu and memory, Burstable otherwise.
fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let has = |c: &Value, k: &str| {
        c.pointer(&format!("/resources/{k}"))
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    };
    if !containers
        .iter()
        .any(|c| has(c, "requests") || has(c, "limits"))
    {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = c.pointer(&format!("/resources/limits/{r}"));
            let request = c.pointer(&format!("/resources/requests/{r}")).or(limit);
            limit.is_some() && limit == request
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn service_spec(spec: &mut Map<String, Value>) {
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    let kind = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if kind != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    // kube's service.ExternallyAccessible.
    let external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    let externally_accessible = matches!(kind.as_str(), "NodePort" | "LoadBalancer")
        || (kind == "ClusterIP" && external_ips);
    if externally_accessible
        && spec
            .get("externalTrafficPolicy")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                default(p, "targetPort", port);
            }
        }
    }
    // A ClusterIP is allocated before defaulting; its families follow.
    let has_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .is_some_and(|ip| !ip.is_empty() && ip != "None");
    if has_ip {
        if let Some(ip) = spec.get("clusterIP").cloned() {
            default(spec, "clusterIPs", json!([ip]));
        }
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
}

/// On update, values the server allocated (a Service's ClusterIP) survive a client that left
/// them out, as kube's service REST `patchAllocatedValues` does.
pub(crate) fn carry_allocated(def: &ResourceDef, old: &Value, new: &mut Value) {
    if def.kind != "Service" {
        return;
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let missing = spec
            .get(field)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if missing {
            if let Some(v) = old.pointer(&format!("/spec/{field}")) {
                spec.insert(field.into(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn deployment_strategies_are_defaulted_field_by_field() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"strategy": {}, "template": {"spec": {}}}});
        let def = lookup("apps", "v1", "deployments").expect("deployments");
        apply(def, &mut d);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let mut r = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "r"},
            "spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {}}}});
        apply(def, &mut r);
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn pods_get_kubes_defaults() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}});
        apply(pods, &mut p);
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        assert_eq!(p["spec"]["restartPolicy"], "Always");
        assert_eq!(p["spec"]["serviceAccountName"], "default");
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            p["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(p["spec"]["containers"][1]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            p["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
    }

    #[test]
    fn templates_get_the_pod_spec_defaults_but_not_the_pods_own() {
        let ds = lookup("apps", "v1", "daemonsets").expect("daemonsets");
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "nginx"}]}}}});
        apply(ds, &mut d);
        let template = &d["spec"]["template"]["spec"];
        assert_eq!(template["restartPolicy"], "Always");
        assert!(template.get("serviceAccountName").is_none(), "{template}");
        assert!(template.get("enableServiceLinks").is_none(), "{template}");
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    }

    #[test]
    fn pull_policy_reads_the_tag_not_the_registry_port() {
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("app:latest"), "Always");
        assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn services_and_namespaces_are_defaulted() {
        let svc = lookup("", "v1", "services").expect("services");
        let mut s = json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}});
        apply(svc, &mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        let ns = lookup("", "v1", "namespaces").expect("namespaces");
        let mut n = json!({"metadata": {"name": "team"}});
        apply(ns, &mut n);
        assert_eq!(n["status"]["phase"], "Active");
        assert_eq!(n["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
    }

    #[test]
    fn volumes_and_claims_get_kubes_defaults() {
        let pvs = lookup("", "v1", "persistentvolumes").expect("pvs");
        let mut v = json!({"metadata": {"name": "v"}, "spec": {"hostPath": {"path": "/x"}}});
        apply(pvs, &mut v);
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["spec"]["volumeMode"], "Filesystem");
        assert_eq!(v["spec"]["hostPath"]["type"], "");
        assert_eq!(v["status"]["phase"], "Pending");
        assert!(v["status"]["lastPhaseTransitionTime"].is_string(), "{v}");
        // A stored status (an update) keeps its phase and time.
        let mut bound = json!({"spec": {}, "status": {"phase": "Bound"}});
        apply(pvs, &mut bound);
        assert_eq!(bound["status"], json!({"phase": "Bound"}));
        let pvcs = lookup("", "v1", "persistentvolumeclaims").expect("pvcs");
        let mut c = json!({"metadata": {"name": "c"}, "spec": {}});
        apply(pvcs, &mut c);
        assert_eq!(c["spec"]["volumeMode"], "Filesystem");
        assert_eq!(c["status"]["phase"], "Pending");
    }

    /// An RC takes its selector and labels from its template when it has none, and an absent
    /// template stays absent (a pointer in kube).
    #[test]
    fn replication_controllers_take_the_templates_labels() {
        let rcs = lookup("", "v1", "replicationcontrollers").expect("rcs");
        let mut r = json!({"metadata": {"name": "r"}, "spec": {"template": {
            "metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        apply(rcs, &mut r);
        assert_eq!(r["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(r["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(r["spec"]["replicas"], 1);
        assert_eq!(r["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(r["status"], json!({"replicas": 0}));
        let mut own = json!({"metadata": {"name": "r", "labels": {"x": "y"}},
            "spec": {"selector": {"app": "a", "tier": "t"}}});
        apply(rcs, &mut own);
        assert_eq!(own["metadata"]["labels"], json!({"x": "y"}));
        assert!(own["spec"].get("template").is_none(), "{own}");
    }

    #[test]
    fn statefulsets_and_storage_kinds_get_kubes_defaults() {
        let sts = lookup("apps", "v1", "statefulsets").expect("sts");
        let mut s = json!({"metadata": {"name": "s"}, "spec": {"template": {"spec": {}}}});
        apply(sts, &mut s);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
        let mut claims = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"]}}]}});
        apply(sts, &mut claims);
        assert_eq!(
            claims["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            claims["spec"]["volumeClaimTemplates"][0]["status"],
            json!({"phase": "Pending"})
        );
        assert_eq!(
            claims["spec"]["volumeClaimTemplates"][0]["kind"],
            "PersistentVolumeClaim"
        );
        let mut ondelete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        apply(sts, &mut ondelete);
        assert_eq!(
            ondelete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );

        let scs = lookup("storage.k8s.io", "v1", "storageclasses").expect("scs");
        let mut c = json!({"provisioner": "a.io/b", "reclaimPolicy": "Retain"});
        apply(scs, &mut c);
        assert_eq!(c["reclaimPolicy"], "Retain");
        assert_eq!(c["volumeBindingMode"], "Immediate");

        let drivers = lookup("storage.k8s.io", "v1", "csidrivers").expect("drivers");
        let mut d = json!({"spec": {"volumeLifecycleModes": []}});
        apply(drivers, &mut d);
        assert_eq!(
            d["spec"],
            json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                "requiresRepublish": false, "seLinuxMount": false})
        );
    }

    #[test]
    fn admission_configuration_gets_kubes_defaults() {
        let adm = "admissionregistration.k8s.io";
        let mwcs = lookup(adm, "v1", "mutatingwebhookconfigurations").expect("mwcs");
        let mut m = json!({"webhooks": [{"name": "a.b.c", "timeoutSeconds": 5,
            "clientConfig": {"service": {"namespace": "n", "name": "s"}},
            "rules": [{"operations": ["*"]}]}]});
        apply(mwcs, &mut m);
        assert_eq!(
            m["webhooks"][0],
            json!({"name": "a.b.c", "timeoutSeconds": 5, "failurePolicy": "Fail",
                "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
                "reinvocationPolicy": "Never",
                "clientConfig": {"service": {"namespace": "n", "name": "s", "port": 443}},
                "rules": [{"operations": ["*"], "scope": "*"}]})
        );
        let vwcs = lookup(adm, "v1", "validatingwebhookconfigurations").expect("vwcs");
        let mut v = json!({"webhooks": [{"name": "a.b.c", "failurePolicy": "Ignore"}]});
        apply(vwcs, &mut v);
        assert_eq!(v["webhooks"][0]["failurePolicy"], "Ignore");
        assert_eq!(v["webhooks"][0]["timeoutSeconds"], 10);
        assert!(v["webhooks"][0].get("reinvocationPolicy").is_none(), "{v}");

        let vaps = lookup(adm, "v1", "validatingadmissionpolicies").expect("vaps");
        let mut p = json!({"spec": {"matchConstraints": {"excludeResourceRules": [{}]}}});
        apply(vaps, &mut p);
        assert_eq!(p["status"], json!({}));
        assert_eq!(
            p["spec"],
            json!({"failurePolicy": "Fail", "matchConstraints": {"matchPolicy": "Equivalent",
                "namespaceSelector": {}, "objectSelector": {},
                "excludeResourceRules": [{"scope": "*"}]}})
        );
        let bindings = lookup(adm, "v1", "validatingadmissionpolicybindings").expect("vapbs");
        let mut b = json!({"spec": {"policyName": "p"}});
        apply(bindings, &mut b);
        assert_eq!(b["spec"], json!({"policyName": "p"}));
    }

    #[test]
    fn device_requests_ask_for_exactly_one_device() {
        let claims = lookup("resource.k8s.io", "v1", "resourceclaims").expect("claims");
        let mut c = json!({"spec": {"devices": {"requests": [
            {"name": "a", "exactly": {"deviceClassName": "g", "tolerations": [{"key": "k"}]}},
            {"name": "b", "exactly": {"deviceClassName": "g", "allocationMode": "All"}},
            {"name": "c", "firstAvailable": [{"name": "x", "deviceClassName": "g"}]}]}}});
        apply(claims, &mut c);
        let requests = &c["spec"]["devices"]["requests"];
        assert_eq!(requests[0]["exactly"]["allocationMode"], "ExactCount");
        assert_eq!(requests[0]["exactly"]["count"], 1);
        assert_eq!(
            requests[0]["exactly"]["tolerations"][0]["operator"],
            "Equal"
        );
        assert!(requests[1]["exactly"].get("count").is_none(), "{c}");
        assert_eq!(requests[2]["firstAvailable"][0]["count"], 1);
        assert_eq!(c["status"], json!({}));
        let templates = lookup("resource.k8s.io", "v1", "resourceclaimtemplates").expect("t");
        let mut t = json!({"spec": {"spec": {"devices": {"requests": [
            {"name": "a", "exactly": {"deviceClassName": "g"}}]}}}});
        apply(templates, &mut t);
        assert_eq!(t["spec"]["metadata"], json!({}));
        assert_eq!(
            t["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"],
            1
        );
    }

    #[test]
    fn secrets_fold_string_data_into_data() {
        let secrets = lookup("", "v1", "secrets").expect("secrets");
        let mut s = json!({"data": {"a": "eA=="}, "stringData": {"b": "hi"}});
        apply(secrets, &mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "eA==", "b": "aGk="}, "type": "Opaque"})
        );
    }
}
