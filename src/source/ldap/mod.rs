//! LDAP and Active Directory source.
//!
//! One read opens a connection, binds, runs paged searches (RFC 2696) for users and groups
//! that ask only for the attributes the sync needs, and turns each entry into the model as it
//! arrives. Group members are resolved once every user and group entry is known: a member DN
//! is a user if it names a user entry (RFC 4514 comparison), otherwise a child group if it
//! names a synced group, otherwise ignored; a member value that is not a DN is a `memberUid`,
//! matched case-insensitively to a user's `uid`.

pub mod ad;
pub mod config;
pub mod conn;
pub mod dn;
mod entry;
mod keys;

use std::collections::BTreeMap;

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapError, Scope};

use self::config::{Settings, changed_since};
use self::conn::Connector;
use self::entry::Entry;
use self::keys::KeyIndex;
use super::{DirectorySource, Provider, ReadRequest, ReadResult};
use crate::Error;
use crate::api::LdapSource;
use crate::api::checks::FieldErrors;
use crate::secrets::SecretStore;
use crate::sync::email::normalize_email;
use crate::sync::model::{Directory, Group, User};

/// Cursor key: the time the last successful read started, as LDAP GeneralizedTime (UTC).
pub const CURSOR_LAST_READ: &str = "ldap.lastRead";

const P: &str = "spec.source.ldap";
/// Log a progress line every this many entries of one search.
const PROGRESS_EVERY: u64 = 10_000;

/// The first `member` range asked of Active Directory (its default MaxValRange).
const AD_FIRST_RANGE: u32 = 1500;

/// The LDAP / Active Directory source.
#[derive(Debug)]
pub struct LdapDirectory {
    connector: Connector,
    /// The connection `connect` opened, used by the first read.
    ldap: Option<Ldap>,
}

