//! `spec.collections` as data: from the collections and groups the organization has now, the
//! synced groups and the access this DirectorySync gave before, the complete group list each
//! collection should have, and whether it must be written.
//!
//! The rules:
//! - A spec entry's group names are looked up among the synced groups (all of them after a
//!   complete read; after an incremental read, the changed ones, then the names this
//!   DirectorySync used before). A name that matches exactly one synced group gives it access
//!   with the entry's flags.
//! - This DirectorySync owns only the access it gave (remembered in `granted`) and the access
//!   the spec asks for. Every other entry of a collection's list (groups added by hand, groups
//!   it does not sync) is written back exactly as it was.
//! - Access is taken away only when the spec stops asking for it: an entry or a name removed, or
//!   a name that now means another synced group. A name that no longer matches a synced group (a
//!   rename in the directory, a group out of scope) keeps the access given under it, with a
//!   warning: a directory change never silently takes passwords away from people.
//! - A collection is written only when its list differs, with its current `externalId` and no
//!   duplicate id.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::api::{CollectionAccess, CollectionState, CollectionStatus, GrantedGroup, describe_flags};
use crate::bitwarden::{AccessEntry, CollectionUpdate, OrgCollection, OrgGroup};
use crate::sync::prepare::FlatGroup;

/// What the access plan is made from.
#[derive(Clone, Copy, Debug)]
pub struct AccessInput<'a> {
    pub entries: &'a [CollectionAccess],
    /// The synced groups of this read (all of them when `complete`, else the changed ones).
    pub synced: &'a [FlatGroup],
    pub complete: bool,
    /// What the last sync recorded (`status.collections`).
    pub previous: &'a [CollectionStatus],
    /// The organization's collections and groups, as read now.
    pub collections: &'a [OrgCollection],
    pub groups: &'a [OrgGroup],
}

