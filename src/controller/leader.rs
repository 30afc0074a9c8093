//! Leader election with a `coordination.k8s.io/v1` Lease (get, create, update only): the holder
//! renews every [`RENEW_EVERY`]; a candidate takes the lease over when it has not been renewed for
//! [`LEASE_DURATION`] (by its renewTime, or by what this process observed, whichever says so
//! first); releasing clears the holder so a standby takes over at once.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;

use crate::metrics;

pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// A leader that could not renew for this long stops reconciling.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The last (holder, renewTime) seen and when this process first saw it.
    observed: Option<(String, Instant)>,
}

/// Whether a lease held by someone else may be taken over.
pub fn expired(
    renew_time: Option<Timestamp>,
    duration: Duration,
    now: Timestamp,
    observed_for: Option<Duration>,
) -> bool {
    let by_clock = match renew_time {
        None => true,
        Some(t) => t
            .checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::ZERO))
            .map(|until| until < now)
            .unwrap_or(true),
    };
    by_clock || observed_for.is_some_and(|d| d > duration)
}

impl Elector {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            observed: None,
        }
    }

    fn spec(&self, now: Timestamp, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(acquire.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round: create, renew or take over the lease. `Ok(true)` while this process holds it.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == self.identity {
            self.spec(now, spec.acquire_time.clone(), transitions)
        } else {
            let record = format!("{holder}/{:?}", spec.renew_time.as_ref().map(|t| t.0));
            let observed_for = match &self.observed {
                Some((r, at)) if *r == record => Some(at.elapsed()),
                _ => {
                    self.observed = Some((record, Instant::now()));
                    Some(Duration::ZERO)
                }
            };
            let duration = spec
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(LEASE_DURATION);
            let free = holder.is_empty() || expired(spec.renew_time.as_ref().map(|t| t.0), duration, now, observed_for);
            if !free {
                return Ok(false);
            }
            tracing::info!(previous = %holder, "taking over the leader lease");
            self.spec(now, None, transitions + 1)
        };
        lease.spec = Some(new_spec);
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (only if this process holds it).
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now() - SignedDuration::from_secs(60)));
        self.api.replace(&self.name, &PostParams::default(), &lease).await?;
        Ok(())
    }

    /// Campaigns and renews until `stop` turns true; publishes leadership on `leader`; releases
    /// the lease at the end.
    pub async fn run(mut self, leader: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let mut last_renew: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let is_leader = match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renew = Some(Instant::now());
                    true
                }
                Ok(false) => {
                    last_renew = None;
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the leader lease");
                    last_renew.is_some_and(|t| t.elapsed() < RENEW_DEADLINE)
                }
            };
            if *leader.borrow() != is_leader {
                tracing::info!(identity = %self.identity, leader = is_leader, "leadership changed");
                metrics::set_leader(is_leader);
                let _ = leader.send(is_leader);
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "cannot release the leader lease");
        } else {
            tracing::info!("released the leader lease");
        }
        metrics::set_leader(false);
        let _ = leader.send(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry() {
        let now: Timestamp = "2025-01-01T10:00:20Z".parse().unwrap();
        let renewed = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        assert!(!expired(
            renewed("2025-01-01T10:00:10Z"),
            LEASE_DURATION,
            now,
            Some(Duration::ZERO)
        ));
        assert!(expired(
            renewed("2025-01-01T10:00:04Z"),
            LEASE_DURATION,
            now,
            Some(Duration::ZERO)
        ));
        // A holder whose clock runs ahead is caught by what this process observed.
        assert!(expired(
            renewed("2025-01-01T11:00:00Z"),
            LEASE_DURATION,
            now,
            Some(Duration::from_secs(16))
        ));
        assert!(expired(None, LEASE_DURATION, now, None));
    }
}
