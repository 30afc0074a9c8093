//! The client assertion of an Okta service app (`private_key_jwt`): a JWT signed with the app's
//! private key, which Okta checks against the public key registered with the app.
//!
//! Signed with `ring` (already in the tree through rustls): a JWT is three base64url parts, so a
//! JWT crate would add dependencies for a few lines.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

/// How long an assertion is valid: Okta accepts at most an hour; it is used at once.
pub const ASSERTION_LIFETIME_SECS: i64 = 300;

/// The app's private key: RSA signs RS256, EC P-256 signs ES256.
#[derive(Debug)]
pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, RSA or P-256) or PKCS#1 (`BEGIN RSA
    /// PRIVATE KEY`). The error says what to change (never the key itself).
    pub fn from_pem(text: &str) -> Result<SigningKey, String> {
        let text = text.trim();
        if text.starts_with('{') {
            return Err(
                "holds a JWK, not a PEM key: put the PEM form of the private key in the Secret \
                        (Okta's console shows both when it generates a key)"
                    .into(),
            );
        }
        let Some((label, der)) = pem_block(text) else {
            return Err("is not a PEM private key (-----BEGIN PRIVATE KEY----- ...)".into());
        };
        let rng = SystemRandom::new();
        match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der)
                .map(SigningKey::Rsa)
                .or_else(|_| EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).map(SigningKey::Ec))
                .map_err(|e| format!("is not an RSA (2048 bits or more) or EC P-256 private key that can sign ({e})")),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(SigningKey::Rsa)
                .map_err(|e| format!("is not an RSA private key of 2048 bits or more ({e})")),
            "ENCRYPTED PRIVATE KEY" => Err("is encrypted: store the key without a passphrase \
                                            (openssl pkcs8 -topk8 -nocrypt)"
                .into()),
            "EC PRIVATE KEY" => Err("is in SEC1 form: convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)".into()),
            other => Err(format!("holds a PEM {other:?}, not a private key")),
        }
    }

    /// The JWS algorithm of the key.
    pub fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RS256",
            SigningKey::Ec(_) => "ES256",
        }
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid from `now`
    /// for [`ASSERTION_LIFETIME_SECS`], with a fresh `jti`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        key_id: Option<&str>,
        now: Timestamp,
    ) -> Result<String, String> {
        let rng = SystemRandom::new();
        let mut nonce = [0u8; 16];
        rng.fill(&mut nonce)
            .map_err(|_| "no random numbers for the assertion's jti")?;
        let jti: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let mut header = json!({"alg": self.algorithm(), "typ": "JWT"});
        if let Some(kid) = key_id {
            header["kid"] = json!(kid);
        }
        let iat = now.as_second();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_SECS,
            "jti": jti,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.sign(signing_input.as_bytes(), &rng)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    fn sign(&self, message: &[u8], rng: &SystemRandom) -> Result<Vec<u8>, String> {
        match self {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, rng, message, &mut signature)
                    .map_err(|_| "the RSA key could not sign the assertion")?;
                Ok(signature)
            }
            SigningKey::Ec(key) => key
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "the EC key could not sign the assertion".into()),
        }
    }
}

/// The label and the decoded bytes of the first PEM block.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(body).ok()?;
    Some((label.to_string(), der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const RSA_PKCS8: &str = include_str!("../../../tests/support/okta-keys/app.pem");
    const RSA_PKCS1: &str = include_str!("../../../tests/support/okta-keys/app-pkcs1.pem");

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn an_rsa_assertion_is_an_rs256_jwt_with_okta_s_claims() {
        let key = SigningKey::from_pem(RSA_PKCS8).unwrap();
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let aud = "https://corp.okta.com/oauth2/v1/token";
        let jwt = key.assertion("0oa1", aud, Some("k1"), now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let claims = decode(parts[1]);
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("0oa1"), Some("0oa1"))
        );
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_300);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        let SigningKey::Rsa(pair) = &key else {
            panic!("an RSA key")
        };
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .expect("a valid signature");
        let again = key.assertion("0oa1", aud, None, now).unwrap();
        assert_ne!(
            decode(again.split('.').nth(1).unwrap())["jti"],
            claims["jti"],
            "a fresh jti"
        );
        assert_eq!(decode(again.split('.').next().unwrap()).get("kid"), None);
    }

    #[test]
    fn pkcs1_rsa_and_pkcs8_ec_keys_sign_too() {
        let key = SigningKey::from_pem(RSA_PKCS1).unwrap();
        assert_eq!(key.algorithm(), "RS256");
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(doc.as_ref())
        );
        let key = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(key.algorithm(), "ES256");
        let jwt = key.assertion("0oa1", "aud", None, Timestamp::now()).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let SigningKey::Ec(pair) = &key else {
            panic!("an EC key")
        };
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .expect("a valid ES256 signature");
    }

    #[test]
    fn keys_that_cannot_sign_say_what_to_change() {
        let err = |pem: &str| SigningKey::from_pem(pem).unwrap_err();
        assert!(err(r#"{"kty":"RSA","d":"..."}"#).contains("JWK"));
        assert!(err("hello").contains("not a PEM private key"));
        assert!(
            err("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----")
                .contains("encrypted")
        );
        assert!(err("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").contains("CERTIFICATE"));
        assert!(
            err("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").contains("RSA (2048 bits or more)")
        );
    }
}