/// One collection to handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: Option<String>,
    pub external_id: Option<String>,
    pub action: Action,
    /// The access this DirectorySync has given once `action` is done.
    pub granted: Vec<GrantedGroup>,
    /// The access it had given before: what it still owns if the write is not made.
    pub granted_before: Vec<GrantedGroup>,
    /// What the write changes, in words.
    pub changes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write this complete list.
    Write(CollectionUpdate),
    /// The collection already holds what the spec asks for.
    InPlace,
    NotFound(String),
    /// Cannot be handled as written (the message says why).
    Failed(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPlan {
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
}

impl Item {
    /// The status of this item once handled: `state`, a message, and what it has granted.
    pub fn status(
        &self,
        state: CollectionState,
        message: Option<String>,
        granted: Vec<GrantedGroup>,
    ) -> CollectionStatus {
        CollectionStatus {
            id: self.id.clone(),
            external_id: self.external_id.clone(),
            groups: granted.len() as u64,
            state,
            message,
            granted,
        }
    }
}

/// The access plan: one item per spec entry, and one per collection where this DirectorySync
/// still has access to remove.
pub fn plan(input: &AccessInput) -> AccessPlan {
    let mut out = AccessPlan::default();
    let names = group_names(input.groups);
    let by_ext: HashMap<&str, &OrgGroup> = input
        .groups
        .iter()
        .filter_map(|g| g.external_id.as_deref().filter(|e| !e.is_empty()).map(|e| (e, g)))
        .collect();
    let mut claimed: HashMap<String, usize> = HashMap::new();

    for (i, entry) in input.entries.iter().enumerate() {
        let label = entry.label();
        let collection = match find(input.collections, entry) {
            Ok(c) => c,
            Err(missing) => {
                // The collection this entry named last time may still be there (its externalId
                // changed, or another collection took the same one): the spec still lists the
                // entry, so the access given there stays, remembered.
                let prev = find_previous(input.previous, entry.id.as_deref(), entry.external_id.as_deref());
                let still_there = prev
                    .and_then(|p| p.id.as_deref())
                    .filter(|id| input.collections.iter().any(|c| c.id.eq_ignore_ascii_case(id)));
                if let Some(id) = still_there {
                    claimed.insert(id.to_ascii_lowercase(), i);
                }
                let kept = match (still_there, prev) {
                    (Some(_), Some(p)) => p.granted.clone(),
                    _ => Vec::new(),
                };
                let action = match missing {
                    Missing::None => Action::NotFound(format!(
                        "no collection {label} in the organization (deleted? another organization's?): \
                         nothing to give access to"
                    )),
                    Missing::Ambiguous(n) => Action::Failed(format!(
                        "{n} collections have externalId {:?}: name the collection by its id instead",
                        entry.external_id.as_deref().unwrap_or_default()
                    )),
                };
                out.items.push(Item {
                    id: entry.id.clone().or_else(|| still_there.map(str::to_string)),
                    external_id: entry.external_id.clone(),
                    action,
                    granted: kept.clone(),
                    granted_before: kept,
                    changes: None,
                });
                continue;
            }
        };
        let key = collection.id.to_ascii_lowercase();
        if let Some(first) = claimed.get(&key) {
            // The first entry handles the collection (and remembers its access).
            out.items.push(Item {
                id: Some(collection.id.clone()),
                external_id: collection.external_id.clone(),
                action: Action::Failed(format!(
                    "the same collection as spec.collections[{first}] (once by id, once by externalId): \
                     list each collection once"
                )),
                granted: Vec::new(),
                granted_before: Vec::new(),
                changes: None,
            });
            continue;
        }
        let before = previous_of(input.previous, Some(&collection.id), None);
        claimed.insert(key, i);
        let desired = resolve(entry, input, &before, &label, &mut out.warnings);
        let mut granted = Vec::new();
        let mut wanted: Vec<AccessEntry> = Vec::new();
        for g in &desired {
            match by_ext.get(g.external_id.as_str()) {
                Some(group) => {
                    granted.push(g.clone());
                    wanted.push(AccessEntry {
                        id: group.id.clone(),
                        read_only: entry.read_only,
                        hide_passwords: entry.hide_passwords,
                        manage: entry.manage,
                    });
                }
                None => out.warnings.push(format!(
                    "collection {label}: synced group {:?} is not in the organization yet, so it gets no access \
                     now (the import creates it; a dry run sends no import)",
                    g.name
                )),
            }
        }
        let owned = owned_ids(&wanted, &before, &by_ext);
        out.items
            .push(item(collection, wanted, &owned, granted, before, &names));
    }

    // Collections the spec no longer lists: remove the access this DirectorySync gave there.
    for prev in input.previous.iter().filter(|p| !p.granted.is_empty()) {
        let Some(id) = prev.id.as_deref() else { continue };
        if claimed.contains_key(&id.to_ascii_lowercase()) {
            continue;
        }
        // Gone from the organization: nothing left to remove.
        let Some(collection) = input.collections.iter().find(|c| c.id.eq_ignore_ascii_case(id)) else {
            continue;
        };
        let owned = owned_ids(&[], &prev.granted, &by_ext);
        let removal = item(collection, Vec::new(), &owned, Vec::new(), prev.granted.clone(), &names);
        if removal.action != Action::InPlace {
            out.items.push(removal);
        }
    }
    out
}

/// Every spec entry (and every collection still holding access this DirectorySync gave) left as
/// it is, in `state` with `message`: the server has no collections API, or it could not be read.
pub fn untouched(
    entries: &[CollectionAccess],
    previous: &[CollectionStatus],
    state: CollectionState,
    message: &str,
) -> Vec<CollectionStatus> {
    let mut out: Vec<CollectionStatus> = entries
        .iter()
        .map(|e| {
            let prev = find_previous(previous, e.id.as_deref(), e.external_id.as_deref());
            let granted = prev.map(|p| p.granted.clone()).unwrap_or_default();
            CollectionStatus {
                id: e.id.clone().or_else(|| prev.and_then(|p| p.id.clone())),
                external_id: e
                    .external_id
                    .clone()
                    .or_else(|| prev.and_then(|p| p.external_id.clone())),
                groups: granted.len() as u64,
                state,
                message: Some(message.to_string()),
                granted,
            }
        })
        .collect();
    let extra: Vec<CollectionStatus> = previous
        .iter()
        .filter(|p| !p.granted.is_empty() && !out.iter().any(|o| same_id(o.id.as_deref(), p.id.as_deref())))
        .map(|p| CollectionStatus {
            state,
            message: Some(message.to_string()),
            ..p.clone()
        })
        .collect();
    out.extend(extra);
    out
}

/// What `dirsync test` can say without reading Bitwarden: which groups each entry asks for.
pub fn requested(entries: &[CollectionAccess], previous: &[CollectionStatus]) -> Vec<CollectionStatus> {
    entries
        .iter()
        .map(|e| {
            let prev = find_previous(previous, e.id.as_deref(), e.external_id.as_deref());
            let granted = prev.map(|p| p.granted.clone()).unwrap_or_default();
            CollectionStatus {
                id: e.id.clone(),
                external_id: e.external_id.clone(),
                groups: granted.len() as u64,
                state: CollectionState::Pending,
                message: Some(format!(
                    "{} would get access ({}); dirsync test reads nothing from Bitwarden, so whether the \
                     collection exists and what else would change is not checked",
                    dedup(&e.groups).join(", "),
                    e.flags()
                )),
                granted,
            }
        })
        .collect()
}

enum Missing {
    None,
    Ambiguous(usize),
}

fn find<'c>(collections: &'c [OrgCollection], entry: &CollectionAccess) -> Result<&'c OrgCollection, Missing> {
    if let Some(id) = &entry.id {
        return collections
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id.trim()))
            .ok_or(Missing::None);
    }
    let ext = entry.external_id.as_deref().unwrap_or_default();
    let found: Vec<&OrgCollection> = collections
        .iter()
        .filter(|c| c.external_id.as_deref() == Some(ext))
        .collect();
    match found.as_slice() {
        [] => Err(Missing::None),
        [one] => Ok(one),
        many => Err(Missing::Ambiguous(many.len())),
    }
}

