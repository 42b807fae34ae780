//! Mutual TLS for the XKS API (spec, "Authentication"): the HTTPS listener asks every client for
//! a certificate but does not require one (S3 and KMS clients have none), accepts only certificates
//! chained to the configured CA and, when a subject name is configured, carrying it as subject
//! common name; any other certificate fails the handshake, as the spec requires. Whether a
//! connection presented a verified certificate is then known to the router, which refuses XKS
//! requests without one.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// id-at-commonName (2.5.4.3).
const COMMON_NAME_OID: [u64; 4] = [2, 5, 4, 3];

/// The client certificate verifier of the HTTPS listener when `--xks-client-ca` is set.
pub fn client_verifier(ca_file: &Path, common_name: Option<&str>) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .with_context(|| format!("while reading the XKS client CA {}", ca_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("the XKS client CA {} is not valid PEM", ca_file.display()))?;
    for cert in certs {
        roots
            .add(cert)
            .with_context(|| format!("the XKS client CA {} holds an unusable certificate", ca_file.display()))?;
    }
    if roots.is_empty() {
        bail!("the XKS client CA file {} holds no certificate", ca_file.display());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .context("the XKS client CA cannot verify client certificates")?;
    Ok(Arc::new(XksClientVerifier { inner, common_name: common_name.map(str::to_owned) }))
}

#[derive(Debug)]
struct XksClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    common_name: Option<String>,
}

impl ClientCertVerifier for XksClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if let Some(wanted) = &self.common_name {
            if !common_names(end_entity).iter().any(|cn| cn == wanted) {
                return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName));
            }
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subject common names of a certificate (webpki finds the subject, yasna reads the DER
/// Name); empty when it has none or cannot be parsed.
fn common_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else { return Vec::new() };
    // webpki gives the Name's contents; put the SEQUENCE header back for the DER reader.
    let contents = parsed.subject();
    let mut name = vec![0x30];
    match contents.len() {
        n if n < 0x80 => name.push(n as u8),
        n if n <= 0xff => name.extend([0x81, n as u8]),
        n if n <= 0xffff => name.extend([0x82, (n >> 8) as u8, n as u8]),
        _ => return Vec::new(),
    }
    name.extend_from_slice(contents);
    let mut found = Vec::new();
    let parsed = yasna::parse_der(&name, |r| {
        r.read_sequence_of(|rdn| {
            rdn.read_set_of(|attribute| {
                attribute.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let value = r.next().read_tagged_der()?;
                    if oid.components().as_slice() == COMMON_NAME_OID {
                        if let Some(text) = value.as_str() {
                            found.push(text.to_owned());
                        }
                    }
                    Ok(())
                })
            })
        })
    });
    if parsed.is_err() {
        return Vec::new();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (rcgen::Certificate, rcgen::KeyPair, rcgen::CertificateParams) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        (params.self_signed(&key).unwrap(), key, params)
    }

    fn client(
        issuer_params: &rcgen::CertificateParams,
        issuer_key: &rcgen::KeyPair,
        cn: &str,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Amazon");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = rcgen::Issuer::from_params(issuer_params, issuer_key);
        params.signed_by(&key, &issuer).unwrap().der().clone()
    }

    #[test]
    fn reads_the_common_name_and_nothing_else() {
        let (_, key, params) = ca();
        let cert = client(&params, &key, "cks.kms.eu-west-1.amazonaws.com");
        assert_eq!(common_names(&cert), ["cks.kms.eu-west-1.amazonaws.com"]);
        assert!(common_names(&CertificateDer::from(vec![0x30, 0x00])).is_empty());
    }

    #[test]
    fn accepts_the_ca_and_name_and_refuses_other_names_and_cas() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_cert, ca_key, ca_params) = ca();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let now = UnixTime::now();
        let verifier = client_verifier(&ca_path, Some("cks.kms.eu-west-1.amazonaws.com")).unwrap();
        assert!(!verifier.client_auth_mandatory(), "S3 clients without certificates still connect");
        let good = client(&ca_params, &ca_key, "cks.kms.eu-west-1.amazonaws.com");
        assert!(verifier.verify_client_cert(&good, &[], now).is_ok());
        let other_name = client(&ca_params, &ca_key, "cks.kms.us-east-1.amazonaws.com");
        assert!(verifier.verify_client_cert(&other_name, &[], now).is_err());
        let (_, rogue_key, rogue_params) = ca();
        let other_ca = client(&rogue_params, &rogue_key, "cks.kms.eu-west-1.amazonaws.com");
        assert!(verifier.verify_client_cert(&other_ca, &[], now).is_err());
        let any_name = client_verifier(&ca_path, None).unwrap();
        assert!(any_name.verify_client_cert(&other_name, &[], now).is_ok());
        assert!(any_name.verify_client_cert(&other_ca, &[], now).is_err());
        std::fs::write(&ca_path, "no certificate here").unwrap();
        assert!(client_verifier(&ca_path, None).is_err());
    }
}
