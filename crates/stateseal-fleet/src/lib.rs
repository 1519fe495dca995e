//! Fleet operations on a state bucket (docs/FLEET.md): find every state under a prefix, in the
//! default and every workspace ([`discovery`]), audit them without a key ([`audit`]), rekey
//! them onto the primary method, each in its own locked transaction ([`rekey`]), move them
//! between SSE-S3 and SSE-KMS with a locked self-copy ([`sse`]), prove the bucket's promises
//! ([`verify`]: SSE-KMS key, client-side provider, digest, "the gate bites"), list and safely
//! break stale locks ([`locks`]), and create or fix a hardened backend ([`bootstrap`]).
//!
//! A library: nothing is printed. Long operations report progress as [`Event`]s to a callback;
//! the CLI renders them (tables, `--json`, a progress bar).
#![forbid(unsafe_code)]

pub mod audit;
pub mod bootstrap;
pub mod discovery;
pub mod drill;
pub mod error;
mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod locks;
mod parallel;
pub mod recovery;
pub mod rekey;
pub mod report;
pub mod sse;
pub mod verify;

pub use error::{Error, Result};
pub use event::Event;

use std::future::Future;

use stateseal_store::s3::S3Store;

use discovery::FoundState;

/// The states to work on: a connection to the bucket (its settings: SSE, lock table, lock
/// files, workspace_key_prefix) and the key prefix selected by `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub store: S3Store,
    pub prefix: String,
}

impl Fleet {
    pub fn new(store: S3Store, prefix: impl Into<String>) -> Fleet {
        Fleet {
            store,
            prefix: prefix.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.store.config().bucket
    }
}

/// `s3://BUCKET[/PREFIX]`: the bucket and the prefix (maybe empty) a fleet command works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    pub prefix: String,
}

/// Why a fleet URL did not parse.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not an s3:// URL: expected s3://BUCKET[/PREFIX]")]
    NotS3(String),
    #[error("{0:?} names no bucket: expected s3://BUCKET[/PREFIX]")]
    NoBucket(String),
}

impl std::str::FromStr for BucketUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> std::result::Result<BucketUrl, UrlError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| UrlError::NotS3(url.into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(UrlError::NoBucket(url.into()));
        }
        Ok(BucketUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Why a check of `s3://BUCKET/PREFIX` that found no state does not pass: a gate that checked
/// nothing would pass for ever (a mistyped or mis-cased prefix). `others` counts the objects
/// under the prefix that are not states (plans, lock files, anything else).
pub fn nothing_checked(bucket: &str, prefix: &str, others: usize) -> String {
    let others = match others {
        0 => String::new(),
        n => format!(" ({n} other object(s) are there, none of them a state)"),
    };
    format!("no state under s3://{bucket}/{prefix}{others}: nothing was checked")
}

/// Runs `job` for every state, `concurrency` at a time, telling `on_event` when the work starts
/// and as each state finishes (its key and outcome word, from `finished`).
pub(crate) async fn each_state<T, Fut>(
    states: Vec<FoundState>,
    concurrency: usize,
    on_event: &mut dyn FnMut(Event),
    job: impl Fn(FoundState) -> Fut,
    finished: impl Fn(&T) -> (String, &'static str),
) -> Vec<T>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    on_event(Event::Started {
        states: states.len(),
    });
    parallel::run(states, concurrency, job, |t| {
        let (key, word) = finished(t);
        on_event(Event::Finished { key, outcome: word })
    })
    .await
}

/// Do two KMS key references name the same key? A key ARN and the bare key ID it ends with
/// match (S3 reports either, depending on how the key was given).
pub fn same_kms_key(a: &str, b: &str) -> bool {
    let id = |s: &str| s.rsplit_once(":key/").map_or(s, |(_, id)| id).to_string();
    id(a) == id(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kms_key_arns_match_their_key_ids() {
        let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab";
        assert!(super::same_kms_key(arn, arn));
        assert!(super::same_kms_key(arn, "1234abcd-12ab"));
        assert!(!super::same_kms_key(
            arn,
            "arn:aws:kms:us-east-1:111122223333:key/other"
        ));
        assert!(!super::same_kms_key(arn, "alias/x"));
    }

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        use super::{BucketUrl, UrlError};
        let url = |bucket: &str, prefix: &str| BucketUrl {
            bucket: bucket.into(),
            prefix: prefix.into(),
        };
        assert_eq!("s3://b".parse(), Ok(url("b", "")));
        assert_eq!("s3://b/team/a".parse(), Ok(url("b", "team/a")));
        assert_eq!(
            "s3:///x".parse::<BucketUrl>(),
            Err(UrlError::NoBucket("s3:///x".into()))
        );
        assert_eq!(
            "b/x".parse::<BucketUrl>(),
            Err(UrlError::NotS3("b/x".into()))
        );
    }
}
