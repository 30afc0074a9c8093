//! Active Directory specifics: GUID text form, `userAccountControl`, ranged attributes.

/// `ACCOUNTDISABLE` in `userAccountControl`.
const ACCOUNTDISABLE: u32 = 0x2;

/// The Show Deleted control (read tombstones in `CN=Deleted Objects`).
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// An `objectGUID` (16 bytes, little-endian first three fields) in Microsoft's text form,
/// lower-case: `3f2504e0-4f89-11d3-9a0c-0305e82c3301`.
pub fn guid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// Disabled when `userAccountControl` has bit 2 (ACCOUNTDISABLE). The value is a signed 32-bit
/// decimal in AD.
pub fn is_disabled(user_account_control: Option<&str>) -> bool {
    let Some(v) = user_account_control.map(str::trim) else {
        return false;
    };
    let bits = v
        .parse::<i64>()
        .ok()
        .map(|n| n as u32)
        .or_else(|| v.parse::<u64>().ok().map(|n| n as u32));
    bits.is_some_and(|n| n & ACCOUNTDISABLE != 0)
}

/// A ranged attribute description such as `member;range=0-1499` or `member;range=1500-*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub low: u64,
    /// `None` for `*`: the last range.
    pub high: Option<u64>,
}

/// If `description` is `<attribute>;range=<low>-<high>` (options in any case and order), the
/// range. `None` for the plain attribute or another attribute.
pub fn parse_range(description: &str, attribute: &str) -> Option<Range> {
    let mut parts = description.split(';');
    if !parts.next()?.eq_ignore_ascii_case(attribute) {
        return None;
    }
    for option in parts {
        let Some((key, value)) = option.split_once('=') else {
            continue;
        };
        if !key.eq_ignore_ascii_case("range") {
            continue;
        }
        let (low, high) = value.split_once('-')?;
        let low = low.trim().parse().ok()?;
        let high = match high.trim() {
            "*" => None,
            h => Some(h.parse().ok()?),
        };
        return Some(Range { low, high });
    }
    None
}

/// The attribute description that asks for the values after `range`.
pub fn next_range_request(attribute: &str, range: Range) -> Option<String> {
    let high = range.high?;
    Some(format!("{attribute};range={}-*", high + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_is_byte_swapped_and_lower_case() {
        let bytes = [
            0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01,
        ];
        assert_eq!(guid_text(&bytes).unwrap(), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
        assert_eq!(guid_text(&bytes[..15]), None);
    }

    #[test]
    fn disabled_bit() {
        assert!(!is_disabled(None));
        assert!(!is_disabled(Some("512")));
        assert!(is_disabled(Some("514")));
        assert!(is_disabled(Some("66050")));
        assert!(!is_disabled(Some("66048")));
        assert!(is_disabled(Some("-2147483646")));
        assert!(!is_disabled(Some("junk")));
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("member;range=0-1499", "member"),
            Some(Range {
                low: 0,
                high: Some(1499)
            })
        );
        assert_eq!(
            parse_range("Member;Range=1500-*", "member"),
            Some(Range { low: 1500, high: None })
        );
        assert_eq!(parse_range("member", "member"), None);
        assert_eq!(parse_range("memberOf;range=0-10", "member"), None);
        assert_eq!(parse_range("member;range=x-1", "member"), None);
        assert_eq!(
            next_range_request(
                "member",
                Range {
                    low: 0,
                    high: Some(1499)
                }
            )
            .as_deref(),
            Some("member;range=1500-*")
        );
        assert_eq!(next_range_request("member", Range { low: 1500, high: None }), None);
    }
}
