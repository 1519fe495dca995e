//! The AWS service clients stateseal uses, built from one SDK configuration and the settings'
//! endpoint overrides (`endpoints { s3 = … }`, `AWS_ENDPOINT_URL_*`): one place for the
//! override, so the S3 backend, the fleet and the key provider reach the same endpoints.
//! Each client but STS sits behind the cargo feature of its SDK crate.

use aws_config::{Region, SdkConfig};

use crate::env::non_empty;
use crate::settings::AwsSettings;

/// STS, in `sts_region` when it is set.
pub fn sts(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::config::Builder::from(config);
    if let Some(r) = non_empty(&settings.sts_region) {
        b = b.region(Region::new(r.to_string()));
    }
    if let Some(e) = settings.endpoint("sts") {
        b = b.endpoint_url(e);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

/// S3's configuration, for callers that add their own options (path style, checksums).
#[cfg(feature = "s3")]
pub fn s3_config(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_s3::config::Builder {
    let mut b = aws_sdk_s3::config::Builder::from(config);
    if let Some(e) = settings.endpoint("s3") {
        b = b.endpoint_url(e);
    }
    b
}

/// DynamoDB.
#[cfg(feature = "dynamodb")]
pub fn dynamodb(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::config::Builder::from(config);
    if let Some(e) = settings.endpoint("dynamodb") {
        b = b.endpoint_url(e);
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

/// KMS.
#[cfg(feature = "kms")]
pub fn kms(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(kms_builder(config, settings).build())
}

/// KMS in `region` rather than the configuration's (a multi-Region key's replica), with the
/// same credentials and endpoint override.
#[cfg(feature = "kms")]
pub fn kms_in(config: &SdkConfig, settings: &AwsSettings, region: &str) -> aws_sdk_kms::Client {
    let b = kms_builder(config, settings).region(Region::new(region.to_string()));
    aws_sdk_kms::Client::from_conf(b.build())
}

#[cfg(feature = "kms")]
fn kms_builder(config: &SdkConfig, settings: &AwsSettings) -> aws_sdk_kms::config::Builder {
    let mut b = aws_sdk_kms::config::Builder::from(config);
    if let Some(e) = settings.endpoint("kms") {
        b = b.endpoint_url(e);
    }
    b
}
