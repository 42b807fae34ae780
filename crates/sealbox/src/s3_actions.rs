//! Which IAM action and resource an S3 operation is authorised as (AWS's "Actions defined by
//! Amazon S3" table, for the operations sealbox serves).

/// The IAM action(s) an S3 operation needs. CopyObject additionally needs s3:GetObject on the
/// source, checked separately.
pub fn action_for(operation: &str) -> &'static str {
    match operation {
        "ListBuckets" => "s3:ListAllMyBuckets",
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "s3:ListBucket",
        "GetBucketLocation" => "s3:GetBucketLocation",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "ListObjectVersions" => "s3:ListBucketVersions",
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "DeleteBucketPolicy" => "s3:DeleteBucketPolicy",
        "GetBucketPolicyStatus" => "s3:GetBucketPolicyStatus",
        "GetObject" | "HeadObject" => "s3:GetObject",
        "GetObjectAttributes" => "s3:GetObjectAttributes",
        "RestoreObject" => "s3:RestoreObject",
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "s3:PutObject",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        "ListParts" => "s3:ListMultipartUploadParts",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "GetObjectTagging" => "s3:GetObjectTagging",
        "PutObjectTagging" => "s3:PutObjectTagging",
        "DeleteObjectTagging" => "s3:DeleteObjectTagging",
        _ => "s3:*",
    }
}

/// The resource ARN an operation acts on: the bucket, the object, or `*` (ListBuckets).
pub fn resource_for(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        _ => "*".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_operations_as_aws_documents() {
        assert_eq!(action_for("ListObjectsV2"), "s3:ListBucket");
        assert_eq!(action_for("UploadPart"), "s3:PutObject");
        assert_eq!(action_for("HeadObject"), "s3:GetObject");
        assert_eq!(action_for("DeleteObjects"), "s3:DeleteObject");
        assert_eq!(resource_for(Some("b"), Some("a/b.txt")), "arn:aws:s3:::b/a/b.txt");
        assert_eq!(resource_for(Some("b"), None), "arn:aws:s3:::b");
        assert_eq!(resource_for(None, None), "*");
    }
}