fn find_previous<'p>(
    previous: &'p [CollectionStatus],
    id: Option<&str>,
    external_id: Option<&str>,
) -> Option<&'p CollectionStatus> {
    previous.iter().find(|p| match (id, external_id) {
        (Some(id), _) => same_id(p.id.as_deref(), Some(id)),
        (None, Some(ext)) => p.external_id.as_deref() == Some(ext),
        (None, None) => false,
    })
}

fn same_id(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.trim().eq_ignore_ascii_case(b.trim()))
}

fn previous_of(previous: &[CollectionStatus], id: Option<&str>, external_id: Option<&str>) -> Vec<GrantedGroup> {
    find_previous(previous, id, external_id)
        .map(|p| p.granted.clone())
        .unwrap_or_default()
}

fn dedup(names: &[String]) -> Vec<&str> {
    let mut seen = HashSet::new();
    names.iter().map(|n| n.as_str()).filter(|n| seen.insert(*n)).collect()
}

/// The synced groups an entry gives access to (name as the spec writes it, external id).
fn resolve(
    entry: &CollectionAccess,
    input: &AccessInput,
    before: &[GrantedGroup],
    label: &str,
    warnings: &mut Vec<String>,
) -> Vec<GrantedGroup> {
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut name_of: HashMap<&str, &str> = HashMap::new();
    for g in input.synced {
        let ids = by_name.entry(g.name.as_str()).or_default();
        if !ids.contains(&g.external_id.as_str()) {
            ids.push(&g.external_id);
        }
        name_of.insert(&g.external_id, &g.name);
    }
    let mut desired: Vec<GrantedGroup> = Vec::new();
    for name in dedup(&entry.groups) {
        let matches = by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        if let [one] = matches {
            desired.push(GrantedGroup {
                name: name.to_string(),
                external_id: one.to_string(),
            });
            continue;
        }
        // Not exactly one synced group by that name: the access given under it stays.
        let kept: Vec<&GrantedGroup> = before.iter().filter(|g| g.name == name).collect();
        desired.extend(kept.iter().map(|g| (*g).clone()));
        let renamed = kept
            .iter()
            .find_map(|g| name_of.get(g.external_id.as_str()).filter(|now| **now != name));
        let keeps = if kept.is_empty() {
            String::new()
        } else {
            "; the access it was given before stays until spec.collections drops the name".to_string()
        };
        if matches.len() > 1 {
            warnings.push(format!(
                "collection {label}: {} synced groups are named {name:?}, so none of them gets access{keeps}; \
                 rename one of them in the directory",
                matches.len()
            ));
        } else if let Some(now) = renamed {
            warnings.push(format!(
                "collection {label}: group {name:?} is now named {now:?} in the directory; it keeps the access \
                 given under its old name: write the new name into spec.collections"
            ));
        } else if kept.is_empty() {
            warnings.push(format!(
                "collection {label}: group {name:?} is not among the synced groups, so it gets no access \
                 (names are matched exactly as synced)"
            ));
        } else if input.complete {
            warnings.push(format!(
                "collection {label}: group {name:?} is no longer among the synced groups{keeps}"
            ));
        }
    }
    let mut seen = HashSet::new();
    desired.retain(|g| seen.insert(g.external_id.clone()));
    desired
}

