#!/usr/bin/env python3
"""Small boto3 helper for tests against a moto server.

    .venv/bin/python scripts/peers/aws.py [--endpoint URL] COMMAND ...

The endpoint is --endpoint or $STATESEAL_TEST_AWS_ENDPOINT (e.g. http://127.0.0.1:PORT).
Credentials: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY if set, else testing/testing;
region $AWS_REGION or us-east-1. S3 is path style.

Commands (JSON goes to stdout; exit 0 ok, 1 error, 3 not found, 2 usage):
  mkbucket NAME [--versioning] [--kms-key ID]   create a bucket (optional versioning,
                                                default SSE-KMS encryption with key ID)
  mktable NAME                                  DynamoDB lock table: LockID (S) hash key,
                                                PAY_PER_REQUEST
  mkkey ALIAS                                   KMS key + alias (alias/ prefix optional);
                                                prints the key ARN
  kms-describe KEY --region R                   a KMS key as region R sees it: {"arn",
                                                "multi_region", "policy", "aliases"}
  put BUCKET KEY FILE [--kms-key ID | --sse-s3] upload FILE ("-" = stdin), with SSE-KMS
                                                or SSE-S3 if asked; prints the PutObject
                                                answer as JSON
  get BUCKET KEY [--version-id V]               object body to stdout
  head BUCKET KEY [--version-id V]              HeadObject as JSON (ServerSideEncryption,
                                                SSEKMSKeyId, ETag, VersionId, Metadata, ...)
  ls BUCKET [PREFIX]                            one key per line
  versions BUCKET KEY                           JSON list of the versions and delete markers
                                                of exactly KEY, newest first
  getitem TABLE LOCKID                          DynamoDB item as plain JSON
  kms-decrypt BLOB_B64 [--context JSON]         KMS Decrypt of a base64 ciphertext blob;
                                                prints {"KeyId", "Plaintext" (base64)}
  iam-user NAME [--deny ACTION ...]             IAM user with an access key and an inline
                                                policy allowing everything but ACTIONs;
                                                prints {"AccessKeyId", "SecretAccessKey"}
  readback BUCKET [--alias A] [--table T]       what a hardened backend has, as JSON: bucket
                                                versioning, default encryption, public access
                                                block, policy; the key behind alias A (ARN,
                                                rotation, aliases, key policy); table T (key schema,
                                                billing, SSE, point-in-time recovery)
  reset                                         POST /moto-api/reset (forget everything)
  reset-auth N|inf                              POST /moto-api/reset-auth (IAM enforcement
                                                after N more requests; inf = off)
"""

import argparse
import base64
import datetime
import json
import os
import sys
import urllib.request

NOT_FOUND = 3


def die(msg, code=1):
    sys.stderr.write(f"aws.py: error: {msg}\n")
    sys.exit(code)


def to_json(obj):
    def default(o):
        if isinstance(o, (datetime.datetime, datetime.date)):
            return o.isoformat()
        if isinstance(o, (bytes, bytearray)):
            return base64.b64encode(o).decode()
        if hasattr(o, "read"):
            return None
        return str(o)

    return json.dumps(obj, default=default, indent=2, sort_keys=True)


def strip_meta(resp):
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    resp.pop("Body", None)
    return resp


class Aws:
    def __init__(self, endpoint):
        import boto3
        from botocore.config import Config

        self.endpoint = endpoint.rstrip("/")
        self.session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN") or None,
            region_name=os.environ.get("AWS_REGION") or "us-east-1",
        )
        self.config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        )

    def client(self, service):
        return self.session.client(service, endpoint_url=self.endpoint, config=self.config)


def is_not_found(err):
    code = err.response.get("Error", {}).get("Code", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("NoSuchBucket", "ResourceNotFoundException"):
        return False  # a missing bucket or table is a setup error, not "not found"
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion") or status == 404


def cmd_mkbucket(aws, a):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=a.name)
    if a.versioning:
        s3.put_bucket_versioning(Bucket=a.name, VersioningConfiguration={"Status": "Enabled"})
    if a.kms_key:
        s3.put_bucket_encryption(
            Bucket=a.name,
            ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": a.kms_key},
            }]},
        )


