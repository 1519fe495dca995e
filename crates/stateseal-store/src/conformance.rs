//! The behaviour every [`Store`] must show, as one async function that backend tests call
//! with a fresh, empty store (object_store's pattern). It panics with a message on the first
//! deviation.

use bytes::Bytes;

use crate::error::Error;
use crate::lock_info::LockInfo;
use crate::store::{PutMode, Store, Version, DEFAULT_WORKSPACE};

const A: Bytes = Bytes::from_static(
    b"{\"version\":4,\"serial\":1,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n",
);
const B: Bytes = Bytes::from_static(
    b"{\"version\":4,\"serial\":2,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n",
);
// Each write has a higher serial than the one before, so stores that enforce OpenTofu's state
// rules (`stateseal serve` behind `backend "http"`) accept the same sequence.
const C: Bytes = Bytes::from_static(
    b"{\"version\":4,\"serial\":3,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n",
);
const D: Bytes = Bytes::from_static(
    b"{\"version\":4,\"serial\":4,\"lineage\":\"conformance\",\"outputs\":{},\"resources\":[]}\n",
);

/// Runs the suite. `ws` is a workspace name to create and delete (unique per run);
/// `expect_locking` says whether the caller configured the store with locking, and
/// `expect_workspaces` whether the backend has workspaces besides `default`. The suite checks
/// that the store agrees, so its locking or workspace part cannot be skipped by a store that
/// lost them.
pub async fn run(store: &dyn Store, ws: &str, expect_locking: bool, expect_workspaces: bool) {
    assert_eq!(
        store.locking_enabled(),
        expect_locking,
        "locking_enabled() matches the store's configuration"
    );
    assert_eq!(
        store.supports_workspaces(),
        expect_workspaces,
        "supports_workspaces() matches the backend"
    );
    get_put(store).await;
    if expect_workspaces {
        workspaces(store, ws).await;
    } else {
        only_default(store, ws).await;
    }
    if expect_locking {
        locking(store, DEFAULT_WORKSPACE).await;
        if expect_workspaces {
            locking(store, ws).await;
        }
    }
    if expect_workspaces {
        deletion(store, ws).await;
    }
}

/// A backend with only `default` lists only it and refuses to make or delete others.
async fn only_default(store: &dyn Store, ws: &str) {
    assert!(
        matches!(store.create_workspace(ws).await, Err(Error::Unsupported(_))),
        "creating a workspace is Unsupported"
    );
    assert_eq!(store.workspaces().await.unwrap(), [DEFAULT_WORKSPACE]);
    assert!(
        matches!(store.get(ws).await, Err(Error::Unsupported(_))),
        "another workspace's state is Unsupported"
    );
    assert!(
        matches!(store.delete_workspace(ws).await, Err(Error::Unsupported(_))),
        "deleting a workspace is Unsupported"
    );
    assert!(
        matches!(
            store.delete_workspace(DEFAULT_WORKSPACE).await,
            Err(Error::InvalidWorkspace { .. })
        ),
        "default can't be deleted"
    );
    invalid_names(store).await;
    assert_eq!(
        store.get(DEFAULT_WORKSPACE).await.unwrap().bytes,
        C,
        "default untouched"
    );
}

async fn invalid_names(store: &dyn Store) {
    for bad in ["a/b", "", "..", "sp ace"] {
        assert!(
            matches!(
                store.get(bad).await,
                Err(Error::InvalidWorkspace { ref name, .. }) if name == bad
            ),
            "workspace {bad:?} is refused as invalid"
        );
    }
}

