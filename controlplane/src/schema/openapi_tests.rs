//! What kubectl reads from the OpenAPI v3 documents.

use super::*;

fn param_names(op: &Value) -> Vec<&str> {
    op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect()
}

#[test]
fn index_lists_every_group_version_with_its_hash() {
    let index = openapi_v3_index();
    let paths = index["paths"].as_object().unwrap();
    assert_eq!(paths.len(), group_versions().len());
    let (_, hash) = openapi_v3_group_version("apps", "v1").unwrap();
    assert_eq!(hash.len(), 128);
    assert_eq!(
        paths["apis/apps/v1"]["serverRelativeURL"],
        format!("/openapi/v3/apis/apps/v1?hash={hash}")
    );
    assert!(paths.contains_key("api/v1"));
    assert!(paths.contains_key("apis/rbac.authorization.k8s.io/v1"));
    assert!(openapi_v3_group_version("batch", "v1").is_none());
}

#[test]
fn apps_v1_create_and_patch_take_field_validation() {
    let (doc, _) = openapi_v3_group_version("apps", "v1").unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
    let coll = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"];
    let post = &coll["post"];
    assert_eq!(post["operationId"], "createAppsV1NamespacedDeployment");
    assert_eq!(post["x-kubernetes-action"], "post");
    assert!(param_names(post).contains(&"fieldValidation"));
    assert!(param_names(post).contains(&"dryRun"));
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(coll["get"]["operationId"], "listAppsV1NamespacedDeployment");
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
}

/// The check of cli-runtime's queryParamVerifierV3: every PATCH operation carrying the GVK
/// (whichever the map order finds first) lists `fieldValidation`.
#[test]
fn every_kind_passes_kubectls_field_validation_check() {
    // Reviews cannot be patched.
    for r in RESOURCES.iter().filter(|r| r.verbs.contains(&"patch")) {
        let (doc, _) = openapi_v3_group_version(r.group, r.version).unwrap();
        let want = gvk(r.group, r.version, r.kind);
        let patches: Vec<&Value> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|p| p.get("patch"))
            .filter(|op| op["x-kubernetes-group-version-kind"] == want)
            .collect();
        assert!(!patches.is_empty(), "{}", r.kind);
        for op in patches {
            assert!(param_names(op).contains(&"fieldValidation"), "{}", r.kind);
        }
    }
}

/// What `kubectl explain` needs: the operation's GVK matches a component schema's GVK list.
#[test]
fn explain_finds_the_schema_of_each_kind() {
    for r in RESOURCES {
        let (doc, _) = openapi_v3_group_version(r.group, r.version).unwrap();
        let prefix = format!("/{}", gv_path(r.group, r.version));
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        // Reviews have only the create operation.
        let method = if r.is_review() { "post" } else { "get" };
        let op_gvk = &doc["paths"][&path][method]["x-kubernetes-group-version-kind"];
        let found = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .any(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|l| l.contains(op_gvk))
            });
        assert!(found, "{}", r.kind);
    }
}

#[test]
fn names_follow_kube() {
    assert_eq!(
        tag("rbac.authorization.k8s.io", "v1"),
        "rbacAuthorization_v1"
    );
    assert_eq!(tag("", "v1"), "core_v1");
    assert_eq!(op_gv("coordination.k8s.io", "v1"), "CoordinationV1");
    let (doc, _) = openapi_v3_group_version("", "v1").unwrap();
    let p = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
    assert_eq!(p["post"]["operationId"], "createCoreV1NamespacedPodBinding");
    assert_eq!(
        doc["paths"]["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
}