/// The Bitwarden group ids whose entries this DirectorySync decides: what it asks for now and
/// what it gave before.
fn owned_ids(wanted: &[AccessEntry], before: &[GrantedGroup], by_ext: &HashMap<&str, &OrgGroup>) -> HashSet<String> {
    wanted
        .iter()
        .map(|w| w.id.to_ascii_lowercase())
        .chain(
            before
                .iter()
                .filter_map(|g| by_ext.get(g.external_id.as_str()))
                .map(|g| g.id.to_ascii_lowercase()),
        )
        .collect()
}

/// The collection's new list (every entry it does not own as it was, then what it asks for) and
/// whether it must be written.
fn item(
    collection: &OrgCollection,
    wanted: Vec<AccessEntry>,
    owned: &HashSet<String>,
    granted: Vec<GrantedGroup>,
    granted_before: Vec<GrantedGroup>,
    names: &HashMap<String, &str>,
) -> Item {
    let mut list: Vec<AccessEntry> = Vec::new();
    let mut ids = HashSet::new();
    let kept = collection
        .groups
        .iter()
        .filter(|e| !owned.contains(&e.id.to_ascii_lowercase()));
    for entry in kept.chain(wanted.iter()) {
        // Never the same id twice (Bitwarden fails the whole write with a 500).
        if ids.insert(entry.id.to_ascii_lowercase()) {
            list.push(entry.clone());
        }
    }
    let (action, changes) = if same_list(&collection.groups, &list) {
        (Action::InPlace, None)
    } else {
        let changes = describe_changes(&collection.groups, &list, names);
        (
            Action::Write(CollectionUpdate {
                external_id: collection.external_id.clone(),
                groups: list,
            }),
            Some(changes),
        )
    };
    Item {
        id: Some(collection.id.clone()),
        external_id: collection.external_id.clone(),
        action,
        granted,
        granted_before,
        changes,
    }
}

type Flags = (bool, bool, bool);

/// Whether two access lists give the same groups the same flags, in any order.
pub fn same_list(a: &[AccessEntry], b: &[AccessEntry]) -> bool {
    flags_by_id(a) == flags_by_id(b)
}

fn flags_by_id(list: &[AccessEntry]) -> BTreeMap<String, Flags> {
    list.iter()
        .map(|e| (e.id.to_ascii_lowercase(), (e.read_only, e.hide_passwords, e.manage)))
        .collect()
}

