//! The objects ServiceAccount tokens depend on, kept by list+watch (through
//! [`crate::rbac_sync`]) so that verifying a token asks memory, not the control plane:
//!
//! - [`OBJECTS`]: every ServiceAccount, Pod, Secret and Node, metadata only: name, UID and
//!   `deletionTimestamp` (a bound token ends a leeway after its objects' deletion, see
//!   `kgate_tokens::verify`);
//! - [`TOKEN_SECRETS`]: the Secrets of type `kubernetes.io/service-account-token` (a field
//!   selector), whole, for legacy tokens: each is kept as its UID, whether it is being deleted
//!   or marked invalid, and a keyed digest of its `data.token` ([`TokenDigester`]), so that a
//!   legacy token is accepted only while its Secret still holds that very token.
//!
//! When an object is deleted (or replaced by one with another UID), every cached verification
//! that depended on it is dropped at once through [`ForgetObject`]: a token of a deleted
//! ServiceAccount gets 401 on its next request. Other changes (a deletion mark, a rewritten
//! token) are seen by the re-check every cache hit makes.
//!
//! Secret data: only the token Secrets are read whole, and of those only `data.token` is read,
//! digested and dropped with the watch event; no Secret data is kept, and no other Secret's
//! data is asked for. Why a watch rather than a GET on a verification-cache miss: verifying
//! stays a memory lookup (no upstream request on the authentication path, so a revoked token
//! cannot make the gateway hammer the upstream, and authentication does not wait on it), a
//! change to the Secret revokes within a watch event like every other revocation here, and the
//! gateway process already holds the ServiceAccount signing keys, so these tokens are ones it
//! could mint itself: seeing them gives it nothing more.

use crate::rbac_sync::{Kind, RbacSink, SinkError, SyncSet};
use base64::Engine as _;
use kgate_tokens::{
    ObjectKind, ObjectLookup, ObjectState, TokenDigest, TokenDigester, TokenSecretState,
    LEGACY_TOKEN_INVALID_SINCE_LABEL,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The readiness check of [`OBJECTS`]: tokens are not verified against a partial picture.
pub const READINESS_CHECK: &str = "token-objects";
/// The readiness check of [`TOKEN_SECRETS`].
pub const TOKEN_SECRETS_READINESS_CHECK: &str = "token-secrets";
/// The type of a legacy token's Secret.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// ServiceAccounts, Pods, Secrets and Nodes, metadata only: [`identity`] reads nothing else.
pub static OBJECTS: SyncSet = SyncSet {
    readiness_check: READINESS_CHECK,
    kinds: &[
        Kind {
            kind: "ServiceAccount",
            api_version: "v1",
            path: "/api/v1/serviceaccounts",
            metadata_only: true,
            field_selector: None,
        },
        Kind {
            kind: "Pod",
            api_version: "v1",
            path: "/api/v1/pods",
            metadata_only: true,
            field_selector: None,
        },
        Kind {
            kind: "Secret",
            api_version: "v1",
            path: "/api/v1/secrets",
            metadata_only: true,
            field_selector: None,
        },
        Kind {
            kind: "Node",
            api_version: "v1",
            path: "/api/v1/nodes",
            metadata_only: true,
            field_selector: None,
        },
    ],
};

/// The legacy token Secrets, whole (their `data.token` is digested, see the module docs); fed
/// to [`ObjectIndex::token_secret_sink`].
pub static TOKEN_SECRETS: SyncSet = SyncSet {
    readiness_check: TOKEN_SECRETS_READINESS_CHECK,
    kinds: &[Kind {
        kind: "Secret",
        api_version: "v1",
        path: "/api/v1/secrets",
        metadata_only: false,
        field_selector: Some("type=kubernetes.io/service-account-token"),
    }],
};

/// Told when an object is gone, so that what depended on it is dropped.
pub trait ForgetObject: Send + Sync {
    fn forget(&self, kind: ObjectKind, namespace: &str, name: &str);
}

/// (namespace, name) → state, per kind.
type States = HashMap<(String, String), ObjectState>;
/// (namespace, name) → a token Secret.
type TokenSecrets = HashMap<(String, String), TokenSecretState>;

/// The objects' states, the token Secrets, and who to tell when one goes.
#[derive(Default)]
pub struct ObjectIndex {
    kinds: RwLock<HashMap<&'static str, States>>,
    token_secrets: RwLock<TokenSecrets>,
    digester: TokenDigester,
    forget: RwLock<Vec<Arc<dyn ForgetObject>>>,
}

impl std::fmt::Debug for ObjectIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIndex").finish_non_exhaustive()
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ServiceAccount => "ServiceAccount",
        ObjectKind::Pod => "Pod",
        ObjectKind::Secret => "Secret",
        ObjectKind::Node => "Node",
    }
}

