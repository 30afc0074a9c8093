//! The client assertion of an Okta service app (`private_key_jwt`): a JWT signed with the app's
//! private key (RS256 for RSA, ES256 for EC P-256; see [`crate::net::jwt`]), which Okta checks
//! against the public key registered with the app.

use jiff::Timestamp;
use jsonwebtoken::Header;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use crate::net::jwt::{self, SigningKey};

/// How long an assertion is valid: Okta accepts at most an hour; it is used at once.
pub const ASSERTION_LIFETIME_SECS: i64 = 300;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A client assertion for `client_id` at the token endpoint `audience`, signed with `key` (and
/// naming it `key_id` when set), valid from `now` for [`ASSERTION_LIFETIME_SECS`], with a fresh
/// `jti`.
pub fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
    key_id: Option<&str>,
    now: Timestamp,
) -> Result<String, String> {
    let mut nonce = [0u8; 16];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| "no random numbers for the assertion's jti")?;
    let mut header = Header::new(key.algorithm());
    header.kid = key_id.map(str::to_string);
    let iat = now.as_second();
    let claims = Claims {
        iss: client_id,
        sub: client_id,
        aud: audience,
        iat,
        exp: iat + ASSERTION_LIFETIME_SECS,
        jti: nonce.iter().map(|b| format!("{b:02x}")).collect(),
    };
    jwt::sign(&header, &claims, key).map_err(|e| format!("the key could not sign the assertion ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use jsonwebtoken::Algorithm;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_2048_8192_SHA256,
        UnparsedPublicKey,
    };
    use serde_json::json;

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
        let jwt = client_assertion(&key, "0oa1", aud, Some("k1"), now).unwrap();
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
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .expect("a valid signature");
        let again = client_assertion(&key, "0oa1", aud, None, now).unwrap();
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
        assert_eq!(key.algorithm(), Algorithm::RS256);
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(doc.as_ref())
        );
        let key = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        let jwt = client_assertion(&key, "0oa1", "aud", None, Timestamp::now()).unwrap();
        assert_eq!(decode(jwt.split('.').next().unwrap())["alg"], "ES256");
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key())
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
