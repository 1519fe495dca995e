//! `MemoryStore`: a [`Store`] that keeps everything in memory, with versions and locks. For tests
//! of code above the store (the server, the fleet) and as the reference the conformance suite is
//! checked against; nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::lock_info::GoTime;
use crate::lock_info::LockInfo;
use crate::store::{
    validate_workspace_name, Capabilities, Object, PutMode, Store, Version, VersionInfo,
    DEFAULT_WORKSPACE,
};

#[derive(Default)]
struct Workspace {
    /// Every write, oldest first; `None` marks a deletion.
    history: Vec<(u64, Option<Bytes>, GoTime)>,
    lock: Option<LockInfo>,
}

/// An in-memory store. Versions are numbered per store (`1`, `2`, …).
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    workspaces: BTreeMap<String, Workspace>,
    next_version: u64,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        let s = MemoryStore::default();
        s.state()
            .workspaces
            .insert(DEFAULT_WORKSPACE.into(), Workspace::default());
        s
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on an existing workspace (after checking its name), else `NotFound`.
    fn read_workspace<T>(
        &self,
        workspace: &str,
        f: impl FnOnce(&Workspace) -> Result<T>,
    ) -> Result<T> {
        check(workspace)?;
        let st = self.state();
        let ws = st
            .workspaces
            .get(workspace)
            .ok_or_else(|| not_found(workspace))?;
        f(ws)
    }
}

fn not_found(workspace: &str) -> Error {
    Error::NotFound {
        what: format!("state memory://{workspace}"),
    }
}

fn check(workspace: &str) -> Result<()> {
    validate_workspace_name(workspace)
}

impl Workspace {
    fn current(&self) -> Option<(u64, &Bytes)> {
        match self.history.last() {
            Some((v, Some(b), _)) => Some((*v, b)),
            _ => None,
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn location(&self, workspace: &str) -> String {
        format!("memory://{workspace}")
    }

    fn locking_enabled(&self) -> bool {
        true
    }

    fn workspace_needs_state(&self) -> bool {
        false
    }

    /// The lock is in memory: it ends with the process holding it.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            locking: true,
            lock_outlives_process: false,
            workspaces: true,
        }
    }

    async fn workspaces(&self) -> Result<Vec<String>> {
        let st = self.state();
        let mut out = vec![DEFAULT_WORKSPACE.to_string()];
        out.extend(
            st.workspaces
                .keys()
                .filter(|w| *w != DEFAULT_WORKSPACE)
                .cloned(),
        );
        Ok(out)
    }

    async fn create_workspace(&self, workspace: &str) -> Result<()> {
        check(workspace)?;
        self.state()
            .workspaces
            .entry(workspace.to_string())
            .or_default();
        Ok(())
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        crate::store::refuse_default_deletion(workspace)?;
        check(workspace)?;
        match self.state().workspaces.remove(workspace) {
            Some(_) => Ok(()),
            None => Err(not_found(workspace)),
        }
    }

    async fn get(&self, workspace: &str) -> Result<Object> {
        self.read_workspace(workspace, |ws| match ws.current() {
            Some((v, b)) if !b.is_empty() => Ok(Object {
                bytes: b.clone(),
                version: Version(v.to_string()),
                version_id: Some(v.to_string()),
            }),
            _ => Err(not_found(workspace)),
        })
    }

    async fn put(&self, workspace: &str, bytes: Bytes, mode: PutMode) -> Result<Version> {
        check(workspace)?;
        let mut st = self.state();
        st.next_version += 1;
        let v = st.next_version;
        let ws = st.workspaces.entry(workspace.to_string()).or_default();
        let current = ws.current().map(|(v, _)| Version(v.to_string()));
        match (&mode, &current) {
            (PutMode::Create, Some(_)) => {
                return Err(Error::AlreadyExists {
                    what: format!("state memory://{workspace}"),
                })
            }
            (PutMode::Update(want), cur) if cur.as_ref() != Some(want) => {
                return Err(Error::Precondition {
                    what: format!("state memory://{workspace}"),
                    message: "its content is not the version the write was based on".into(),
                })
            }
            _ => {}
        }
        ws.history.push((v, Some(bytes), GoTime::now()));
        Ok(Version(v.to_string()))
    }

    async fn lock(&self, workspace: &str, mut info: LockInfo) -> Result<LockInfo> {
        check(workspace)?;
        let mut st = self.state();
        let ws = st.workspaces.entry(workspace.to_string()).or_default();
        if let Some(holder) = &ws.lock {
            return Err(Error::Locked {
                holder: Box::new(holder.clone()),
                message: "the state is locked".into(),
            });
        }
        if info.id.is_empty() {
            info.id = crate::lock_info::new_lock_id();
        }
        info.path = format!("memory://{workspace}");
        info.created = GoTime::now();
        ws.lock = Some(info.clone());
        Ok(info)
    }

    async fn unlock(&self, workspace: &str, id: &str) -> Result<()> {
        check(workspace)?;
        let mut st = self.state();
        let ws = st
            .workspaces
            .get_mut(workspace)
            .ok_or_else(|| not_found(workspace))?;
        match &ws.lock {
            None => Err(Error::NotLocked {
                what: format!("memory://{workspace}"),
            }),
            Some(h) if h.id != id => Err(Error::LockMismatch {
                id: id.to_string(),
                where_: "",
                holder: Box::new(h.clone()),
            }),
            Some(_) => {
                ws.lock = None;
                Ok(())
            }
        }
    }

    async fn lock_holder(&self, workspace: &str) -> Result<Option<LockInfo>> {
        check(workspace)?;
        let st = self.state();
        Ok(st.workspaces.get(workspace).and_then(|w| w.lock.clone()))
    }

    async fn versions(&self, workspace: &str) -> Result<Vec<VersionInfo>> {
        self.read_workspace(workspace, |ws| {
            let last = ws.history.len();
            Ok(ws
                .history
                .iter()
                .enumerate()
                .rev()
                .map(|(i, (v, b, t))| VersionInfo {
                    id: v.to_string(),
                    last_modified: t.rfc3339_nano(),
                    size: b.as_ref().map_or(0, |b| b.len() as u64),
                    is_latest: i + 1 == last,
                    is_delete_marker: b.is_none(),
                })
                .collect())
        })
    }

    async fn get_version(&self, workspace: &str, version_id: &str) -> Result<Object> {
        self.read_workspace(workspace, |ws| {
            ws.history
                .iter()
                .find(|(v, _, _)| v.to_string() == version_id)
                .and_then(|(v, b, _)| {
                    b.as_ref().map(|b| Object {
                        bytes: b.clone(),
                        version: Version(v.to_string()),
                        version_id: Some(v.to_string()),
                    })
                })
                .ok_or_else(|| Error::NotFound {
                    what: format!("version {version_id:?} of memory://{workspace}"),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let store = MemoryStore::new();
        crate::conformance::run(&store, "conformance-ws", true, true).await;
    }

    #[tokio::test]
    async fn keeps_every_version() {
        let store = MemoryStore::new();
        let v1 = store
            .put("default", Bytes::from_static(b"one"), PutMode::Create)
            .await
            .unwrap();
        store
            .put(
                "default",
                Bytes::from_static(b"two"),
                PutMode::Update(v1.clone()),
            )
            .await
            .unwrap();
        let list = store.versions("default").await.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].is_latest && !list[1].is_latest);
        assert_eq!(
            store.get_version("default", &v1.0).await.unwrap().bytes,
            Bytes::from_static(b"one")
        );
    }
}
