//! The API, differentially: the same table of requests sent in order to kgate and to the real
//! kube-apiserver v1.34.2 — every verb on every resource kgate stores, selectors, `limit` and
//! `continue`, the patch types and server-side apply, dry run, generateName, conflicts,
//! finalizers and deletion propagation, field validation, protobuf and Table output, and the
//! error paths — comparing status codes, `Content-Type`, `Warning` headers and bodies (see
//! `kgate_e2e::differential`). Every difference must be listed in
//! `tests/kube-reference/known-differences.md` (`api:CASE`).
//!
//! Both run without controllers (kgate with `--controllers= --nodes=0`, the reference without
//! kube-controller-manager), so that nothing but the table changes either server's state.

use kgate_e2e::differential::{delete, get, patch, post, put, Case, Compare, Differential, Who};
use kgate_e2e::reference::Reference;
use kgate_e2e::{Kgate, Options};
use serde_json::{json, Value};

const NS: &str = "diff-api";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const SMP: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
const PROTOBUF: &str = "Accept: application/vnd.kubernetes.protobuf";
const TABLE: &str = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io";
const ALICE: Who = Who::User("alice", &["dev"]);

fn up() -> (Kgate, Reference) {
    std::thread::scope(|s| {
        let reference = s.spawn(Reference::up);
        let kgate = Kgate::up_with(Options {
            gateway_args: vec!["--controllers=".into(), "--nodes=0".into()],
            ..Options::default()
        });
        (
            kgate,
            reference.join().expect("the reference failed to start"),
        )
    })
}

/// A resource the table drives through every verb.
struct Resource {
    /// Short id prefix of its cases.
    id: &'static str,
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    prefix: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// A valid object (without metadata; the name and the label `diff: api` are added).
    object: Value,
    /// A merge patch for the `patch` verb.
    merge: Value,
}

impl Resource {
    fn collection(&self) -> String {
        if self.namespaced {
            format!("{}/namespaces/{NS}/{}", self.prefix, self.plural)
        } else {
            format!("{}/{}", self.prefix, self.plural)
        }
    }

    fn item(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    fn named(&self, name: &str) -> Value {
        let mut object = self.object.clone();
        object["metadata"] = json!({"name": name, "labels": {"diff": "api", "set": self.id}});
        object
    }

    /// create, get, list, list across namespaces, update, patch, watch, delete,
    /// deletecollection, and the answers after deleting.
    fn verbs(&self) -> Vec<Case> {
        let id = |verb: &str| format!("{}-{verb}", self.id);
        let a = format!("{}-a", self.id.replace('.', "-"));
        let b = format!("{}-b", self.id.replace('.', "-"));
        let selector = format!("labelSelector=set%3D{}", self.id);
        let mut updated = self.named(&a);
        updated["metadata"]["labels"]["updated"] = json!("yes");
        let mut cases = vec![
            post(&id("create"), &self.collection(), self.named(&a)),
            post(&id("create-b"), &self.collection(), self.named(&b)),
            // `kubectl get`: the kind's printer columns and both rows.
            get(&id("table"), &format!("{}?{selector}", self.collection()))
                .header(TABLE)
                .compare(Compare::Table),
            get(&id("get"), &self.item(&a)),
            get(&id("list"), &format!("{}?{selector}", self.collection())),
            put(&id("update"), &self.item(&a), updated),
            patch(&id("patch"), &self.item(&a), MERGE, self.merge.clone()),
            get(
                &id("watch"),
                &format!("{}?watch=1&timeoutSeconds=1&{selector}", self.collection()),
            )
            .compare(Compare::Watch),
            delete(&id("delete"), &self.item(&a)),
            get(&id("get-deleted"), &self.item(&a)),
            delete(
                &id("deletecollection"),
                &format!("{}?{selector}", self.collection()),
            ),
            get(
                &id("list-after"),
                &format!("{}?{selector}", self.collection()),
            ),
        ];
        if self.namespaced {
            cases.insert(
                5,
                get(
                    &id("list-all-namespaces"),
                    &format!("{}/{}?{selector}", self.prefix, self.plural),
                ),
            );
        }
        cases
    }
}

fn resources() -> Vec<Resource> {
    let template = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    });
    vec![
        Resource {
            id: "cm",
            prefix: "/api/v1",
            plural: "configmaps",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}),
            merge: json!({"data": {"k2": "v2"}}),
        },
        Resource {
            id: "secret",
            prefix: "/api/v1",
            plural: "secrets",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "data": {"k": "dg=="}}),
            merge: json!({"stringData": {"k2": "v2"}}),
        },
        Resource {
            id: "pod",
            prefix: "/api/v1",
            plural: "pods",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "Pod",
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "svc",
            prefix: "/api/v1",
            plural: "services",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "Service",
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
            merge: json!({"spec": {"ports": [{"port": 8080}]}}),
        },
        Resource {
            id: "ep",
            prefix: "/api/v1",
            plural: "endpoints",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "Endpoints", "subsets": [
                {"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "sa",
            prefix: "/api/v1",
            plural: "serviceaccounts",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "ServiceAccount"}),
            merge: json!({"automountServiceAccountToken": false}),
        },
        Resource {
            id: "event",
            prefix: "/api/v1",
            plural: "events",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "Event",
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": NS},
                "reason": "Tested", "message": "m", "type": "Normal", "count": 1}),
            merge: json!({"count": 2}),
        },
        Resource {
            id: "node",
            prefix: "/api/v1",
            plural: "nodes",
            namespaced: false,
            object: json!({"apiVersion": "v1", "kind": "Node", "spec": {"podCIDR": "10.2.0.0/24"}}),
            merge: json!({"spec": {"unschedulable": true}}),
        },
        Resource {
            id: "deploy",
            prefix: "/apis/apps/v1",
            plural: "deployments",
            namespaced: true,
            object: json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {
                "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            merge: json!({"spec": {"replicas": 2}}),
        },
        Resource {
            id: "rs",
            prefix: "/apis/apps/v1",
            plural: "replicasets",
            namespaced: true,
            object: json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {
                "replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
            merge: json!({"spec": {"replicas": 3}}),
        },
        Resource {
            id: "role",
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "roles",
            namespaced: true,
            object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
            merge: json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
        },
        Resource {
            id: "clusterrole",
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "clusterroles",
            namespaced: false,
            object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "rules": [{"nonResourceURLs": ["/diff"], "verbs": ["get"]}]}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "rolebinding",
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "rolebindings",
            namespaced: true,
            object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]}),
            merge: json!({"subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]}),
        },
        Resource {
            id: "clusterrolebinding",
            prefix: "/apis/rbac.authorization.k8s.io/v1",
            plural: "clusterrolebindings",
            namespaced: false,
            object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}]}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "lease",
            prefix: "/apis/coordination.k8s.io/v1",
            plural: "leases",
            namespaced: true,
            object: json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "spec": {"holderIdentity": "h", "leaseDurationSeconds": 15}}),
            merge: json!({"spec": {"holderIdentity": "h2"}}),
        },
        Resource {
            id: "endpointslice",
            prefix: "/apis/discovery.k8s.io/v1",
            plural: "endpointslices",
            namespaced: true,
            object: json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.2"]}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "pv",
            prefix: "/api/v1",
            plural: "persistentvolumes",
            namespaced: false,
            object: json!({"apiVersion": "v1", "kind": "PersistentVolume", "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/diff"}}}),
            merge: json!({"spec": {"capacity": {"storage": "2Gi"}}}),
        },
        Resource {
            id: "pvc",
            prefix: "/api/v1",
            plural: "persistentvolumeclaims",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "rc",
            prefix: "/api/v1",
            plural: "replicationcontrollers",
            namespaced: true,
            object: json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {
                "replicas": 1, "selector": {"app": "web"}, "template": template}}),
            merge: json!({"spec": {"replicas": 2}}),
        },
        Resource {
            id: "sts",
            prefix: "/apis/apps/v1",
            plural: "statefulsets",
            namespaced: true,
            object: json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {
                "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                "template": template}}),
            merge: json!({"spec": {"replicas": 2}}),
        },
        Resource {
            id: "pdb",
            prefix: "/apis/policy/v1",
            plural: "poddisruptionbudgets",
            namespaced: true,
            object: json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "spec": {
                "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
            merge: json!({"spec": {"minAvailable": 2}}),
        },
        Resource {
            id: "csidriver",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csidrivers",
            namespaced: false,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "spec": {"attachRequired": false}}),
            merge: json!({"spec": {"podInfoOnMount": true}}),
        },
        Resource {
            id: "csinode",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csinodes",
            namespaced: false,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "spec": {
                "drivers": [{"name": "diff.example.com", "nodeID": "n1", "topologyKeys": ["zone"]}]}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "csisc",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "csistoragecapacities",
            namespaced: true,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity",
                "storageClassName": "fast", "capacity": "1Gi"}),
            merge: json!({"capacity": "2Gi"}),
        },
        Resource {
            id: "sc",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "storageclasses",
            namespaced: false,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "provisioner": "example.com/diff", "parameters": {"type": "fast"}}),
            merge: json!({"allowVolumeExpansion": true}),
        },
        Resource {
            id: "va",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "volumeattachments",
            namespaced: false,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "spec": {
                "attacher": "diff.example.com", "nodeName": "n1",
                "source": {"persistentVolumeName": "pv-1"}}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "vac",
            prefix: "/apis/storage.k8s.io/v1",
            plural: "volumeattributesclasses",
            namespaced: false,
            object: json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttributesClass",
                "driverName": "example.com/diff", "parameters": {"iops": "100"}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "deviceclass",
            prefix: "/apis/resource.k8s.io/v1",
            plural: "deviceclasses",
            namespaced: false,
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "spec": {
                "selectors": [{"cel": {"expression": "device.driver == \"example.com\""}}]}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "resourceclaim",
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceclaims",
            namespaced: true,
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "spec": {
                "devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpus"}}]}}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "resourceclaimtemplate",
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceclaimtemplates",
            namespaced: true,
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "spec": {"spec": {"devices": {"requests": [
                    {"name": "gpu", "exactly": {"deviceClassName": "gpus"}}]}}}}),
            merge: json!({"metadata": {"annotations": {"a": "b"}}}),
        },
        Resource {
            id: "resourceslice",
            prefix: "/apis/resource.k8s.io/v1",
            plural: "resourceslices",
            namespaced: false,
            object: json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "spec": {
                "driver": "example.com", "nodeName": "n1",
                "pool": {"name": "n1", "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0"}]}}),
            merge: json!({"spec": {"pool": {"generation": 2}}}),
        },
        // Admission configuration: the rules name a resource neither server serves, so the
        // reference's admission chain never calls these webhooks or evaluates these policies.
        Resource {
            id: "vwc",
            prefix: ADMISSION,
            plural: "validatingwebhookconfigurations",
            namespaced: false,
            object: json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration", "webhooks": [webhook("v.diff.example.com")]}),
            merge: json!({"webhooks": [webhook("w.diff.example.com")]}),
        },
        Resource {
            id: "mwc",
            prefix: ADMISSION,
            plural: "mutatingwebhookconfigurations",
            namespaced: false,
            object: json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration", "webhooks": [webhook("m.diff.example.com")]}),
            merge: json!({"webhooks": [webhook("n.diff.example.com"), webhook("o.diff.example.com")]}),
        },
        Resource {
            id: "vap",
            prefix: ADMISSION,
            plural: "validatingadmissionpolicies",
            namespaced: false,
            object: json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy", "spec": {
                    "matchConstraints": {"resourceRules": [{"apiGroups": ["diff.example.com"],
                        "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["widgets"]}]},
                    "validations": [{"expression": "object.metadata.name != 'forbidden'"}]}}),
            merge: json!({"spec": {"validations": [{"expression": "true", "message": "m"}]}}),
        },
        Resource {
            id: "vapb",
            prefix: ADMISSION,
            plural: "validatingadmissionpolicybindings",
            namespaced: false,
            object: json!({"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "spec": {"policyName": "vap-a", "validationActions": ["Deny"]}}),
            merge: json!({"spec": {"validationActions": ["Warn", "Audit"]}}),
        },
    ]
}

