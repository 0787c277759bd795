//! kgate-authz: RBAC with Kubernetes' semantics, fed by Role/ClusterRole/RoleBinding/
//! ClusterRoleBinding objects, and the bootstrap policy every cluster starts with.
