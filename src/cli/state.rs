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

/// Fails unless [`save`] can write `path`: its directory exists and takes a new file (tried
/// for real, as permission bits do not tell the whole story: read-only mounts, ACLs, root), and
/// the path is not a directory. Run before anything is sent.
pub fn check_writable(path: &Path) -> Result<(), String> {
    let fail = |why: String| format!("cannot write the state file {}: {why}", path.display());
    if path.is_dir() {
        return Err(fail("it is a directory".into()));
    }
    let dir = directory(path);
    if !dir.is_dir() {
        return Err(fail(format!("the directory {} does not exist", dir.display())));
    }
    let probe = temporary(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes atomically (a temporary file in the same directory, flushed, then renamed over the
/// state file), so a crash never leaves half a state.
pub fn save(path: &Path, state: &SyncState) -> Result<(), String> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(state).expect("state serialises") + "\n";
    let tmp = temporary(path);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write the state file {}: {e}", path.display())
    })
}

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.<name>.<pid>.tmp` beside the state file (never the state file itself, whatever its name).
fn temporary(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    directory(path).join(format!(".{name}.{}.tmp", std::process::id()))
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
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["s.json"], "no temporary file is left behind");
    }

    #[test]
    fn an_unwritable_state_path_is_found_before_the_sync() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("state.json");
        check_writable(&ok).unwrap();
        assert!(!ok.exists(), "the check leaves nothing behind");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("no/such/dir/state.json");
        assert_eq!(
            check_writable(&missing).unwrap_err(),
            format!(
                "cannot write the state file {}: the directory {} does not exist",
                missing.display(),
                dir.path().join("no/such/dir").display()
            )
        );
        assert!(check_writable(dir.path()).unwrap_err().ends_with("it is a directory"));
        check_writable(Path::new("relative.json")).unwrap();
    }
}
