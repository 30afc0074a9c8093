//! Tier 2 (feature `test-servers`): the LDAP source and the `dirsync` command against real
//! directory servers the tests start themselves, OpenLDAP slapd and a Samba AD DC. A server that
//! cannot start fails its test (install them with `scripts/ci-install-ldap.sh`).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod samba;
mod slapd;