const ADMISSION: &str = "/apis/admissionregistration.k8s.io/v1";

/// A webhook that no request reaches: its rule names a resource neither server serves.
fn webhook(name: &str) -> Value {
    json!({"name": name, "clientConfig": {"url": "https://example.com/validate"},
        "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "rules": [{"apiGroups": ["diff.example.com"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["widgets"]}]})
}

/// The kinds served for kube-scheduler beyond the verbs: their scale subresources, field
/// selectors, and the validation a user is most likely to meet (required fields on create,
/// immutable fields on update).
fn scheduler_kinds(d: &mut Differential<'_>) {
    let rcs = format!("/api/v1/namespaces/{NS}/replicationcontrollers");
    let stss = format!("/apis/apps/v1/namespaces/{NS}/statefulsets");
    let pvcs = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    let pvs = "/api/v1/persistentvolumes";
    let scs = "/apis/storage.k8s.io/v1/storageclasses";
    let vas = "/apis/storage.k8s.io/v1/volumeattachments";
    let drivers = "/apis/storage.k8s.io/v1/csidrivers";
    let claims = format!("/apis/resource.k8s.io/v1/namespaces/{NS}/resourceclaims");
    let slices = "/apis/resource.k8s.io/v1/resourceslices";
    let template = json!({"metadata": {"labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "kinds-rc"}, "spec": {"template": template}});
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kinds-sts"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template}});
    let slice = |name: &str, node: &str, driver: &str| {
        json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name},
            "spec": {"driver": driver, "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "d0"}]}})
    };
    #[rustfmt::skip]
    let cases = vec![
        // Scale.
        post("kinds-rc-setup", &rcs, rc.clone()),
        get("kinds-rc-scale", &format!("{rcs}/kinds-rc/scale")),
        patch("kinds-rc-scale-patch", &format!("{rcs}/kinds-rc/scale"), MERGE, json!({"spec": {"replicas": 3}})),
        put("kinds-rc-scale-update", &format!("{rcs}/kinds-rc/scale"), json!({"apiVersion": "autoscaling/v1",
            "kind": "Scale", "metadata": {"name": "kinds-rc", "namespace": NS}, "spec": {"replicas": 4}})),
        get("kinds-rc-scaled", &format!("{rcs}/kinds-rc")),
        get("kinds-rc-field-replicas", &format!("{rcs}?fieldSelector=status.replicas%3D0")),
        get("kinds-rc-field-unsupported", &format!("{rcs}?fieldSelector=spec.replicas%3D4")),
        patch("kinds-rc-status", &format!("{rcs}/kinds-rc/status"), MERGE, json!({"status": {"replicas": 2}})),
        delete("kinds-rc-delete-orphans", &format!("{rcs}/kinds-rc")),
        patch("kinds-rc-release", &format!("{rcs}/kinds-rc"), MERGE, json!({"metadata": {"finalizers": null}})),
        post("kinds-sts-setup", &stss, sts.clone()),
        get("kinds-sts-scale", &format!("{stss}/kinds-sts/scale")),
        patch("kinds-sts-scale-patch", &format!("{stss}/kinds-sts/scale"), MERGE, json!({"spec": {"replicas": 2}})),
        patch("kinds-sts-scale-negative", &format!("{stss}/kinds-sts/scale"), MERGE, json!({"spec": {"replicas": -1}})),
        // Immutable fields.
        patch("kinds-sts-selector-immutable", &format!("{stss}/kinds-sts"), MERGE,
            json!({"spec": {"selector": {"matchLabels": {"app": "db", "x": "y"}},
                "template": {"metadata": {"labels": {"app": "db", "x": "y"}}}}})),
        patch("kinds-sts-service-immutable", &format!("{stss}/kinds-sts"), MERGE, json!({"spec": {"serviceName": "other"}})),
        patch("kinds-sts-template-mutable", &format!("{stss}/kinds-sts"), MERGE,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}})),
        post("kinds-pvc-setup", &pvcs, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "kinds-pvc"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}})),
        patch("kinds-pvc-access-immutable", &format!("{pvcs}/kinds-pvc"), MERGE,
            json!({"spec": {"accessModes": ["ReadWriteMany"]}})),
        post("kinds-pv-setup", pvs, json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "kinds-pv"}, "spec": {"capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/kinds"}}})),
        patch("kinds-pv-source-immutable", &format!("{pvs}/kinds-pv"), MERGE,
            json!({"spec": {"hostPath": {"path": "/tmp/other"}}})),
        patch("kinds-pv-status-phase", &format!("{pvs}/kinds-pv/status"), MERGE, json!({"status": {"phase": "Available"}})),
        patch("kinds-pv-status-message", &format!("{pvs}/kinds-pv/status"), MERGE, json!({"status": {"message": "m"}})),
        patch("kinds-pv-capacity-mutable", &format!("{pvs}/kinds-pv"), MERGE,
            json!({"spec": {"capacity": {"storage": "5Gi"}, "persistentVolumeReclaimPolicy": "Recycle"}})),
        post("kinds-sc-setup", scs, json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "kinds-sc"}, "provisioner": "example.com/diff", "parameters": {"a": "b"}})),
        patch("kinds-sc-parameters-immutable", &format!("{scs}/kinds-sc"), MERGE, json!({"parameters": {"a": "c"}})),
        patch("kinds-sc-provisioner-immutable", &format!("{scs}/kinds-sc"), MERGE, json!({"provisioner": "example.com/other"})),
        patch("kinds-sc-binding-immutable", &format!("{scs}/kinds-sc"), MERGE, json!({"volumeBindingMode": "WaitForFirstConsumer"})),
        post("kinds-vac-setup", "/apis/storage.k8s.io/v1/volumeattributesclasses", json!({"apiVersion": "storage.k8s.io/v1",
            "kind": "VolumeAttributesClass", "metadata": {"name": "kinds-vac"}, "driverName": "diff.example.com",
            "parameters": {"iops": "100"}})),
        patch("kinds-vac-parameters-immutable", "/apis/storage.k8s.io/v1/volumeattributesclasses/kinds-vac", MERGE,
            json!({"parameters": {"iops": "200"}, "driverName": "other.example.com"})),
        post("kinds-csisc-setup", &format!("/apis/storage.k8s.io/v1/namespaces/{NS}/csistoragecapacities"),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity", "metadata": {"name": "kinds-csisc"},
                "storageClassName": "fast", "nodeTopology": {"matchLabels": {"zone": "a"}}})),
        patch("kinds-csisc-immutable", &format!("/apis/storage.k8s.io/v1/namespaces/{NS}/csistoragecapacities/kinds-csisc"),
            MERGE, json!({"storageClassName": "slow", "nodeTopology": {"matchLabels": {"zone": "b"}}})),
        post("kinds-csisc-no-class", &format!("/apis/storage.k8s.io/v1/namespaces/{NS}/csistoragecapacities"),
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIStorageCapacity", "metadata": {"name": "bad"}})),
        post("kinds-va-setup", vas, json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": "kinds-va"}, "spec": {"attacher": "diff.example.com", "nodeName": "n1",
                "source": {"persistentVolumeName": "kinds-pv"}}})),
        patch("kinds-va-spec-immutable", &format!("{vas}/kinds-va"), MERGE, json!({"spec": {"nodeName": "n2"}})),
        patch("kinds-va-status", &format!("{vas}/kinds-va/status"), MERGE, json!({"status": {"attached": true}})),
        post("kinds-csidriver-setup", drivers, json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": "kinds.example.com"}, "spec": {}})),
        patch("kinds-csidriver-attach-immutable", &format!("{drivers}/kinds.example.com"), MERGE,
            json!({"spec": {"attachRequired": false}})),
        patch("kinds-csidriver-mount-mutable", &format!("{drivers}/kinds.example.com"), MERGE,
            json!({"spec": {"requiresRepublish": true}})),
        post("kinds-claim-setup", &claims, json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "kinds-claim"}, "spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "gpus", "allocationMode": "All"}}]}}})),
        // What kube-scheduler writes: an allocation and a reservation.
        patch("kinds-claim-status", &format!("{claims}/kinds-claim/status"), MERGE, json!({"status": {
            "allocation": {"devices": {"results": [
                {"request": "gpu", "driver": "a.example.com", "pool": "n1", "device": "d0"}]}},
            "reservedFor": [{"resource": "pods", "name": "p", "uid": "11111111-2222-3333-4444-555555555555"}]}})),
        // kube-scheduler's unreserve: a strategic merge patch deleting one reservation by uid.
        patch("kinds-claim-status-unreserve", &format!("{claims}/kinds-claim/status"), SMP,
            json!({"status": {"reservedFor": [{"$patch": "delete", "uid": "11111111-2222-3333-4444-555555555555"}]}})),
        patch("kinds-claim-finalizer-setup", &format!("{claims}/kinds-claim"), MERGE,
            json!({"metadata": {"finalizers": ["resource.kubernetes.io/delete-protection"]}})),
        patch("kinds-claim-status-realloc-immutable", &format!("{claims}/kinds-claim/status"), MERGE, json!({"status": {
            "allocation": {"devices": {"results": [
                {"request": "gpu", "driver": "a.example.com", "pool": "n1", "device": "d1"}]}}}})),
        post("kinds-claim-2-setup", &claims, json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "kinds-claim-2"}, "spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "gpus"}}]}}})),
        patch("kinds-claim-2-reserved-no-allocation", &format!("{claims}/kinds-claim-2/status"), MERGE, json!({"status": {
            "reservedFor": [{"resource": "pods", "name": "p", "uid": "11111111-2222-3333-4444-555555555555"}]}})),
        // kube-scheduler's UpdateStatus: the whole claim, its allocation and reservation set.
        put("kinds-claim-2-status-update", &format!("{claims}/kinds-claim-2/status"), json!({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim", "metadata": {"name": "kinds-claim-2"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpus"}}]}},
            "status": {"allocation": {"devices": {"results": [
                    {"request": "gpu", "driver": "a.example.com", "pool": "n1", "device": "d0"}]}},
                "reservedFor": [{"resource": "pods", "name": "p", "uid": "11111111-2222-3333-4444-555555555555"}]}})),
        patch("kinds-claim-spec-immutable", &format!("{claims}/kinds-claim"), MERGE,
            json!({"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "other"}}]}}})),
        // Required fields.
        post("kinds-pvc-no-access-modes", &pvcs, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "bad"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}})),
        post("kinds-pv-no-capacity", pvs, json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "bad"}, "spec": {"accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}})),
        post("kinds-sc-no-provisioner", scs, json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "bad"}})),
        post("kinds-sts-selector-mismatch", &stss, json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "bad"}, "spec": {"selector": {"matchLabels": {"app": "other"}}, "template": template}})),
        post("kinds-sts-claims-setup", &stss, json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "kinds-sts-claims"}, "spec": {"serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}}, "template": template,
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]}})),
        patch("kinds-sts-claims-immutable", &format!("{stss}/kinds-sts-claims"), MERGE,
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "other"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}]}})),
        post("kinds-sts-bad-service-name", &stss, json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "bad"}, "spec": {"serviceName": "Not_A_Label",
                "selector": {"matchLabels": {"app": "db"}}, "template": template}})),
        post("kinds-rc-no-template", &rcs, json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "bad"}, "spec": {"selector": {"app": "db"}}})),
        post("kinds-va-no-attacher", vas, json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": "bad"}, "spec": {"nodeName": "n1", "source": {"persistentVolumeName": "p"}}})),
        post("kinds-claim-no-class", &claims, json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "bad"}, "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {}}]}}})),
        post("kinds-pdb-both", &format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"},
                "spec": {"minAvailable": 1, "maxUnavailable": 1}})),
        // ResourceSlice field selectors (what the scheduler and kubelet watch by).
        post("kinds-slice-setup-1", slices, slice("kinds-slice-1", "n1", "a.example.com")),
        post("kinds-slice-setup-2", slices, slice("kinds-slice-2", "n2", "b.example.com")),
        post("kinds-pdb-setup", &format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "kinds-pdb"},
                "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "db"}}}})),
        patch("kinds-pdb-status", &format!("/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/kinds-pdb/status"), MERGE,
            json!({"status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2}})),
        patch("kinds-sts-status", &format!("{stss}/kinds-sts/status"), MERGE,
            json!({"status": {"replicas": 2, "readyReplicas": 1, "currentRevision": "r1"}})),
        get("kinds-slice-field-node", &format!("{slices}?fieldSelector=spec.nodeName%3Dn2")),
        get("kinds-slice-field-driver", &format!("{slices}?fieldSelector=spec.driver%3Da.example.com")),
        get("kinds-slice-field-namespace", &format!("{slices}?fieldSelector=metadata.namespace%3Dx")),
        get("kinds-slice-field-unsupported", &format!("{slices}?fieldSelector=spec.pool.name%3Dn1")),
        get("kinds-pv-field-unsupported", &format!("{pvs}?fieldSelector=spec.storageClassName%3D")),
        patch("kinds-slice-node-immutable", &format!("{slices}/kinds-slice-1"), MERGE, json!({"spec": {"nodeName": "n3"}})),
        patch("kinds-slice-pool-generation", &format!("{slices}/kinds-slice-1"), MERGE,
            json!({"spec": {"pool": {"generation": 2}, "devices": [{"name": "d0"}, {"name": "d1"}]}})),
        post("kinds-slice-no-node", slices, json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": "bad"}, "spec": {"driver": "a.example.com",
                "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1}}})),
        post("kinds-slice-two-nodes", slices, json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
            "metadata": {"name": "bad"}, "spec": {"driver": "a.example.com", "nodeName": "n1", "allNodes": true,
                "pool": {"name": "p", "generation": 1, "resourceSliceCount": 1}}})),
        delete("kinds-slice-cleanup", &format!("{slices}?fieldSelector=spec.driver%21%3Dnone")),
    ];
    for case in &cases {
        let (_, reference) = d.run_one(case);
        // Each case tests what its name says on the reference: a write kube takes, or a
        // refusal (422), so that agreeing means agreeing on that.
        let refused = [
            "-immutable",
            "-no-",
            "-mismatch",
            "-both",
            "-bad-",
            "-two-",
            "-negative",
        ]
        .iter()
        .any(|m| case.id.contains(m));
        let taken = [
            "-setup",
            "-status",
            "-mutable",
            "-scale-patch",
            "-scale-update",
            "-generation",
        ]
        .iter()
        .any(|m| case.id.contains(m));
        if refused {
            assert_eq!(reference.status, 422, "{}: {reference}", case.id);
        } else if taken {
            assert!(reference.status < 300, "{}: {reference}", case.id);
        }
    }
}

