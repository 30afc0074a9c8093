//! Opening and binding an LDAP connection: TLS (ldaps, StartTLS, private CA, client
//! certificate, verification off), simple or anonymous bind, timeouts, and one clear error for
//! each way it can fail.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::Settings;
use crate::Error;
use crate::api::LdapSource;
use crate::secrets::{SecretStore, SecretValue};

const P: &str = "spec.source.ldap";

/// Everything needed to open connections, with secrets already read.
pub struct Connector {
    pub settings: Settings,
    tls: Option<Arc<ClientConfig>>,
    insecure: bool,
    bind: Option<(String, SecretValue)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.settings.url)
            .field("bind_dn", &self.bind.as_ref().map(|b| &b.0))
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads the bind credentials and TLS material from Secrets and builds the TLS config.
    pub async fn new(spec: &LdapSource, settings: Settings, secrets: &dyn SecretStore) -> Result<Connector, Error> {
        crate::init_crypto();
        let bind = match &spec.bind_secret_ref {
            None => None,
            Some(r) => {
                let user = secrets.get(&r.name, &r.username_key).await?;
                let password = secrets.get(&r.name, &r.password_key).await?;
                Some((user.expose().trim().to_string(), password))
            }
        };
        let tls_spec = spec.tls.clone().unwrap_or_default();
        let insecure = tls_spec.insecure_skip_verify;
        let uses_tls = settings.ldaps || settings.start_tls;
        let tls = if uses_tls {
            let ca = match &tls_spec.ca_secret_ref {
                Some(r) => Some((r, secrets.get(&r.name, &r.key).await?)),
                None => None,
            };
            let roots = match ca {
                Some((r, pem)) => {
                    let field = format!("{P}.tls.caSecretRef");
                    crate::net::tls::ca_root_store(pem.expose().as_bytes())
                        .map_err(|m| Error::invalid(&field, format!("Secret {:?} key {:?} {m}", r.name, r.key)))?
                }
                None => system_roots(),
            };
            let builder = ClientConfig::builder().with_root_certificates(roots);
            let mut config = match &tls_spec.client_cert_secret_ref {
                None => builder.with_no_client_auth(),
                Some(r) => {
                    let field = format!("{P}.tls.clientCertSecretRef");
                    let crt = secrets.get(&r.name, "tls.crt").await?;
                    let key = secrets.get(&r.name, "tls.key").await?;
                    let certs = CertificateDer::pem_slice_iter(crt.expose().as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| Error::invalid(&field, format!("tls.crt is not PEM ({e})")))?;
                    if certs.is_empty() {
                        return Err(Error::invalid(&field, "tls.crt holds no certificate"));
                    }
                    let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes())
                        .map_err(|e| Error::invalid(&field, format!("tls.key is not a PEM private key ({e})")))?;
                    builder.with_client_auth_cert(certs, key).map_err(|e| {
                        Error::invalid(&field, format!("the client certificate and key do not fit ({e})"))
                    })?
                }
            };
            if insecure {
                let provider = rustls::crypto::CryptoProvider::get_default()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
                config
                    .dangerous()
                    .set_certificate_verifier(Arc::new(NoVerify(provider)));
            }
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Connector {
            settings,
            tls,
            insecure: insecure && uses_tls,
            bind,
        })
    }

    /// Whether server certificate verification is off.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The bind DN, for messages (never the password).
    /// Plain `ldap://` without StartTLS to a host that is not loopback (`allowCleartext`).
    pub fn cleartext(&self) -> bool {
        self.settings.cleartext
    }

    pub fn bind_dn(&self) -> Option<&str> {
        self.bind.as_ref().map(|b| b.0.as_str())
    }

    /// Opens a connection, upgrades it to TLS as configured, and binds.
    pub async fn open(&self) -> Result<Ldap, Error> {
        let started = std::time::Instant::now();
        let result = self.connect_and_bind().await;
        crate::source::record_request("ldap", "bind", &result, started);
        result
    }

    async fn connect_and_bind(&self) -> Result<Ldap, Error> {
        let s = &self.settings;
        let mut ls = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_starttls(s.start_tls);
        if let Some(tls) = &self.tls {
            ls = ls.set_config(tls.clone()).set_no_tls_verify(self.insecure);
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(ls, &s.url)
            .await
            .map_err(|e| self.connect_error(e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        if let Some((dn, password)) = &self.bind {
            let res = ldap
                .with_timeout(s.timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|e| self.op_error(e, "bind"))?;
            match res.rc {
                0 => {}
                49 => {
                    return Err(Error::SourceAuthFailed(format!(
                        "LDAP bind as {dn:?} to {} failed: invalid credentials; check the \
                         username and password in the bind Secret{}",
                        s.url,
                        server_text(&res.text)
                    )));
                }
                rc => {
                    return Err(Error::SourceAuthFailed(format!(
                        "LDAP bind as {dn:?} to {} was refused (result {rc}){}",
                        s.url,
                        server_text(&res.text)
                    )));
                }
            }
        }
        Ok(ldap)
    }

    fn tls_hint(&self, e: &rustls::Error) -> String {
        crate::net::tls::describe_tls_error(
            e,
            &self.settings.endpoint,
            &crate::net::tls::TlsFields {
                ca: format!("{P}.tls.caSecretRef"),
                url: format!("{P}.url"),
                client_cert: Some(format!("{P}.tls.clientCertSecretRef")),
            },
        )
    }

    fn tls_failure(&self, detail: String) -> Error {
        let what = if self.settings.start_tls {
            "StartTLS"
        } else {
            "TLS handshake"
        };
        Error::SourceUnavailable(format!("{what} with {} failed: {detail}", self.settings.url))
    }

    /// Maps a failure to open the connection (TCP, TLS, StartTLS).
    fn connect_error(&self, e: LdapError) -> Error {
        let s = &self.settings;
        let tls = s.ldaps || s.start_tls;
        match e {
            LdapError::Timeout { .. } => Error::SourceUnavailable(format!(
                "cannot connect to LDAP server {}: no answer within {}",
                s.endpoint,
                secs(s.timeout)
            )),
            LdapError::Rustls { source } => self.tls_failure(self.tls_hint(&source)),
            LdapError::DNSName { .. } => self.tls_failure("the host is not a valid TLS server name".into()),
            LdapError::LdapResult { result } => self.tls_failure(format!(
                "the server refused StartTLS (result {}){}",
                result.rc,
                server_text(&result.text)
            )),
            LdapError::Io { source } => {
                if let Some(r) = source.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return self.tls_failure(self.tls_hint(r));
                }
                use std::io::ErrorKind as K;
                match source.kind() {
                    K::ConnectionRefused => Error::SourceUnavailable(format!(
                        "cannot connect to LDAP server {}: connection refused",
                        s.endpoint
                    )),
                    K::TimedOut => {
                        Error::SourceUnavailable(format!("cannot connect to LDAP server {}: timed out", s.endpoint))
                    }
                    K::UnexpectedEof | K::ConnectionReset | K::InvalidData if tls => self.tls_failure(format!(
                        "the connection was closed during the handshake ({source}); is this port TLS?"
                    )),
                    _ => Error::SourceUnavailable(format!("cannot connect to LDAP server {}: {source}", s.endpoint)),
                }
            }
            other => Error::SourceUnavailable(format!("cannot connect to LDAP server {}: {other}", s.endpoint)),
        }
    }

    /// Maps a failure of an operation on an open connection.
    pub fn op_error(&self, e: LdapError, what: &str) -> Error {
        let s = &self.settings;
        match e {
            LdapError::Timeout { .. } => Error::SourceUnavailable(format!(
                "LDAP {what} on {} got no answer within {}",
                s.endpoint,
                secs(s.timeout)
            )),
            other => Error::SourceUnavailable(format!("LDAP {what} on {} failed: {other}", s.endpoint)),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn server_text(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(" (server says: {t})")
    }
}

/// The system trust store (honours `SSL_CERT_FILE`), the same one ldap3 uses without a `tls`
/// block; certificates it cannot parse are skipped.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

/// Accepts any server certificate (`insecureSkipVerify`), still checking handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