async fn get_put(store: &dyn Store) {
    let list = store.workspaces().await.expect("list workspaces");
    assert_eq!(list, [DEFAULT_WORKSPACE], "a fresh store has only default");
    assert!(
        matches!(
            store.get(DEFAULT_WORKSPACE).await,
            Err(Error::NotFound { .. })
        ),
        "absent state is NotFound"
    );

    let v1 = store
        .put(DEFAULT_WORKSPACE, A, PutMode::Create)
        .await
        .expect("create");
    let got = store.get(DEFAULT_WORKSPACE).await.expect("get");
    assert_eq!(got.bytes, A, "bytes come back exactly");
    assert_eq!(got.version, v1, "get reports the version put returned");
    assert!(
        matches!(
            store.put(DEFAULT_WORKSPACE, B, PutMode::Create).await,
            Err(Error::AlreadyExists { .. })
        ),
        "create over an existing state is AlreadyExists"
    );
    assert!(
        matches!(
            store
                .put(
                    DEFAULT_WORKSPACE,
                    B,
                    PutMode::Update(Version("stale".into()))
                )
                .await,
            Err(Error::Precondition { .. })
        ),
        "update from a stale version is Precondition"
    );
    assert_eq!(
        store.get(DEFAULT_WORKSPACE).await.unwrap().bytes,
        A,
        "refused writes change nothing"
    );
    let v2 = store
        .put(DEFAULT_WORKSPACE, B, PutMode::Update(v1.clone()))
        .await
        .expect("update from the current version");
    assert_ne!(v1, v2, "a new content has a new version");
    store
        .put(DEFAULT_WORKSPACE, C, PutMode::Overwrite)
        .await
        .expect("overwrite");
    assert_eq!(store.get(DEFAULT_WORKSPACE).await.unwrap().bytes, C);
}

async fn workspaces(store: &dyn Store, ws: &str) {
    store.create_workspace(ws).await.expect("create workspace");
    if store.workspace_needs_state() {
        store
            .put(ws, B, PutMode::Create)
            .await
            .expect("first state");
    } else {
        assert!(matches!(store.get(ws).await, Err(Error::NotFound { .. })));
        store
            .put(ws, B, PutMode::Create)
            .await
            .expect("first state");
    }
    assert_eq!(store.get(ws).await.unwrap().bytes, B);
    assert_eq!(
        store.get(DEFAULT_WORKSPACE).await.unwrap().bytes,
        C,
        "workspaces are separate"
    );
    let list = store.workspaces().await.unwrap();
    assert_eq!(
        list,
        [DEFAULT_WORKSPACE, ws],
        "new workspace is listed after default"
    );
    invalid_names(store).await;
}

async fn locking(store: &dyn Store, ws: &str) {
    let mut info = LockInfo::new("conformance");
    info.id = String::new();
    let held = store.lock(ws, info).await.expect("lock");
    assert!(!held.id.is_empty(), "lock assigns an ID");
    assert!(!held.path.is_empty(), "lock records the path");
    match store.lock(ws, LockInfo::new("second")).await {
        Err(Error::Locked { holder, .. }) => assert_eq!(holder.id, held.id, "holder is reported"),
        other => panic!("second lock must be Locked, got {other:?}"),
    }
    let holder = store
        .lock_holder(ws)
        .await
        .unwrap()
        .expect("holder visible");
    assert_eq!(holder.id, held.id);
    store
        .put(ws, D, PutMode::Overwrite)
        .await
        .expect("the holder can write");
    assert!(
        matches!(
            store.unlock(ws, "not-the-id").await,
            Err(Error::LockMismatch { .. })
        ),
        "unlock with another ID is LockMismatch"
    );
    store.unlock(ws, &held.id).await.expect("unlock");
    assert_eq!(store.lock_holder(ws).await.unwrap(), None, "released");
    assert!(
        matches!(
            store.unlock(ws, &held.id).await,
            Err(Error::NotLocked { .. })
        ),
        "unlock of a free lock is NotLocked"
    );
    let again = store
        .lock(ws, LockInfo::new("again"))
        .await
        .expect("relock");
    store.unlock(ws, &again.id).await.unwrap();
}

async fn deletion(store: &dyn Store, ws: &str) {
    assert!(
        matches!(
            store.delete_workspace(DEFAULT_WORKSPACE).await,
            Err(Error::InvalidWorkspace { .. })
        ),
        "default can't be deleted"
    );
    store.delete_workspace(ws).await.expect("delete workspace");
    assert_eq!(store.workspaces().await.unwrap(), [DEFAULT_WORKSPACE]);
    assert!(matches!(store.get(ws).await, Err(Error::NotFound { .. })));
    assert!(
        store.get(DEFAULT_WORKSPACE).await.is_ok(),
        "default untouched"
    );
}
