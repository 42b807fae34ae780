//! Which actions a policy may name. Wildcard-free S3 and KMS actions must be real AWS action names
//! (from the AWS Service Authorization Reference), so a typo such as `s3:GetObjects` is rejected at
//! PutBucketPolicy / PutKeyPolicy time instead of silently never matching.

/// Service prefixes sealbox accepts in `Action` / `NotAction`.
pub const KNOWN_SERVICES: &[&str] = &["s3", "kms", "iam", "sts", "cloudtrail"];

/// Every S3 IAM action name (without the `s3:` prefix).
pub const S3_ACTIONS: &[&str] = &[
    "AbortMultipartUpload",
    "AssociateAccessGrantsIdentityCenter",
    "BypassGovernanceRetention",
    "CreateAccessGrant",
    "CreateAccessGrantsInstance",
    "CreateAccessGrantsLocation",
    "CreateAccessPoint",
    "CreateAccessPointForObjectLambda",
    "CreateBucket",
    "CreateBucketMetadataTableConfiguration",
    "CreateJob",
    "CreateMultiRegionAccessPoint",
    "CreateSession",
    "CreateStorageLensGroup",
    "DeleteAccessGrant",
    "DeleteAccessGrantsInstance",
    "DeleteAccessGrantsInstanceResourcePolicy",
    "DeleteAccessGrantsLocation",
    "DeleteAccessPoint",
    "DeleteAccessPointForObjectLambda",
    "DeleteAccessPointPolicy",
    "DeleteAccessPointPolicyForObjectLambda",
    "DeleteBucket",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketWebsite",
    "DeleteJobTagging",
    "DeleteMultiRegionAccessPoint",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjectVersion",
    "DeleteObjectVersionTagging",
    "DeleteStorageLensConfiguration",
    "DeleteStorageLensConfigurationTagging",
    "DeleteStorageLensGroup",
    "DescribeJob",
    "DescribeMultiRegionAccessPointOperation",
    "DissociateAccessGrantsIdentityCenter",
    "GetAccelerateConfiguration",
    "GetAccessGrant",
    "GetAccessGrantsInstance",
    "GetAccessGrantsInstanceForPrefix",
    "GetAccessGrantsInstanceResourcePolicy",
    "GetAccessGrantsLocation",
    "GetAccessPoint",
    "GetAccessPointConfigurationForObjectLambda",
    "GetAccessPointForObjectLambda",
    "GetAccessPointPolicy",
    "GetAccessPointPolicyForObjectLambda",
    "GetAccessPointPolicyStatus",
    "GetAccessPointPolicyStatusForObjectLambda",
    "GetAccountPublicAccessBlock",
    "GetAnalyticsConfiguration",
    "GetBucketAcl",
    "GetBucketCORS",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataTableConfiguration",
    "GetBucketNotification",
    "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetDataAccess",
    "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration",
    "GetJobTagging",
    "GetLifecycleConfiguration",
    "GetMetricsConfiguration",
    "GetMultiRegionAccessPoint",
    "GetMultiRegionAccessPointPolicy",
    "GetMultiRegionAccessPointPolicyStatus",
    "GetMultiRegionAccessPointRoutes",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetObjectVersion",
    "GetObjectVersionAcl",
    "GetObjectVersionAttributes",
    "GetObjectVersionForReplication",
    "GetObjectVersionTagging",
    "GetObjectVersionTorrent",
    "GetReplicationConfiguration",
    "GetStorageLensConfiguration",
    "GetStorageLensConfigurationTagging",
    "GetStorageLensDashboard",
    "GetStorageLensGroup",
    "InitiateReplication",
    "ListAccessGrants",
    "ListAccessGrantsInstances",
    "ListAccessGrantsLocations",
    "ListAccessPoints",
    "ListAccessPointsForObjectLambda",
    "ListAllMyBuckets",
    "ListBucket",
    "ListBucketMultipartUploads",
    "ListBucketVersions",
    "ListCallerAccessGrants",
    "ListJobs",
    "ListMultiRegionAccessPoints",
    "ListMultipartUploadParts",
    "ListStorageLensConfigurations",
    "ListStorageLensGroups",
    "ListTagsForResource",
    "ObjectOwnerOverrideToBucketOwner",
    "PauseReplication",
    "PutAccelerateConfiguration",
    "PutAccessGrantsInstanceResourcePolicy",
    "PutAccessPointConfigurationForObjectLambda",
    "PutAccessPointPolicy",
    "PutAccessPointPolicyForObjectLambda",
    "PutAccessPointPublicAccessBlock",
    "PutAccountPublicAccessBlock",
    "PutAnalyticsConfiguration",
    "PutBucketAcl",
    "PutBucketCORS",
    "PutBucketLogging",
    "PutBucketNotification",
    "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketPublicAccessBlock",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration",
    "PutJobTagging",
    "PutLifecycleConfiguration",
    "PutMetricsConfiguration",
    "PutMultiRegionAccessPointPolicy",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutObjectVersionAcl",
    "PutObjectVersionTagging",
    "PutReplicationConfiguration",
    "PutStorageLensConfiguration",
    "PutStorageLensConfigurationTagging",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "RestoreObject",
    "SubmitMultiRegionAccessPointRoutes",
    "TagResource",
    "UntagResource",
    "UpdateAccessGrantsLocation",
    "UpdateJobPriority",
    "UpdateJobStatus",
    "UpdateStorageLensGroup",
];