fn object_kind(kind: &str) -> Option<ObjectKind> {
    match kind {
        "ServiceAccount" => Some(ObjectKind::ServiceAccount),
        "Pod" => Some(ObjectKind::Pod),
        "Secret" => Some(ObjectKind::Secret),
        "Node" => Some(ObjectKind::Node),
        _ => None,
    }
}

fn metadata_str<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get("metadata")?.get(name)?.as_str()
}

/// `metadata.deletionTimestamp` in Unix seconds; one that cannot be read counts as the epoch
/// (deleted long ago: a token is refused rather than kept alive by a bad timestamp).
fn deletion_timestamp(object: &Value) -> Option<i64> {
    let text = metadata_str(object, "deletionTimestamp")?;
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    Some(parsed.map_or(0, time::OffsetDateTime::unix_timestamp))
}

/// `(namespace, name, state)` of an object; `None` without a name or UID.
fn identity(object: &Value) -> Option<(String, String, ObjectState)> {
    let field = |name: &str| metadata_str(object, name).unwrap_or_default().to_owned();
    let (namespace, name, uid) = (field("namespace"), field("name"), field("uid"));
    if name.is_empty() || uid.is_empty() {
        return None;
    }
    let state = ObjectState {
        uid,
        deletion_timestamp: deletion_timestamp(object),
    };
    Some((namespace, name, state))
}

impl ObjectIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a listener told of every object that disappears or changes UID.
    pub fn on_forget(&self, listener: Arc<dyn ForgetObject>) {
        self.forget
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// The sink of [`TOKEN_SECRETS`].
    pub fn token_secret_sink(self: &Arc<Self>) -> Arc<dyn RbacSink> {
        Arc::new(TokenSecretSink(self.clone()))
    }

    fn tell(&self, kind: ObjectKind, namespace: &str, name: &str) {
        for listener in self
            .forget
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            listener.forget(kind, namespace, name);
        }
    }

    /// A token Secret as kept: `None` when it is of another type (the field selector should
    /// have kept it away) or has no name or UID. Its `data.token` is digested and dropped.
    fn token_secret_state(&self, object: &Value) -> Option<(String, String, TokenSecretState)> {
        if object.get("type").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
            return None;
        }
        let (namespace, name, state) = identity(object)?;
        let token = object
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .filter(|bytes| !bytes.is_empty())
            .map(|bytes| self.digester.digest(&bytes));
        let invalidated = object
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(LEGACY_TOKEN_INVALID_SINCE_LABEL))
            .and_then(Value::as_str)
            .is_some_and(|since| !since.is_empty());
        let secret = TokenSecretState {
            uid: state.uid,
            deleting: state.deletion_timestamp.is_some(),
            invalidated,
            token,
        };
        Some((namespace, name, secret))
    }
}