impl LdapDirectory {
    /// Resolves the settings, reads the Secrets, connects and binds (so that a wrong
    /// password or an unreachable server is reported here).
    pub async fn connect(spec: &LdapSource, secrets: &dyn SecretStore) -> Result<Self, Error> {
        let settings = config::resolve(spec)?;
        let connector = Connector::new(spec, settings, secrets).await?;
        let ldap = connector.open().await?;
        Ok(LdapDirectory {
            connector,
            ldap: Some(ldap),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.connector.settings
    }
}

#[async_trait]
impl Provider for LdapSource {
    fn name(&self) -> &'static str {
        "ldap"
    }

    fn validate(&self, errors: &mut FieldErrors) {
        if let Err(e) = config::check(self) {
            errors.extend(e.into_vec());
        }
    }

    async fn connect(&self, secrets: &dyn SecretStore) -> Result<Box<dyn DirectorySource>, Error> {
        Ok(Box::new(LdapDirectory::connect(self, secrets).await?))
    }
}

#[async_trait]
impl DirectorySource for LdapDirectory {
    async fn read(&mut self, request: &ReadRequest) -> Result<ReadResult, Error> {
        let mut ldap = match self.ldap.take() {
            Some(l) => l,
            None => self.connector.open().await?,
        };
        if ldap.is_closed() {
            ldap = self.connector.open().await?;
        }
        let now = jiff::Timestamp::now();
        let result = Reader::new(&self.connector, ldap.clone()).read(request, now).await;
        let _ = ldap.unbind().await;
        result
    }
}

/// The time of `now` as LDAP GeneralizedTime (`20240131235959.0Z`: the form both AD/Samba and
/// OpenLDAP order correctly).
pub fn generalized_time(now: jiff::Timestamp) -> String {
    now.strftime("%Y%m%d%H%M%S.0Z").to_string()
}

fn is_generalized_time(s: &str) -> bool {
    s.len() >= 15
        && s.ends_with('Z')
        && s[..14].bytes().all(|b| b.is_ascii_digit())
        && s[14..s.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
}

/// The "changed since" time for an incremental read, or `None` for a full read. The engine
/// decides when a full read is due (no cursor: `sync-now`, every 24 hours, `overwriteExisting`).
pub fn incremental_since(settings: &Settings, cursor: Option<&BTreeMap<String, String>>) -> Option<String> {
    settings.revision_date_attribute.as_ref()?;
    cursor?
        .get(CURSOR_LAST_READ)
        .filter(|s| is_generalized_time(s))
        .cloned()
}

/// What a users search gathered: the users, and (for group membership) their normalised DNs
/// and `uid`s, each mapped to the user's position in `users`.
#[derive(Default)]
struct UsersRead {
    users: Vec<User>,
    by_dn: KeyIndex,
    by_uid: KeyIndex,
}

/// A group as read, its members not yet resolved.
struct PendingGroup {
    external_id: String,
    name: String,
    refs: MemberRefs,
}

/// A group's member values, kept compactly until every user is known: normalised DNs, and
/// values that are not DNs (`memberUid`), lower-cased.
#[derive(Default)]
struct MemberRefs {
    dns: Keys,
    uids: Keys,
}

/// Strings end to end in one buffer (no allocation per string).
#[derive(Default)]
struct Keys {
    text: String,
    ends: Vec<usize>,
}

impl Keys {
    fn push(&mut self, key: &str) {
        self.text.push_str(key);
        self.ends.push(self.text.len());
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.text[start..end])
    }
}

impl MemberRefs {
    /// Adds one member value; `scratch` is reused between calls.
    fn push(&mut self, value: &str, scratch: &mut String) {
        if dn::normalize_into(value, scratch) {
            self.dns.push(scratch);
        } else {
            lower_into(value.trim(), scratch);
            self.uids.push(scratch);
        }
    }
}

/// What a groups search gathered: the groups, and their normalised DNs (for nesting).
#[derive(Default)]
struct GroupsRead {
    groups: Vec<PendingGroup>,
    by_dn: KeyIndex,
}

/// `s` lower-cased into `out` (cleared first), without allocating for ASCII.
fn lower_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// Resolves every group's member values, once every user and group is known: a DN that names a
/// user is a member, else one that names a synced group is a child, else it is ignored; a value
/// that is not a DN is matched to a user's `uid`. Each member and child once per group. A group's
/// member values are dropped as soon as it is resolved, so the two are never held whole at once.
fn resolve(users: &UsersRead, read: GroupsRead) -> Vec<Group> {
    let GroupsRead { groups, by_dn } = read;
    let mut user_seen = vec![u32::MAX; users.users.len()];
    let mut group_seen = vec![u32::MAX; groups.len()];
    let mut resolved = Vec::with_capacity(groups.len());
    let mut child_indices = Vec::with_capacity(groups.len());
    for (g, group) in groups.into_iter().enumerate() {
        let stamp = g as u32;
        let PendingGroup {
            external_id,
            name,
            refs,
        } = group;
        let mut members = Vec::with_capacity(refs.dns.ends.len() + refs.uids.ends.len());
        let mut children = Vec::new();
        let mut add_user = |u: u32, members: &mut Vec<String>| {
            if std::mem::replace(&mut user_seen[u as usize], stamp) != stamp {
                members.push(users.users[u as usize].external_id.clone());
            }
        };
        for key in refs.dns.iter() {
            if let Some(u) = users.by_dn.get(key) {
                add_user(u, &mut members);
            } else if let Some(c) = by_dn.get(key)
                && std::mem::replace(&mut group_seen[c as usize], stamp) != stamp
            {
                children.push(c);
            }
        }
        for key in refs.uids.iter() {
            if let Some(u) = users.by_uid.get(key) {
                add_user(u, &mut members);
            }
        }
        // Sized for every value being a user; most of them were not (a narrow user filter).
        if members.len() < members.capacity() / 2 {
            members.shrink_to_fit();
        }
        resolved.push(Group {
            external_id,
            name,
            members,
            children: Vec::new(),
        });
        child_indices.push(children);
    }
    let children: Vec<Vec<String>> = child_indices
        .iter()
        .map(|c| c.iter().map(|&c| resolved[c as usize].external_id.clone()).collect())
        .collect();
    for (group, children) in resolved.iter_mut().zip(children) {
        group.children = children;
    }
    resolved
}

struct Reader<'a> {
    c: &'a Connector,
    s: &'a Settings,
    m: Mapper<'a>,
    ldap: Ldap,
}

