//! Fleet operations on a state bucket (docs/FLEET.md): find every state under a prefix, in the
//! default and every workspace ([`discovery`]), audit them without a key ([`audit`]), rekey
//! them onto the primary method, each in its own locked transaction ([`rekey`]), and list and
//! safely break stale locks ([`locks`]).
//!
//! A library: nothing is printed. Long operations report progress as [`Event`]s to a callback;
//! the CLI renders them (tables, `--json`, a progress bar).
#![forbid(unsafe_code)]

pub mod audit;
pub mod discovery;
mod event;
pub mod locks;
mod parallel;
pub mod rekey;

pub use event::Event;

use stateseal_store::s3::S3Store;

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

/// Splits `s3://BUCKET[/PREFIX]` into the bucket and the prefix (maybe empty).
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3:// URL: expected s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "{url:?} names no bucket: expected s3://BUCKET[/PREFIX]"
        ));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(super::parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert_eq!(
            super::parse_url("s3://b/team/a").unwrap(),
            ("b".into(), "team/a".into())
        );
        assert!(super::parse_url("s3:///x").is_err());
        assert!(super::parse_url("b/x").is_err());
    }
}
