//! Tier 2 (feature `test-servers`): the controller as a process against a real kube-apiserver
//! (started once for this binary by `scripts/kube-env.sh`, or `$KUBECONFIG`), a real slapd and
//! the Bitwarden double: the flows a user sees, and the failures.

#[path = "../support/mod.rs"]
mod support;

mod collections;
mod entra_federation;
mod failures;
mod flows;