/// Turns entries into model objects (no I/O).
#[derive(Clone, Copy)]
struct Mapper<'a> {
    s: &'a Settings,
}

fn push_unique(out: &mut Vec<String>, attr: &str) {
    if !out.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
        out.push(attr.to_string());
    }
}

impl<'a> Reader<'a> {
    fn new(c: &'a Connector, ldap: Ldap) -> Self {
        Reader {
            c,
            s: &c.settings,
            m: Mapper { s: &c.settings },
            ldap,
        }
    }

    async fn read(self, request: &ReadRequest, now: jiff::Timestamp) -> Result<ReadResult, Error> {
        let s = self.s;
        let since = incremental_since(s, request.cursor.as_ref());
        let mut directory = Directory {
            complete: since.is_none(),
            ..Default::default()
        };
        let mut warnings = Vec::new();
        if self.c.insecure() {
            warnings.push(format!(
                "TLS certificate verification is off for {} (tls.insecureSkipVerify)",
                s.url
            ));
        }
        if self.c.cleartext() {
            warnings.push(format!("the connection to {} is not encrypted (allowCleartext)", s.url));
        }

        // Users and groups are read at the same time, on two connections (OpenLDAP allows one
        // paged search per connection): the server sends both while this side turns entries
        // into the model. Membership is resolved once both are complete.
        match (&since, &s.revision_date_attribute) {
            (Some(time), Some(attr)) => {
                if request.users {
                    let filter = changed_since(&s.users.filter, attr, time);
                    directory.users = self.read_users(&filter, true, false).await?.users;
                }
                if request.groups {
                    let filter = changed_since(&s.groups.filter, attr, time);
                    if self.any_entry(&s.groups.base, &s.groups.base_field, &filter).await? {
                        let (users, groups) = tokio::try_join!(
                            self.read_users(&s.users.filter, false, true),
                            self.read_groups_alongside()
                        )?;
                        directory.groups = resolve(&users, groups);
                    }
                }
            }
            _ => {
                let filter = &s.users.filter;
                let users = if request.groups {
                    let (users, groups) = tokio::try_join!(
                        self.read_users(filter, request.users, true),
                        self.read_groups_alongside()
                    )?;
                    directory.groups = resolve(&users, groups);
                    users
                } else {
                    self.read_users(filter, request.users, false).await?
                };
                if request.users {
                    directory.users = users.users;
                    if let Some(base) = &s.deleted_objects_base {
                        self.read_deleted_users(base, &mut directory.users).await?;
                    }
                }
            }
        }

        let mut cursor = BTreeMap::new();
        if s.revision_date_attribute.is_some() {
            cursor.insert(CURSOR_LAST_READ.to_string(), generalized_time(now));
        }
        Ok(ReadResult {
            directory,
            cursor,
            warnings,
        })
    }

    /// Reads users matching `filter`: whole users when `full` (else only their external ids),
    /// and their DNs and `uid`s when `for_groups`.
    async fn read_users(&self, filter: &str, full: bool, for_groups: bool) -> Result<UsersRead, Error> {
        let s = self.s;
        let attrs = self.m.user_attributes(full, for_groups);
        let m = self.m;
        let id_attr = m.user_id_attribute();
        let mut read = UsersRead::default();
        let mut scratch = String::new();
        let mut handle = |mut e: Entry| {
            let n = read.users.len() as u32;
            if for_groups {
                if dn::normalize_into(&e.dn(), &mut scratch) {
                    read.by_dn.insert(&scratch, n);
                }
                for uid in e.values("uid") {
                    lower_into(uid.trim(), &mut scratch);
                    read.by_uid.insert(&scratch, n);
                }
            }
            let user = if full {
                m.user_from(&mut e, false)
            } else {
                User {
                    external_id: m.external_id(&mut e, id_attr),
                    ..Default::default()
                }
            };
            read.users.push(user);
        };
        search(
            self.c,
            self.ldap.clone(),
            &s.users.base,
            &s.users.base_field,
            filter,
            &format!("{P}.users.filter"),
            attrs,
            vec![],
            &mut handle,
        )
        .await?;
        tracing::debug!(
            users = read.users.len(),
            dn_index_bytes = read.by_dn.heap_bytes(),
            uid_index_bytes = read.by_uid.heap_bytes(),
            "read the users"
        );
        Ok(read)
    }

