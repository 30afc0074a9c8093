//! RS256 JSON Web Tokens (client assertions: Entra's certificate credential, Google's service
//! account, Okta's private_key_jwt) with `jsonwebtoken`, whose cryptography is ring here: the
//! crate is built without a backend feature (no aws-lc, no RustCrypto RSA) and [`install`] plugs
//! in a small RS256-only provider on ring, the TLS stack's own library.
//!
//! [`RsaKey`] reads a PEM private key (PKCS#8 or PKCS#1) once and signs with it ([`sign`]).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents, UnparsedPublicKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;

/// The ring provider: RS256 only (what every client assertion here uses).
static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes ring `jsonwebtoken`'s provider for this process (once; a provider installed earlier
/// stays). Every function here calls it; call it before using `jsonwebtoken` directly.
pub fn install() {
    let _ = RING.install_default();
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let pair = key_pair(key.as_bytes()).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(RingSigner(pair)))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::RS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier(key.kind().clone())))
}

/// A key pair from PKCS#8 or PKCS#1 DER.
fn key_pair(der: &[u8]) -> Result<RsaKeyPair, ring::error::KeyRejected> {
    RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der))
}

struct RingSigner(RsaKeyPair);

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut out = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut out)
            .map_err(|_| SignatureError::new())?;
        Ok(out)
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// An RSA public key: PKCS#1 `RSAPublicKey` DER, or modulus and exponent.
struct RingVerifier(DecodingKeyKind);

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), SignatureError> {
        let alg = &signature::RSA_PKCS1_2048_8192_SHA256;
        match &self.0 {
            DecodingKeyKind::SecretOrDer(der) => UnparsedPublicKey::new(alg, der).verify(msg, sig),
            DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKeyComponents { n, e }.verify(alg, msg, sig),
        }
        .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// An RSA private key, checked when read.
pub struct RsaKey {
    der: Vec<u8>,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKey(<redacted>)")
    }
}

impl RsaKey {
    /// The first private key of a PEM text (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`; other
    /// blocks such as a certificate may come before or after it). The error says what is wrong
    /// without quoting the text.
    pub fn from_pem(pem: &str) -> Result<RsaKey, String> {
        let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(k)) => k.secret_pkcs8_der().to_vec(),
            Ok(PrivateKeyDer::Pkcs1(k)) => k.secret_pkcs1_der().to_vec(),
            Ok(_) => return Err("holds an EC private key; an RSA key is needed".into()),
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err("holds no PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into());
            }
            Err(e) => return Err(format!("is not a readable PEM private key ({e})")),
        };
        let pair = key_pair(&der).map_err(|e| format!("is not a usable RSA private key ({e})"))?;
        Ok(RsaKey { der, pair })
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what a certificate's key holds).
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }
}

/// `header.claims.signature` signed with `key` (RS256 whatever `header.alg` says).
pub fn sign(header: &Header, claims: &impl Serialize, key: &RsaKey) -> Result<String, String> {
    install();
    let header = Header {
        alg: Algorithm::RS256,
        ..header.clone()
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&key.der)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway 2048-bit test key (PKCS#8), generated for this test only.
    const KEY: &str = include_str!("../../tests/support/entra/app.key");

    #[test]
    fn signs_rs256_that_verifies_with_the_public_key() {
        let key = RsaKey::from_pem(KEY).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some("thumb".into());
        let claims = serde_json::json!({"sub": "app", "aud": "x", "exp": 4102444800u64});
        let token = sign(&header, &claims, &key).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["x"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_rsa_der(key.public_key_der()), &v)
                .unwrap();
        assert_eq!(data.claims["sub"], "app");
        assert_eq!(data.header.x5t.as_deref(), Some("thumb"));
        // A signature by another key, or a changed payload, does not verify.
        let other = RsaKey::from_pem(include_str!("../../tests/support/entra/other.key")).unwrap();
        let forged = sign(&header, &claims, &other).unwrap();
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&forged, &DecodingKey::from_rsa_der(key.public_key_der()), &v)
                .is_err()
        );
    }

    #[test]
    fn keys_are_read_from_pkcs8_and_pkcs1_pem_and_errors_say_what_is_wrong() {
        assert!(RsaKey::from_pem(KEY).is_ok());
        assert!(RsaKey::from_pem(include_str!("../../tests/support/entra/app-pkcs1.key")).is_ok());
        let err = RsaKey::from_pem("not a key").unwrap_err();
        assert!(err.contains("no PEM private key"), "{err}");
        assert!(format!("{:?}", RsaKey::from_pem(KEY).unwrap()).contains("redacted"));
    }
}