/// The admission configuration kinds beyond the verbs: the validation a user is most likely to
/// meet (webhook timeouts, side effects, client configs, rules; policies without validations;
/// bindings without a policy) and a service reference's default port.
fn admission_kinds(d: &mut Differential<'_>) {
    let vwcs = format!("{ADMISSION}/validatingwebhookconfigurations");
    let mwcs = format!("{ADMISSION}/mutatingwebhookconfigurations");
    let vaps = format!("{ADMISSION}/validatingadmissionpolicies");
    let vapbs = format!("{ADMISSION}/validatingadmissionpolicybindings");
    let vwc = |name: &str, hooks: Value| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": hooks})
    };
    let hook = |patch: Value| {
        let mut h = webhook("v.diff.example.com");
        for (k, v) in patch.as_object().into_iter().flatten() {
            if v.is_null() {
                h.as_object_mut().map(|m| m.remove(k));
            } else {
                h[k] = v.clone();
            }
        }
        h
    };
    let rules = json!({"resourceRules": [{"apiGroups": ["diff.example.com"], "apiVersions": ["v1"],
        "operations": ["CREATE"], "resources": ["widgets"]}]});
    let vap = |name: &str, spec: Value| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name}, "spec": spec})
    };
    let vapb = |name: &str, spec: Value| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name}, "spec": spec})
    };
    #[rustfmt::skip]
    let cases = vec![
        post("adm-vwc-service-setup", &vwcs, vwc("adm-service", json!([hook(json!({"clientConfig":
            {"service": {"namespace": "default", "name": "hook", "path": "/validate"}}}))]))),
        patch("adm-vwc-timeout-bad-31", &format!("{vwcs}/adm-service"), JSON_PATCH,
            json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 31}])),
        delete("adm-vwc-service-cleanup", &format!("{vwcs}/adm-service")),
        post("adm-vap-setup", &vaps, vap("adm-vap", json!({"matchConstraints": rules,
            "validations": [{"expression": "true"}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}))),
        get("adm-vap-status-get", &format!("{vaps}/adm-vap/status")),
        patch("adm-vap-status", &format!("{vaps}/adm-vap/status"), MERGE,
            json!({"status": {"observedGeneration": 1}, "spec": {"failurePolicy": "Ignore"}})),
        patch("adm-vap-status-kept", &format!("{vaps}/adm-vap"), MERGE,
            json!({"status": {"observedGeneration": 5}, "spec": {"failurePolicy": "Ignore"}})),
        delete("adm-vap-cleanup", &format!("{vaps}/adm-vap")),
        post("adm-vwc-timeout-bad-0", &vwcs, vwc("bad", json!([hook(json!({"timeoutSeconds": 0}))]))),
        post("adm-vwc-no-side-effects", &vwcs, vwc("bad", json!([hook(json!({"sideEffects": null}))]))),
        post("adm-vwc-side-effects-bad-some", &vwcs, vwc("bad", json!([hook(json!({"sideEffects": "Some"}))]))),
        post("adm-vwc-url-bad-http", &vwcs, vwc("bad", json!([hook(json!({"clientConfig":
            {"url": "http://example.com/validate?x=1"}}))]))),
        post("adm-vwc-client-config-two-set", &vwcs, vwc("bad", json!([hook(json!({"clientConfig":
            {"url": "https://example.com/validate", "service": {"namespace": "default", "name": "hook"}}}))]))),
        post("adm-vwc-client-config-no-setting", &vwcs, vwc("bad", json!([hook(json!({"clientConfig": {}}))]))),
        post("adm-vwc-names-duplicate-bad", &vwcs, vwc("bad", json!([hook(json!({})), hook(json!({}))]))),
        post("adm-vwc-name-bad-two-segments", &vwcs, vwc("bad", json!([hook(json!({"name": "diff.example"}))]))),
        post("adm-vwc-no-review-versions", &vwcs, vwc("bad", json!([hook(json!({"admissionReviewVersions": null}))]))),
        post("adm-vwc-review-versions-bad-v2", &vwcs, vwc("bad", json!([hook(json!({"admissionReviewVersions": ["v2"]}))]))),
        post("adm-vwc-rules-bad", &vwcs, vwc("bad", json!([hook(json!({"rules": [
            {"operations": ["CREATE", "*"], "apiGroups": [], "apiVersions": ["v1"], "resources": ["*", "pods"], "scope": "Everywhere"},
            {"operations": ["PATCH"], "apiGroups": ["*"], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]}))]))),
        post("adm-vwc-match-conditions-bad", &vwcs, vwc("bad", json!([hook(json!({"matchConditions": [
            {"name": "a", "expression": "true"}, {"name": "a", "expression": " "},
            {"name": "-x", "expression": "true"}]}))]))),
        post("adm-vwc-selector-bad", &vwcs, vwc("bad", json!([hook(json!({"objectSelector": {
            "matchLabels": {"a": "-"}, "matchExpressions": [{"key": "k", "operator": "In"},
                {"key": "k", "operator": "Exists", "values": ["v"]}, {"key": "k", "operator": "Has"}]}}))]))),
        post("adm-vapb-match-selector-bad", &vapbs, vapb("bad", json!({"policyName": "p",
            "validationActions": ["Deny"], "matchResources": {"namespaceSelector": {"matchExpressions": [
                {"key": "bad key", "operator": "NotIn"}]}}}))),
        post("adm-vwc-service-path-bad", &vwcs, vwc("bad", json!([hook(json!({"clientConfig":
            {"service": {"namespace": "default", "name": "hook", "path": "a//B/", "port": 0}}}))]))),
        post("adm-mwc-reinvocation-bad", &mwcs, json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration", "metadata": {"name": "bad"},
            "webhooks": [hook(json!({"reinvocationPolicy": "Always", "failurePolicy": "Sometimes"}))]})),
        post("adm-vap-no-validations", &vaps, vap("bad", json!({"matchConstraints": rules}))),
        post("adm-vap-no-match-constraints", &vaps, vap("bad", json!({"validations": [{"expression": "true"}]}))),
        post("adm-vap-validation-bad-fields", &vaps, vap("bad", json!({"matchConstraints": rules, "failurePolicy": "Never",
            "validations": [{"expression": " ", "message": "two\nlines", "reason": "NotFound"}]}))),
        post("adm-vap-param-kind-bad", &vaps, vap("bad", json!({"matchConstraints": rules,
            "validations": [{"expression": "true"}], "paramKind": {"apiVersion": "Ex.com/v1/x", "kind": "Config_Map"}}))),
        post("adm-vap-param-kind-bad-group", &vaps, vap("bad", json!({"matchConstraints": rules,
            "validations": [{"expression": "true"}], "paramKind": {"apiVersion": "Ex.com/", "kind": "ConfigMap"}}))),
        post("adm-vapb-param-ref-bad-name", &vapbs, vapb("bad", json!({"policyName": "p", "validationActions": ["Deny"],
            "paramRef": {"name": "a/b", "parameterNotFoundAction": "Skip"}}))),
        post("adm-vapb-no-policy-name", &vapbs, vapb("bad", json!({"validationActions": ["Deny"]}))),
        post("adm-vapb-actions-bad", &vapbs, vapb("bad", json!({"policyName": "p",
            "validationActions": ["Deny", "Warn", "Deny", "Block"]}))),
        post("adm-vapb-no-actions", &vapbs, vapb("bad", json!({"policyName": "p"}))),
        post("adm-vapb-param-ref-bad", &vapbs, vapb("bad", json!({"policyName": "p", "validationActions": ["Deny"],
            "paramRef": {"name": "n", "selector": {}}}))),
    ];
    for case in &cases {
        let (_, reference) = d.run_one(case);
        // Each case tests what its name says on the reference: a write kube takes, or a
        // refusal (422), so that agreeing means agreeing on that.
        if case.id.contains("-bad") || case.id.contains("-no-") || case.id.contains("-two-") {
            assert_eq!(reference.status, 422, "{}: {reference}", case.id);
        } else if case.id.contains("-setup") {
            assert!(reference.status < 300, "{}: {reference}", case.id);
        }
    }
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

