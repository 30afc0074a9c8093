//! Distinguished-name comparison per RFC 4514 (**beyond** the reference, which compares DN
//! strings exactly): attribute types and values compared case-insensitively, spaces around `=`,
//! `,` and `+` ignored, escapes (`\,`, `\2C`, UTF-8 `\C3\A4`) normalised, and the AVAs of a
//! multi-valued RDN compared in any order.

/// A DN in canonical form, usable as a map key. Two DNs that name the same entry (up to the
/// case-insensitive matching rules that directories use for naming attributes in practice)
/// have equal keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnKey(String);

impl DnKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses `text` as a DN. `None` when it is not one (e.g. a `memberUid` value such as
/// `alice`, or the empty DN).
pub fn normalize(text: &str) -> Option<DnKey> {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out).then_some(DnKey(out))
}

/// [`normalize`] into `out` (cleared first), without allocating when `out` is large enough: the
/// reader normalises every user DN and every member value. False when `text` is not a DN.
pub fn normalize_into(text: &str, out: &mut String) -> bool {
    out.clear();
    match normalize_simple(text.as_bytes(), out) {
        Some(done) => done,
        None => {
            out.clear();
            normalize_general(text, out)
        }
    }
}

/// The common case in one pass: ASCII values, one attribute per RDN, no quoting and no
/// `#hex` values. `Some(false)`: not a DN; `None`: something else (multi-valued RDN, quotes,
/// `#`, non-ASCII), left to [`normalize_general`], which gives the same answer for everything
/// this accepts.
fn normalize_simple(bytes: &[u8], out: &mut String) -> Option<bool> {
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    if i == bytes.len() {
        return Some(false);
    }
    loop {
        // attribute type
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            match bytes[i] {
                b',' | b'+' | b'\\' => return Some(false),
                b'"' => return None,
                _ => i += 1,
            }
        }
        if i == bytes.len() {
            return Some(false);
        }
        let mut end = i;
        while end > start && bytes[end - 1] == b' ' {
            end -= 1;
        }
        let attr = &bytes[start..end];
        if attr.is_empty()
            || !attr
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Some(false);
        }
        let attr = match attr.get(..4) {
            Some(p) if p.eq_ignore_ascii_case(b"oid.") => &attr[4..],
            _ => attr,
        };
        if !out.is_empty() {
            out.push(',');
        }
        out.extend(attr.iter().map(|b| b.to_ascii_lowercase() as char));
        out.push('=');
        i += 1; // '='
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        // attribute value
        if i < bytes.len() && matches!(bytes[i], b'#' | b'"') {
            return None;
        }
        // The value goes straight into `out`, lower-cased; escaping is added afterwards in the
        // rare case that it needs any.
        let start = out.len();
        let mut trailing_unescaped_spaces = 0usize;
        while i < bytes.len() && !matches!(bytes[i], b',' | b'+' | b';') {
            let b = if bytes[i] == b'\\' {
                let (b, n) = unescape(bytes, i)?;
                i += n;
                trailing_unescaped_spaces = 0;
                b
            } else {
                let b = bytes[i];
                if b == b'"' {
                    return Some(false);
                }
                trailing_unescaped_spaces = if b == b' ' { trailing_unescaped_spaces + 1 } else { 0 };
                i += 1;
                b
            };
            if !b.is_ascii() {
                return None;
            }
            out.push(b.to_ascii_lowercase() as char);
        }
        out.truncate(out.len() - trailing_unescaped_spaces);
        let n = out.len() - start;
        if out.as_bytes()[start..]
            .iter()
            .enumerate()
            .any(|(k, &b)| needs_escape(b as char, k, n))
        {
            let raw = out.split_off(start);
            for (k, c) in raw.chars().enumerate() {
                if needs_escape(c, k, n) {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        match bytes.get(i) {
            None => return Some(true),
            Some(b',' | b';') => i += 1,
            // '+': a multi-valued RDN, whose parts are sorted.
            Some(_) => return None,
        }
    }
}

fn normalize_general(text: &str, out: &mut String) -> bool {
    let Some(rdns) = parse(text) else {
        return false;
    };
    for (i, mut rdn) in rdns.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        rdn.sort();
        for (j, (attr, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(attr);
            out.push('=');
            escape_into(out, value);
        }
    }
    true
}

/// True when `a` and `b` are DNs that name the same entry.
pub fn same(a: &str, b: &str) -> bool {
    match (normalize(a), normalize(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

type Rdn = Vec<(String, String)>;

fn parse(text: &str) -> Option<Vec<Rdn>> {
    let bytes = text.as_bytes();
    let mut rdns = Vec::new();
    let mut rdn: Rdn = Vec::new();
    let mut i = 0;
    let skip_spaces = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i] == b' ' {
            *i += 1;
        }
    };
    skip_spaces(&mut i);
    if i == bytes.len() {
        return None;
    }
    loop {
        // attribute type
        skip_spaces(&mut i);
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            if matches!(bytes[i], b',' | b'+' | b'\\' | b'"') {
                return None;
            }
            i += 1;
        }
        if i == bytes.len() {
            return None;
        }
        let attr = text[start..i].trim_end_matches(' ');
        if attr.is_empty()
            || !attr
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        let mut attr = attr.to_ascii_lowercase();
        if let Some(oid) = attr.strip_prefix("oid.") {
            attr = oid.to_string();
        }
        i += 1; // '='
        skip_spaces(&mut i);
        // attribute value
        let mut value: Vec<u8> = Vec::new();
        let mut trailing_unescaped_spaces = 0usize;
        if i < bytes.len() && bytes[i] == b'#' {
            // BER-encoded value in hex: keep the hex string, lower-cased.
            let start = i;
            while i < bytes.len() && !matches!(bytes[i], b',' | b'+' | b';' | b' ') {
                i += 1;
            }
            value.extend(text[start..i].to_ascii_lowercase().bytes());
            skip_spaces(&mut i);
        } else if i < bytes.len() && bytes[i] == b'"' {
            // Quoted value (RFC 2253 legacy).
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let (b, n) = unescape(bytes, i)?;
                        value.push(b);
                        i += n;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
            skip_spaces(&mut i);
        } else {
            while i < bytes.len() && !matches!(bytes[i], b',' | b'+' | b';') {
                if bytes[i] == b'\\' {
                    let (b, n) = unescape(bytes, i)?;
                    value.push(b);
                    i += n;
                    trailing_unescaped_spaces = 0;
                } else {
                    if bytes[i] == b'"' {
                        return None;
                    }
                    if bytes[i] == b' ' {
                        trailing_unescaped_spaces += 1;
                    } else {
                        trailing_unescaped_spaces = 0;
                    }
                    value.push(bytes[i]);
                    i += 1;
                }
            }
            value.truncate(value.len() - trailing_unescaped_spaces);
        }
        let value = String::from_utf8_lossy(&value).to_lowercase();
        rdn.push((attr, value));
        match bytes.get(i) {
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
            Some(b'+') => {}
            Some(b',' | b';') => rdns.push(std::mem::take(&mut rdn)),
            Some(_) => return None,
        }
        i += 1;
    }
}

/// Unescapes `\XX` (hex) or `\c` (a special character) at `i`; returns the byte and the length.
fn unescape(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let c = *bytes.get(i + 1)?;
    if c.is_ascii_hexdigit() {
        let d = *bytes.get(i + 2)?;
        let hex = [c, d];
        let s = std::str::from_utf8(&hex).ok()?;
        return Some((u8::from_str_radix(s, 16).ok()?, 3));
    }
    Some((c, 2))
}

fn escape_into(out: &mut String, value: &str) {
    let n = value.chars().count();
    for (k, c) in value.chars().enumerate() {
        if needs_escape(c, k, n) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Whether the `k`th of `n` characters of a value is escaped in the canonical form.
fn needs_escape(c: char, k: usize, n: usize) -> bool {
    matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
        || (k == 0 && (c == '#' || c == ' '))
        || (k + 1 == n && c == ' ')
        || c == '\0'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_dns() {
        let cases = [
            (
                "cn=Alice,ou=People,dc=example,dc=com",
                "CN=alice,OU=people,DC=Example,DC=COM",
            ),
            (
                "cn=Alice, ou=People, dc=example, dc=com",
                "cn=Alice,ou=People,dc=example,dc=com",
            ),
            ("cn = Alice , ou = People", "cn=Alice,ou=People"),
            ("cn=Smith\\, John,dc=x", "cn=Smith\\2C John,dc=x"),
            ("cn=Smith\\, John,dc=x", "CN=\"Smith, John\",DC=x"),
            ("cn=J\\C3\\A4ger,dc=x", "cn=jäger,dc=x"),
            ("cn=JÄGER,dc=x", "cn=jäger,dc=x"),
            ("cn=a+uid=b,dc=x", "UID=b + CN=a,dc=x"),
            ("cn=a;dc=x", "cn=a,dc=x"),
            ("OID.2.5.4.3=a,dc=x", "2.5.4.3=A,dc=x"),
            ("cn=a\\ ,dc=x", "cn=a\\20,dc=x"),
            ("  cn=a,dc=x  ", "cn=a,dc=x"),
        ];
        for (a, b) in cases {
            assert!(
                same(a, b),
                "{a:?} should equal {b:?}: {:?} vs {:?}",
                normalize(a),
                normalize(b)
            );
        }
    }

    #[test]
    fn different_dns() {
        let cases = [
            ("cn=Alice,dc=x", "cn=Alice2,dc=x"),
            ("cn=a,dc=x", "cn=a,dc=x,dc=y"),
            ("cn=a\\ ,dc=x", "cn=a,dc=x"),
            ("cn=a\\,b,dc=x", "cn=a,cn=b,dc=x"),
            ("cn=a,dc=x", "uid=a,dc=x"),
        ];
        for (a, b) in cases {
            assert!(!same(a, b), "{a:?} should differ from {b:?}");
        }
    }

    #[test]
    fn values_that_are_not_dns() {
        for v in [
            "alice",
            "",
            "   ",
            "alice smith",
            "=x",
            "cn=a,",
            "cn=\"open",
            "a,b=c",
            "ab\\=c",
        ] {
            assert_eq!(normalize(v), None, "{v:?}");
        }
    }

    /// The one-pass path gives exactly what the general parser gives, on DNs built from the
    /// pieces that make parsing hard.
    #[test]
    fn the_fast_path_agrees_with_the_general_parser() {
        const ATTRS: &[&str] = &["cn", "CN", " uid ", "OID.2.5.4.3", "2.5.4.3", "c n", "", "ou"];
        const VALUE: &[&str] = &[
            "a", "Bob", "Smith", " ", "  ", "\\,", "\\2C", "\\2c", "\\C3\\A4", "\\ ", "\\20", "\\00", "\\#", "\\\\",
            "\\=", "#", "#04", "\"", "\"a, b\"", "ä", "Ä", "<", ">", "=", "\\zz", "\\4", "-", ".", "\0",
        ];
        const SEPARATORS: &[&str] = &[",", ", ", " , ", ";", "+", " + "];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut fast, mut general) = (String::new(), String::new());
        for _ in 0..200_000 {
            let mut text = String::new();
            for rdn in 0..1 + next(4) {
                if rdn > 0 {
                    text += SEPARATORS[next(SEPARATORS.len())];
                }
                text += ATTRS[next(ATTRS.len())];
                text += if next(20) == 0 { "" } else { "=" };
                for _ in 0..next(4) {
                    text += VALUE[next(VALUE.len())];
                }
            }
            let a = normalize_into(&text, &mut fast);
            general.clear();
            let b = normalize_general(&text, &mut general);
            assert_eq!(a.then_some(&fast), b.then_some(&general), "{text:?}");
        }
    }

    #[test]
    fn canonical_form_escapes_specials() {
        assert_eq!(
            normalize("CN=Smith\\, John ,DC=X").unwrap().as_str(),
            "cn=smith\\, john,dc=x"
        );
        assert_eq!(normalize("cn=\\#1,dc=x").unwrap().as_str(), "cn=\\#1,dc=x");
        assert_eq!(normalize("cn=#04024869,dc=x").unwrap().as_str(), "cn=\\#04024869,dc=x");
    }
}
