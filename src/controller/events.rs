//! Events (operations.md): a Normal `Synced` event only when something was sent (an import, or
//! collection access), with counts; a
//! Warning event with the reason and message of every failure; nothing for an unchanged sync.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::Error;
use crate::api::{DirectorySync, Reason};
use crate::engine::Outcome;

/// The event one sync attempt deserves, if any: (type, reason, note).
pub fn event_for(result: &Result<Outcome, Error>) -> Option<(EventType, Reason, String)> {
    match result {
        Ok(o) if o.reason == Reason::Synced && (!o.sent.is_empty() || o.changes.collections_updated > 0) => Some((
            EventType::Normal,
            Reason::Synced,
            format!(
                "{} ({} users, {} groups in the directory)",
                o.change_note(),
                o.users.enabled,
                o.groups
            ),
        )),
        Ok(_) => None,
        Err(e) => Some((EventType::Warning, e.reason(), e.to_string())),
    }
}

/// Publishes the event of an attempt; failures to publish are logged, never fatal.
pub async fn publish(recorder: &Recorder, ds: &DirectorySync, result: &Result<Outcome, Error>) {
    let Some((type_, reason, note)) = event_for(result) else {
        return;
    };
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let event = Event {
        type_,
        reason: reason.as_str().to_string(),
        note: Some(note),
        action: "Sync".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &ds.object_ref(&())).await {
        tracing::warn!(error = %e, "cannot publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_unless_something_changed_or_failed() {
        let err: Result<Outcome, Error> = Err(Error::BitwardenAuthFailed("the API key was rejected: fix it".into()));
        let (t, r, note) = event_for(&err).unwrap();
        assert_eq!(t, EventType::Warning);
        assert_eq!(r, Reason::BitwardenAuthFailed);
        assert!(note.contains("fix it"));
    }
}
