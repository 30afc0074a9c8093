//! Signed JSON Web Tokens (client assertions: Entra's certificate credential, Google's service
//! account, Okta's private_key_jwt) with `jsonwebtoken`, whose cryptography is ring here: the
//! crate is built without a backend feature (no aws-lc, no RustCrypto) and [`install`] plugs in a
//! small provider on ring, the TLS stack's own library, for the two algorithms used: RS256 (RSA)
//! and ES256 (EC P-256).
//!
//! [`SigningKey`] reads a PEM private key once and [`sign`] signs with it, RS256 or ES256 by the
//! kind of key.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey, Header};
use ring::error::KeyRejected;
use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use serde::Serialize;

/// The ring provider: RS256 and ES256 only (what every client assertion here uses).
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
    match (algorithm, key.family()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa) => {
            let pair = rsa_key_pair(key.as_bytes()).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
            Ok(Box::new(RingSigner::Rsa(pair)))
        }
        (Algorithm::ES256, AlgorithmFamily::Ec) => {
            let pair = ec_key_pair(key.as_bytes()).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Ok(Box::new(RingSigner::Ec(pair)))
        }
        (Algorithm::RS256 | Algorithm::ES256, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match (algorithm, key.family(), key.kind()) {
        (Algorithm::RS256, AlgorithmFamily::Rsa, kind) => Ok(Box::new(RingVerifier::Rsa(kind.clone()))),
        (Algorithm::ES256, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            Ok(Box::new(RingVerifier::Ec(point.clone())))
        }
        (Algorithm::RS256 | Algorithm::ES256, _, _) => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

/// An RSA key pair from PKCS#8 or PKCS#1 DER.
fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair, KeyRejected> {
    RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der))
}

/// An EC P-256 key pair from PKCS#8 DER.
fn ec_key_pair(der: &[u8]) -> Result<EcdsaKeyPair, KeyRejected> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
}

enum RingSigner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        match self {
            RingSigner::Rsa(pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut out)
                    .map_err(|_| SignatureError::new())?;
                Ok(out)
            }
            RingSigner::Ec(pair) => pair
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignatureError::new()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        match self {
            RingSigner::Rsa(_) => Algorithm::RS256,
            RingSigner::Ec(_) => Algorithm::ES256,
        }
    }
}

enum RingVerifier {
    /// PKCS#1 `RSAPublicKey` DER, or modulus and exponent.
    Rsa(DecodingKeyKind),
    /// The uncompressed point (what `DecodingKey::from_ec_der` and `from_ec_components` hold).
    Ec(Vec<u8>),
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), SignatureError> {
        let rsa = &signature::RSA_PKCS1_2048_8192_SHA256;
        match self {
            RingVerifier::Rsa(DecodingKeyKind::SecretOrDer(der)) => UnparsedPublicKey::new(rsa, der).verify(msg, sig),
            RingVerifier::Rsa(DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(rsa, msg, sig)
            }
            RingVerifier::Ec(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(msg, sig),
        }
        .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        match self {
            RingVerifier::Rsa(_) => Algorithm::RS256,
            RingVerifier::Ec(_) => Algorithm::ES256,
        }
    }
}

/// A private key that signs JWTs: RSA (RS256) or EC P-256 (ES256), checked when read.
pub struct SigningKey {
    encoding: EncodingKey,
    algorithm: Algorithm,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, <redacted>)", self.algorithm)
    }
}