    async fn read_deleted_users(&self, base: &str, out: &mut Vec<User>) -> Result<(), Error> {
        let s = self.s;
        let filter = format!("(&(isDeleted=TRUE)(objectClass={}))", s.users.object_class);
        let attrs = self.m.user_attributes(true, false);
        let control = RawControl {
            ctype: ad::SHOW_DELETED_OID.into(),
            crit: true,
            val: None,
        };
        let m = self.m;
        let mut found = Vec::new();
        let res = search(
            self.c,
            self.ldap.clone(),
            base,
            &format!("{P}.rootPath"),
            &filter,
            &format!("{P}.users.objectClass"),
            attrs,
            vec![control],
            &mut |mut e: Entry| found.push(m.user_from(&mut e, true)),
        )
        .await;
        match res {
            Ok(()) => out.extend(found),
            // No Deleted Objects container (not a real AD): nothing was deleted.
            Err(Error::InvalidSpec(_)) => {
                tracing::warn!(base, "no deleted objects container; deleted users are not reported");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// True when at least one entry matches (used to see whether any group changed).
    async fn any_entry(&self, base: &str, field: &str, filter: &str) -> Result<bool, Error> {
        let mut any = false;
        search(
            self.c,
            self.ldap.clone(),
            base,
            field,
            filter,
            &format!("{P}.groups.filter"),
            vec!["1.1".into()],
            vec![],
            &mut |_| any = true,
        )
        .await?;
        Ok(any)
    }

    /// [`Self::read_groups`] on a connection of its own, to run beside the users search.
    async fn read_groups_alongside(&self) -> Result<GroupsRead, Error> {
        let mut ldap = self.c.open().await?;
        let result = self.read_groups(&ldap).await;
        let _ = ldap.unbind().await;
        result
    }

    async fn read_groups(&self, ldap: &Ldap) -> Result<GroupsRead, Error> {
        let s = self.s;
        let g = &s.groups;
        let member_attr = g.member_attribute.as_str();
        let mut attrs = Vec::new();
        push_unique(&mut attrs, &g.name_attribute);
        if s.active_directory {
            // Ask for the first range explicitly: AD answers `member;range=0-1499` for large
            // groups anyway (MaxValRange), and servers without a limit (Samba) then still go
            // through the same range retrieval.
            push_unique(&mut attrs, &format!("{member_attr};range=0-{}", AD_FIRST_RANGE - 1));
        } else {
            push_unique(&mut attrs, member_attr);
        }
        let id_attr = s.active_directory.then_some("objectGUID");
        if let Some(a) = id_attr {
            push_unique(&mut attrs, a);
        }
        let mut read = GroupsRead::default();
        // (group index, group DN, next attribute description to ask for)
        let mut ranges: Vec<(usize, String, String)> = Vec::new();
        let mut scratch = String::new();
        {
            let m = self.m;
            let mut handle = |mut e: Entry| {
                let index = read.groups.len();
                let dn = e.dn().into_owned();
                let name = e.first(&g.name_attribute).map(str::to_string);
                let mut refs = MemberRefs::default();
                for (key, values) in e.attributes() {
                    let plain = key.eq_ignore_ascii_case(member_attr);
                    let range = ad::parse_range(key, member_attr);
                    if !plain && range.is_none() {
                        continue;
                    }
                    // An attribute with a binary value has no text values (as ldap3 reads it).
                    for value in entry::text_values(values).into_iter().flatten() {
                        refs.push(value, &mut scratch);
                    }
                    if let Some(next) = range.and_then(|r| ad::next_range_request(member_attr, r)) {
                        ranges.push((index, dn.clone(), next));
                    }
                }
                if dn::normalize_into(&dn, &mut scratch) {
                    read.by_dn.insert(&scratch, index as u32);
                }
                let external_id = m.external_id(&mut e, id_attr);
                read.groups.push(PendingGroup {
                    external_id,
                    name: name.unwrap_or(dn),
                    refs,
                });
            };
            search(
                self.c,
                ldap.clone(),
                &g.base,
                &g.base_field,
                &g.filter,
                &format!("{P}.groups.filter"),
                attrs,
                vec![],
                &mut handle,
            )
            .await?;
        }
        for (i, group_dn, next) in ranges {
            self.read_ranges(ldap, &group_dn, member_attr, next, &mut read.groups[i].refs)
                .await?;
        }
        Ok(read)
    }

    /// AD range retrieval: asks for `member;range=<n>-*` until the server says the range ends
    /// in `*`.
    async fn read_ranges(
        &self,
        ldap: &Ldap,
        group_dn: &str,
        member_attr: &str,
        mut next: String,
        refs: &mut MemberRefs,
    ) -> Result<(), Error> {
        let timeout = self.s.timeout;
        let mut scratch = String::new();
        loop {
            let result = ldap
                .clone()
                .with_timeout(timeout)
                .search(group_dn, Scope::Base, "(objectClass=*)", vec![next.as_str()])
                .await
                .map_err(|e| self.c.op_error(e, "range retrieval"))?;
            let (entries, res) = (result.0, result.1);
            if res.rc != 0 {
                return Err(Error::SourceUnavailable(format!(
                    "LDAP range retrieval of {member_attr} on {group_dn:?} failed (result {}): {}",
                    res.rc, res.text
                )));
            }
            let mut more = None;
            let mut got_any = false;
            for e in entries.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate()) {
                let e = Entry::new(e)?;
                for (key, values) in e.attributes() {
                    if let Some(r) = ad::parse_range(key, member_attr) {
                        got_any = true;
                        for value in entry::text_values(values).into_iter().flatten() {
                            refs.push(value, &mut scratch);
                        }
                        more = ad::next_range_request(member_attr, r);
                    }
                }
            }
            match more {
                Some(n) if got_any && n != next => next = n,
                _ => return Ok(()),
            }
        }
    }
}

impl<'a> Mapper<'a> {
    fn user_id_attribute(&self) -> Option<&'a str> {
        let s = self.s;
        s.users
            .external_id_attribute
            .as_deref()
            .or(s.active_directory.then_some("objectGUID"))
    }

    /// The external id: the `attribute` (an `objectGUID` in its text form), or the DN (moved
    /// out of the entry) without one.
    fn external_id(&self, e: &mut Entry, attribute: Option<&str>) -> String {
        let Some(attr) = attribute else {
            return e.take_dn();
        };
        if attr.eq_ignore_ascii_case("objectGUID")
            && let Some(guid) = e.first_bytes(attr).and_then(ad::guid_text)
        {
            return guid;
        }
        match e.first(attr) {
            Some(v) if !attr.eq_ignore_ascii_case("objectGUID") => v.to_string(),
            _ => {
                tracing::warn!(dn = %e.dn(), attribute = attr, "entry has no external id attribute; using its DN");
                e.take_dn()
            }
        }
    }

    fn user_attributes(&self, full: bool, for_groups: bool) -> Vec<String> {
        let u = &self.s.users;
        let mut attrs = Vec::new();
        if full {
            push_unique(&mut attrs, &u.email_attribute);
            if let (Some(p), Some(_)) = (&u.email_prefix_attribute, &u.email_suffix) {
                push_unique(&mut attrs, p);
            }
            if self.s.active_directory {
                push_unique(&mut attrs, "userAccountControl");
            }
        }
        if let Some(id) = self.user_id_attribute() {
            push_unique(&mut attrs, id);
        }
        if for_groups {
            push_unique(&mut attrs, "uid");
        }
        if attrs.is_empty() {
            attrs.push("1.1".into());
        }
        attrs
    }

    /// The user an entry describes (the entry's DN may be moved out).
    fn user_from(&self, e: &mut Entry, deleted: bool) -> User {
        let u = &self.s.users;
        let prefix = match (&u.email_prefix_attribute, &u.email_suffix) {
            (Some(p), Some(_)) => e.first(p),
            _ => None,
        };
        let email = normalize_email(e.first(&u.email_attribute), prefix, u.email_suffix.as_deref());
        let disabled = self.s.active_directory && ad::is_disabled(e.first("userAccountControl"));
        User {
            external_id: self.external_id(e, self.user_id_attribute()),
            email,
            disabled,
            deleted,
        }
    }
}

/// A paged subtree search that hands each entry to `f` as it arrives; referrals and
/// continuation references are dropped. Timed into the provider request metrics.
#[allow(clippy::too_many_arguments)]
async fn search(
    c: &Connector,
    mut ldap: Ldap,
    base: &str,
    base_field: &str,
    filter: &str,
    filter_field: &str,
    attrs: Vec<String>,
    controls: Vec<RawControl>,
    f: &mut (dyn FnMut(Entry) + Send),
) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let result = async {
        let s = &c.settings;
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(s.page_size as i32)),
        ];
        ldap.with_timeout(s.timeout);
        if !controls.is_empty() {
            ldap.with_controls(controls);
        }
        let map = |e: LdapError| match e {
            LdapError::FilterParsing => Error::invalid(
                filter_field,
                format!("the filter {filter:?} is not a valid LDAP filter"),
            ),
            e => c.op_error(e, "search"),
        };
        let mut stream = ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(map)?;
        let mut entries = 0u64;
        loop {
            match stream.next().await {
                Ok(Some(entry)) => {
                    f(Entry::new(entry)?);
                    entries += 1;
                    // Progress for long reads, on stderr with the other logs.
                    if entries.is_multiple_of(PROGRESS_EVERY) {
                        tracing::info!(base, entries, "reading the directory");
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(map(e)),
            }
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(()),
            32 => Err(Error::invalid(
                base_field,
                format!("the search base {base:?} does not exist on {}", s.endpoint),
            )),
            50 => Err(Error::SourceAuthFailed(format!(
                "{} may not search {base:?} on {}: insufficient access rights",
                c.bind_dn()
                    .map_or("the anonymous user".to_string(), |d| format!("{d:?}")),
                s.endpoint
            ))),
            rc => Err(Error::SourceUnavailable(format!(
                "LDAP search of {base:?} on {} failed (result {rc}){}",
                s.endpoint,
                if res.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", res.text)
                }
            ))),
        }
    }
    .await;
    crate::source::record_request("ldap", "search", &result, started);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(revision: Option<&str>) -> Settings {
        let spec = LdapSource {
            url: "ldap://127.0.0.1".into(),
            root_path: "dc=x".into(),
            page_size: 10,
            revision_date_attribute: revision.map(String::from),
            ..Default::default()
        };
        config::resolve(&spec).unwrap()
    }

    #[test]
    fn generalized_time_format() {
        let t: jiff::Timestamp = "2024-01-31T23:59:58Z".parse().unwrap();
        assert_eq!(generalized_time(t), "20240131235958.0Z");
        assert!(is_generalized_time("20240131235958Z"));
        assert!(is_generalized_time("20240131235958.0Z"));
        assert!(!is_generalized_time("2024013123595Z"));
        assert!(!is_generalized_time("20240131235958Z)(x=*"));
    }

    #[test]
    fn incremental_only_with_a_cursor_and_a_revision_attribute() {
        let recent = BTreeMap::from([(CURSOR_LAST_READ.to_string(), "20240201110000Z".to_string())]);
        let s = settings(Some("modifyTimestamp"));
        assert_eq!(incremental_since(&s, Some(&recent)).as_deref(), Some("20240201110000Z"));
        assert_eq!(incremental_since(&s, None), None);
        assert_eq!(incremental_since(&settings(None), Some(&recent)), None);
        let mut bad = recent.clone();
        bad.insert(CURSOR_LAST_READ.into(), "yesterday".into());
        assert_eq!(incremental_since(&s, Some(&bad)), None);
    }
}