def cmd_mktable(aws, a):
    aws.client("dynamodb").create_table(
        TableName=a.name,
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def cmd_mkkey(aws, a):
    kms = aws.client("kms")
    alias = a.alias if a.alias.startswith("alias/") else f"alias/{a.alias}"
    key = kms.create_key(Description=f"stateseal test key {alias}")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    print(key["Arn"])


def cmd_kms_disable(aws, a):
    # moto answers 500 to DisableKey with an ARN: pass the key ID. (moto records the state but
    # still encrypts and decrypts with a disabled key; tests model an outage another way.)
    aws.client("kms").disable_key(KeyId=a.key.rsplit("/", 1)[-1])
    print("disabled")


def cmd_kms_describe(aws, a):
    # A key as a region sees it: its ARN, multi-Region flag, key policy and the aliases there.
    kms = aws.session.client("kms", region_name=a.region, endpoint_url=aws.endpoint, config=aws.config)
    m = kms.describe_key(KeyId=a.key)["KeyMetadata"]
    policy = kms.get_key_policy(KeyId=m["KeyId"], PolicyName="default")["Policy"]
    aliases = [x["AliasName"] for x in kms.list_aliases(KeyId=m["KeyId"])["Aliases"]]
    print(to_json({"arn": m["Arn"], "multi_region": m.get("MultiRegion", False),
                   "policy": json.loads(policy), "aliases": aliases}))


def cmd_put(aws, a):
    body = sys.stdin.buffer.read() if a.file == "-" else open(a.file, "rb").read()
    extra = {}
    if a.kms_key:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": a.kms_key}
    elif a.sse_s3:
        extra = {"ServerSideEncryption": "AES256"}
    resp = aws.client("s3").put_object(Bucket=a.bucket, Key=a.key, Body=body, **extra)
    print(to_json(strip_meta(resp)))


def _version(a):
    return {"VersionId": a.version_id} if a.version_id else {}


def cmd_get(aws, a):
    resp = aws.client("s3").get_object(Bucket=a.bucket, Key=a.key, **_version(a))
    sys.stdout.buffer.write(resp["Body"].read())
    sys.stdout.buffer.flush()


def cmd_head(aws, a):
    resp = aws.client("s3").head_object(Bucket=a.bucket, Key=a.key, **_version(a))
    print(to_json(strip_meta(resp)))


def cmd_ls(aws, a):
    paginator = aws.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=a.bucket, Prefix=a.prefix or ""):
        for obj in page.get("Contents", []):
            print(obj["Key"])


def cmd_versions(aws, a):
    paginator = aws.client("s3").get_paginator("list_object_versions")
    out = []
    for page in paginator.paginate(Bucket=a.bucket, Prefix=a.key):
        for kind, items in (("version", page.get("Versions", [])),
                            ("delete-marker", page.get("DeleteMarkers", []))):
            for v in items:
                if v["Key"] == a.key:  # the prefix also matches KEY.tflock etc.
                    v = dict(v, Kind=kind)
                    v.pop("Owner", None)
                    out.append(v)
    out.sort(key=lambda v: v["LastModified"], reverse=True)
    print(to_json(out))


def cmd_getitem(aws, a):
    from boto3.dynamodb.types import TypeDeserializer

    resp = aws.client("dynamodb").get_item(
        TableName=a.table, Key={"LockID": {"S": a.lockid}}, ConsistentRead=True)
    item = resp.get("Item")
    if item is None:
        die(f"no item with LockID {a.lockid!r} in table {a.table}", NOT_FOUND)
    td = TypeDeserializer()
    print(to_json({k: td.deserialize(v) for k, v in item.items()}))


def cmd_kms_decrypt(aws, a):
    extra = {"EncryptionContext": json.loads(a.context)} if a.context else {}
    resp = aws.client("kms").decrypt(CiphertextBlob=base64.b64decode(a.blob), **extra)
    print(to_json({"KeyId": resp["KeyId"], "Plaintext": resp["Plaintext"]}))


