//! Locks shared with Terraform's own `backend "s3"` on the same key, through `storage "s3"`
//! (moto, real Terraform): a lock taken through the server blocks Terraform, whether Terraform
//! locks with DynamoDB or with lock files; a state Terraform writes straight to the bucket is
//! what the server serves; the lock Terraform holds during an apply blocks the server's LOCK
//! and uploads with 423 and Terraform's own lock info; and a state deleted through the server is
//! no state for Terraform.

use stateseal_store::{LockInfo, StateMeta};
use stateseal_testkit::{Peers, SLOW_APPLY_TF};

use crate::support::{lock_info, state, Live, S3Backing};
use crate::terraform::{refused_apply, release_and_finish, wait_for_lock};

const P: &str = "/state/shared/app";
const SERVER_ID: &str = "5e5e5e5e-1111-2222-3333-444444444444";

#[test]
fn locks_are_shared_with_terraforms_backend_s3() {
    let Some(peers) = Peers::terraform("locks_are_shared_with_terraforms_backend_s3") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backing = rt.block_on(S3Backing::create(&peers));
    let live = Live::start_s3(&backing, "");
    let workdir = |locks: &str| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("main.tf"), SLOW_APPLY_TF).unwrap();
        std::fs::write(
            d.path().join("backend.tf"),
            backing.backend_block("shared/app", locks),
        )
        .unwrap();
        peers.tf_ok(d.path(), &["init", "-no-color"]);
        d
    };
    let dynamodb = format!("    dynamodb_table = \"{}\"\n", backing.table);
    let lockfile = "    use_lockfile = true\n";
    let with_dynamodb = workdir(&dynamodb);
    let with_lockfile = workdir(lockfile);
    let with_both = workdir(&format!("{dynamodb}{lockfile}"));

    // A lock taken through the server blocks Terraform, by either mechanism.
    let ours = lock_info(SERVER_ID, "through-the-server@ci");
    assert_eq!(live.send("LOCK", P, Some(ours.as_bytes())).status, 200);
    for d in [&with_dynamodb, &with_lockfile] {
        let text = refused_apply(&peers, d.path());
        assert!(
            text.contains(SERVER_ID) && text.contains("through-the-server@ci"),
            "Terraform names the server's lock: {text}"
        );
    }
    assert_eq!(live.send("UNLOCK", P, Some(ours.as_bytes())).status, 200);

    // What Terraform writes straight to the bucket is what the server serves.
    peers.tf_ok(
        with_both.path(),
        &["apply", "-auto-approve", "-no-color", "-lock-timeout=0s"],
    );
    let got = live.send("GET", P, None);
    assert_eq!(got.status, 200, "{}", got.text());
    let written = StateMeta::parse(&got.body).unwrap();
    assert_eq!(written.output_values()["greeting"], "hello <&> world");
    let v = live.send("GET", "/v1/versions/shared/app", None);
    let v: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
    assert_eq!(v["versions"][0]["serial"], written.serial);
    assert_eq!(v["versions"][0]["stored"], "plaintext");

    // Terraform's lock during an apply blocks the server's LOCK and uploads.
    let hold = with_both.path().join("release-apply");
    let hold_var = format!("hold_until={}", hold.display());
    let busy = peers.tf_spawn(
        with_both.path(),
        &["apply", "-auto-approve", "-no-color", "-var", &hold_var],
    );
    let holder = wait_for_lock(&live, "shared/app");
    assert_eq!(holder.operation, "OperationTypeApply");
    let a = live.send(
        "LOCK",
        P,
        Some(lock_info("6e6e6e6e-1111-2222-3333-444444444444", "other@ci").as_bytes()),
    );
    assert_eq!(a.status, 423, "{}", a.text());
    assert_eq!(LockInfo::parse(&a.body).unwrap(), holder);
    let newer = state(written.serial + 10, &written.lineage, "not now");
    let a = live.send("POST", P, Some(&newer));
    assert_eq!(a.status, 423, "{}", a.text());
    assert_eq!(LockInfo::parse(&a.body).unwrap().id, holder.id);
    release_and_finish(&hold, busy);
    assert_eq!(live.send("GET", "/state/shared/app/lock", None).status, 404);
    assert_eq!(
        StateMeta::parse(&live.send("GET", P, None).body)
            .unwrap()
            .output_values()["greeting"],
        "hello <&> world",
        "the refused upload changed nothing"
    );

    // A DELETE through the server is no state for Terraform (an empty version, no digest item).
    assert_eq!(live.send("DELETE", P, None).status, 200);
    let plan = peers.tf_ok(with_both.path(), &["plan", "-no-color"]);
    assert!(plan.contains("1 to add"), "{plan}");
}
