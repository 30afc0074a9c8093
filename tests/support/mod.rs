pub mod slapd;