impl SigningKey {
    /// The first private key of a PEM text: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or EC P-256) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`); other blocks such as a certificate may come before or
    /// after it. The error says what to change, without quoting the text.
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        SigningKey::read(pem, true)
    }

    /// Like [`SigningKey::from_pem`], for services that take RS256 only: an EC key is refused.
    pub fn from_rsa_pem(pem: &str) -> Result<SigningKey, String> {
        SigningKey::read(pem, false)
    }

    fn read(pem: &str, ec_allowed: bool) -> Result<SigningKey, String> {
        let (der, pkcs8) = private_key_der(pem)?;
        let rsa = if pkcs8 {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        };
        let rsa_refusal = match rsa {
            Ok(pair) => {
                return Ok(SigningKey {
                    encoding: EncodingKey::from_rsa_der(&der),
                    algorithm: Algorithm::RS256,
                    public_key: pair.public().as_ref().to_vec(),
                });
            }
            Err(e) => e,
        };
        // ring's RSA limits; any other refusal of a PKCS#8 key may be an EC key.
        match rsa_refusal.to_string().as_str() {
            "TooSmall" => return Err("is an RSA key shorter than 2048 bits: make a key of 2048 to 4096 bits".into()),
            "TooLarge" => return Err("is an RSA key longer than 4096 bits: make a key of 2048 to 4096 bits".into()),
            _ => {}
        }
        if pkcs8 {
            match ec_key_pair(&der) {
                Ok(_) if !ec_allowed => return Err("holds an EC private key; an RSA key is needed".into()),
                Ok(pair) => {
                    return Ok(SigningKey {
                        encoding: EncodingKey::from_ec_der(&der),
                        algorithm: Algorithm::ES256,
                        public_key: pair.public_key().as_ref().to_vec(),
                    });
                }
                Err(e) if ec_allowed => {
                    return Err(format!(
                        "is not an RSA (2048 bits or more) or EC P-256 private key that can sign ({e})"
                    ));
                }
                Err(_) => {}
            }
        }
        Err(format!("is not a usable RSA private key ({rsa_refusal})"))
    }

    /// RS256 for an RSA key, ES256 for an EC P-256 key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public key as a certificate's `subjectPublicKey` holds it: PKCS#1 `RSAPublicKey` DER
    /// (for `DecodingKey::from_rsa_der`) or the uncompressed EC point (`from_ec_der`).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
}

/// The DER of the first private key block of `pem`, and whether it is PKCS#8 (else PKCS#1).
fn private_key_der(pem: &str) -> Result<(Vec<u8>, bool), String> {
    let text = pem.trim();
    if text.starts_with('{') {
        return Err(
            "holds a JWK, not a PEM key: put the PEM form of the private key in the Secret \
             (key generators such as Okta's console offer both)"
                .into(),
        );
    }
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes()) {
        match section {
            Ok((SectionKind::PrivateKey, der)) => return Ok((der, true)),
            Ok((SectionKind::RsaPrivateKey, der)) => return Ok((der, false)),
            Ok((SectionKind::EcPrivateKey, _)) => {
                return Err(
                    "is an EC key in SEC1 form (BEGIN EC PRIVATE KEY): convert it to PKCS#8 \
                     (openssl pkcs8 -topk8 -nocrypt)"
                        .into(),
                );
            }
            Ok(_) => {}
            // Not the error's own text: it can quote a line of the key.
            Err(pem::Error::Base64Decode(_)) => return Err("is not a readable PEM private key (bad base64)".into()),
            Err(_) => {
                return Err(
                    "is not a readable PEM private key: each -----BEGIN and -----END line must be a \
                     line of its own, unindented (was the text folded into one line?)"
                        .into(),
                );
            }
        }
    }
    // No private key block: say what is there instead, by the labels (only ones that look like
    // a label, so that a damaged text is never quoted).
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .filter(|label| label.len() <= 40 && label.chars().all(|c| c.is_ascii_uppercase() || c == ' '))
        .collect();
    Err(if labels.contains(&"ENCRYPTED PRIVATE KEY") {
        "is encrypted: store the key without a passphrase (openssl pkcs8 -topk8 -nocrypt)".into()
    } else if let Some(label) = labels.first() {
        format!("holds a PEM {label:?}, not a private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")
    } else {
        "is not a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)".into()
    })
}

