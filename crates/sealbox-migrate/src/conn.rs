//! Building AWS SDK clients the way users expect: env, profiles, explicit endpoints.

use std::path::PathBuf;

use aws_config::{BehaviorVersion, Region};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

use crate::cli::ConnOpts;
use crate::error::Side;

/// One side's connection settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoint {
    pub url: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

impl Endpoint {
    pub(crate) fn for_side(opts: &ConnOpts, side: Side) -> Self {
        let (url, profile) = match side {
            Side::Source => (opts.src_endpoint.clone(), opts.src_profile.clone()),
            Side::Destination => (opts.dst_endpoint.clone(), opts.dst_profile.clone()),
        };
        Endpoint { url, profile, region: opts.region.clone(), credentials_file: opts.credentials_file.clone() }
    }

    /// Human name of the endpoint for error messages.
    pub(crate) fn describe(&self) -> String {
        self.url.clone().unwrap_or_else(|| "(AWS default endpoint)".into())
    }
}

/// S3 (and KMS) clients for one side, plus how to name it in messages.
#[derive(Clone)]
pub(crate) struct Conn {
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub side: Side,
    pub endpoint: String,
}

impl Conn {
    pub(crate) async fn connect(ep: &Endpoint, side: Side) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(file) = &ep.credentials_file {
            let files = EnvConfigFiles::builder()
                .include_default_config_file(true)
                .with_file(EnvConfigFileKind::Credentials, file)
                .build();
            loader = loader.profile_files(files);
        }
        if let Some(p) = &ep.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &ep.url {
            loader = loader.endpoint_url(u);
        }
        if let Some(r) = &ep.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let region = sdk.region().cloned().unwrap_or_else(|| Region::new("us-east-1"));
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk).region(region.clone());
        if ep.url.is_some() {
            // Custom endpoints (sealbox, MinIO, ...) are addressed by IP or a plain host name:
            // virtual-hosted bucket names would not resolve.
            s3 = s3.force_path_style(true);
        }
        let kms = aws_sdk_kms::config::Builder::from(&sdk).region(region).build();
        Conn {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            kms: aws_sdk_kms::Client::from_conf(kms),
            side,
            endpoint: ep.describe(),
        }
    }

    pub(crate) fn site<'a>(
        &'a self,
        op: &'static str,
        bucket: &'a str,
        key: Option<&'a str>,
    ) -> crate::error::CallSite<'a> {
        crate::error::CallSite { side: self.side, endpoint: &self.endpoint, op, bucket, key }
    }
}
