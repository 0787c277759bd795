//! `stored_object`: the copy of stored values into JSON lists ([`codec::write_list_item`]),
//! which scans the stored bytes for their top-level members (leaving out `apiVersion` and
//! `kind`, putting `resourceVersion` into `metadata`) instead of decoding them. Object contents are the clients' (annotation
//! values, labels, data), so the scanner must follow every string however it is escaped.
//!
//! Input: any bytes, as a stored value. The fast copy must answer as decoding and encoding
//! would ([`codec::decode_list_item`] then serde_json): both refuse (500), or the copy is the slow
//! way's bytes or reads as the same object; for a value serde_json wrote itself (compact, its
//! own escapes and numbers) the same bytes.

use kgate_controlplane::apiserver::codec;
use kgate_controlplane::store::KeyValue;
use serde_json::Value;

/// Runs one input; true when the value was accepted as a stored object.
pub fn run(data: &[u8]) -> bool {
    let kv = KeyValue {
        key: "/registry/configmaps/ns/name".to_owned(),
        value: data.to_vec(),
        create_revision: 3,
        mod_revision: 42,
    };
    let mut fast = Vec::new();
    let fast = codec::write_list_item(&kv, &mut fast).map(|()| fast);
    let slow = codec::decode_list_item(&kv);
    match (fast, slow) {
        (Err(f), Err(s)) => {
            assert_eq!((f.code, s.code), (500, 500));
            false
        }
        (Ok(fast), Ok(object)) => {
            let canonical = serde_json::to_vec(&object).unwrap_or_default();
            // Either the slow way's own bytes, or a copy that reads as the same object. (Not
            // "reads back as the object" in both cases: serde_json's float parsing is not
            // correctly rounded, so its own output can read back an ulp away.)
            if fast != canonical {
                let reparsed: Value = serde_json::from_slice(&fast).unwrap_or_else(|e| {
                    panic!(
                        "the copy is not JSON ({e}): {}",
                        String::from_utf8_lossy(&fast)
                    )
                });
                assert_eq!(reparsed, object, "the copy is another object");
            }
            if serde_json::from_slice::<Value>(data)
                .ok()
                .and_then(|v| serde_json::to_vec(&v).ok())
                .is_some_and(|again| again == data)
            {
                assert_eq!(fast, canonical, "serde_json's own bytes copied differently");
            }
            true
        }
        (fast, slow) => panic!(
            "the copy and the decoding disagree: {:?} vs {:?}",
            fast.map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|s| s.code),
            slow.map_err(|s| s.code)
        ),
    }
}
