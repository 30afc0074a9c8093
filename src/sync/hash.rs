//! The skip-unchanged hash (`sync-semantics.md` §3): SHA-256 of the API URL, the organization id
//! and the request JSON, streamed into the hasher without building the JSON string.

use std::io::Write;

use sha2::{Digest, Sha256};

use crate::api::CollectionAccess;
use crate::bitwarden::ImportRequest;

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lower-case hex SHA-256. One request hashes as its JSON object; batches as a JSON array.
pub fn sync_hash(api_url: &str, organization_id: &str, requests: &[ImportRequest]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(api_url.as_bytes());
    hasher.update(organization_id.as_bytes());
    // serde_json writes token by token: buffer them so the hasher sees large blocks.
    let mut w = std::io::BufWriter::with_capacity(1 << 16, HashWriter(hasher));
    let result = match requests {
        [single] => serde_json::to_writer(&mut w, single),
        many => serde_json::to_writer(&mut w, many),
    };
    // Serialising plain structs of strings and bools into memory cannot fail.
    debug_assert!(result.is_ok());
    // into_inner flushes the buffer; writing into a hasher cannot fail.
    let hasher = match w.into_inner() {
        Ok(w) => w.0,
        Err(e) => e.into_inner().into_parts().0.0,
    };
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of `spec.collections` (`None` when it is empty): a change asks for a complete read.
pub fn collections_hash(entries: &[CollectionAccess]) -> Option<String> {
    if entries.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(entries).unwrap_or_default();
    Some(Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitwarden::ImportMember;

    #[test]
    fn the_collections_hash_follows_the_access_spec() {
        let entry = |read_only| CollectionAccess {
            external_id: Some("x".into()),
            groups: vec!["A".into()],
            read_only,
            ..Default::default()
        };
        assert_eq!(collections_hash(&[]), None);
        let a = collections_hash(&[entry(false)]);
        assert_eq!(a, collections_hash(&[entry(false)]));
        assert_ne!(a, collections_hash(&[entry(true)]));
    }

    fn request(email: &str) -> ImportRequest<'_> {
        ImportRequest {
            members: vec![ImportMember {
                email: email.into(),
                external_id: "u1".into(),
                deleted: false,
            }],
            invite_users_after_provisioning: true,
            ..Default::default()
        }
    }

    #[test]
    fn hash_is_sha256_of_url_org_and_json() {
        let req = request("a@x.com");
        let text = format!("https://api.bitwarden.comorg-1{}", serde_json::to_string(&req).unwrap());
        let want: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sync_hash("https://api.bitwarden.com", "org-1", &[req]), want);
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = sync_hash("https://api", "org", &[request("a@x.com")]);
        assert_eq!(base, sync_hash("https://api", "org", &[request("a@x.com")]));
        assert_ne!(base, sync_hash("https://api", "org", &[request("b@x.com")]));
        assert_ne!(base, sync_hash("https://api", "org-2", &[request("a@x.com")]));
        assert_ne!(base, sync_hash("https://api.eu", "org", &[request("a@x.com")]));
        assert_ne!(
            base,
            sync_hash("https://api", "org", &[request("a@x.com"), request("a@x.com")])
        );
    }
}
