//! Finding the states under `s3://BUCKET/PREFIX`: the default workspace's objects under PREFIX
//! and every workspace's under `<workspace_key_prefix>/<workspace>/PREFIX` (OpenTofu's layout).
//! `.tflock` objects are lock files and zip objects are plan files: they are reported
//! separately, never treated as states.

use std::collections::BTreeSet;

use stateseal_encryption::describe::{describe, Description};
use stateseal_store::{Object, DEFAULT_WORKSPACE};

use crate::error::Result;

use crate::{parallel, Event, Fleet};

/// One state object.
#[derive(Clone, Debug)]
pub struct FoundState {
    pub key: String,
    pub workspace: String,
    pub object: Object,
    pub description: Description,
}

/// Everything under the prefix, sorted by kind.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub states: Vec<FoundState>,
    pub lock_files: Vec<String>,
    pub plans: Vec<String>,
    /// Objects that are neither: key and why.
    pub other: Vec<(String, String)>,
}

impl Fleet {
    /// The workspace a key belongs to, and the key relative to the workspace (what PREFIX is
    /// matched against).
    pub fn workspace_of<'k>(&self, key: &'k str) -> (String, &'k str) {
        let wkp = &self.store.config().workspace_key_prefix;
        if !wkp.is_empty() {
            if let Some(rest) = key
                .strip_prefix(wkp.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                if let Some((ws, tail)) = rest.split_once('/') {
                    if !ws.is_empty() {
                        return (ws.to_string(), tail);
                    }
                }
            }
        }
        (DEFAULT_WORKSPACE.to_string(), key)
    }

    /// Does `key` (a state key, or a lock file's) belong to this fleet?
    pub fn in_scope(&self, key: &str) -> bool {
        self.workspace_of(key).1.starts_with(&self.prefix)
    }

    /// Every object key in scope, sorted.
    pub async fn keys(&self) -> Result<Vec<String>> {
        let store = &self.store;
        let mut keys: BTreeSet<String> = store.list_keys(&self.prefix).await?.into_iter().collect();
        let wkp = &store.config().workspace_key_prefix;
        if !wkp.is_empty() {
            keys.extend(store.list_keys(&format!("{wkp}/")).await?);
        }
        Ok(keys.into_iter().filter(|k| self.in_scope(k)).collect())
    }
}

/// Lists and reads every object in scope (`concurrency` reads at a time) and sorts them.
pub async fn discover(
    fleet: &Fleet,
    concurrency: usize,
    on_event: &mut dyn FnMut(Event),
) -> Result<Inventory> {
    let mut inv = Inventory::default();
    let mut to_read = Vec::new();
    for key in fleet.keys().await? {
        if key.ends_with(".tflock") {
            inv.lock_files.push(key);
        } else {
            to_read.push(key);
        }
    }
    on_event(Event::Listed {
        objects: to_read.len(),
    });
    let read = parallel::run(
        to_read,
        concurrency,
        |key| {
            let store = fleet.store.clone();
            async move {
                let got = store.object(&key, None).await.map(|o| o.map(|(o, _)| o));
                (key, got)
            }
        },
        |(key, _)| on_event(Event::Read { key: key.clone() }),
    )
    .await;
    for (key, got) in read {
        let Some(object) = got? else {
            inv.other
                .push((key, "empty or deleted while listing".into()));
            continue;
        };
        let description = describe(&object.bytes);
        match description.kind.as_str() {
            "state" => {
                let workspace = fleet.workspace_of(&key).0;
                inv.states.push(FoundState {
                    key,
                    workspace,
                    object,
                    description,
                })
            }
            "plan" => inv.plans.push(key),
            _ => inv.other.push((
                key,
                description
                    .problem
                    .clone()
                    .unwrap_or_else(|| format!("not a state ({})", description.kind)),
            )),
        }
    }
    Ok(inv)
}