def cmd_iam_user(aws, a):
    iam = aws.client("iam")
    iam.create_user(UserName=a.name)
    statements = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    if a.deny:
        statements.append({"Effect": "Deny", "Action": a.deny, "Resource": "*"})
    iam.put_user_policy(
        UserName=a.name, PolicyName=f"{a.name}-policy",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=a.name)["AccessKey"]
    print(to_json({"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}))


def cmd_readback(aws, a):
    from botocore.exceptions import ClientError

    def absent(call, **kw):
        try:
            return call(**kw)
        except ClientError:
            return None

    s3 = aws.client("s3")
    enc = absent(s3.get_bucket_encryption, Bucket=a.bucket)
    pab = absent(s3.get_public_access_block, Bucket=a.bucket)
    pol = absent(s3.get_bucket_policy, Bucket=a.bucket)
    out = {
        "versioning": s3.get_bucket_versioning(Bucket=a.bucket).get("Status"),
        "encryption": enc and enc["ServerSideEncryptionConfiguration"]["Rules"][0],
        "public_access_block": pab and pab["PublicAccessBlockConfiguration"],
        "policy": pol and json.loads(pol["Policy"]),
    }
    if a.alias:
        kms = aws.client("kms")
        key = kms.describe_key(KeyId=a.alias)["KeyMetadata"]
        out["key"] = {
            "arn": key["Arn"],
            "rotation": kms.get_key_rotation_status(KeyId=key["Arn"])["KeyRotationEnabled"],
            "aliases": [x["AliasName"] for x in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]],
            "policy": json.loads(kms.get_key_policy(KeyId=key["Arn"], PolicyName="default")["Policy"]),
        }
    if a.table:
        ddb = aws.client("dynamodb")
        t = ddb.describe_table(TableName=a.table)["Table"]
        pitr = ddb.describe_continuous_backups(TableName=a.table)["ContinuousBackupsDescription"]
        out["table"] = {
            "key_schema": t["KeySchema"],
            "attribute_definitions": t["AttributeDefinitions"],
            "billing_mode": t.get("BillingModeSummary", {}).get("BillingMode"),
            "sse": t.get("SSEDescription"),
            "pitr": pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        }
    print(to_json(out))


def _moto_api(aws, path, data):
    # Not form-encoded: moto reads the raw body (reset-auth fails with HTTP 500 on a form post).
    req = urllib.request.Request(aws.endpoint + path, data=data, method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status != 200:
            die(f"POST {path}: HTTP {r.status}")


def cmd_reset(aws, a):
    _moto_api(aws, "/moto-api/reset", b"")


def cmd_reset_auth(aws, a):
    _moto_api(aws, "/moto-api/reset-auth", a.count.encode())


def main():
    p = argparse.ArgumentParser(
        prog="aws.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--endpoint", default=os.environ.get("STATESEAL_TEST_AWS_ENDPOINT"),
                   help="moto URL (default: $STATESEAL_TEST_AWS_ENDPOINT)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("mkbucket"); s.add_argument("name")
    s.add_argument("--versioning", action="store_true"); s.add_argument("--kms-key")
    s.set_defaults(fn=cmd_mkbucket)
    s = sub.add_parser("mktable"); s.add_argument("name"); s.set_defaults(fn=cmd_mktable)
    s = sub.add_parser("mkkey"); s.add_argument("alias"); s.set_defaults(fn=cmd_mkkey)
    s = sub.add_parser("kms-disable"); s.add_argument("key"); s.set_defaults(fn=cmd_kms_disable)
    s = sub.add_parser("kms-describe"); s.add_argument("key"); s.add_argument("--region", required=True)
    s.set_defaults(fn=cmd_kms_describe)
    s = sub.add_parser("put"); s.add_argument("bucket"); s.add_argument("key")
    s.add_argument("file"); s.add_argument("--kms-key")
    s.add_argument("--sse-s3", action="store_true"); s.set_defaults(fn=cmd_put)
    for name, fn in (("get", cmd_get), ("head", cmd_head)):
        s = sub.add_parser(name); s.add_argument("bucket"); s.add_argument("key")
        s.add_argument("--version-id"); s.set_defaults(fn=fn)
    s = sub.add_parser("ls"); s.add_argument("bucket"); s.add_argument("prefix", nargs="?")
    s.set_defaults(fn=cmd_ls)
    s = sub.add_parser("versions"); s.add_argument("bucket"); s.add_argument("key")
    s.set_defaults(fn=cmd_versions)
    s = sub.add_parser("getitem"); s.add_argument("table"); s.add_argument("lockid")
    s.set_defaults(fn=cmd_getitem)
    s = sub.add_parser("kms-decrypt"); s.add_argument("blob"); s.add_argument("--context")
    s.set_defaults(fn=cmd_kms_decrypt)
    s = sub.add_parser("iam-user"); s.add_argument("name")
    s.add_argument("--deny", action="append", default=[]); s.set_defaults(fn=cmd_iam_user)
    s = sub.add_parser("readback"); s.add_argument("bucket"); s.add_argument("--alias")
    s.add_argument("--table"); s.set_defaults(fn=cmd_readback)
    s = sub.add_parser("reset"); s.set_defaults(fn=cmd_reset)
    s = sub.add_parser("reset-auth"); s.add_argument("count"); s.set_defaults(fn=cmd_reset_auth)

    a = p.parse_args()
    if not a.endpoint:
        die("no endpoint: pass --endpoint URL or set STATESEAL_TEST_AWS_ENDPOINT", 2)

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        a.fn(Aws(a.endpoint), a)
    except ClientError as e:
        err = e.response.get("Error", {})
        msg = f"{a.cmd}: {err.get('Code')}: {err.get('Message') or e}"
        die(msg, NOT_FOUND if is_not_found(e) else 1)
    except (BotoCoreError, OSError) as e:
        die(f"{a.cmd}: {e}")


if __name__ == "__main__":
    main()