fn group_names(groups: &[OrgGroup]) -> HashMap<String, &str> {
    groups
        .iter()
        .map(|g| (g.id.to_ascii_lowercase(), g.name.as_str()))
        .collect()
}

/// `Engineering gets access (readOnly); SRE changes from readOnly to manage; Sales loses access`,
/// in the order of the lists.
fn describe_changes(before: &[AccessEntry], after: &[AccessEntry], names: &HashMap<String, &str>) -> String {
    let name = |id: &str| {
        names
            .get(id)
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("group {id}"))
    };
    let flags = |e: &AccessEntry| describe_flags(e.read_only, e.hide_passwords, e.manage);
    let find = |list: &'_ [AccessEntry], id: &str| -> Option<AccessEntry> {
        list.iter().find(|e| e.id.eq_ignore_ascii_case(id)).cloned()
    };
    let mut parts = Vec::new();
    for e in after {
        let id = e.id.to_ascii_lowercase();
        match find(before, &id) {
            None => parts.push(format!("{} gets access ({})", name(&id), flags(e))),
            Some(old) if flags(&old) != flags(e) => {
                parts.push(format!("{} changes from {} to {}", name(&id), flags(&old), flags(e)))
            }
            Some(_) => {}
        }
    }
    for e in before.iter().filter(|e| find(after, &e.id).is_none()) {
        parts.push(format!("{} loses access", name(&e.id.to_ascii_lowercase())));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLL: &str = "c0000000-0000-4000-8000-000000000001";
    const OTHER: &str = "c0000000-0000-4000-8000-000000000002";

    fn synced(list: &[(&str, &str)]) -> Vec<FlatGroup> {
        list.iter()
            .map(|(ext, name)| FlatGroup {
                external_id: ext.to_string(),
                name: name.to_string(),
                members: vec![],
            })
            .collect()
    }

    /// Bitwarden groups: synced ones (with external ids) and manual ones (without).
    fn org_groups() -> Vec<OrgGroup> {
        let g = |id: &str, name: &str, ext: Option<&str>| OrgGroup {
            id: id.into(),
            name: name.into(),
            external_id: ext.map(str::to_string),
        };
        vec![
            g("b-eng", "Engineering", Some("g-eng")),
            g("b-sre", "SRE", Some("g-sre")),
            g("b-sales", "Sales", Some("g-sales")),
            g("b-audit", "Auditors", None),
        ]
    }

    fn access(id: &str, read_only: bool, manage: bool) -> AccessEntry {
        AccessEntry {
            id: id.into(),
            read_only,
            hide_passwords: false,
            manage,
        }
    }

    fn collection(id: &str, ext: Option<&str>, groups: Vec<AccessEntry>) -> OrgCollection {
        OrgCollection {
            id: id.into(),
            external_id: ext.map(str::to_string),
            groups,
        }
    }

    fn entry(groups: &[&str], read_only: bool) -> CollectionAccess {
        CollectionAccess {
            id: Some(COLL.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            read_only,
            ..Default::default()
        }
    }

    fn granted(list: &[(&str, &str)]) -> Vec<GrantedGroup> {
        list.iter()
            .map(|(name, ext)| GrantedGroup {
                name: name.to_string(),
                external_id: ext.to_string(),
            })
            .collect()
    }

    fn previous(id: &str, list: &[(&str, &str)]) -> CollectionStatus {
        CollectionStatus {
            id: Some(id.into()),
            groups: list.len() as u64,
            granted: granted(list),
            ..Default::default()
        }
    }

    struct Case {
        entries: Vec<CollectionAccess>,
        synced: Vec<FlatGroup>,
        complete: bool,
        previous: Vec<CollectionStatus>,
        collections: Vec<OrgCollection>,
    }

    impl Case {
        fn new(entries: Vec<CollectionAccess>, current: Vec<AccessEntry>) -> Case {
            Case {
                entries,
                synced: synced(&[("g-eng", "Engineering"), ("g-sre", "SRE"), ("g-sales", "Sales")]),
                complete: true,
                previous: Vec::new(),
                collections: vec![collection(COLL, Some("shared-ext"), current)],
            }
        }

        fn plan(&self) -> AccessPlan {
            plan(&AccessInput {
                entries: &self.entries,
                synced: &self.synced,
                complete: self.complete,
                previous: &self.previous,
                collections: &self.collections,
                groups: &org_groups(),
            })
        }
    }

    fn written(item: &Item) -> Vec<AccessEntry> {
        match &item.action {
            Action::Write(u) => u.groups.clone(),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn access_is_granted_with_the_flags_and_manual_groups_are_kept_exactly() {
        let manual = access("b-audit", false, true);
        let case = Case::new(vec![entry(&["Engineering"], true)], vec![manual.clone()]);
        let plan = case.plan();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        let item = &plan.items[0];
        assert_eq!(written(item), vec![manual, access("b-eng", true, false)]);
        // The current externalId is always sent back (an omitted one would be erased).
        let Action::Write(update) = &item.action else {
            unreachable!()
        };
        assert_eq!(update.external_id.as_deref(), Some("shared-ext"));
        assert_eq!(item.granted, granted(&[("Engineering", "g-eng")]));
        assert_eq!(item.changes.as_deref(), Some("Engineering gets access (readOnly)"));
    }

    #[test]
    fn a_collection_that_already_holds_the_access_is_not_written() {
        let mut case = Case::new(
            vec![entry(&["Engineering"], true)],
            vec![access("b-audit", false, true), access("b-eng", true, false)],
        );
        assert_eq!(case.plan().items[0].action, Action::InPlace);
        // Also when it was given by hand first: it is taken over.
        assert_eq!(case.plan().items[0].granted, granted(&[("Engineering", "g-eng")]));
        // The order of the list does not matter.
        case.collections[0].groups.reverse();
        assert_eq!(case.plan().items[0].action, Action::InPlace);
    }

    #[test]
    fn changed_flags_and_removed_names_are_written_but_only_for_owned_groups() {
        let mut case = Case::new(
            vec![entry(&["Engineering"], false)],
            vec![
                access("b-eng", true, false),
                access("b-sre", true, false), // given by this DirectorySync, no longer listed
                access("b-sales", true, false), // a synced group given access by hand: not ours
                access("b-audit", false, true),
            ],
        );
        case.previous = vec![previous(COLL, &[("Engineering", "g-eng"), ("SRE", "g-sre")])];
        let item = &case.plan().items[0];
        assert_eq!(
            written(item),
            vec![
                access("b-sales", true, false),
                access("b-audit", false, true),
                access("b-eng", false, false)
            ]
        );
        assert_eq!(
            item.changes.as_deref(),
            Some("Engineering changes from readOnly to edit; SRE loses access")
        );
        assert_eq!(item.granted_before.len(), 2);
    }

    #[test]
    fn a_collection_dropped_from_the_spec_loses_only_the_access_this_sync_gave() {
        let mut case = Case::new(
            vec![],
            vec![access("b-eng", true, false), access("b-audit", false, true)],
        );
        case.previous = vec![previous(COLL, &[("Engineering", "g-eng")])];
        let plan = case.plan();
        assert_eq!(plan.items.len(), 1);
        assert_eq!(written(&plan.items[0]), vec![access("b-audit", false, true)]);
        assert!(plan.items[0].granted.is_empty());
        // Already gone (removed by hand, or the collection was deleted): nothing to do.
        case.collections[0].groups = vec![access("b-audit", false, true)];
        assert!(case.plan().items.is_empty());
        case.collections.clear();
        assert!(case.plan().items.is_empty());
    }

    #[test]
    fn a_renamed_group_keeps_its_access_and_is_reported() {
        let mut case = Case::new(vec![entry(&["Engineering"], true)], vec![access("b-eng", true, false)]);
        case.previous = vec![previous(COLL, &[("Engineering", "g-eng")])];
        case.synced = synced(&[("g-eng", "Platform"), ("g-sre", "SRE")]);
        let plan = case.plan();
        assert_eq!(plan.items[0].action, Action::InPlace);
        assert_eq!(plan.items[0].granted, granted(&[("Engineering", "g-eng")]));
        assert_eq!(plan.warnings.len(), 1);
        assert!(
            plan.warnings[0].contains("now named \"Platform\""),
            "{:?}",
            plan.warnings
        );
        // Once the spec says the new name, the same group keeps its access, remembered by it.
        case.entries = vec![entry(&["Platform"], true)];
        let plan = case.plan();
        assert_eq!(plan.items[0].action, Action::InPlace);
        assert_eq!(plan.items[0].granted, granted(&[("Platform", "g-eng")]));
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn a_name_that_now_means_another_group_moves_the_access() {
        let mut case = Case::new(vec![entry(&["Engineering"], true)], vec![access("b-eng", true, false)]);
        case.previous = vec![previous(COLL, &[("Engineering", "g-eng")])];
        case.synced = synced(&[("g-eng", "Old Engineering"), ("g-sre", "Engineering")]);
        let item = &case.plan().items[0];
        assert_eq!(written(item), vec![access("b-sre", true, false)]);
        assert_eq!(item.granted, granted(&[("Engineering", "g-sre")]));
    }

    #[test]
    fn unknown_and_ambiguous_names_are_warnings_not_errors() {
        let mut case = Case::new(vec![entry(&["Marketing", "Engineering"], true)], vec![]);
        case.synced = synced(&[("g-eng", "Engineering"), ("g-x", "Marketing"), ("g-y", "Marketing")]);
        let plan = case.plan();
        assert_eq!(written(&plan.items[0]), vec![access("b-eng", true, false)]);
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.warnings[0].contains("2 synced groups are named \"Marketing\""));
        case.synced = synced(&[("g-eng", "Engineering")]);
        let plan = case.plan();
        assert!(plan.warnings[0].contains("\"Marketing\" is not among the synced groups"));
    }

    #[test]
    fn after_an_incremental_read_unchanged_groups_keep_their_access_silently() {
        let mut case = Case::new(vec![entry(&["Engineering"], true)], vec![access("b-eng", true, false)]);
        case.previous = vec![previous(COLL, &[("Engineering", "g-eng")])];
        case.complete = false;
        case.synced = synced(&[("g-sales", "Sales")]);
        let plan = case.plan();
        assert_eq!(plan.items[0].action, Action::InPlace);
        assert_eq!(plan.items[0].granted, granted(&[("Engineering", "g-eng")]));
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        // The same on a complete read is a warning: the group left the synced groups.
        case.complete = true;
        assert!(case.plan().warnings[0].contains("no longer among the synced groups"));
    }

    #[test]
    fn collections_by_external_id_missing_ambiguous_or_listed_twice() {
        let by_ext = |ext: &str| CollectionAccess {
            external_id: Some(ext.into()),
            groups: vec!["SRE".into()],
            ..Default::default()
        };
        let mut case = Case::new(
            vec![by_ext("shared-ext"), entry(&["Engineering"], false), by_ext("nope")],
            vec![],
        );
        case.collections.push(collection(OTHER, Some("twin"), vec![]));
        case.collections
            .push(collection("c0000000-0000-4000-8000-000000000003", Some("twin"), vec![]));
        case.entries.push(by_ext("twin"));
        let plan = case.plan();
        assert_eq!(written(&plan.items[0]), vec![access("b-sre", false, false)]);
        assert!(matches!(&plan.items[1].action, Action::Failed(m) if m.contains("spec.collections[0]")));
        assert!(matches!(&plan.items[2].action, Action::NotFound(m) if m.contains("externalId nope")));
        assert!(matches!(&plan.items[3].action, Action::Failed(m) if m.contains("2 collections have externalId")));
    }

    #[test]
    fn access_stays_where_an_entry_pointed_when_its_external_id_no_longer_finds_one_collection() {
        let by_ext = CollectionAccess {
            external_id: Some("shared-ext".into()),
            groups: vec!["Engineering".into()],
            ..Default::default()
        };
        let mut case = Case::new(vec![by_ext], vec![access("b-eng", false, false)]);
        case.previous = vec![CollectionStatus {
            external_id: Some("shared-ext".into()),
            ..previous(COLL, &[("Engineering", "g-eng")])
        }];
        // Someone changed the collection's externalId by hand.
        case.collections[0].external_id = Some("renamed".into());
        let plan = case.plan();
        assert_eq!(plan.items.len(), 1, "no removal: {:?}", plan.items);
        assert!(matches!(plan.items[0].action, Action::NotFound(_)));
        assert_eq!(plan.items[0].granted, granted(&[("Engineering", "g-eng")]));
        // Or another collection got the same externalId.
        case.collections[0].external_id = Some("shared-ext".into());
        case.collections.push(collection(OTHER, Some("shared-ext"), vec![]));
        let plan = case.plan();
        assert_eq!(plan.items.len(), 1, "no removal: {:?}", plan.items);
        assert!(matches!(plan.items[0].action, Action::Failed(_)));
        assert_eq!(plan.items[0].granted.len(), 1);
    }

    #[test]
    fn a_deleted_collection_is_not_found_and_forgets_nothing_else() {
        let mut case = Case::new(vec![entry(&["Engineering"], true)], vec![]);
        case.collections = vec![collection(OTHER, None, vec![])];
        let plan = case.plan();
        assert!(matches!(&plan.items[0].action, Action::NotFound(_)));
        assert!(plan.items[0].granted.is_empty());
    }

    #[test]
    fn groups_not_created_yet_get_access_later_and_duplicates_are_never_sent() {
        let mut case = Case::new(vec![entry(&["Engineering", "New", "Engineering"], true)], vec![]);
        case.synced.push(FlatGroup {
            external_id: "g-new".into(),
            name: "New".into(),
            members: vec![],
        });
        let plan = case.plan();
        assert_eq!(written(&plan.items[0]), vec![access("b-eng", true, false)]);
        assert!(plan.warnings[0].contains("not in the organization yet"));
        assert_eq!(plan.items[0].granted, granted(&[("Engineering", "g-eng")]));
    }

    #[test]
    fn an_unsupported_server_leaves_everything_as_it_was() {
        let entries = vec![entry(&["Engineering"], true)];
        let prev = vec![
            previous(COLL, &[("Engineering", "g-eng")]),
            previous(OTHER, &[("SRE", "g-sre")]),
        ];
        let out = untouched(&entries, &prev, CollectionState::Unsupported, "no collections API");
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|c| c.state == CollectionState::Unsupported));
        // Both the entry and the collection only the last sync named say why.
        assert!(out.iter().all(|c| c.message.as_deref() == Some("no collections API")));
        assert_eq!(out[0].granted, prev[0].granted);
        assert_eq!(out[1].granted, prev[1].granted);
        let asked = requested(&entries, &[]);
        assert_eq!(asked[0].state, CollectionState::Pending);
        assert!(
            asked[0]
                .message
                .as_deref()
                .unwrap()
                .starts_with("Engineering would get access (readOnly)")
        );
    }

    #[test]
    fn an_items_status_carries_its_collection_state_message_and_grants() {
        let case = Case::new(vec![entry(&["Engineering", "SRE"], false)], Vec::new());
        let plan = case.plan();
        let item = &plan.items[0];
        let grants = granted(&[("Engineering", "g-eng"), ("SRE", "g-sre")]);
        let status = item.status(CollectionState::Failed, Some("granted".into()), grants.clone());
        assert_eq!(status.id.as_deref(), Some(COLL));
        assert_eq!(status.external_id, item.external_id);
        assert_eq!(
            (status.groups, status.state, status.message.as_deref()),
            (2, CollectionState::Failed, Some("granted"))
        );
        assert_eq!(status.granted, grants);
    }
}
