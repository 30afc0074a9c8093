//! Secret values and where they come from (Kubernetes Secrets in the controller, manifest files
//! in the CLI). A [`SecretValue`] never prints its content: not in `Debug`, not in `Display`.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::Error;

/// A secret string. Read it with [`SecretValue::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl From<&str> for SecretValue {
    fn from(s: &str) -> Self {
        SecretValue(s.to_string())
    }
}

/// Reads keys of Secrets in the resource's namespace.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The value of `key` in Secret `name`: `SecretNotFound` or `SecretKeyMissing` otherwise.
    async fn get(&self, name: &str, key: &str) -> Result<SecretValue, Error>;

    /// Like [`SecretStore::get`], but `None` when the Secret exists and the key does not.
    async fn get_optional(&self, name: &str, key: &str) -> Result<Option<SecretValue>, Error> {
        match self.get(name, key).await {
            Ok(v) => Ok(Some(v)),
            Err(Error::SecretKeyMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A short-lived token of ServiceAccount `service_account` in the resource's namespace, for
    /// `audience` (the TokenRequest API). Only the controller can request one: every other store
    /// answers `InvalidSpec` (path `serviceAccountName`) saying so.
    async fn service_account_token(&self, service_account: &str, audience: &str) -> Result<SecretValue, Error> {
        let _ = audience;
        Err(Error::invalid(
            "serviceAccountName",
            format!(
                "only the controller in a cluster can request a token for ServiceAccount {service_account:?}; \
                 outside a cluster use a token file instead (federatedTokenFile)"
            ),
        ))
    }
}

/// The value of `key` in one Secret's data (`None`: the Secret does not exist), read the same way
/// by every [`SecretStore`]: `SecretNotFound`, `SecretKeyMissing`, or text. An empty (or blank)
/// value is refused (`InvalidSpec`): sent on, it fails late and obscurely, and an empty LDAP
/// password even turns a simple bind into an anonymous one on many servers.
pub fn value_in(
    namespace: &str,
    name: &str,
    key: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) -> Result<SecretValue, Error> {
    let data = data.ok_or_else(|| Error::SecretNotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })?;
    let bytes = data.get(key).ok_or_else(|| Error::SecretKeyMissing {
        name: name.to_string(),
        key: key.to_string(),
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        Error::invalid(
            &format!("Secret {name:?} key {key:?}"),
            "the value is not UTF-8 text: store the value as text",
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::invalid(
            &format!("Secret {name:?} key {key:?}"),
            "the value is empty: put the value in the Secret",
        ));
    }
    Ok(SecretValue::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_the_same_way_by_every_store() {
        let data = BTreeMap::from([
            ("ok".to_string(), b"s3cr3t".to_vec()),
            ("bin".to_string(), vec![0xff, 0xfe]),
            ("empty".to_string(), Vec::new()),
            ("blank".to_string(), b" \n".to_vec()),
        ]);
        assert_eq!(value_in("ns", "s", "ok", Some(&data)).unwrap().expose(), "s3cr3t");
        assert!(matches!(
            value_in("ns", "s", "nope", Some(&data)),
            Err(Error::SecretKeyMissing { .. })
        ));
        assert!(matches!(
            value_in("ns", "s", "ok", None),
            Err(Error::SecretNotFound { .. })
        ));
        assert!(matches!(
            value_in("ns", "s", "bin", Some(&data)),
            Err(Error::InvalidSpec(_))
        ));
        for key in ["empty", "blank"] {
            let err = value_in("ns", "s", key, Some(&data)).unwrap_err();
            assert!(matches!(err, Error::InvalidSpec(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("invalid spec: Secret \"s\" key {key:?}: the value is empty: put the value in the Secret")
            );
        }
        assert_eq!(format!("{:?}", SecretValue::new("s3cr3t")), "SecretValue(<redacted>)");
    }
}
