pub mod samba;
pub mod slapd;
