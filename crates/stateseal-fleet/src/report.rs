//! What the fleet's reports share: how a state skipped because of a lock, or one that failed,
//! is written in `--json` (the `detail` text CI logs read, byte for byte as before the outcomes
//! were typed), and an object's typed server-side encryption as the two JSON fields it always
//! was.

use std::fmt::Display;

use serde::{Serialize, Serializer};
use stateseal_store::lock_info::LockInfo;
use stateseal_store::s3::Sse;

/// Who holds a lock that made a state be skipped: `locked by WHO (ID …, operation …, since …)`.
pub fn held_by(holder: &LockInfo) -> String {
    format!(
        "locked by {} (ID {}, operation {}, since {})",
        holder.who,
        holder.id,
        holder.operation,
        holder.created.rfc3339_nano()
    )
}

/// Serializes a holder as [`held_by`]'s sentence.
pub(crate) fn holder_detail<S: Serializer>(holder: &LockInfo, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&held_by(holder))
}

/// Serializes an error as its message.
pub(crate) fn error_detail<E: Display, S: Serializer>(e: &E, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// An object's server-side encryption in a report: in JSON the two fields `sse` (`AES256`,
/// `aws:kms`, `aws:kms:dsse`, `SSE-C` or null) and `sse_kms_key_id` (flattened in place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSse(pub Sse);

/// The encryption a state had before an SSE migration: `was_sse` and `was_kms_key_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasSse(pub Sse);

/// `sse` as two fields named `names`: the algorithm's name and the KMS key.
fn sse_fields<S: Serializer>(sse: &Sse, names: [&str; 2], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry(names[0], &sse.name())?;
    map.serialize_entry(names[1], &sse.kms_key())?;
    map.end()
}

impl Serialize for ObjectSse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        sse_fields(&self.0, ["sse", "sse_kms_key_id"], s)
    }
}

impl Serialize for WasSse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        sse_fields(&self.0, ["was_sse", "was_kms_key_id"], s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Line {
        key: &'static str,
        #[serde(flatten)]
        sse: ObjectSse,
        size: u32,
    }

    #[test]
    fn sse_keeps_its_two_json_fields_in_place() {
        let kms = Line {
            key: "k",
            sse: ObjectSse(Sse::Kms {
                key: Some("arn:k".into()),
            }),
            size: 1,
        };
        assert_eq!(
            serde_json::to_string(&kms).unwrap(),
            r#"{"key":"k","sse":"aws:kms","sse_kms_key_id":"arn:k","size":1}"#
        );
        let none = Line {
            key: "k",
            sse: ObjectSse(Sse::None),
            size: 1,
        };
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"key":"k","sse":null,"sse_kms_key_id":null,"size":1}"#
        );
        assert_eq!(
            serde_json::to_string(&WasSse(Sse::S3)).unwrap(),
            r#"{"was_sse":"AES256","was_kms_key_id":null}"#
        );
    }
}