/// Every KMS IAM action name (without the `kms:` prefix). Note the API operation ReEncrypt is
/// authorised as two actions, `kms:ReEncryptFrom` on the source key and `kms:ReEncryptTo` on the
/// destination key; there is no `kms:ReEncrypt` action.
pub const KMS_ACTIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncryptFrom",
    "ReEncryptTo",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "SynchronizeMultiRegionKey",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

/// Why an action string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionProblem {
    Malformed,
    UnknownService,
    UnknownAction,
}

/// Checks one `Action` / `NotAction` entry. Service prefixes and names compare case-insensitively,
/// as IAM does.
pub(crate) fn check_action(action: &str) -> Result<(), ActionProblem> {
    if action == "*" {
        return Ok(());
    }
    let (service, name) = action.split_once(':').ok_or(ActionProblem::Malformed)?;
    if name.is_empty() || name.contains(':') || service.is_empty() {
        return Err(ActionProblem::Malformed);
    }
    let service = service.to_ascii_lowercase();
    if !KNOWN_SERVICES.contains(&service.as_str()) {
        return Err(ActionProblem::UnknownService);
    }
    if name.contains(['*', '?']) {
        return Ok(());
    }
    let known: &[&str] = match service.as_str() {
        "s3" => S3_ACTIONS,
        "kms" => KMS_ACTIONS,
        _ => return Ok(()),
    };
    if known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
        Ok(())
    } else {
        Err(ActionProblem::UnknownAction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names_wildcards_and_other_services() {
        for ok in [
            "*",
            "s3:*",
            "s3:Get*",
            "s3:GetObject",
            "S3:getobject",
            "s3:PutEncryptionConfiguration",
            "s3:ListBucketMultipartUploads",
            "kms:*",
            "kms:Decrypt",
            "kms:GenerateDataKey*",
            "kms:ReEncrypt*",
            "kms:ReEncryptFrom",
            "iam:CreateUser",
            "sts:GetCallerIdentity",
            "cloudtrail:LookupEvents",
        ] {
            assert_eq!(check_action(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_typos_unknown_services_and_malformed_actions() {
        assert_eq!(check_action("s3:GetObjects"), Err(ActionProblem::UnknownAction));
        assert_eq!(check_action("kms:ReEncrypt"), Err(ActionProblem::UnknownAction));
        assert_eq!(check_action("ec2:RunInstances"), Err(ActionProblem::UnknownService));
        assert_eq!(check_action("GetObject"), Err(ActionProblem::Malformed));
        assert_eq!(check_action("s3:"), Err(ActionProblem::Malformed));
        assert_eq!(check_action(":GetObject"), Err(ActionProblem::Malformed));
        assert_eq!(check_action(""), Err(ActionProblem::Malformed));
    }

    #[test]
    fn lists_have_no_duplicates() {
        for list in [S3_ACTIONS, KMS_ACTIONS] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len());
        }
    }
}