impl ObjectLookup for ObjectIndex {
    fn object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<ObjectState> {
        let kinds = self.kinds.read().unwrap_or_else(PoisonError::into_inner);
        // A map keyed by owned strings: the lookup key is built once per check.
        kinds
            .get(kind_name(kind))?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn token_secret(&self, namespace: &str, name: &str) -> Option<TokenSecretState> {
        self.token_secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn token_digest(&self, token: &[u8]) -> TokenDigest {
        self.digester.digest(token)
    }
}

impl RbacSink for ObjectIndex {
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError> {
        let Some(kind) = object_kind(kind) else {
            return Err(format!("kind {kind:?} is not indexed").into());
        };
        let fresh: States = objects
            .iter()
            .filter_map(identity)
            .map(|(namespace, name, state)| ((namespace, name), state))
            .collect();
        let old = {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            kinds
                .insert(kind_name(kind), fresh.clone())
                .unwrap_or_default()
        };
        // A relist after missed events: whatever vanished or changed UID meanwhile is forgotten.
        for ((namespace, name), state) in old {
            let now = fresh.get(&(namespace.clone(), name.clone()));
            if now.is_none_or(|now| now.uid != state.uid) {
                self.tell(kind, &namespace, &name);
            }
        }
        Ok(())
    }

    fn upsert(&self, object: &Value) -> Result<(), SinkError> {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .and_then(object_kind)
            .ok_or("an object of a kind that is not indexed")?;
        let (namespace, name, state) = identity(object).ok_or("an object without name or uid")?;
        let uid = state.uid.clone();
        let previous = {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            kinds
                .entry(kind_name(kind))
                .or_default()
                .insert((namespace.clone(), name.clone()), state)
        };
        if previous.is_some_and(|old| old.uid != uid) {
            self.tell(kind, &namespace, &name);
        }
        Ok(())
    }

    fn remove(&self, kind: &str, namespace: &str, name: &str) {
        let Some(kind) = object_kind(kind) else {
            return;
        };
        {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(states) = kinds.get_mut(kind_name(kind)) {
                states.remove(&(namespace.to_owned(), name.to_owned()));
            }
        }
        self.tell(kind, namespace, name);
    }
}

/// Feeds [`TOKEN_SECRETS`] into the index's token Secrets.
struct TokenSecretSink(Arc<ObjectIndex>);

impl RbacSink for TokenSecretSink {
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError> {
        if kind != "Secret" {
            return Err(format!("kind {kind:?} is not a token Secret").into());
        }
        let fresh: TokenSecrets = objects
            .iter()
            .filter_map(|object| self.0.token_secret_state(object))
            .map(|(namespace, name, state)| ((namespace, name), state))
            .collect();
        let old = std::mem::replace(
            &mut *self
                .0
                .token_secrets
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            fresh.clone(),
        );
        for ((namespace, name), state) in old {
            if fresh.get(&(namespace.clone(), name.clone())) != Some(&state) {
                self.0.tell(ObjectKind::Secret, &namespace, &name);
            }
        }
        Ok(())
    }

    fn upsert(&self, object: &Value) -> Result<(), SinkError> {
        let key = |object: &Value| {
            let field = |name| metadata_str(object, name).unwrap_or_default().to_owned();
            (field("namespace"), field("name"))
        };
        match self.0.token_secret_state(object) {
            Some((namespace, name, state)) => {
                self.0
                    .token_secrets
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((namespace, name), state);
                Ok(())
            }
            None => {
                // Not (or no longer) a token Secret: it must not vouch for a token.
                let (namespace, name) = key(object);
                self.remove("Secret", &namespace, &name);
                Err("a Secret that is not a service account token Secret".into())
            }
        }
    }

    fn remove(&self, _kind: &str, namespace: &str, name: &str) {
        self.0
            .token_secrets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(namespace.to_owned(), name.to_owned()));
        self.0.tell(ObjectKind::Secret, namespace, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Forgotten(Mutex<Vec<String>>);
    impl ForgetObject for Forgotten {
        fn forget(&self, kind: ObjectKind, namespace: &str, name: &str) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{}/{namespace}/{name}", kind_name(kind)));
        }
    }

    fn sa(name: &str, uid: &str) -> Value {
        json!({"kind": "ServiceAccount", "metadata": {"namespace": "ci", "name": name, "uid": uid}})
    }

    fn uid_of(index: &ObjectIndex, kind: ObjectKind, name: &str) -> Option<String> {
        index.object(kind, "ci", name).map(|state| state.uid)
    }

    fn forgotten(f: &Forgotten) -> Vec<String> {
        std::mem::take(&mut *f.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    #[test]
    fn uids_follow_lists_and_events_and_losses_are_told() {
        let index = ObjectIndex::new();
        let told = Arc::new(Forgotten::default());
        index.on_forget(told.clone());
        index
            .replace_kind("ServiceAccount", &[sa("jenkins", "u1"), sa("ci", "u2")])
            .expect("list");
        assert_eq!(
            uid_of(&index, ObjectKind::ServiceAccount, "jenkins"),
            Some("u1".into())
        );
        assert_eq!(uid_of(&index, ObjectKind::Pod, "jenkins"), None);

        // Same UID again: nothing to forget. A new UID (deleted and re-created): forget.
        index.upsert(&sa("jenkins", "u1")).expect("upsert");
        assert!(forgotten(&told).is_empty());
        index.upsert(&sa("jenkins", "u3")).expect("upsert");
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/jenkins"]);

        index.remove("ServiceAccount", "ci", "jenkins");
        assert_eq!(uid_of(&index, ObjectKind::ServiceAccount, "jenkins"), None);
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/jenkins"]);

        // A relist without "ci" forgets it.
        index.replace_kind("ServiceAccount", &[]).expect("list");
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/ci"]);
    }

    #[test]
    fn every_kind_is_synced_as_metadata_only_but_the_token_secrets() {
        // `identity` reads only metadata; no Secret's data is asked for...
        for kind in OBJECTS.kinds {
            assert!(kind.metadata_only, "{}", kind.kind);
            assert!(kind.field_selector.is_none(), "{}", kind.kind);
            assert!(object_kind(kind.kind).is_some(), "{}", kind.kind);
        }
        // ...but that of the legacy token Secrets, and only theirs.
        let [secrets] = TOKEN_SECRETS.kinds else {
            panic!("one kind");
        };
        assert_eq!(secrets.kind, "Secret");
        assert!(!secrets.metadata_only);
        assert_eq!(
            secrets.field_selector,
            Some("type=kubernetes.io/service-account-token")
        );
    }

    #[test]
    fn deletion_timestamps_are_kept_and_a_bad_one_counts_as_long_ago() {
        let index = ObjectIndex::new();
        let pod = |timestamp: Value| {
            json!({"kind": "Pod", "metadata": {"namespace": "ci", "name": "p", "uid": "u",
                "deletionTimestamp": timestamp}})
        };
        index.upsert(&pod(Value::Null)).expect("upsert");
        assert_eq!(
            index.object(ObjectKind::Pod, "ci", "p"),
            Some(ObjectState {
                uid: "u".into(),
                deletion_timestamp: None
            })
        );
        index
            .upsert(&pod(json!("2027-01-15T08:00:00Z")))
            .expect("upsert");
        assert_eq!(
            index
                .object(ObjectKind::Pod, "ci", "p")
                .and_then(|s| s.deletion_timestamp),
            Some(1_800_000_000)
        );
        index.upsert(&pod(json!("yesterday"))).expect("upsert");
        assert_eq!(
            index
                .object(ObjectKind::Pod, "ci", "p")
                .and_then(|s| s.deletion_timestamp),
            Some(0)
        );
    }

    fn token_secret(name: &str, uid: &str, token: &str) -> Value {
        use base64::Engine as _;
        json!({"kind": "Secret", "apiVersion": "v1", "type": SERVICE_ACCOUNT_TOKEN_TYPE,
            "metadata": {"namespace": "ci", "name": name, "uid": uid},
            "data": {"token": base64::engine::general_purpose::STANDARD.encode(token),
                "ca.crt": "Q0E="}})
    }

    #[test]
    fn token_secrets_are_kept_as_a_digest_of_their_token() {
        let index = Arc::new(ObjectIndex::new());
        let told = Arc::new(Forgotten::default());
        index.on_forget(told.clone());
        let sink = index.token_secret_sink();
        sink.replace_kind("Secret", &[token_secret("t", "u1", "header.claims.sig")])
            .expect("list");
        let state = index.token_secret("ci", "t").expect("kept");
        assert_eq!(state.uid, "u1");
        assert!(!state.deleting && !state.invalidated);
        assert_eq!(state.token, Some(index.token_digest(b"header.claims.sig")));
        assert_ne!(state.token, Some(index.token_digest(b"another.token.sig")));
        // Nothing of the Secret's data is kept.
        let shown = format!("{:?}", index.token_secret("ci", "t"));
        assert!(!shown.contains("sig") && !shown.contains("Q0E"), "{shown}");

        // Rewritten, marked invalid, being deleted: each is seen.
        sink.upsert(&token_secret("t", "u1", "rewritten.token.sig"))
            .expect("upsert");
        assert_eq!(
            index.token_secret("ci", "t").and_then(|s| s.token),
            Some(index.token_digest(b"rewritten.token.sig"))
        );
        let mut marked = token_secret("t", "u1", "rewritten.token.sig");
        marked["metadata"]["labels"] = json!({});
        marked["metadata"]["labels"][LEGACY_TOKEN_INVALID_SINCE_LABEL] = json!("2024-01-01");
        marked["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        sink.upsert(&marked).expect("upsert");
        let state = index.token_secret("ci", "t").expect("kept");
        assert!(state.invalidated && state.deleting);

        // A Secret of another type never vouches for a token, and replaces what was there.
        let mut opaque = token_secret("t", "u1", "rewritten.token.sig");
        opaque["type"] = json!("Opaque");
        assert!(sink.upsert(&opaque).is_err());
        assert_eq!(index.token_secret("ci", "t"), None);
        assert_eq!(forgotten(&told), ["Secret/ci/t"]);

        // Deleted, or gone from a relist: forgotten.
        sink.upsert(&token_secret("t", "u2", "x.y.z"))
            .expect("upsert");
        sink.remove("Secret", "ci", "t");
        assert_eq!(index.token_secret("ci", "t"), None);
        assert_eq!(forgotten(&told), ["Secret/ci/t"]);
        sink.upsert(&token_secret("t", "u3", "x.y.z"))
            .expect("upsert");
        sink.replace_kind("Secret", &[]).expect("list");
        assert_eq!(forgotten(&told), ["Secret/ci/t"]);
        // The metadata-only index of Secrets is another map.
        assert_eq!(index.object(ObjectKind::Secret, "ci", "t"), None);
    }

    #[test]
    fn objects_without_identity_or_of_other_kinds_are_refused() {
        let index = ObjectIndex::new();
        assert!(index
            .upsert(&json!({"kind": "ServiceAccount", "metadata": {"name": "x"}}))
            .is_err());
        assert!(index
            .upsert(&json!({"kind": "ConfigMap", "metadata": {"name": "x", "uid": "u"}}))
            .is_err());
        assert!(index.replace_kind("ConfigMap", &[]).is_err());
    }
}
