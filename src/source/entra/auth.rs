//! The app's credential and what a refused token request means.
//!
//! Three kinds, exactly one per spec: a client secret; a certificate (an RS256 client assertion
//! whose header names the certificate by its SHA-1 thumbprint, `x5t`); or workload identity
//! federation, where the client assertion is a Kubernetes ServiceAccount token for the audience
//! `api://AzureADTokenExchange`, read from a file or requested by the controller.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Header;
use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::{Endpoints, FEDERATED_TOKEN_FILE_ENV, FEDERATION_AUDIENCE, P};
use crate::Error;
use crate::api::{EntraCloud, EntraIdSource};
use crate::net::Reply;
use crate::net::jwt::{self, SigningKey};
use crate::secrets::{SecretStore, SecretValue};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a certificate client assertion (Entra accepts 5–10 minutes).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// How the app proves who it is.
pub(super) enum Credential {
    Secret(SecretValue),
    Certificate {
        key: Box<SigningKey>,
        /// base64url SHA-1 of the certificate's DER.
        x5t: String,
        /// The same thumbprint in hex, as the Entra admin center shows it.
        thumbprint: String,
    },
    /// A projected ServiceAccount token, read anew before each token request (kubelet renews it).
    TokenFile(PathBuf),
    /// A ServiceAccount token the controller requested for this sync.
    ServiceAccountToken(SecretValue),
}

/// The app, its credential and where tokens come from.
pub(super) struct Auth {
    pub client_id: String,
    pub credential: Credential,
    pub token_url: String,
    pub scope: String,
    tenant: String,
    cloud: EntraCloud,
    /// Where the client id and credential are configured, for messages.
    pub source: String,
}

/// The claims of a ServiceAccount token that a mismatch message names.
#[derive(Debug, Default, Deserialize)]
struct TokenClaims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    exp: Option<u64>,
}

/// A certificate client assertion's claims (`providers.md` 1.1).
#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// The form fields of a token request.
pub(super) type Form = Vec<(&'static str, String)>;

/// The token endpoint's error body (AADSTS).
#[derive(Debug, Default, Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A fresh random GUID (version 4) for `jti`.
fn random_guid() -> String {
    let mut b = [0u8; 16];
    // The system RNG does not fail on supported platforms; a zero jti would only be refused.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The payload claims of a JWT, unverified (our own assertion, for messages only).
fn claims_of(jwt: &str) -> TokenClaims {
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn secret_key_path(name: &str, key: &str) -> String {
    format!("Secret {name:?} key {key:?}")
}

/// The certificate of `pem` that belongs to `key`, with its thumbprints; errors say what to fix.
fn certificate_for(pem: &str, key: &SigningKey, path: &str) -> Result<(String, String, i64), Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::invalid(path, format!("is not a readable PEM certificate ({e})")))?;
    if certs.is_empty() {
        return Err(Error::invalid(path, "holds no PEM certificate (BEGIN CERTIFICATE)"));
    }
    for der in &certs {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return Err(Error::invalid(path, "holds a certificate that cannot be parsed"));
        };
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key() {
            continue;
        }
        let sha1 = digest(&SHA1_FOR_LEGACY_USE_ONLY, der);
        let hex: String = sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        return Ok((URL_SAFE_NO_PAD.encode(sha1), hex, cert.validity().not_after.timestamp()));
    }
    Err(Error::invalid(
        path,
        "has no certificate that belongs to the private key (privateKeyKey): put the app registration's \
         certificate and its own private key in the Secret",
    ))
}