/// Two suites on one pair of servers: `api` (every verb on every resource) and `api-requests`
/// (request features and error paths).
#[test]
fn the_api_answers_as_kube_apiserver_does() {
    let (kgate, reference) = up();
    let mut verbs = Differential::new("api", &kgate, &reference);
    setup(&mut verbs);
    every_verb_on_every_resource(&mut verbs);
    let mut requests = Differential::new("api-requests", &kgate, &reference);
    request_features_and_error_paths(&mut requests);
    // Both tallies are printed even when the first fails.
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verbs.finish()));
    requests.finish();
    if let Err(panic) = first {
        std::panic::resume_unwind(panic);
    }
}

fn every_verb_on_every_resource(d: &mut Differential<'_>) {
    for resource in resources() {
        d.run(&resource.verbs());
    }
    scheduler_kinds(d);
    admission_kinds(d);
    // The namespace itself, and what cannot be done to namespaces.
    d.run(&[
        post(
            "ns-create",
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "diff-api-ns", "labels": {"diff": "api"}}}),
        ),
        get("ns-get", "/api/v1/namespaces/diff-api-ns"),
        get("ns-list", "/api/v1/namespaces?labelSelector=diff%3Dapi"),
        patch(
            "ns-patch",
            "/api/v1/namespaces/diff-api-ns",
            MERGE,
            json!({"metadata": {"annotations": {"a": "b"}}}),
        ),
        get("ns-status", "/api/v1/namespaces/diff-api-ns/status"),
        delete(
            "ns-deletecollection",
            "/api/v1/namespaces?labelSelector=diff%3Dapi",
        ),
        delete("ns-delete", "/api/v1/namespaces/diff-api-ns"),
        get("ns-get-terminating", "/api/v1/namespaces/diff-api-ns"),
        post(
            "ns-create-in-terminating",
            "/api/v1/namespaces/diff-api-ns/configmaps",
            cm("x"),
        ),
        post(
            "ns-create-in-missing",
            "/api/v1/namespaces/no-such-ns/configmaps",
            cm("x"),
        ),
    ]);
}

