//! The bootstrap's DynamoDB lock table: `LockID` string hash key, pay-per-request, SSE with the
//! key, point-in-time recovery; created and waited for until ACTIVE, or checked.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ScalarAttributeType, SseSpecification, SseStatus, SseType,
    TableStatus,
};
use stateseal_store::Error as StoreError;

use super::{Action, Plan};
use crate::error::{Error, Result};
use crate::same_kms_key;

pub(super) async fn table_steps(
    plan: &mut Plan,
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: Option<&str>,
    key_arn: Option<&str>,
) -> Result<()> {
    let described = match ddb.describe_table().table_name(table).send().await {
        Ok(d) => d.table,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => {
            return Err(Error::aws(
                "DescribeTable",
                format!("DynamoDB table {table}"),
                e,
            ))
        }
    };
    let sse_wanted = match key {
        Some(k) => format!("SSE with {k}"),
        None => "SSE with the AWS-owned key".to_string(),
    };
    let Some(t) = described else {
        plan.make(
            "lock table",
            "exists",
            Action::Create,
            format!("{table}: LockID (S) hash key, pay-per-request, {sse_wanted}"),
            async {
                let mut req = ddb
                    .create_table()
                    .table_name(table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("LockID")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| StoreError::Unsupported(e.to_string()))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("LockID")
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|e| StoreError::Unsupported(e.to_string()))?,
                    );
                if let Some(arn) = key_arn {
                    req = req.sse_specification(
                        SseSpecification::builder()
                            .enabled(true)
                            .sse_type(SseType::Kms)
                            .kms_master_key_id(arn)
                            .build(),
                    );
                }
                req.send()
                    .await
                    .map_err(|e| Error::aws("CreateTable", format!("DynamoDB table {table}"), e))?;
                wait_active(ddb, table).await
            },
        )
        .await?;
        plan.make(
            "lock table",
            "point-in-time recovery",
            Action::Create,
            "on",
            enable_pitr(ddb, table),
        )
        .await?;
        return Ok(());
    };
    let hash_key_ok = t.key_schema().len() == 1
        && t.key_schema()[0].attribute_name() == "LockID"
        && t.key_schema()[0].key_type() == &KeyType::Hash
        && t.attribute_definitions().iter().any(|a| {
            a.attribute_name() == "LockID" && a.attribute_type() == &ScalarAttributeType::S
        });
    if hash_key_ok {
        plan.note(
            "lock table",
            "exists",
            Action::Ok,
            format!("{table}: LockID (S) hash key"),
        );
    } else {
        plan.note("lock table", "exists", Action::Drift, format!("{table} exists but its key is not LockID (S) alone: Terraform and OpenTofu cannot lock with it"));
    }
    match t.billing_mode_summary().and_then(|b| b.billing_mode()) {
        Some(BillingMode::PayPerRequest) => {
            plan.note("lock table", "billing", Action::Ok, "pay-per-request")
        }
        other => plan.note(
            "lock table",
            "billing",
            Action::Drift,
            format!(
                "{} (provisioned capacity is a choice: left alone)",
                other.map_or("PROVISIONED", |b| b.as_str())
            ),
        ),
    }
    let sse = t.sse_description();
    let sse_key = sse.and_then(|s| s.kms_master_key_arn());
    let sse_on = sse.and_then(|s| s.status()) == Some(&SseStatus::Enabled);
    match (key, sse_key) {
        (None, _) => plan.note(
            "lock table",
            "encryption",
            Action::Ok,
            if sse_on {
                "SSE-KMS"
            } else {
                "the AWS-owned key"
            },
        ),
        (Some(k), Some(cur)) if sse_on && same_kms_key(cur, k) => {
            plan.note("lock table", "encryption", Action::Ok, sse_wanted)
        }
        (Some(_), cur) => plan.note(
            "lock table",
            "encryption",
            Action::Drift,
            format!(
                "{}, not {sse_wanted}: left alone",
                cur.map_or("the AWS-owned key".to_string(), |c| format!("SSE with {c}"))
            ),
        ),
    }
    let pitr = ddb
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "DescribeContinuousBackups",
                format!("DynamoDB table {table}"),
                e,
            )
        })?;
    let on = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        == Some(&PointInTimeRecoveryStatus::Enabled);
    if on {
        plan.note("lock table", "point-in-time recovery", Action::Ok, "on");
    } else {
        plan.make(
            "lock table",
            "point-in-time recovery",
            Action::Change,
            "off → on",
            enable_pitr(ddb, table),
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn enable_pitr(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let spec = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(|e| StoreError::Unsupported(e.to_string()))?;
    ddb.update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(spec)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                "UpdateContinuousBackups",
                format!("DynamoDB table {table}"),
                e,
            )
        })?;
    Ok(())
}

/// Waits (up to 5 minutes) until a new table is ACTIVE: its continuous backups cannot be
/// configured before.
pub(super) async fn wait_active(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    for _ in 0..150 {
        let d = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| Error::aws("DescribeTable", format!("DynamoDB table {table}"), e))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(StoreError::Unsupported(format!(
        "DynamoDB table {table} did not become ACTIVE within 5 minutes"
    ))
    .into())
}