/// `header.claims.signature` signed with `key`, RS256 or ES256 by the key (whatever `header.alg`
/// says).
pub fn sign(header: &Header, claims: &impl Serialize, key: &SigningKey) -> Result<String, String> {
    install();
    let header = Header {
        alg: key.algorithm,
        ..header.clone()
    };
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use jsonwebtoken::Validation;
    use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaSigningAlgorithm};
    use serde_json::{Value, json};

    // Throwaway test keys, generated for the tests only.
    const KEY: &str = include_str!("../../tests/support/entra/app.key");
    const KEY_PKCS1: &str = include_str!("../../tests/support/entra/app-pkcs1.key");
    const CERT: &str = include_str!("../../tests/support/entra/app.pem");
    const RSA_1024: &str = include_str!("../../tests/support/jwt/rsa-1024.key");
    const RSA_4608: &str = include_str!("../../tests/support/jwt/rsa-4608.key");
    const EC_SEC1: &str = include_str!("../../tests/support/jwt/ec-sec1.key");

    /// A new EC private key of `curve` as PKCS#8 PEM.
    fn new_ec_pem(curve: &'static EcdsaSigningAlgorithm) -> String {
        let doc = EcdsaKeyPair::generate_pkcs8(curve, &SystemRandom::new()).unwrap();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(doc.as_ref())
        )
    }

    fn decode(token: &str, key: &DecodingKey, alg: Algorithm) -> JwtResult<jsonwebtoken::TokenData<Value>> {
        let mut v = Validation::new(alg);
        v.set_audience(&["x"]);
        jsonwebtoken::decode::<Value>(token, key, &v)
    }

    #[test]
    fn signs_rs256_that_verifies_with_the_public_key() {
        let key = SigningKey::from_pem(KEY).unwrap();
        assert_eq!(key.algorithm(), Algorithm::RS256);
        let mut header = Header::new(Algorithm::RS256);
        header.x5t = Some("thumb".into());
        let claims = json!({"sub": "app", "aud": "x", "exp": 4102444800u64});
        let token = sign(&header, &claims, &key).unwrap();
        let public = DecodingKey::from_rsa_der(key.public_key());
        let data = decode(&token, &public, Algorithm::RS256).unwrap();
        assert_eq!(data.claims["sub"], "app");
        assert_eq!(data.header.x5t.as_deref(), Some("thumb"));
        // A signature by another key does not verify.
        let other = SigningKey::from_pem(include_str!("../../tests/support/entra/other.key")).unwrap();
        let forged = sign(&header, &claims, &other).unwrap();
        assert!(decode(&forged, &public, Algorithm::RS256).is_err());
    }

    #[test]
    fn signs_es256_with_an_ec_key_that_verifies_with_its_public_key() {
        let key = SigningKey::from_pem(&new_ec_pem(&ECDSA_P256_SHA256_FIXED_SIGNING)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        assert!(format!("{key:?}").contains("redacted"));
        // The header's alg follows the key.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        let claims = json!({"sub": "app", "aud": "x", "exp": 4102444800u64});
        let token = sign(&header, &claims, &key).unwrap();
        let public = DecodingKey::from_ec_der(key.public_key());
        let data = decode(&token, &public, Algorithm::ES256).unwrap();
        assert_eq!(data.claims, claims);
        assert_eq!(
            (data.header.alg, data.header.kid.as_deref()),
            (Algorithm::ES256, Some("k1"))
        );
        // A signature by another key, a changed payload, or a public key of another family does
        // not verify.
        let other = SigningKey::from_pem(&new_ec_pem(&ECDSA_P256_SHA256_FIXED_SIGNING)).unwrap();
        let forged = sign(&header, &claims, &other).unwrap();
        assert!(decode(&forged, &public, Algorithm::ES256).is_err());
        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.encode(json!({"sub": "root", "aud": "x", "exp": 4102444800u64}).to_string());
        let changed = format!("{head}.{payload}.{sig}");
        assert!(decode(&changed, &public, Algorithm::ES256).is_err());
        let rsa_public = DecodingKey::from_rsa_der(SigningKey::from_pem(KEY).unwrap().public_key());
        assert!(decode(&token, &rsa_public, Algorithm::ES256).is_err());
    }

    #[test]
    fn rsa_keys_are_read_from_pkcs8_and_pkcs1_and_beside_a_certificate() {
        let pkcs8 = SigningKey::from_pem(KEY).unwrap();
        let pkcs1 = SigningKey::from_rsa_pem(KEY_PKCS1).unwrap();
        assert_eq!(pkcs8.public_key(), pkcs1.public_key());
        for bundle in [format!("{CERT}{KEY}"), format!("{KEY}{CERT}")] {
            assert_eq!(
                SigningKey::from_rsa_pem(&bundle).unwrap().public_key(),
                pkcs8.public_key()
            );
        }
    }

    #[test]
    fn keys_that_cannot_sign_are_refused_with_what_to_change() {
        let err = |pem: &str| SigningKey::from_pem(pem).unwrap_err();
        let cases = [
            (r#"{"kty":"RSA","d":"c2VjcmV0"}"#.to_string(), "holds a JWK"),
            ("not a key".into(), "not a PEM private key"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED PRIVATE KEY-----".into(),
                "is encrypted",
            ),
            (EC_SEC1.into(), "SEC1 form"),
            (CERT.into(), "holds a PEM \"CERTIFICATE\", not a private key"),
            (
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----".into(),
                "not an RSA (2048 bits or more) or EC P-256 private key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----".into(),
                "not a usable RSA private key",
            ),
            (RSA_1024.into(), "shorter than 2048 bits"),
            (RSA_4608.into(), "longer than 4096 bits"),
            (new_ec_pem(&ECDSA_P384_SHA384_FIXED_SIGNING), "or EC P-256 private key"),
            ("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n".into(), "not a readable PEM"),
            (
                "-----BEGIN PRIVATE KEY-----\nc2Vj*mV0\n-----END PRIVATE KEY-----".into(),
                "bad base64",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----".into(),
                "holds a PEM \"OPENSSH PRIVATE KEY\"",
            ),
            (
                "-----BEGIN c2VjcmV0-----\n-----END c2VjcmV0-----".into(),
                "is not a PEM private key",
            ),
        ];
        for (pem, want) in cases {
            let m = err(&pem);
            assert!(m.contains(want), "{want}: {m}");
            assert!(!m.contains("c2VjcmV0"), "the key is never quoted: {m}");
        }
    }

    #[test]
    fn a_key_folded_into_one_line_or_indented_is_refused_without_quoting_it() {
        let folded = KEY.lines().collect::<Vec<_>>().join(" ");
        for pem in [
            folded.clone(),
            folded.replace("-----END PRIVATE KEY-----", "-----END PRIVATE KEY----"),
            KEY.replace("\n-----END", "\n  -----END"),
        ] {
            let m = SigningKey::from_pem(&pem).unwrap_err();
            assert!(m.contains("folded into one line"), "{m}");
            let body = KEY.lines().nth(1).unwrap();
            assert!(!m.contains(&body[..16]), "the key is never quoted: {m}");
            let as_bytes = format!("{:?}", &body.as_bytes()[..8]);
            assert!(!m.contains(as_bytes.trim_matches(['[', ']'])), "nor its bytes: {m}");
        }
    }

    #[test]
    fn an_rsa_only_reader_says_an_ec_key_is_not_rsa() {
        let ec = new_ec_pem(&ECDSA_P256_SHA256_FIXED_SIGNING);
        assert!(SigningKey::from_pem(&ec).is_ok());
        let m = SigningKey::from_rsa_pem(&ec).unwrap_err();
        assert!(m.contains("EC private key; an RSA key is needed"), "{m}");
        let m =
            SigningKey::from_rsa_pem("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----").unwrap_err();
        assert!(m.contains("not a usable RSA private key"), "{m}");
    }
}
