//! TLS: the one loader of PEM CA bundles (a Secret named by a `caSecretRef`), and TLS failures
//! described with the certificate problem and the spec field that fixes it.

use std::error::Error as StdError;
use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, RootCertStore};

/// Why a CA bundle cannot be used. Never echoes the bundle. Reads as the end of a sentence
/// about the bundle: `format!("Secret {name:?} key {key:?} {error}")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidCaBundle(String);

impl fmt::Display for InvalidCaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for InvalidCaBundle {}

/// The certificates of a PEM bundle of CA certificates, each checked to be usable as a trust
/// anchor.
pub fn parse_ca_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, InvalidCaBundle> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InvalidCaBundle(format!("is not a valid PEM certificate bundle ({e})")))?;
    if certs.is_empty() {
        return Err(InvalidCaBundle(
            "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let mut store = RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store
            .add(cert.clone())
            .map_err(|e| InvalidCaBundle(format!("holds a certificate (#{}) that is not a usable CA: {e}", i + 1)))?;
    }
    Ok(certs)
}

/// The trust store of a PEM CA bundle, for clients that configure rustls themselves (LDAP).
pub fn ca_root_store(pem: &[u8]) -> Result<RootCertStore, InvalidCaBundle> {
    let mut store = RootCertStore::empty();
    for cert in parse_ca_bundle(pem)? {
        store
            .add(cert)
            .map_err(|e| InvalidCaBundle(format!("holds a certificate that is not a usable CA: {e}")))?;
    }
    Ok(store)
}

/// Adds the CA certificates to a reqwest client, on top of the system's trust store.
pub fn trust_in_reqwest(
    builder: reqwest::ClientBuilder,
    certs: &[CertificateDer<'static>],
) -> Result<reqwest::ClientBuilder, InvalidCaBundle> {
    let certs = certs
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| InvalidCaBundle(format!("holds a certificate that cannot be loaded ({e})")))?;
    Ok(builder.tls_certs_merge(certs))
}

/// The rustls error behind a failure, if TLS is what failed: walks the source chain, looking
/// inside I/O errors too (their `source()` skips the error they wrap).
pub fn rustls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = rustls_error(inner)
        {
            return Some(r);
        }
        next = e.source();
    }
    None
}

/// The spec fields that fix a TLS failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFields {
    /// Where a private CA bundle goes (`spec.bitwarden.caSecretRef`).
    pub ca: String,
    /// Where the server's URL is set (`spec.bitwarden.serverUrl`).
    pub url: String,
    /// Where a client certificate goes, for servers that ask for one (LDAP).
    pub client_cert: Option<String>,
}

/// What is wrong with the TLS connection to `host`, and what to change.
pub fn describe_tls_error(error: &rustls::Error, host: &str, fields: &TlsFields) -> String {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    match error {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature | CertificateError::BadEncoding => {
                format!(
                    "the server certificate is not trusted ({c:?}): if a private CA signs it, put \
                     that CA's PEM bundle in a Secret and set {}",
                    fields.ca
                )
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the server certificate is not valid for {name:?}: use a host name from its subject \
                 alternative names in {}",
                fields.url
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server certificate has expired: renew it on the server".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server certificate is not valid yet: check the clocks of the server and of dirsync".into()
            }
            CertificateError::Revoked => "the server certificate has been revoked".into(),
            other => format!("the server certificate is invalid ({other:?}); check {}", fields.ca),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "the server did not answer with TLS: is it a plain-text port? check {}",
            fields.url
        ),
        rustls::Error::AlertReceived(alert) => match &fields.client_cert {
            Some(field) => format!(
                "the server refused the TLS handshake ({alert:?}); if it requires a client certificate, set {field}"
            ),
            None => format!("the server refused the TLS handshake ({alert:?}); does it require a client certificate?"),
        },
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CA: &[u8] = include_bytes!("../../tests/support/test-ca.pem");

    #[test]
    fn ca_bundles_are_checked_without_echoing_them() {
        assert_eq!(parse_ca_bundle(TEST_CA).unwrap().len(), 1);
        let two = [TEST_CA, TEST_CA].concat();
        assert_eq!(parse_ca_bundle(&two).unwrap().len(), 2);
        assert_eq!(ca_root_store(&two).unwrap().len(), 2);

        let message = |pem: &[u8]| parse_ca_bundle(pem).unwrap_err().to_string();
        assert!(message(b"").contains("no PEM certificate"));
        assert!(message(b"not a certificate").contains("no PEM certificate"));
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(message(broken).contains("not a valid PEM"), "{}", message(broken));
        let not_der = b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let m = message(not_der);
        assert!(m.contains("#1") && m.contains("not a usable CA"), "{m}");
        assert!(!m.contains("aGVsbG8"), "{m}");
        assert!(ca_root_store(b"").is_err());
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors_and_described() {
        let fields = TlsFields {
            client_cert: None,
            ca: "spec.bitwarden.caSecretRef".into(),
            url: "spec.bitwarden.serverUrl".into(),
        };
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(unknown.clone());
        let found = rustls_error(&io).expect("found inside io::Error");
        assert_eq!(found, &unknown);
        assert!(rustls_error(&std::io::Error::other("plain")).is_none());
        let m = describe_tls_error(found, "vault.example:8443", &fields);
        assert!(
            m.contains("not trusted") && m.contains("spec.bitwarden.caSecretRef"),
            "{m}"
        );
        let m = describe_tls_error(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "vault.example:8443",
            &fields,
        );
        assert!(
            m.contains("\"vault.example\"") && m.contains("spec.bitwarden.serverUrl"),
            "{m}"
        );
        let m = describe_tls_error(
            &rustls::Error::InvalidCertificate(CertificateError::Expired),
            "h",
            &fields,
        );
        assert!(m.contains("expired"), "{m}");
    }
}
