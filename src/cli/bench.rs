//! `dirsync bench`: the sync core on a synthetic directory (no I/O), with wall time per phase and
//! the process's peak RSS. A command, not a timed test: run it on a quiet machine.

use std::time::Instant;

use crate::api::SyncOptions;
use crate::sync::model::{Directory, Group, User};
use crate::sync::plan::{PlanInput, plan};
use crate::sync::prepare::{PrepareOptions, prepare};

/// A company of `users` people and `groups` groups nested as a tree (ten children per group),
/// each person a direct member of one leaf-ish group, 2% disabled and 1% deleted.
pub fn synthetic_directory(users: usize, groups: usize) -> Directory {
    let groups = groups.max(1);
    let users_v = (0..users)
        .map(|i| User {
            external_id: format!("cn=user{i:07},ou=people,dc=corp,dc=example"),
            email: Some(format!("user{i:07}@corp.example")),
            disabled: i % 50 == 7,
            deleted: i % 100 == 3,
        })
        .collect();
    let mut groups_v: Vec<Group> = (0..groups)
        .map(|g| Group {
            external_id: format!("cn=group{g:05},ou=groups,dc=corp,dc=example"),
            name: format!("Group {g}"),
            members: Vec::new(),
            children: (1..=10)
                .map(|k| g * 10 + k)
                .filter(|&c| c < groups)
                .map(|c| format!("cn=group{c:05},ou=groups,dc=corp,dc=example"))
                .collect(),
        })
        .collect();
    for i in 0..users {
        groups_v[i % groups]
            .members
            .push(format!("cn=user{i:07},ou=people,dc=corp,dc=example"));
    }
    Directory {
        users: users_v,
        groups: groups_v,
        complete: true,
        restrict_users_to_groups: false,
    }
}

/// A `/proc/<pid>/status` field in KiB (Linux), e.g. `VmRSS:` or `VmHWM:` (peak RSS); `pid` may be
/// `self`.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident set size of this process in KiB (Linux), if known.
pub fn peak_rss_kib() -> Option<u64> {
    proc_status_kib("self", "VmHWM:")
}

pub fn run(users: usize, groups: usize, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let t = Instant::now();
    let directory = synthetic_directory(users, groups);
    let generate = t.elapsed();

    let options = SyncOptions {
        large_import: true,
        ..Default::default()
    };
    let t = Instant::now();
    let prepared = prepare(
        directory,
        PrepareOptions {
            users: true,
            groups: true,
            remove_disabled: options.remove_disabled,
        },
    )
    .expect("synthetic directory has no duplicates");
    let prepare_time = t.elapsed();

    let t = Instant::now();
    let plan = plan(
        &prepared,
        &PlanInput {
            options: &options,
            api_url: "https://api.bitwarden.com",
            organization_id: "00000000-0000-0000-0000-000000000000",
            last_hash: None,
            last_active_users: None,
            members: None,
            groups: None,
            guard_override: None,
            grace: crate::sync::grace::GraceInput {
                period: None,
                now: jiff::Timestamp::now(),
                pending: &[],
            },
        },
    )
    .expect("plan");
    let plan_time = t.elapsed();

    let t = Instant::now();
    let bytes: usize = plan
        .requests
        .iter()
        .map(|r| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0))
        .sum();
    let serialise = t.elapsed();

    let memberships: usize = prepared.groups.iter().map(|g| g.members.len()).sum();
    writeln!(
        out,
        "directory: {users} users, {groups} nested groups ({memberships} flattened memberships)"
    )?;
    writeln!(
        out,
        "generate  {:>8.1} ms   (synthetic input, not part of a sync)",
        generate.as_secs_f64() * 1e3
    )?;
    writeln!(
        out,
        "prepare   {:>8.1} ms   (filters, duplicates, flattening)",
        prepare_time.as_secs_f64() * 1e3
    )?;
    writeln!(
        out,
        "plan      {:>8.1} ms   ({} request(s), hash, guard)",
        plan_time.as_secs_f64() * 1e3,
        plan.requests.len()
    )?;
    writeln!(
        out,
        "serialise {:>8.1} ms   ({:.1} MiB of JSON)",
        serialise.as_secs_f64() * 1e3,
        bytes as f64 / 1048576.0
    )?;
    writeln!(
        out,
        "total     {:>8.1} ms   (prepare + plan + serialise)",
        (prepare_time + plan_time + serialise).as_secs_f64() * 1e3
    )?;
    if let Some(kib) = peak_rss_kib() {
        writeln!(out, "peak RSS  {:>8.1} MiB", kib as f64 / 1024.0)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_directory_nests_every_group_under_the_root() {
        let d = synthetic_directory(1000, 111);
        let p = prepare(
            d,
            PrepareOptions {
                users: true,
                groups: true,
                remove_disabled: false,
            },
        )
        .unwrap();
        let root = p.groups.iter().find(|g| g.name == "Group 0").unwrap();
        assert_eq!(root.members.len(), 1000);
    }
}