impl Auth {
    /// Reads what the spec names: the Secret's keys, the token file (checked readable), or a
    /// ServiceAccount token from the store.
    pub async fn resolve(
        spec: &EntraIdSource,
        endpoints: &Endpoints,
        secrets: &dyn SecretStore,
    ) -> Result<Auth, Error> {
        let (client_id, credential, source) = match (&spec.credentials_secret_ref, &spec.workload_identity) {
            (Some(c), _) => {
                let client_id = secrets
                    .get(&c.name, &c.client_id_key)
                    .await?
                    .expose()
                    .trim()
                    .to_string();
                match (&c.certificate_key, &c.private_key_key) {
                    (Some(cert_key), Some(key_key)) => {
                        let key_pem = secrets.get(&c.name, key_key).await?;
                        let key = SigningKey::from_rsa_pem(key_pem.expose())
                            .map_err(|m| Error::invalid(&secret_key_path(&c.name, key_key), m))?;
                        let cert_pem = secrets.get(&c.name, cert_key).await?;
                        let cert_path = secret_key_path(&c.name, cert_key);
                        let (x5t, thumbprint, not_after) = certificate_for(cert_pem.expose(), &key, &cert_path)?;
                        if not_after < now_secs() as i64 {
                            let date = jiff::Timestamp::from_second(not_after)
                                .map(|t| t.to_string())
                                .unwrap_or_default();
                            return Err(Error::SourceAuthFailed(format!(
                                "the certificate in {cert_path} (thumbprint {thumbprint}) expired on {date}: create a \
                                 new one, upload it to the app registration (Certificates & secrets → Certificates) \
                                 and put it and its key in Secret {:?}",
                                c.name
                            )));
                        }
                        let source = format!(
                            "Secret {:?} (keys {:?}, {:?} and {:?})",
                            c.name, c.client_id_key, cert_key, key_key
                        );
                        (
                            client_id,
                            Credential::Certificate {
                                key: Box::new(key),
                                x5t,
                                thumbprint,
                            },
                            source,
                        )
                    }
                    _ => {
                        let secret = secrets.get(&c.name, &c.client_secret_key).await?;
                        let source = format!(
                            "Secret {:?} (keys {:?} and {:?})",
                            c.name, c.client_id_key, c.client_secret_key
                        );
                        (
                            client_id,
                            Credential::Secret(SecretValue::new(secret.expose().trim())),
                            source,
                        )
                    }
                }
            }
            (None, Some(w)) => {
                let p = format!("{P}.workloadIdentity");
                let client_id = w.client_id.trim().to_string();
                if let Some(name) = &w.service_account_name {
                    let token =
                        secrets
                            .service_account_token(name, FEDERATION_AUDIENCE)
                            .await
                            .map_err(|e| match e {
                                Error::InvalidSpec(errors) => Error::InvalidSpec(
                                    errors
                                        .into_iter()
                                        .map(|f| {
                                            crate::api::FieldError::new(format!("{p}.serviceAccountName"), f.message)
                                        })
                                        .collect(),
                                ),
                                other => other,
                            })?;
                    let source = format!("{p} (ServiceAccount {name:?}, client id {client_id})");
                    (client_id, Credential::ServiceAccountToken(token), source)
                } else {
                    let file = match &w.federated_token_file {
                        Some(f) => PathBuf::from(f),
                        None => match std::env::var_os(FEDERATED_TOKEN_FILE_ENV).filter(|v| !v.is_empty()) {
                            Some(f) => PathBuf::from(f),
                            None => {
                                return Err(Error::invalid(
                                    &format!("{p}.federatedTokenFile"),
                                    format!(
                                        "is not set and neither is {FEDERATED_TOKEN_FILE_ENV}: give the path of a \
                                         projected ServiceAccount token (audience {FEDERATION_AUDIENCE}), run with \
                                         Azure Workload Identity, or set serviceAccountName (controller only)"
                                    ),
                                ));
                            }
                        },
                    };
                    read_token_file(&file)?;
                    let source = format!("{p} (token file {}, client id {client_id})", file.display());
                    (client_id, Credential::TokenFile(file), source)
                }
            }
            (None, None) => {
                return Err(Error::invalid(
                    P,
                    "no credential: set credentialsSecretRef or workloadIdentity",
                ));
            }
        };
        Ok(Auth {
            client_id,
            credential,
            token_url: endpoints.token_url.clone(),
            scope: endpoints.scope.clone(),
            tenant: spec.tenant_id.trim().to_string(),
            cloud: spec.cloud,
            source,
        })
    }

