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

    #[derive(Default, Debug, PartialEq)]
    struct Words {
        all: usize,
        short: usize,
        long: usize,
        with_x: usize,
    }

    impl Tally for Words {
        type Item = &'static str;
        fn counter(&mut self, w: &&'static str) -> &mut usize {
            if w.len() < 4 {
                &mut self.short
            } else {
                &mut self.long
            }
        }
        fn total(&mut self) -> Option<&mut usize> {
            Some(&mut self.all)
        }
        fn also(&mut self, w: &&'static str) {
            self.with_x += usize::from(w.contains('x'));
        }
    }

    #[test]
    fn a_tally_counts_each_item_once_by_kind_in_the_total_and_its_extras() {
        let words = ["ox", "axe", "lynx", "otter", "eel"];
        assert_eq!(
            Words::of(&words),
            Words {
                all: 5,
                short: 3,
                long: 2,
                with_x: 3
            }
        );
        assert_eq!(Words::of(&[]), Words::default());
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

/// A report's `summary`: how many items fell into each kind. Each report keeps its own counters
/// (their JSON names are stable); this is the one way they are counted.
pub trait Tally: Default {
    /// What is counted (a state's line, a bootstrap step).
    type Item;

    /// The counter `item` adds one to.
    fn counter(&mut self, item: &Self::Item) -> &mut usize;

    /// The counter every item adds one to (the `states` total), if the tally has one.
    fn total(&mut self) -> Option<&mut usize> {
        None
    }

    /// Counts of `item` beyond its kind (a held lock, say).
    fn also(&mut self, _item: &Self::Item) {}

    /// The tally of `items`.
    fn of<'a>(items: impl IntoIterator<Item = &'a Self::Item>) -> Self
    where
        Self::Item: 'a,
    {
        let mut tally = Self::default();
        for item in items {
            *tally.counter(item) += 1;
            if let Some(total) = tally.total() {
                *total += 1;
            }
            tally.also(item);
        }
        tally
    }
}
