//! Building the import request(s) (`sync-semantics.md` §2).

use std::borrow::Cow;
use std::collections::HashSet;

use super::prepare::Prepared;
use crate::Error;
use crate::api::SyncOptions;
use crate::bitwarden::types::ExternalIds;
use crate::bitwarden::{ImportGroup, ImportMember, ImportRequest};

/// Objects per request when batching (`largeImport`), and the cloud's limit without it.
pub const BATCH_SIZE: usize = 2000;

/// The members and groups the directory yields, plus removal entries for members that left the
/// scope, as one request or, with `largeImport` and more than 2000 objects, as batches: members
/// first, then groups, 2000 per request. `held` are disabled users whose removal waits
/// (`removalGracePeriod`): left out of the request, or sent as active with `overwriteExisting`
/// (which removes whoever is missing).
pub fn build<'a>(
    prepared: &'a Prepared,
    out_of_scope: &[ImportMember<'a>],
    held: &HashSet<&str>,
    options: &SyncOptions,
) -> Result<Vec<ImportRequest<'a>>, Error> {
    // Built straight into the request(s): a directory's worth of members is never held twice.
    let members = || {
        prepared
            .users
            .iter()
            .filter_map(|u| {
                let deleted = if held.contains(u.external_id.as_str()) {
                    if !options.overwrite_existing {
                        return None;
                    }
                    false
                } else {
                    Prepared::sends_as_deleted(u, options.remove_disabled)
                };
                Some(ImportMember {
                    email: Cow::Borrowed(u.email.as_deref().unwrap_or_default()),
                    external_id: Cow::Borrowed(&u.external_id),
                    deleted,
                })
            })
            .chain(out_of_scope.iter().cloned())
    };
    let groups = || {
        prepared.groups.iter().map(|g| ImportGroup {
            name: Cow::Borrowed(&g.name),
            external_id: Cow::Borrowed(&g.external_id),
            member_external_ids: ExternalIds::Indexed {
                positions: &g.members,
                table: &prepared.member_ids,
            },
        })
    };
    let member_count = members().count();
    let group_count = prepared.groups.len();

    if !(options.large_import && member_count + group_count > BATCH_SIZE) {
        return Ok(vec![ImportRequest {
            groups: groups().collect(),
            members: members().collect(),
            overwrite_existing: options.overwrite_existing,
            large_import: options.large_import,
            invite_users_after_provisioning: options.invite_users,
        }]);
    }
    if options.overwrite_existing {
        return Err(Error::invalid(
            "spec.sync.overwriteExisting",
            format!(
                "cannot be combined with largeImport batching ({member_count} users and {group_count} groups, more \
                 than {BATCH_SIZE}): each batch would remove the members of the others. Turn overwriteExisting off \
                 (removeOutOfScope removes members that left the directory safely)",
            ),
        ));
    }
    let batch = |groups: Vec<ImportGroup<'a>>, members: Vec<ImportMember<'a>>| ImportRequest {
        groups,
        members,
        overwrite_existing: false,
        large_import: true,
        invite_users_after_provisioning: options.invite_users,
    };
    let mut requests = Vec::with_capacity(member_count.div_ceil(BATCH_SIZE) + group_count.div_ceil(BATCH_SIZE));
    let mut members = members();
    for _ in 0..member_count.div_ceil(BATCH_SIZE) {
        let mut chunk = Vec::with_capacity(BATCH_SIZE);
        chunk.extend(members.by_ref().take(BATCH_SIZE));
        requests.push(batch(Vec::new(), chunk));
    }
    let mut groups = groups();
    for _ in 0..group_count.div_ceil(BATCH_SIZE) {
        let mut chunk = Vec::with_capacity(BATCH_SIZE);
        chunk.extend(groups.by_ref().take(BATCH_SIZE));
        requests.push(batch(chunk, Vec::new()));
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::model::User;
    use crate::sync::prepare::FlatGroup;

    fn prepared(users: usize, groups: usize) -> Prepared {
        Prepared {
            users: (0..users)
                .map(|i| User {
                    external_id: format!("u{i:06}"),
                    email: Some(format!("u{i}@x.com")),
                    disabled: i % 10 == 1,
                    deleted: i % 10 == 2,
                })
                .collect(),
            groups: (0..groups)
                .map(|i| FlatGroup {
                    external_id: format!("g{i}"),
                    name: format!("G{i}"),
                    members: vec![i as u32],
                })
                .collect(),
            member_ids: (0..groups).map(|i| format!("u{i:06}")).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn one_request_carries_every_field_and_the_deleted_rule() {
        let mut options = SyncOptions {
            remove_disabled: true,
            ..Default::default()
        };
        let p = prepared(3, 1);
        let reqs = build(&p, &[], &HashSet::new(), &options).unwrap();
        assert_eq!(reqs.len(), 1);
        let json = serde_json::to_value(&reqs[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "groups": [{"name": "G0", "externalId": "g0", "memberExternalIds": ["u000000"]}],
                "members": [
                    {"email": "u0@x.com", "externalId": "u000000", "deleted": false},
                    {"email": "u1@x.com", "externalId": "u000001", "deleted": true},
                    {"email": "u2@x.com", "externalId": "u000002", "deleted": true}
                ],
                "overwriteExisting": false, "largeImport": false, "inviteUsersAfterProvisioning": true
            })
        );
        options.remove_disabled = false;
        let p = prepared(3, 0);
        let reqs = build(&p, &[], &HashSet::new(), &options).unwrap();
        let deleted: Vec<bool> = reqs[0].members.iter().map(|m| m.deleted).collect();
        assert_eq!(deleted, vec![false, false, true]);
        assert_eq!(reqs[0].groups, vec![]);
    }

    #[test]
    fn large_import_batches_users_then_groups_by_2000() {
        let options = SyncOptions {
            large_import: true,
            ..Default::default()
        };
        let p = prepared(4500, 2001);
        let reqs = build(&p, &[], &HashSet::new(), &options).unwrap();
        let shape: Vec<(usize, usize)> = reqs.iter().map(|r| (r.members.len(), r.groups.len())).collect();
        assert_eq!(shape, vec![(2000, 0), (2000, 0), (500, 0), (0, 2000), (0, 1)]);
        assert!(reqs.iter().all(|r| r.large_import && !r.overwrite_existing));
        // Order is kept: the batches concatenate to the single-request order.
        let ids: Vec<&str> = reqs
            .iter()
            .flat_map(|r| r.members.iter().map(|m| m.external_id.as_ref()))
            .collect();
        assert_eq!(ids.len(), 4500);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn users_and_groups_together_decide_the_batching() {
        let options = SyncOptions {
            large_import: true,
            ..Default::default()
        };
        // More groups than users: 10 + 2500 objects are batched.
        let p = prepared(10, 2500);
        let shape: Vec<(usize, usize)> = build(&p, &[], &HashSet::new(), &options)
            .unwrap()
            .iter()
            .map(|r| (r.members.len(), r.groups.len()))
            .collect();
        assert_eq!(shape, vec![(10, 0), (0, 2000), (0, 500)]);
        // 1500 + 1000: neither alone is over 2000, both together are.
        assert_eq!(
            build(&prepared(1500, 1000), &[], &HashSet::new(), &options)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn large_import_at_or_below_2000_objects_is_one_request() {
        let options = SyncOptions {
            large_import: true,
            ..Default::default()
        };
        let p = prepared(1999, 1);
        let reqs = build(&p, &[], &HashSet::new(), &options).unwrap();
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].large_import);
    }

    #[test]
    fn overwrite_existing_with_batching_is_an_invalid_spec() {
        let options = SyncOptions {
            large_import: true,
            overwrite_existing: true,
            ..Default::default()
        };
        let err = build(&prepared(2001, 0), &[], &HashSet::new(), &options).unwrap_err();
        assert!(matches!(err, Error::InvalidSpec(_)), "{err}");
        assert!(build(&prepared(10, 0), &[], &HashSet::new(), &options).is_ok());
    }

    #[test]
    fn without_large_import_big_directories_are_one_request_for_the_server_to_judge() {
        let p = prepared(2500, 0);
        let reqs = build(&p, &[], &HashSet::new(), &SyncOptions::default()).unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].members.len(), 2500);
    }

    #[test]
    fn out_of_scope_removals_are_appended_as_deleted_members() {
        let gone = ImportMember {
            email: "gone@x.com".into(),
            external_id: "old".into(),
            deleted: true,
        };
        let p = prepared(1, 0);
        let reqs = build(
            &p,
            std::slice::from_ref(&gone),
            &HashSet::new(),
            &SyncOptions::default(),
        )
        .unwrap();
        assert_eq!(reqs[0].members.last(), Some(&gone));
    }

    /// A removal held back by removalGracePeriod is not sent; with overwriteExisting (which
    /// removes everyone missing from the request) the member is sent as present instead.
    #[test]
    fn held_removals_are_left_out_or_kept_under_overwrite_existing() {
        let p = prepared(3, 0); // u000001 disabled, u000002 deleted
        let held: HashSet<&str> = ["u000001", "u000002"].into_iter().collect();
        let mut options = SyncOptions {
            remove_disabled: true,
            ..Default::default()
        };
        let sent = |options: &SyncOptions| -> Vec<(String, bool)> {
            build(&p, &[], &held, options).unwrap()[0]
                .members
                .iter()
                .map(|m| (m.external_id.to_string(), m.deleted))
                .collect()
        };
        assert_eq!(sent(&options), [("u000000".to_string(), false)]);
        options.overwrite_existing = true;
        assert_eq!(
            sent(&options),
            [
                ("u000000".to_string(), false),
                ("u000001".to_string(), false),
                ("u000002".to_string(), false)
            ]
        );
    }
}
