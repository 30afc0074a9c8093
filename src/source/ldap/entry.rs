//! A search result entry read where it lies: the decoded message's bytes are looked at in place
//! or moved out, never copied into a map of strings (ldap3's `SearchEntry` builds one per entry,
//! which was a third of the read's time).

use ldap3::ResultEntry;
use ldap3::asn1::{PL, StructureTag};

use crate::Error;

/// The values of one attribute as text, or `None` when one of them is not UTF-8 (binary).
pub fn text_values<'v>(values: impl Iterator<Item = &'v [u8]> + Clone) -> Option<impl Iterator<Item = &'v str>> {
    values
        .clone()
        .all(|v| std::str::from_utf8(v).is_ok())
        .then(|| values.filter_map(|v| std::str::from_utf8(v).ok()))
}

/// `SearchResultEntry ::= [APPLICATION 4] SEQUENCE { objectName, attributes }` (RFC 4511 4.5.2).
pub struct Entry {
    dn: Vec<u8>,
    /// `PartialAttribute ::= SEQUENCE { type, vals SET OF value }`, as decoded.
    attributes: Vec<StructureTag>,
}

fn primitive(tag: &StructureTag) -> Option<&[u8]> {
    match &tag.payload {
        PL::P(bytes) => Some(bytes),
        PL::C(_) => None,
    }
}

fn constructed(tag: &StructureTag) -> Option<&[StructureTag]> {
    match &tag.payload {
        PL::C(tags) => Some(tags),
        PL::P(_) => None,
    }
}

impl Entry {
    /// The entry of a search result message, or an error for a message that is not one.
    pub fn new(entry: ResultEntry) -> Result<Entry, Error> {
        let malformed = || Error::SourceUnavailable("the LDAP server sent a malformed search result entry".into());
        let PL::C(mut parts) = entry.0.payload else {
            return Err(malformed());
        };
        if parts.len() != 2 {
            return Err(malformed());
        }
        let attributes = match parts.pop().map(|t| t.payload) {
            Some(PL::C(attributes)) => attributes,
            _ => return Err(malformed()),
        };
        let dn = match parts.pop().map(|t| t.payload) {
            Some(PL::P(dn)) => dn,
            _ => return Err(malformed()),
        };
        let well_formed = attributes.iter().all(|a| {
            constructed(a).is_some_and(|parts| {
                parts.len() == 2
                    && primitive(&parts[0]).is_some()
                    && constructed(&parts[1]).is_some_and(|vals| vals.iter().all(|v| primitive(v).is_some()))
            })
        });
        if !well_formed {
            return Err(malformed());
        }
        Ok(Entry { dn, attributes })
    }

    pub fn dn(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.dn)
    }

    /// The DN, moved out of the entry.
    pub fn take_dn(&mut self) -> String {
        match String::from_utf8(std::mem::take(&mut self.dn)) {
            Ok(dn) => dn,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Each attribute: its description (e.g. `member;range=0-1499`) and its values.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &[u8]> + Clone)> {
        self.attributes.iter().filter_map(|a| {
            let parts = constructed(a)?;
            let name = std::str::from_utf8(primitive(&parts[0])?).ok()?;
            let values = constructed(&parts[1])?.iter().filter_map(primitive);
            Some((name, values))
        })
    }

    /// The values of attribute `name` (any case) as bytes.
    fn raw_values<'e, 'n>(&'e self, name: &'n str) -> impl Iterator<Item = &'e [u8]> + use<'e, 'n> {
        self.attributes()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, values)| values)
    }

    /// The text values of attribute `name` (any case). An attribute with a value that is not
    /// UTF-8 is binary and has no text values.
    pub fn values<'e, 'n>(&'e self, name: &'n str) -> impl Iterator<Item = &'e str> + use<'e, 'n> {
        self.attributes()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, values)| text_values(values).into_iter().flatten())
    }

    /// The first non-blank text value of `name`, trimmed.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name).map(str::trim).find(|v| !v.is_empty())
    }

    /// The first value of `name` as bytes: the first binary value when it has any, else the
    /// first value.
    pub fn first_bytes(&self, name: &str) -> Option<&[u8]> {
        self.raw_values(name)
            .find(|v| std::str::from_utf8(v).is_err())
            .or_else(|| self.raw_values(name).next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::TagClass;

    fn p(bytes: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id: 4,
            payload: PL::P(bytes.to_vec()),
        }
    }

    fn c(id: u64, tags: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::C(tags),
        }
    }

    fn entry(dn: &str, attrs: &[(&str, &[&[u8]])]) -> ResultEntry {
        let attrs = attrs
            .iter()
            .map(|(name, values)| {
                c(
                    16,
                    vec![p(name.as_bytes()), c(17, values.iter().map(|v| p(v)).collect())],
                )
            })
            .collect();
        ResultEntry::new(StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::C(vec![p(dn.as_bytes()), c(16, attrs)]),
        })
    }

    #[test]
    fn values_are_found_in_any_case_and_binary_ones_are_not_text() {
        let guid: &[u8] = &[0xff, 0x00, 0x41];
        let mut e = Entry::new(entry(
            "uid=a,dc=x",
            &[
                ("mail", &[b"  ", b" A@x.com "]),
                ("objectGUID", &[b"text", guid]),
                ("uid", &[b"a", b"b"]),
            ],
        ))
        .unwrap();
        assert_eq!(e.dn(), "uid=a,dc=x");
        assert_eq!(e.first("MAIL"), Some("A@x.com"));
        assert_eq!(e.values("objectguid").count(), 0);
        assert_eq!(e.first_bytes("objectGUID"), Some(guid));
        assert_eq!(e.first_bytes("uid"), Some(&b"a"[..]));
        assert_eq!(e.first("cn"), None);
        assert_eq!(e.values("UID").collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(e.take_dn(), "uid=a,dc=x");
    }

    #[test]
    fn a_malformed_entry_is_an_error_not_a_panic() {
        let bad = ResultEntry::new(StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::C(vec![p(b"dc=x")]),
        });
        assert!(matches!(Entry::new(bad), Err(Error::SourceUnavailable(_))));
        let bad_attr = ResultEntry::new(StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::C(vec![p(b"dc=x"), c(16, vec![p(b"mail")])]),
        });
        assert!(Entry::new(bad_attr).is_err());
    }
}