/// The namespace and the ServiceAccount `default` (kube's ServiceAccount admission needs it and
/// no controller makes it on the reference), on both; not compared.
fn setup(d: &mut Differential<'_>) {
    let (k, r) = d.both(&post(
        "setup-ns",
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    ));
    assert_eq!((k.status, r.status), (201, 201), "{k}\n{r}");
    let (k, r) = d.both(&post(
        "setup-sa",
        &format!("/api/v1/namespaces/{NS}/serviceaccounts"),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
    ));
    assert!(matches!(k.status, 201 | 409) && r.status == 201, "{k}\n{r}");
}

fn request_features_and_error_paths(d: &mut Differential<'_>) {
    let cms = format!("/api/v1/namespaces/{NS}/configmaps");
    let deploys = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    let labelled = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels}, "data": {"k": name}})
    };
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]}}}});
    let cases = vec![
        // Selectors.
        post("sel-setup-1", &cms, labelled("sel-1", json!({"tier": "front", "env": "prod"}))),
        post("sel-setup-2", &cms, labelled("sel-2", json!({"tier": "back", "env": "prod"}))),
        post("sel-setup-3", &cms, labelled("sel-3", json!({"tier": "front"}))),
        get("sel-equality", &format!("{cms}?labelSelector=tier%3Dfront")),
        get("sel-inequality", &format!("{cms}?labelSelector=tier!%3Dfront,env")),
        get("sel-set-in", &format!("{cms}?labelSelector=tier%20in%20(front,back),env%20notin%20(dev)")),
        get("sel-exists-not", &format!("{cms}?labelSelector=tier,!env")),
        get("sel-field-name", &format!("{cms}?fieldSelector=metadata.name%3Dsel-2")),
        get("sel-field-not", &format!("{cms}?fieldSelector=metadata.name!%3Dsel-2&labelSelector=tier")),
        get("sel-field-namespace", &format!("/api/v1/configmaps?fieldSelector=metadata.namespace%3D{NS}&labelSelector=tier")),
        get("sel-field-unsupported", &format!("{cms}?fieldSelector=data.k%3Dv")),
        get("sel-label-invalid", &format!("{cms}?labelSelector=tier%3D%3D%3Dx")),
        get("sel-pod-field", &format!("{pods}?fieldSelector=spec.nodeName%3D,status.phase%3DPending")),
        post("sel-service-setup", &format!("/api/v1/namespaces/{NS}/services"), json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "sel-svc"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}})),
        get("sel-service-type", &format!("/api/v1/namespaces/{NS}/services?fieldSelector=spec.type%3DNodePort")),
        get("sel-service-unsupported", &format!("/api/v1/namespaces/{NS}/services?fieldSelector=spec.ports%3D80")),
        // limit / continue.
        get("page-1", &format!("{cms}?labelSelector=tier&limit=2")).save("continue", "/metadata/continue"),
        get("page-2", &format!("{cms}?labelSelector=tier&limit=2&continue={{continue}}")),
        get("page-continue-invalid", &format!("{cms}?limit=2&continue=not-a-token")),
        get("page-limit-zero", &format!("{cms}?labelSelector=tier&limit=0")),
        get("page-rv-0", &format!("{cms}?labelSelector=tier&resourceVersion=0")),
        get("page-rv-invalid", &format!("{cms}?resourceVersion=abc")),
        get("page-timeout-invalid", &format!("{cms}?watch=1&timeoutSeconds=x")),
        // Patch types.
        post("patch-setup", &deploys, deployment.clone()),
        patch("patch-merge", &format!("{deploys}/web"), MERGE, json!({"metadata": {"labels": {"m": "1"}}})),
        patch("patch-json", &format!("{deploys}/web"), JSON_PATCH,
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"j": "1"}},
                   {"op": "replace", "path": "/spec/replicas", "value": 3}])),
        patch("patch-json-test-fails", &format!("{deploys}/web"), JSON_PATCH,
            json!([{"op": "test", "path": "/spec/replicas", "value": 9}])),
        patch("patch-json-bad-path", &format!("{deploys}/web"), JSON_PATCH,
            json!([{"op": "remove", "path": "/spec/nope"}])),
        patch("patch-strategic-list-merge", &format!("{deploys}/web"), SMP,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}]}]}}}})),
        patch("patch-strategic-delete", &format!("{deploys}/web"), SMP,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}}}})),
        patch("patch-strategic-configmap", &format!("{cms}/sel-1"), SMP, json!({"data": {"x": "y"}})),
        Case::new("patch-apply", "PATCH", &format!("{cms}/applied?fieldManager=diff"))
            .body(APPLY, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k: v\n"),
        Case::new("patch-bad-type", "PATCH", &format!("{cms}/sel-1")).body("text/plain", "x"),
        patch("patch-missing", &format!("{cms}/no-such"), MERGE, json!({"data": {"a": "b"}})),
        patch("patch-invalid-json", &format!("{cms}/sel-1"), MERGE, json!("not an object")),
        patch("patch-makes-invalid", &format!("{deploys}/web"), MERGE, json!({"spec": {"replicas": -1}})),
        patch("patch-changes-name", &format!("{cms}/sel-1"), MERGE, json!({"metadata": {"name": "other"}})),
        // Dry run.
        post("dryrun-create", &format!("{cms}?dryRun=All"), cm("dry")),
        get("dryrun-create-not-stored", &format!("{cms}/dry")),
        put("dryrun-update", &format!("{cms}/sel-1?dryRun=All"), labelled("sel-1", json!({"dry": "run"}))),
        get("dryrun-update-not-stored", &format!("{cms}/sel-1")),
        patch("dryrun-patch", &format!("{cms}/sel-1?dryRun=All"), MERGE, json!({"data": {"dry": "x"}})),
        delete("dryrun-delete", &format!("{cms}/sel-2?dryRun=All")),
        get("dryrun-delete-not-deleted", &format!("{cms}/sel-2")),
        post("dryrun-invalid-value", &format!("{cms}?dryRun=Some"), cm("dry2")),
        // generateName.
        post("generate-name", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": "gen-"}, "data": {"k": "v"}})),
        post("generate-name-invalid", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": "Gen_"}}))
        .generated("Gen_"),
        // Conflicts.
        post("conflict-exists", &cms, labelled("sel-1", json!({}))),
        get("conflict-read", &format!("{cms}/sel-3")).save("rv", "/metadata/resourceVersion"),
        put("conflict-update-current", &format!("{cms}/sel-3"), json!({"apiVersion": "v1",
            "kind": "ConfigMap", "metadata": {"name": "sel-3", "resourceVersion": "{rv}",
            "labels": {"tier": "front"}}, "data": {"k": "2"}})),
        put("conflict-update-stale", &format!("{cms}/sel-3"), json!({"apiVersion": "v1",
            "kind": "ConfigMap", "metadata": {"name": "sel-3", "resourceVersion": "{rv}"}, "data": {"k": "3"}})),
        delete("conflict-delete-precondition-uid", &format!("{cms}/sel-3"))
            .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})),
        // The message quotes the object's resourceVersion, a value each server makes its own.
        delete("conflict-delete-precondition-rv", &format!("{cms}/sel-3"))
            .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                "preconditions": {"resourceVersion": "1"}}))
            .mask("/message"),
        put("conflict-update-missing", &format!("{cms}/no-such"), cm("no-such")),
        // Finalizers.
        post("finalizer-create", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
        delete("finalizer-delete", &format!("{cms}/held")),
        get("finalizer-terminating", &format!("{cms}/held")),
        patch("finalizer-add-while-terminating", &format!("{cms}/held"), MERGE,
            json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}})),
        patch("finalizer-remove", &format!("{cms}/held"), MERGE, json!({"metadata": {"finalizers": null}})),
        get("finalizer-gone", &format!("{cms}/held")),
        // Deletion propagation.
        delete("propagation-foreground", &format!("{deploys}/web"))
            .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})),
        get("propagation-foreground-held", &format!("{deploys}/web")),
        patch("propagation-foreground-release", &format!("{deploys}/web"), MERGE,
            json!({"metadata": {"finalizers": null}})),
        post("propagation-orphan-setup", &deploys, deployment.clone()),
        delete("propagation-orphan", &format!("{deploys}/web?propagationPolicy=Orphan")),
        patch("propagation-orphan-release", &format!("{deploys}/web"), MERGE,
            json!({"metadata": {"finalizers": null}})),
        post("propagation-background-setup", &deploys, deployment.clone()),
        delete("propagation-background", &format!("{deploys}/web"))
            .json(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})),
        delete("propagation-invalid", &format!("{cms}/sel-1?propagationPolicy=Sometimes")),
        delete("propagation-grace-negative", &format!("{cms}/sel-1?gracePeriodSeconds=-1")),
        post("grace-pod-setup", &pods, json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bound"}, "spec": {"nodeName": "n1",
                "containers": [{"name": "c", "image": "busybox"}]}})),
        delete("grace-pod-bound", &format!("{pods}/bound")),
        get("grace-pod-terminating", &format!("{pods}/bound")),
        delete("grace-pod-force", &format!("{pods}/bound?gracePeriodSeconds=0")),
        // Field validation.
        post("fv-strict-unknown", &format!("{cms}?fieldValidation=Strict"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv1"}, "foo": 1})),
        post("fv-warn-unknown", &format!("{cms}?fieldValidation=Warn"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv2"}, "foo": 1})),
        post("fv-ignore-unknown", &format!("{cms}?fieldValidation=Ignore"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv3"}, "foo": 1})),
        post("fv-default-unknown", &cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv4"}, "foo": 1})),
        Case::new("fv-strict-duplicate", "POST", &format!("{cms}?fieldValidation=Strict")).body(
            "application/json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv5"},"data":{"a":"1"},"data":{"b":"2"}}"#,
        ),
        Case::new("fv-warn-duplicate", "POST", &format!("{cms}?fieldValidation=Warn")).body(
            "application/json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv6"},"data":{"a":"1"},"data":{"b":"2"}}"#,
        ),
        post("fv-strict-nested-unknown", &format!("{pods}?fieldValidation=Strict"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fvp"},
                "spec": {"containers": [{"name": "c", "image": "busybox", "bogus": true}]}})),
        patch("fv-strict-patch", &format!("{cms}/sel-1?fieldValidation=Strict"), MERGE, json!({"foo": 1})),
        patch("fv-warn-patch", &format!("{cms}/sel-1?fieldValidation=Warn"), MERGE, json!({"foo": 1})),
        put("fv-strict-update", &format!("{cms}/fv2?fieldValidation=Strict"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fv2"}, "bar": 1})),
        post("fv-invalid-value", &format!("{cms}?fieldValidation=Loose"), cm("fv7")),
        // Protobuf.
        get("protobuf-get", &format!("{cms}/sel-1")).header(PROTOBUF).compare(Compare::Protobuf),
        get("protobuf-not-found", &format!("{cms}/no-such")).header(PROTOBUF).compare(Compare::Protobuf),
        get("protobuf-role", "/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
            .header(PROTOBUF).compare(Compare::Protobuf),
        get("protobuf-or-json", &format!("{cms}/sel-1"))
            .header("Accept: application/vnd.kubernetes.protobuf, application/json"),
        // Table.
        get("table-configmaps", &format!("{cms}?labelSelector=tier")).header(TABLE).compare(Compare::Table),
        get("table-configmap", &format!("{cms}/sel-1")).header(TABLE).compare(Compare::Table),
        get("table-namespaces", &format!("/api/v1/namespaces?fieldSelector=metadata.name%3D{NS}"))
            .header(TABLE).compare(Compare::Table),
        get("table-pods", &pods).header(TABLE).compare(Compare::Table),
        get("table-clusterrole", "/apis/rbac.authorization.k8s.io/v1/clusterroles/view")
            .header(TABLE).compare(Compare::Table),
        get("table-include-none", &format!("{cms}?labelSelector=tier&includeObject=None"))
            .header(TABLE).compare(Compare::Table),
        get("table-include-object", &format!("{cms}?labelSelector=tier&includeObject=Object"))
            .header(TABLE).compare(Compare::Table),
        get("table-or-json", &format!("{cms}/sel-1"))
            .header("Accept: application/json;as=Table;v=v1;g=meta.k8s.io, application/json")
            .compare(Compare::Table),
        get("table-v1beta1", &format!("{cms}/sel-1"))
            .header("Accept: application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
        get("partial-metadata", &format!("{cms}/sel-1"))
            .header("Accept: application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"),
        get("partial-metadata-list", &format!("{cms}?labelSelector=tier"))
            .header("Accept: application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
        // Subresources.
        post("sub-pod-setup", &pods, json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "sub"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})),
        get("sub-pod-status", &format!("{pods}/sub/status")),
        patch("sub-pod-status-patch", &format!("{pods}/sub/status"), MERGE,
            json!({"status": {"message": "hello"}})),
        post("sub-pod-binding", &format!("{pods}/sub/binding"), json!({"apiVersion": "v1",
            "kind": "Binding", "metadata": {"name": "sub"}, "target": {"kind": "Node", "name": "n1"}})),
        get("sub-pod-bound", &format!("{pods}/sub")),
        post("sub-pod-binding-again", &format!("{pods}/sub/binding"), json!({"apiVersion": "v1",
            "kind": "Binding", "metadata": {"name": "sub"}, "target": {"kind": "Node", "name": "n2"}})),
        post("sub-deploy-setup", &deploys, deployment.clone()),
        get("sub-deploy-scale", &format!("{deploys}/web/scale")),
        put("sub-deploy-scale-update", &format!("{deploys}/web/scale"), json!({"apiVersion": "autoscaling/v1",
            "kind": "Scale", "metadata": {"name": "web", "namespace": NS}, "spec": {"replicas": 4}})),
        patch("sub-deploy-scale-patch", &format!("{deploys}/web/scale"), MERGE, json!({"spec": {"replicas": 5}})),
        get("sub-deploy-status", &format!("{deploys}/web/status")),
        put("sub-deploy-status-update", &format!("{deploys}/web/status"), {
            let mut d = deployment.clone();
            d["status"] = json!({"replicas": 1, "observedGeneration": 1});
            d
        }),
        // `kubectl get --subresource=scale|status`: kube's Scale printer, the resource's own.
        get("table-sub-scale", &format!("{deploys}/web/scale")).header(TABLE).compare(Compare::Table),
        get("table-sub-status", &format!("{deploys}/web/status")).header(TABLE).compare(Compare::Table),
        get("table-sub-pod-status", &format!("{pods}/sub/status")).header(TABLE).compare(Compare::Table),
        get("sub-unknown", &format!("{cms}/sel-1/nope")),
        Case::new("sub-token", "POST", &format!("/api/v1/namespaces/{NS}/serviceaccounts/default/token"))
            .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600}}))
            // The token is random, its expiry read from each server's clock.
            .mask("/status/token")
            .mask("/status/expirationTimestamp"),
        Case::new("sub-token-short", "POST", &format!("/api/v1/namespaces/{NS}/serviceaccounts/default/token"))
            .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 60}})),
        // Reviews.
        post("review-selfsubject", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})).who(ALICE),
        post("review-ssar-denied", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"namespace": NS, "verb": "get", "resource": "configmaps"}}})).who(ALICE),
        post("review-ssar-allowed", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"nonResourceAttributes": {"path": "/version", "verb": "get"}}})).who(ALICE),
        post("review-ssrr", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": NS}})).who(ALICE),
        post("review-sar", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "bob", "resourceAttributes": {"namespace": NS, "verb": "list", "resource": "pods"}}})),
        post("review-sar-no-user", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "list", "resource": "pods"}}})),
        post("review-lsar", &format!("/apis/authorization.k8s.io/v1/namespaces/{NS}/localsubjectaccessreviews"),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                "spec": {"user": "system:admin", "groups": ["system:masters"],
                    "resourceAttributes": {"namespace": NS, "verb": "delete", "resource": "secrets"}}})),
        post("review-lsar-wrong-namespace", &format!("/apis/authorization.k8s.io/v1/namespaces/{NS}/localsubjectaccessreviews"),
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                "spec": {"user": "bob", "resourceAttributes": {"namespace": "other", "verb": "get", "resource": "pods"}}})),
        post("review-token-invalid", "/apis/authentication.k8s.io/v1/tokenreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": "not-a-token"}})),
        get("review-get-not-allowed", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
        // Error paths.
        get("err-not-found", &format!("{cms}/no-such")),
        delete("err-delete-not-found", &format!("{cms}/no-such")),
        get("err-unknown-resource", &format!("/api/v1/namespaces/{NS}/foos")),
        get("err-unknown-group", "/apis/foo.example.com/v1/foos"),
        get("err-unknown-version", "/apis/apps/v9/deployments"),
        get("err-unknown-path", "/nope"),
        Case::new("err-method-collection-put", "PUT", &cms).json(&cm("x")),
        Case::new("err-method-namespace-collection-delete", "DELETE", "/api/v1/namespaces"),
        Case::new("err-bad-json", "POST", &cms).body("application/json", "{not json"),
        Case::new("err-empty-body", "POST", &cms).body("application/json", ""),
        Case::new("err-bad-media-type", "POST", &cms).body("text/plain", "x"),
        Case::new("err-yaml-body", "POST", &cms).body("application/yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n"),
        get("err-not-acceptable", &format!("{cms}/sel-1")).header("Accept: application/xml"),
        post("err-wrong-kind", &cms, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})),
        post("err-wrong-version", &cms, json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}})),
        post("err-no-kind", &cms, json!({"metadata": {"name": "nokind"}})),
        post("err-namespace-mismatch", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "other"}})),
        put("err-name-mismatch", &format!("{cms}/sel-1"), cm("other")),
        post("err-invalid-name", &cms, cm("Not_Valid")),
        post("err-no-name", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap"})),
        post("err-invalid-label", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"bad key!": "v"}}})),
        post("err-invalid-pod", &pods, json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nocontainers"}, "spec": {"containers": []}})),
        post("err-invalid-deployment", &deploys, json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bad"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"c": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})),
        post("err-cluster-scoped-in-namespace", &format!("/api/v1/namespaces/{NS}/nodes"),
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "x"}})),
        get("err-bad-token", &cms).who(Who::Token("not-a-valid-token")),
        get("err-anonymous", &cms).who(Who::Anonymous),
        // Which version each is differs by design: the status and media type are compared.
        get("err-anonymous-version", "/version").who(Who::Anonymous).mask(""),
        get("err-forbidden-get", &format!("{cms}/sel-1")).who(ALICE),
        get("err-forbidden-list-all", "/api/v1/configmaps").who(ALICE),
        post("err-forbidden-create", &cms, cm("x")).who(ALICE),
        get("err-forbidden-cluster", "/api/v1/nodes/n1").who(ALICE),
        get("err-forbidden-subresource", &format!("{pods}/sub/status")).who(ALICE),
        get("err-forbidden-missing-namespace", "/api/v1/namespaces/no-such-ns/secrets").who(ALICE),
        Case::new("err-immutable-field", "PATCH", &format!("{deploys}/web"))
            .body(MERGE, json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}}).to_string()),
        post("err-immutable-configmap-setup", &cms, json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "frozen"}, "data": {"k": "v"}, "immutable": true})),
        patch("err-immutable-configmap", &format!("{cms}/frozen"), MERGE, json!({"data": {"k": "w"}})),
        get("err-watch-bad-rv", &format!("{cms}?watch=1&resourceVersion=abc")),
        // A pod's tolerations only grow (an old one may change its tolerationSeconds), its
        // scheduling gates only shrink.
        post("pod-tolerations-setup", &pods, json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "tolerant"}, "spec": {
                "containers": [{"name": "c", "image": "busybox"}],
                "schedulingGates": [{"name": "example.com/a"}, {"name": "example.com/b"}],
                "tolerations": [{"key": "k", "operator": "Equal", "value": "v",
                    "effect": "NoExecute", "tolerationSeconds": 30}]}})),
        patch("pod-toleration-added", &format!("{pods}/tolerant"), JSON_PATCH, json!([
            {"op": "add", "path": "/spec/tolerations/-", "value": {"key": "x", "operator": "Exists"}},
            {"op": "replace", "path": "/spec/tolerations/0/tolerationSeconds", "value": 10}])),
        patch("pod-toleration-changed", &format!("{pods}/tolerant"), JSON_PATCH, json!([
            {"op": "replace", "path": "/spec/tolerations/0/value", "value": "w"}])),
        patch("pod-toleration-removed", &format!("{pods}/tolerant"), MERGE,
            json!({"spec": {"tolerations": []}})),
        patch("pod-gate-added", &format!("{pods}/tolerant"), JSON_PATCH, json!([
            {"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": "example.com/c"}}])),
        patch("pod-gate-removed", &format!("{pods}/tolerant"), JSON_PATCH, json!([
            {"op": "remove", "path": "/spec/schedulingGates/0"}])),
    ];
    d.run(&cases);
    printed_rows(d);
}

