//! The bootstrap's disaster-recovery replica (`--dr-region`, docs/RECOVERY.md): the state key
//! made multi-Region, replicated into a second region with the same key policy, and given the
//! same alias there, so that OpenTofu can be pointed at the replica when the primary's region is
//! down. A replica shares its primary's key material, so it decrypts what the primary encrypted:
//! only real AWS proves that (moto models the replica, its policy and its alias, not that).

use stateseal_store::Error as StoreError;

use super::kms::{describe_key, key_policy, key_policy_drift};
use super::{Action, Plan, Spec};
use crate::error::{Error, Result};

const RESOURCE: &str = "kms replica";

/// The ARN of `primary`'s replica in `region`: a multi-Region key keeps its key ID (`mrk-…`) in
/// every region, so only the ARN's region differs.
pub fn replica_arn(primary: &str, region: &str) -> Option<String> {
    let mut parts: Vec<&str> = primary.split(':').collect();
    if parts.len() != 6 || parts[2] != "kms" || !parts[5].starts_with("key/mrk-") {
        return None;
    }
    parts[3] = region;
    Some(parts.join(":"))
}

/// What the replica steps need besides the plan.
pub(super) struct Replica<'a> {
    /// KMS in the primary's region and in the DR region.
    pub primary_kms: &'a aws_sdk_kms::Client,
    pub dr_kms: &'a aws_sdk_kms::Client,
    pub dr_region: &'a str,
    /// The primary key's alias (a `new` key), given to the replica too.
    pub alias: Option<&'a str>,
    /// The account root, the key policy's administrator.
    pub root: &'a str,
}

impl Replica<'_> {
    /// Checks (and with apply creates) the replica of `primary` (`None`: a key a dry run would
    /// create) and its alias; returns the replica's ARN when it exists.
    pub(super) async fn steps(
        &self,
        plan: &mut Plan,
        primary: Option<&str>,
        spec: &Spec,
    ) -> Result<Option<String>> {
        let dr = self.dr_region;
        let Some(primary) = primary else {
            plan.note(
                RESOURCE,
                "exists",
                Action::Create,
                format!("replica of the new multi-Region key in {dr}, same key policy"),
            );
            if let Some(alias) = self.alias {
                plan.note(
                    RESOURCE,
                    "alias",
                    Action::Create,
                    format!("{alias} in {dr}"),
                );
            }
            return Ok(None);
        };
        if !self.is_multi_region(primary).await? {
            plan.note(
                RESOURCE,
                "exists",
                Action::Drift,
                format!(
                    "{primary} is a single-Region key and cannot become multi-Region: create a new key (--kms-key new with another --kms-alias) and rekey the states onto it"
                ),
            );
            return Ok(None);
        }
        let Some(replica) = replica_arn(primary, dr) else {
            return Err(StoreError::Unsupported(format!(
                "the multi-Region key {primary} has an unexpected ARN"
            ))
            .into());
        };
        let policy = key_policy(self.root, &spec.principals).to_string();
        let exists = match describe_key(self.dr_kms, &replica).await? {
            Some(_) => {
                plan.note(RESOURCE, "exists", Action::Ok, replica.clone());
                let current = self.policy(&replica).await?;
                let drift = key_policy_drift(&current, self.root, &spec.principals);
                if drift.is_empty() {
                    plan.note(
                        RESOURCE,
                        "key policy",
                        Action::Ok,
                        "root admin + deploy principals",
                    );
                } else {
                    plan.note(RESOURCE, "key policy", Action::Drift, drift.join("; "));
                }
                true
            }
            None => {
                plan.make(
                    RESOURCE,
                    "exists",
                    Action::Create,
                    format!("{replica}, same key policy"),
                    self.replicate(primary, &replica, &policy),
                )
                .await?;
                plan.apply
            }
        };
        if let Some(alias) = self.alias {
            match describe_key(self.dr_kms, alias).await? {
                Some(arn) if arn == replica => {
                    plan.note(RESOURCE, "alias", Action::Ok, format!("{alias} in {dr}"))
                }
                Some(other) => plan.note(
                    RESOURCE,
                    "alias",
                    Action::Drift,
                    format!("{alias} in {dr} names {other}, not the replica"),
                ),
                None => {
                    plan.make(
                        RESOURCE,
                        "alias",
                        Action::Create,
                        format!("{alias} in {dr}"),
                        async {
                            self.dr_kms
                                .create_alias()
                                .alias_name(alias)
                                .target_key_id(&replica)
                                .send()
                                .await
                                .map_err(|e| Error::aws("CreateAlias", alias.to_string(), e))
                        },
                    )
                    .await?;
                }
            }
        }
        Ok(exists.then_some(replica))
    }

    async fn is_multi_region(&self, arn: &str) -> Result<bool> {
        let d = self
            .primary_kms
            .describe_key()
            .key_id(arn)
            .send()
            .await
            .map_err(|e| Error::aws("DescribeKey", arn.to_string(), e))?;
        Ok(d.key_metadata().and_then(|m| m.multi_region()) == Some(true))
    }

    async fn policy(&self, arn: &str) -> Result<String> {
        let p = self
            .dr_kms
            .get_key_policy()
            .key_id(arn)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| Error::aws("GetKeyPolicy", arn.to_string(), e))?;
        Ok(p.policy().unwrap_or_default().to_string())
    }

    /// ReplicateKey, then the policy set on the replica itself: a service that ignores
    /// ReplicateKey's `Policy` (moto does) still ends with the runbook's policy.
    async fn replicate(&self, primary: &str, replica: &str, policy: &str) -> Result<()> {
        // By key ID: AWS takes an ID or an ARN, moto only the ID.
        let key_id = primary.rsplit('/').next().unwrap_or(primary);
        self.primary_kms
            .replicate_key()
            .key_id(key_id)
            .replica_region(self.dr_region)
            .policy(policy)
            .description(format!("OpenTofu/Terraform state: replica of {primary}"))
            .send()
            .await
            .map_err(|e| Error::aws("ReplicateKey", primary.to_string(), e))?;
        self.dr_kms
            .put_key_policy()
            .key_id(replica)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map_err(|e| Error::aws("PutKeyPolicy", replica.to_string(), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::replica_arn;

    #[test]
    fn the_replica_arn_differs_only_in_its_region() {
        let primary = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd";
        assert_eq!(
            replica_arn(primary, "eu-west-1").as_deref(),
            Some("arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd")
        );
        // A single-Region key has no replica.
        assert_eq!(
            replica_arn("arn:aws:kms:us-east-1:1:key/1234abcd", "eu-west-1"),
            None
        );
        assert_eq!(replica_arn("alias/x", "eu-west-1"), None);
    }
}