    /// The long-lived secrets to keep out of messages.
    pub fn secrets(&self) -> Vec<SecretValue> {
        match &self.credential {
            Credential::Secret(s) | Credential::ServiceAccountToken(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// The form of one token request (a fresh assertion, or the token file read now), and the
    /// assertion sent, if any.
    pub fn form(&self) -> Result<(Form, Option<SecretValue>), Error> {
        let mut form = vec![
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
            ("grant_type", "client_credentials".to_string()),
        ];
        let assertion = match &self.credential {
            Credential::Secret(secret) => {
                form.push(("client_secret", secret.expose().to_string()));
                return Ok((form, None));
            }
            Credential::Certificate { key, x5t, .. } => {
                let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
                header.x5t = Some(x5t.clone());
                let now = now_secs();
                let claims = AssertionClaims {
                    aud: &self.token_url,
                    iss: &self.client_id,
                    sub: &self.client_id,
                    jti: random_guid(),
                    nbf: now,
                    iat: now,
                    exp: now + ASSERTION_LIFETIME.as_secs(),
                };
                let signed = jwt::sign(&header, &claims, key).map_err(|e| {
                    Error::SourceAuthFailed(format!(
                        "cannot sign the client assertion with the key of {}: {e}",
                        self.source
                    ))
                })?;
                SecretValue::new(signed)
            }
            Credential::TokenFile(path) => read_token_file(path)?,
            Credential::ServiceAccountToken(token) => token.clone(),
        };
        form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
        form.push(("client_assertion", assertion.expose().to_string()));
        Ok((form, Some(assertion)))
    }

    /// The error of a refused token request (4xx with Entra's AADSTS body), saying what to fix.
    pub fn refused(&self, reply: &Reply, assertion: Option<&SecretValue>) -> Error {
        let body: TokenError = serde_json::from_slice(&reply.body).unwrap_or_default();
        let first_line = body
            .error_description
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let code = body.error_codes.first().copied().or_else(|| {
            let rest = first_line.strip_prefix("AADSTS")?;
            rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        });
        let detail = match (body.error.is_empty(), first_line.is_empty()) {
            (true, true) => reply.detail(),
            (false, true) => body.error.clone(),
            (true, false) => first_line.clone(),
            (false, false) => format!("{}: {first_line}", body.error),
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let fix = self.what_to_fix(code, assertion);
        Error::SourceAuthFailed(format!(
            "Microsoft Entra at {} refused the token request for app {} in tenant {} (HTTP {}{detail}); {fix}",
            reply.host,
            self.client_id,
            self.tenant,
            reply.status.as_u16()
        ))
    }

    fn what_to_fix(&self, code: Option<u64>, assertion: Option<&SecretValue>) -> String {
        let federated = matches!(
            self.credential,
            Credential::TokenFile(_) | Credential::ServiceAccountToken(_)
        );
        match code {
            Some(90002 | 90023 | 900023) => format!(
                "there is no such tenant in the {:?} cloud: check {P}.tenantId (the directory's id or a verified \
                 domain) and {P}.cloud",
                self.cloud
            ),
            Some(700016) => format!(
                "the app's client id is unknown in this tenant: check the client id in {} (Application (client) \
                 ID of the app registration) and {P}.tenantId",
                self.source
            ),
            Some(7000229) => "the app has no enterprise application (service principal) in this tenant: an \
                 administrator must add it and grant admin consent"
                .to_string(),
            Some(7000215) => format!(
                "the client secret is wrong: put the secret's Value (not its Secret ID) from App registrations → \
                 Certificates & secrets into {}",
                self.source
            ),
            Some(7000222) => format!(
                "the client secret has expired: create a new one in App registrations → Certificates & secrets and \
                 put its Value into {}",
                self.source
            ),
            Some(700027 | 700023 | 7000274) => match &self.credential {
                Credential::Certificate { thumbprint, .. } => format!(
                    "the app does not accept this certificate: upload the certificate with thumbprint {thumbprint} \
                     to the app registration (Certificates & secrets → Certificates), or put the registered \
                     certificate and its key into {}",
                    self.source
                ),
                _ => format!("check the credential in {}", self.source),
            },
            Some(70021 | 700211 | 700212 | 700213) if federated => {
                let claims = assertion.map(|a| claims_of(a.expose())).unwrap_or_default();
                format!(
                    "no federated identity credential of the app matches the ServiceAccount token (issuer {:?}, \
                     subject {:?}, audience {FEDERATION_AUDIENCE:?}): add one in App registrations → Certificates \
                     & secrets → Federated credentials with exactly this issuer (the cluster's service-account \
                     issuer URL) and subject",
                    claims.iss, claims.sub
                )
            }
            Some(700024) if federated => {
                let claims = assertion.map(|a| claims_of(a.expose())).unwrap_or_default();
                let expired = claims
                    .exp
                    .and_then(|e| jiff::Timestamp::from_second(e as i64).ok())
                    .map(|t| format!(" (it expires at {t})"))
                    .unwrap_or_default();
                format!(
                    "the ServiceAccount token is outside its validity{expired}: check that the token file is \
                     renewed (a projected volume) and that the clocks are right"
                )
            }
            Some(700024) => "the client assertion is outside its validity: check this machine's clock".to_string(),
            Some(70011 | 1002012) => format!(
                "the scope {} is not valid for this tenant: {P}.cloud (or graphUrl) must be the tenant's cloud",
                self.scope
            ),
            _ if federated => format!("check {} and the app's federated identity credentials", self.source),
            _ => format!("check {P}.tenantId, {P}.cloud and the credentials in {}", self.source),
        }
    }
}

/// The token of a projected ServiceAccount token file, checked readable and not empty.
fn read_token_file(path: &PathBuf) -> Result<SecretValue, Error> {
    let field = format!("{P}.workloadIdentity.federatedTokenFile");
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(SecretValue::new(text.trim())),
        Ok(_) => Err(Error::SourceAuthFailed(format!(
            "the ServiceAccount token file {} ({field}) is empty",
            path.display()
        ))),
        Err(e) => Err(Error::SourceAuthFailed(format!(
            "cannot read the ServiceAccount token file {} ({field}): {e}; mount a projected token with audience \
             {FEDERATION_AUDIENCE} there",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../../tests/support/entra/app.key");
    const CERT: &str = include_str!("../../../tests/support/entra/app.pem");
    const OTHER_KEY: &str = include_str!("../../../tests/support/entra/other.key");

    #[test]
    fn the_certificate_is_the_one_of_the_key_and_its_thumbprint_is_sha1() {
        let key = SigningKey::from_pem(KEY).unwrap();
        let (x5t, hex, not_after) = certificate_for(CERT, &key, "p").unwrap();
        let der = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        let sha1 = digest(&SHA1_FOR_LEGACY_USE_ONLY, &der);
        assert_eq!(URL_SAFE_NO_PAD.decode(&x5t).unwrap(), sha1.as_ref());
        assert_eq!(hex.len(), 40);
        assert!(not_after > now_secs() as i64);
        // A bundle of key and certificate in one PEM works too.
        assert!(certificate_for(&format!("{KEY}{CERT}"), &key, "p").is_ok());
        let other = SigningKey::from_pem(OTHER_KEY).unwrap();
        let err = certificate_for(CERT, &other, "p").unwrap_err().to_string();
        assert!(err.contains("belongs to the private key"), "{err}");
        let err = certificate_for("nothing", &key, "p").unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn guids_are_fresh_and_shaped() {
        let (a, b) = (random_guid(), random_guid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn claims_of_a_token_are_read_for_messages() {
        let key = SigningKey::from_pem(KEY).unwrap();
        let t = jwt::sign(
            &Header::default(),
            &serde_json::json!({"iss": "https://k", "sub": "system:serviceaccount:a:b", "exp": 5}),
            &key,
        )
        .unwrap();
        let c = claims_of(&t);
        assert_eq!(
            (c.iss.as_str(), c.sub.as_str(), c.exp),
            ("https://k", "system:serviceaccount:a:b", Some(5))
        );
        assert_eq!(claims_of("garbage").iss, "");
    }
}