/// `kubectl get` of objects whose cells the every-verb table leaves empty: status fields,
/// the defaults a printer shows for unset fields, quantities in their canonical form, the
/// default StorageClass. The PersistentVolume and the claim are created with the protection
/// finalizer kube's StorageObjectInUseProtection admission would add, so both servers store
/// the same object; it is taken off before the delete.
fn printed_rows(d: &mut Differential<'_>) {
    let pvs = "/api/v1/persistentvolumes";
    let pvcs = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    let scs = "/apis/storage.k8s.io/v1/storageclasses";
    let vas = "/apis/storage.k8s.io/v1/volumeattachments";
    let drivers = "/apis/storage.k8s.io/v1/csidrivers";
    let claims = format!("/apis/resource.k8s.io/v1/namespaces/{NS}/resourceclaims");
    let rcs = format!("/api/v1/namespaces/{NS}/replicationcontrollers");
    let one_row = |id: &str, path: &str| {
        get(id, &format!("{path}?includeObject=None"))
            .header(TABLE)
            .compare(Compare::Table)
    };
    let unprotect = json!({"metadata": {"finalizers": null}});
    let cases = vec![
        post(
            "print-sc-setup",
            scs,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "print-default",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "example.com/print", "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}),
        ),
        post(
            "print-sc-beta-setup",
            scs,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "print-beta",
                "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "True"}},
            "provisioner": "example.com/print"}),
        ),
        get("print-sc", &format!("{scs}?labelSelector=!diff"))
            .header(TABLE)
            .compare(Compare::Table),
        delete("print-sc-delete", &format!("{scs}/print-default")),
        delete("print-sc-beta-delete", &format!("{scs}/print-beta")),
        post(
            "print-pv-setup",
            pvs,
            json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "print-pv", "finalizers": ["kubernetes.io/pv-protection"]},
            "spec": {"capacity": {"storage": "1.5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "claimRef": {"namespace": NS, "name": "print-claim"}, "storageClassName": "print",
                "volumeMode": "Block", "hostPath": {"path": "/tmp/print"}}}),
        ),
        patch(
            "print-pv-status",
            &format!("{pvs}/print-pv/status"),
            MERGE,
            json!({"status": {"phase": "Released", "reason": "Recycled"}}),
        ),
        one_row("print-pv", &format!("{pvs}/print-pv")),
        // Text that is not a quantity: kube's decoder refuses it (400), naming its grammar or
        // its suffixes.
        post(
            "print-pv-bad-quantity",
            pvs,
            json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "print-bad"}, "spec": {"capacity": {"storage": "lots"},
                "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/print"}}}),
        ),
        put(
            "print-pv-bad-suffix",
            &format!("{pvs}/print-pv"),
            json!({"apiVersion": "v1",
            "kind": "PersistentVolume", "metadata": {"name": "print-pv"},
            "spec": {"capacity": {"storage": "1Ki5"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/print"}}}),
        ),
        put(
            "print-pv-status-bad-quantity",
            &format!("{pvs}/print-pv/status"),
            json!({"apiVersion": "v1",
            "kind": "PersistentVolume", "metadata": {"name": "print-pv"},
            "spec": {"capacity": {"storage": "1.2.3"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/tmp/print"}}}),
        ),
        post(
            "print-pvc-setup",
            &pvcs,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "print-claim", "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "volumeName": "print-pv", "storageClassName": "print"}}),
        ),
        patch(
            "print-pvc-status",
            &format!("{pvcs}/print-claim/status"),
            MERGE,
            json!({"status": {"phase": "Bound", "capacity": {"storage": "2048Mi"},
                "accessModes": ["ReadOnlyMany", "ReadWriteOnce"]}}),
        ),
        one_row("print-pvc", &format!("{pvcs}/print-claim")),
        patch(
            "print-pvc-unprotect",
            &format!("{pvcs}/print-claim"),
            MERGE,
            unprotect.clone(),
        ),
        delete("print-pvc-delete", &format!("{pvcs}/print-claim")),
        patch(
            "print-pv-unprotect",
            &format!("{pvs}/print-pv"),
            MERGE,
            unprotect,
        ),
        delete("print-pv-delete", &format!("{pvs}/print-pv")),
        post(
            "print-va-setup",
            vas,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": "print-va"},
            "spec": {"attacher": "example.com/print", "nodeName": "n1",
                "source": {"persistentVolumeName": "print-pv"}}}),
        ),
        patch(
            "print-va-status",
            &format!("{vas}/print-va/status"),
            MERGE,
            json!({"status": {"attached": true}}),
        ),
        one_row("print-va", &format!("{vas}/print-va")),
        delete("print-va-delete", &format!("{vas}/print-va")),
        post(
            "print-driver-setup",
            drivers,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": "print.example.com"},
            "spec": {"attachRequired": false, "podInfoOnMount": true, "requiresRepublish": true,
                "tokenRequests": [{"audience": "a1"}, {"audience": "a2"}],
                "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
        ),
        one_row("print-driver", &format!("{drivers}/print.example.com")),
        delete(
            "print-driver-delete",
            &format!("{drivers}/print.example.com"),
        ),
        post(
            "print-claim-setup",
            &claims,
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "print-claim"},
            "spec": {"devices": {"requests": [{"name": "r", "exactly": {"deviceClassName": "c"}}]}}}),
        ),
        one_row("print-claim-pending", &format!("{claims}/print-claim")),
        patch(
            "print-claim-status",
            &format!("{claims}/print-claim/status"),
            MERGE,
            json!({"status": {"allocation": {"devices": {"results": [{"request": "r",
                "driver": "dra.example.com", "pool": "p", "device": "d"}]}},
                "reservedFor": [{"resource": "pods", "name": "p",
                    "uid": "6b1f3c1e-2a4d-4c8e-9f00-000000000001"}]}}),
        ),
        one_row("print-claim-reserved", &format!("{claims}/print-claim")),
        delete("print-claim-delete", &format!("{claims}/print-claim")),
        post(
            "print-rc-setup",
            &rcs,
            json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "print-rc"},
            "spec": {"replicas": 2, "selector": {"b": "2", "a": "1"}, "template": {
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}, {"name": "s", "image": "nginx"}]}}}}),
        ),
        patch(
            "print-rc-status",
            &format!("{rcs}/print-rc/status"),
            MERGE,
            json!({"status": {"replicas": 2, "readyReplicas": 1}}),
        ),
        one_row("print-rc", &format!("{rcs}/print-rc")),
        one_row("print-rc-scale", &format!("{rcs}/print-rc/scale")),
        delete(
            "print-rc-delete",
            &format!("{rcs}/print-rc?propagationPolicy=Background"),
        ),
    ];
    d.run(&cases);
}
