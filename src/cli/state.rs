//! `--state FILE`: what the status keeps in a cluster (hash, cursor, last counts, last success),
//! kept between CLI runs so skip-unchanged, incremental reads and the guard work from cron too.

use std::path::Path;

use crate::engine::SyncState;

pub fn load(path: &Path) -> Result<SyncState, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "state file {} is not valid ({e}); delete it to start afresh",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SyncState::default()),
        Err(e) => Err(format!("cannot read state file {}: {e}", path.display())),
    }
}

/// Writes atomically (temporary file, then rename), so a crash never leaves half a state.
pub fn save(path: &Path, state: &SyncState) -> Result<(), String> {
    let text = serde_json::to_string_pretty(state).expect("state serialises");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write state file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_a_missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        assert_eq!(load(&path).unwrap(), SyncState::default());
        let mut state = SyncState {
            sync_hash: Some("abc".into()),
            last_active_users: Some(3),
            ..Default::default()
        };
        state.cursor.insert("k".into(), "v".into());
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path).unwrap_err().contains("delete it"));
    }
}
