//! The Entra ID source against the Entra double (`support::entra`): the three credentials, the
//! clouds' endpoints, paging of every list, batching, the users delta round, throttling with
//! Graph's headers, 401/403 and the AADSTS refusals, filters, and that a list that cannot be read
//! to its end fails the read (and the sync, with nothing sent). Directories need several pages of
//! every list (the double's page sizes are small).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dirsync::Error;
use dirsync::api::{
    DirectorySyncSpec, EntraCredentialsRef, EntraIdSource, EntraWorkloadIdentity, Mode, Reason, SourceSpec, SyncOptions,
};
use dirsync::bitwarden::BitwardenApi;
use dirsync::engine::{self, Connector, RunOptions, SyncState};
use dirsync::net::RetryPolicy;
use dirsync::secrets::{SecretStore, SecretValue};
use dirsync::source::entra::{CURSOR_USERS_DELTA, EntraDirectory, Options};
use dirsync::source::{DirectorySource, ReadRequest, ReadResult};
use dirsync::sync::model::{Group, User};
use serde_json::{Value, json};

use crate::support::bitwarden::BitwardenDouble;
use crate::support::entra::{
    EntraDouble, EntraGroup, EntraUser, FEDERATION_AUDIENCE, Failure, Federation, GROUP_MEMBER_READ_ALL, IssuerKey,
    Kind, RemovedShape, SECRET_NAME, TENANT, USER_READ_ALL, service_account_token, throttled, unavailable,
};
use crate::support::secrets::MemorySecrets;

const APP_KEY: &str = include_str!("../support/entra/app.key");
const APP_CERT: &str = include_str!("../support/entra/app.pem");
const EXPIRED_CERT: &str = include_str!("../support/entra/expired.pem");
const OTHER_KEY: &str = include_str!("../support/entra/other.key");
/// An EC P-256 key: Entra certificate credentials sign RS256, so it is refused.
const EC_KEY: &str = include_str!("../support/jwt/ec-p256.key");
const ISSUER_KEY: &str = include_str!("../support/entra/issuer.key");
const ISSUER_PUB: &str = include_str!("../support/entra/issuer.pub");
const ISSUER: &str = "https://oidc.prod-aks.azure.com/tenant/issuer/";
const SUBJECT: &str = "system:serviceaccount:identity:dirsync-entra";

fn uid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn gid(i: usize) -> String {
    format!("10000000-0000-4000-8000-{i:012}")
}

fn fast() -> Options {
    Options {
        retry: RetryPolicy::fast(),
        ..Options::default()
    }
}

/// 23 users (one disabled, one without mail, one whose mail is an onmicrosoft.com address, an
/// enabled and a disabled guest) and 7 groups, nested, with a device and a service principal
/// among the members.
fn company() -> (Vec<EntraUser>, Vec<EntraGroup>) {
    let mut users: Vec<EntraUser> = (0..23)
        .map(|i| EntraUser::new(&uid(i), &format!("User{i}@Contoso.com")))
        .collect();
    users[3].enabled = false;
    users[5].mail = None;
    users[6].mail = Some("user6@contoso.onmicrosoft.com".into());
    users[7] = EntraUser {
        id: uid(7),
        mail: None,
        upn: "guest7_example.com#EXT#@contoso.onmicrosoft.com".into(),
        enabled: true,
    };
    users[8] = EntraUser {
        id: uid(8),
        mail: Some("guest8@example.com#EXT#".into()),
        upn: "guest8_example.com#EXT#@contoso.onmicrosoft.com".into(),
        enabled: false,
    };
    let u = |i: usize| (Kind::User, uid(i));
    let g = |i: usize| (Kind::Group, gid(i));
    let groups = vec![
        EntraGroup::new(&gid(0), "Everyone", vec![g(1), g(2), (Kind::Device, "dev-1".into())]),
        EntraGroup::new(&gid(1), "Engineering", (0..11).map(u).collect()),
        EntraGroup::new(
            &gid(2),
            "Sales",
            vec![u(11), u(12), u(13), (Kind::ServicePrincipal, "sp-1".into()), u(7), u(8)],
        ),
        EntraGroup::new(&gid(3), "Empty", vec![]),
        EntraGroup::new(&gid(4), "Platform", vec![g(1), u(20)]),
        EntraGroup::new(&gid(5), "Finance", vec![u(14), u(15)]),
        EntraGroup::new(&gid(6), "Leadership", vec![u(16), g(5)]),
    ];
    (users, groups)
}

/// The double with [`company`], small pages everywhere.
async fn tenant() -> EntraDouble {
    let entra = EntraDouble::start().await;
    let (users, groups) = company();
    entra.set_directory(users, groups);
    entra.set_page_sizes(5, 3, 2, 3);
    entra
}

async fn connect_with(
    spec: &EntraIdSource,
    secrets: &dyn SecretStore,
    options: Options,
) -> Result<EntraDirectory, Error> {
    EntraDirectory::connect(spec, secrets, options).await
}

async fn read_with(
    spec: &EntraIdSource,
    secrets: &dyn SecretStore,
    cursor: Option<BTreeMap<String, String>>,
) -> Result<ReadResult, Error> {
    let mut source = connect_with(spec, secrets, fast()).await?;
    source
        .read(&ReadRequest {
            users: true,
            groups: true,
            cursor,
        })
        .await
}

async fn full_read(entra: &EntraDouble) -> ReadResult {
    read_with(&entra.spec(), &entra.secrets(), None)
        .await
        .expect("a full read")
}

fn sorted_users(users: &[User]) -> Vec<(String, Option<String>, bool, bool)> {
    let mut v: Vec<_> = users
        .iter()
        .map(|u| (u.external_id.clone(), u.email.clone(), u.disabled, u.deleted))
        .collect();
    v.sort();
    v
}

fn group<'a>(groups: &'a [Group], id: &str) -> &'a Group {
    groups
        .iter()
        .find(|g| g.external_id == id)
        .unwrap_or_else(|| panic!("group {id}"))
}

fn user_ids(users: &[User]) -> Vec<String> {
    let mut v: Vec<String> = users.iter().map(|u| u.external_id.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_full_read_pages_every_list_and_builds_the_model_as_the_reference() {
    let entra = tenant().await;
    let read = full_read(&entra).await;
    let d = &read.directory;
    assert!(d.complete);
    assert!(!d.restrict_users_to_groups);
    // 22 users: the enabled guest (#EXT#) is left out; the disabled one stays.
    let users = sorted_users(&d.users);
    assert_eq!(users.len(), 22);
    let find = |i: usize| users.iter().find(|u| u.0 == uid(i)).cloned();
    assert_eq!(find(0), Some((uid(0), Some("user0@contoso.com".into()), false, false)));
    assert!(find(3).unwrap().2, "accountEnabled false is disabled");
    assert_eq!(
        find(5).unwrap().1.as_deref(),
        Some("user5@contoso.com"),
        "no mail: the UPN"
    );
    assert_eq!(
        find(6).unwrap().1.as_deref(),
        Some("user6@contoso.com"),
        "onmicrosoft.com mail: the UPN"
    );
    assert_eq!(find(7), None, "an enabled guest is left out");
    assert_eq!(find(8).unwrap().1.as_deref(), Some("guest8@example.com#ext#"));

    // Groups: direct user members (guests included, as the reference) and child groups; the
    // device and the service principal are not members.
    assert_eq!(d.groups.len(), 7);
    let everyone = group(&d.groups, &gid(0));
    assert_eq!(everyone.name, "Everyone");
    assert!(everyone.members.is_empty());
    assert_eq!(everyone.children, [gid(1), gid(2)]);
    let eng = group(&d.groups, &gid(1));
    assert_eq!(
        eng.members,
        (0..11).map(uid).collect::<Vec<_>>(),
        "11 members over 6 pages"
    );
    assert_eq!(
        group(&d.groups, &gid(2)).members,
        [uid(11), uid(12), uid(13), uid(7), uid(8)]
    );
    assert!(group(&d.groups, &gid(3)).members.is_empty());

    // The cursor holds a users delta link of this double.
    let link = &read.cursor[CURSOR_USERS_DELTA];
    assert!(
        link.starts_with(&format!("{}/v1.0/users/delta?$deltatoken=", entra.uri())),
        "{link}"
    );

    // What was asked: $select of the four fields and $top=999, every nextLink followed; the
    // delta round started at "now" before the listing; members 20 groups to a $batch.
    let users_requests = entra.requests_to("users");
    assert_eq!(users_requests.len(), 5, "23 users in pages of 5");
    let first = &users_requests[0];
    assert_eq!(
        first.query_param("$select").as_deref(),
        Some("id,mail,userPrincipalName,accountEnabled")
    );
    assert_eq!(first.query_param("$top").as_deref(), Some("999"));
    assert!(users_requests[1..].iter().all(|r| r.query_param("$skiptoken").is_some()
        && r.query_param("$select").as_deref() == Some("id,mail,userPrincipalName,accountEnabled")));
    assert_eq!(entra.requests_to("groups").len(), 3, "7 groups in pages of 3");
    let delta = entra.requests_to("users_delta");
    assert_eq!(delta.len(), 1);
    assert_eq!(delta[0].query_param("$deltatoken").as_deref(), Some("latest"));
    let order: Vec<String> = entra.requests().iter().map(|r| r.path.clone()).collect();
    let delta_at = order.iter().position(|p| p.ends_with("/users/delta")).unwrap();
    let users_at = order.iter().position(|p| p.ends_with("/v1.0/users")).unwrap();
    assert!(delta_at < users_at, "the delta round starts before the listing");
    assert!(entra.requests_to("members").is_empty(), "members only through $batch");
    let batched = entra.batched();
    assert!(batched.iter().all(|(r, _)| *r == Some("members")));
    assert!(
        batched.iter().any(|(_, p)| p.contains("$skiptoken")),
        "member pages continued inside batches"
    );
    // 7 groups, the largest with 11 members in pages of 2: 6 rounds of one batch each.
    assert_eq!(entra.requests_to("batch").len(), 6);
    for b in entra.requests_to("batch") {
        let n = b.json().unwrap()["requests"].as_array().unwrap().len();
        assert!((1..=20).contains(&n));
    }
    assert_eq!(entra.requests_to("token").len(), 1, "one token for the whole read");
}

#[tokio::test]
async fn members_are_read_the_same_without_batching_at_many_more_requests() {
    let entra = tenant().await;
    let batched = full_read(&entra).await.directory;
    let with_batching = entra.requests().len();
    let entra2 = tenant().await;
    let options = Options { batch: false, ..fast() };
    let mut source = connect_with(&entra2.spec(), &entra2.secrets(), options).await.unwrap();
    let single = source
        .read(&ReadRequest {
            users: true,
            groups: true,
            cursor: None,
        })
        .await
        .unwrap()
        .directory;
    let mut a: Vec<_> = batched
        .groups
        .iter()
        .map(|g| (g.external_id.clone(), g.members.clone(), g.children.clone()))
        .collect();
    let mut b: Vec<_> = single
        .groups
        .iter()
        .map(|g| (g.external_id.clone(), g.members.clone(), g.children.clone()))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // One request per member page (2 a page): 2+6+3+1+1+1+1 = 15 instead of 6 batches.
    assert_eq!(entra2.requests_to("members").len(), 15);
    assert_eq!(entra2.requests().len(), with_batching - 6 + 15);
}

#[tokio::test]
async fn a_certificate_credential_sends_an_rs256_assertion_named_by_its_thumbprint() {
    let entra = tenant().await;
    entra.use_certificate(APP_CERT);
    let mut spec = entra.spec();
    spec.credentials_secret_ref = Some(EntraCredentialsRef {
        name: SECRET_NAME.into(),
        client_id_key: "client_id".into(),
        certificate_key: Some("tls.crt".into()),
        private_key_key: Some("tls.key".into()),
        ..Default::default()
    });
    let secrets = MemorySecrets::new()
        .with(SECRET_NAME, "client_id", entra.client_id())
        .with(SECRET_NAME, "tls.crt", APP_CERT)
        .with(SECRET_NAME, "tls.key", APP_KEY);
    let read = read_with(&spec, &secrets, None).await.unwrap();
    assert_eq!(read.directory.users.len(), 22);
    let form = entra.requests_to("token")[0].form();
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    let header = jsonwebtoken::decode_header(&form["client_assertion"]).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        header.x5t,
        Some(crate::support::entra::certificate_identity(APP_CERT).0)
    );

    // The app does not know this certificate (another key, another certificate): the message
    // names the thumbprint to upload.
    let other = MemorySecrets::new()
        .with(SECRET_NAME, "client_id", entra.client_id())
        .with(SECRET_NAME, "tls.crt", "")
        .with(SECRET_NAME, "tls.key", OTHER_KEY);
    let err = read_with(&spec, &other, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidSpec(_)), "{err}");
    assert!(err.to_string().contains("holds no PEM certificate"), "{err}");
    let ec = MemorySecrets::new()
        .with(SECRET_NAME, "client_id", entra.client_id())
        .with(SECRET_NAME, "tls.crt", APP_CERT)
        .with(SECRET_NAME, "tls.key", EC_KEY);
    let before = entra.requests().len();
    let err = read_with(&spec, &ec, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidSpec(_)), "{err}");
    assert!(
        err.to_string().contains("tls.key") && err.to_string().contains("an RSA key is needed"),
        "{err}"
    );
    assert_eq!(entra.requests().len(), before, "nothing is sent");
    entra.use_certificate(EXPIRED_CERT); // registered: a different certificate than the one sent
    let err = read_with(&spec, &secrets, None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    let msg = err.to_string();
    assert!(
        msg.contains("AADSTS700027") && msg.contains("upload the certificate with thumbprint"),
        "{msg}"
    );

    // An expired certificate is refused before anything is sent.
    let expired = MemorySecrets::new()
        .with(SECRET_NAME, "client_id", entra.client_id())
        .with(SECRET_NAME, "tls.crt", EXPIRED_CERT)
        .with(SECRET_NAME, "tls.key", APP_KEY);
    let before = entra.requests().len();
    let err = connect_with(&spec, &expired, fast()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    assert!(err.to_string().contains("expired on 2021-01-01"), "{err}");
    assert_eq!(entra.requests().len(), before);
}

fn federated_spec(entra: &EntraDouble, file: Option<String>, service_account: Option<&str>) -> EntraIdSource {
    EntraIdSource {
        credentials_secret_ref: None,
        workload_identity: Some(EntraWorkloadIdentity {
            client_id: entra.client_id(),
            service_account_name: service_account.map(str::to_string),
            federated_token_file: file,
        }),
        ..entra.spec()
    }
}

#[tokio::test]
async fn workload_identity_from_a_token_file() {
    let entra = tenant().await;
    entra.trust_federated(Federation {
        issuer: ISSUER.into(),
        subject: SUBJECT.into(),
        key: IssuerKey::Pem(ISSUER_PUB.into()),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    std::fs::write(
        &file,
        service_account_token(ISSUER_KEY, ISSUER, SUBJECT, FEDERATION_AUDIENCE, 3600),
    )
    .unwrap();
    let spec = federated_spec(&entra, Some(file.display().to_string()), None);
    let none = MemorySecrets::new();
    let read = read_with(&spec, &none, None).await.unwrap();
    assert_eq!(read.directory.users.len(), 22);
    let form = entra.requests_to("token")[0].form();
    assert_eq!(form["client_id"], entra.client_id());
    assert!(form["client_assertion"].starts_with("eyJ"));

    // A token for another ServiceAccount: the message names issuer and subject to register.
    std::fs::write(
        &file,
        service_account_token(
            ISSUER_KEY,
            ISSUER,
            "system:serviceaccount:identity:other",
            FEDERATION_AUDIENCE,
            3600,
        ),
    )
    .unwrap();
    let err = read_with(&spec, &none, None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    let msg = err.to_string();
    assert!(msg.contains("AADSTS70021"), "{msg}");
    assert!(
        msg.contains("\"system:serviceaccount:identity:other\"") && msg.contains(ISSUER),
        "{msg}"
    );
    assert!(msg.contains("Federated credentials"), "{msg}");
    assert!(!msg.contains("eyJ"), "no token in messages: {msg}");

    // Signed by another key: refused; expired: refused with the expiry time.
    std::fs::write(
        &file,
        service_account_token(OTHER_KEY, ISSUER, SUBJECT, FEDERATION_AUDIENCE, 3600),
    )
    .unwrap();
    let err = read_with(&spec, &none, None).await.unwrap_err();
    assert!(err.to_string().contains("AADSTS50013"), "{err}");
    std::fs::write(
        &file,
        service_account_token(ISSUER_KEY, ISSUER, SUBJECT, FEDERATION_AUDIENCE, -600),
    )
    .unwrap();
    let err = read_with(&spec, &none, None).await.unwrap_err();
    assert!(err.to_string().contains("outside its validity (it expires at"), "{err}");

    // No file: said at connect.
    let missing = federated_spec(&entra, Some(dir.path().join("nope").display().to_string()), None);
    let err = connect_with(&missing, &none, fast()).await.unwrap_err();
    assert!(
        err.to_string().contains("cannot read the ServiceAccount token file"),
        "{err}"
    );
}

/// A store that requests ServiceAccount tokens as the controller's does (here: signs them).
struct TokenIssuingStore {
    namespace: String,
    requests: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl SecretStore for TokenIssuingStore {
    async fn get(&self, name: &str, _key: &str) -> Result<SecretValue, Error> {
        Err(Error::SecretNotFound {
            namespace: self.namespace.clone(),
            name: name.into(),
        })
    }

    async fn service_account_token(&self, service_account: &str, audience: &str) -> Result<SecretValue, Error> {
        self.requests
            .lock()
            .unwrap()
            .push((service_account.into(), audience.into()));
        let subject = format!("system:serviceaccount:{}:{service_account}", self.namespace);
        Ok(SecretValue::new(service_account_token(
            ISSUER_KEY, ISSUER, &subject, audience, 600,
        )))
    }
}

#[tokio::test]
async fn workload_identity_through_a_service_account_token_request() {
    let entra = tenant().await;
    entra.trust_federated(Federation {
        issuer: ISSUER.into(),
        subject: SUBJECT.into(),
        key: IssuerKey::Pem(ISSUER_PUB.into()),
    });
    let spec = federated_spec(&entra, None, Some("dirsync-entra"));
    let store = TokenIssuingStore {
        namespace: "identity".into(),
        requests: Default::default(),
    };
    let read = read_with(&spec, &store, None).await.unwrap();
    assert_eq!(read.directory.users.len(), 22);
    assert_eq!(
        *store.requests.lock().unwrap(),
        [("dirsync-entra".to_string(), FEDERATION_AUDIENCE.to_string())]
    );
    // Outside a cluster (the CLI's store) there is no TokenRequest: the spec error says so.
    let err = connect_with(&spec, &MemorySecrets::new(), fast()).await.unwrap_err();
    let Error::InvalidSpec(fields) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        fields[0].path,
        "spec.source.entraId.workloadIdentity.serviceAccountName"
    );
    assert!(fields[0].message.contains("federatedTokenFile"), "{err}");
}

#[tokio::test]
async fn token_refusals_say_what_to_fix() {
    let entra = tenant().await;
    let secrets = entra.secrets();
    let cases: Vec<(EntraIdSource, MemorySecrets, &str, &str)> = vec![
        (
            EntraIdSource {
                tenant_id: "fabrikam.onmicrosoft.com".into(),
                ..entra.spec()
            },
            secrets.clone(),
            "AADSTS90002",
            "check spec.source.entraId.tenantId",
        ),
        (
            entra.spec(),
            secrets.clone().with(SECRET_NAME, "client_id", "not-the-app"),
            "AADSTS700016",
            "Application (client) ID",
        ),
        (
            entra.spec(),
            secrets.clone().with(SECRET_NAME, "client_secret", "wrong"),
            "AADSTS7000215",
            "Value (not its Secret ID)",
        ),
    ];
    for (spec, secrets, code, fix) in cases {
        let err = read_with(&spec, &secrets, None).await.unwrap_err();
        assert_eq!(err.reason(), Reason::SourceAuthFailed, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(code) && msg.contains(fix), "{code}: {msg}");
        assert!(!msg.contains(&entra.client_secret()), "{msg}");
    }
    // A wrong cloud: the scope of another Graph root.
    let spec = EntraIdSource {
        graph_url: Some("http://127.0.0.1:9".into()),
        ..entra.spec()
    };
    let err = read_with(&spec, &entra.secrets(), None).await.unwrap_err();
    assert!(
        err.to_string().contains("AADSTS1002012") && err.to_string().contains("cloud"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_permissions_are_named() {
    let entra = tenant().await;
    entra.set_permissions(&[GROUP_MEMBER_READ_ALL]);
    let err = read_with(&entra.spec(), &entra.secrets(), None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    let msg = err.to_string();
    assert!(
        msg.contains("User.Read.All") && msg.contains("Grant admin consent"),
        "{msg}"
    );
    assert!(msg.contains("Authorization_RequestDenied"), "{msg}");

    let entra = tenant().await;
    entra.set_permissions(&[USER_READ_ALL]);
    let err = read_with(&entra.spec(), &entra.secrets(), None).await.unwrap_err();
    assert!(err.to_string().contains("GroupMember.Read.All"), "{err}");

    // Inside a batch too.
    let entra = tenant().await;
    entra.fail_batched("members", 2, 1, 403, None);
    let err = read_with(&entra.spec(), &entra.secrets(), None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    assert!(err.to_string().contains("GroupMember.Read.All"), "{err}");
}

#[tokio::test]
async fn a_refused_token_is_renewed_once() {
    let entra = tenant().await;
    let mut source = connect_with(&entra.spec(), &entra.secrets(), fast()).await.unwrap();
    let request = ReadRequest {
        users: true,
        groups: true,
        cursor: None,
    };
    source.read(&request).await.unwrap();
    entra.revoke_tokens();
    source.read(&request).await.unwrap();
    assert_eq!(entra.requests_to("token").len(), 2);
    // A 401 that does not go away is an authentication failure.
    entra.fail_next(
        "groups",
        usize::MAX,
        Failure::json(
            401,
            crate::support::entra::graph_error("InvalidAuthenticationToken", "Access token validation failure."),
        ),
    );
    let err = source.read(&request).await.unwrap_err();
    assert_eq!(err.reason(), Reason::SourceAuthFailed);
    assert!(err.to_string().contains("InvalidAuthenticationToken"), "{err}");
}

fn throttled_count(operation: &str) -> u64 {
    let text = dirsync::metrics::render();
    text.lines()
        .filter(|l| {
            l.starts_with("dirsync_provider_requests_total")
                && l.contains("provider=\"entraId\"")
                && l.contains(&format!("operation=\"{operation}\""))
                && l.contains("outcome=\"throttled\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn throttling_is_waited_out_as_graph_asks_and_counted() {
    let entra = tenant().await;
    let users_before = throttled_count("list_users");
    let members_before = throttled_count("list_members");
    entra.fail_after("users", 2, 1, throttled("1"));
    entra.fail_after("groups", 1, 1, unavailable("1"));
    entra.fail_batched("members", 3, 2, 429, Some("1"));
    let started = Instant::now();
    let read = full_read(&entra).await;
    assert_eq!(read.directory.users.len(), 22);
    assert_eq!(group(&read.directory.groups, &gid(1)).members.len(), 11);
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(entra.requests_to("users").len(), 6);
    assert!(throttled_count("list_users") > users_before);
    assert!(throttled_count("list_members") >= members_before + 2);

    // Throttled for longer than a call may wait: RateLimited at once, saying when to retry.
    let entra = tenant().await;
    entra.fail_next("users", 1, throttled("3600"));
    let started = Instant::now();
    let err = full_read_err(&entra).await;
    assert_eq!(err.reason(), Reason::RateLimited);
    assert!(err.to_string().contains("asks to wait 3600s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Throttled inside batches past the attempts: RateLimited, the read fails.
    let entra = tenant().await;
    entra.fail_batched("members", 0, usize::MAX, 429, Some("0"));
    let err = full_read_err(&entra).await;
    assert_eq!(err.reason(), Reason::RateLimited);
    assert!(err.to_string().contains("4 attempts"), "{err}");
}

async fn full_read_err(entra: &EntraDouble) -> Error {
    read_with(&entra.spec(), &entra.secrets(), None).await.unwrap_err()
}

#[tokio::test]
async fn a_list_that_cannot_be_read_to_its_end_fails_the_read() {
    // A page that keeps failing.
    let entra = tenant().await;
    entra.fail_after(
        "users",
        2,
        usize::MAX,
        Failure::json(500, crate::support::entra::graph_error("generalException", "boom")),
    );
    let err = full_read_err(&entra).await;
    assert_eq!(err.reason(), Reason::SourceUnavailable);
    assert!(err.to_string().contains("4 attempts"), "{err}");

    // A next link to another host is not followed (the token would go there).
    let entra = tenant().await;
    let foreign = json!({"value": [], "@odata.nextLink": "https://evil.example/v1.0/users?$skiptoken=x"});
    entra.fail_after("users", 1, 1, Failure::json(200, foreign));
    let err = full_read_err(&entra).await;
    assert!(
        err.to_string().contains("evil.example") && err.to_string().contains("not followed"),
        "{err}"
    );

    // A next link that repeats.
    let entra = tenant().await;
    let again = format!("{}/v1.0/groups?$select=id,displayName&$top=999", entra.uri());
    entra.fail_next(
        "groups",
        usize::MAX,
        Failure::json(200, json!({"value": [], "@odata.nextLink": again})),
    );
    let err = full_read_err(&entra).await;
    assert!(err.to_string().contains("same next link twice"), "{err}");

    // An answer that is not Graph's.
    let entra = tenant().await;
    entra.fail_after(
        "groups",
        1,
        1,
        Failure::body(200, "text/html", "<html>proxy login</html>"),
    );
    let err = full_read_err(&entra).await;
    assert_eq!(err.reason(), Reason::SourceUnavailable);
    assert!(err.to_string().contains("not with a page of a list"), "{err}");

    // A batch member that keeps failing.
    let entra = tenant().await;
    entra.fail_batched("members", 0, usize::MAX, 500, None);
    let err = full_read_err(&entra).await;
    assert_eq!(err.reason(), Reason::SourceUnavailable);
}

#[tokio::test]
async fn a_group_deleted_during_the_read_is_left_out() {
    let entra = tenant().await;
    entra.fail_batched("members", 4, 1, 404, None);
    let read = full_read(&entra).await;
    assert_eq!(read.directory.groups.len(), 6);
}

#[tokio::test]
async fn the_users_delta_reports_changes_and_deletions_in_both_shapes() {
    for shape in [RemovedShape::Object, RemovedShape::Text] {
        let entra = tenant().await;
        entra.set_removed_shape(shape);
        let first = full_read(&entra).await;
        let cursor = Some(first.cursor.clone());

        // No change: an incremental read with no users, and a new link.
        let quiet = read_with(&entra.spec(), &entra.secrets(), cursor.clone())
            .await
            .unwrap();
        assert!(!quiet.directory.complete);
        assert!(quiet.directory.users.is_empty());
        assert_eq!(quiet.directory.groups.len(), 7, "groups are read in full every time");

        entra.update_user(&uid(1), |u| u.enabled = false);
        entra.add_user(EntraUser::new(&uid(30), "new@contoso.com"));
        entra.delete_user(&uid(2), false);
        entra.delete_user(&uid(4), true);
        entra.update_user(&uid(9), |u| u.mail = Some("renamed@contoso.com".into()));
        entra.update_user(&uid(9), |u| u.mail = Some("renamed.again@contoso.com".into()));
        let read = read_with(&entra.spec(), &entra.secrets(), Some(quiet.cursor.clone()))
            .await
            .unwrap();
        let d = read.directory;
        assert!(!d.complete);
        assert_eq!(
            sorted_users(&d.users),
            vec![
                (uid(1), Some("user1@contoso.com".into()), true, false),
                // Soft-deleted: its email from the recycle bin; hard-deleted: the id only.
                (uid(2), Some("user2@contoso.com".into()), false, true),
                (uid(4), None, false, true),
                (uid(9), Some("renamed.again@contoso.com".into()), false, false),
                (uid(30), Some("new@contoso.com".into()), false, false),
            ],
            "{shape:?}"
        );
        assert!(
            !group(&d.groups, &gid(1)).members.contains(&uid(2)),
            "deleted users leave groups"
        );
        assert_ne!(read.cursor[CURSOR_USERS_DELTA], quiet.cursor[CURSOR_USERS_DELTA]);
        assert_eq!(entra.requests_to("deleted_users").len(), 1);
        // The delta round paged (3 changes a page) and the stored link was followed as given.
        let delta = entra.requests_to("users_delta");
        assert!(delta.len() >= 4, "{}", delta.len());
        assert!(delta.iter().all(|r| r.query_param("$top").is_none()));
    }
}

#[tokio::test]
async fn an_expired_delta_link_means_a_full_read() {
    let entra = tenant().await;
    let first = full_read(&entra).await;
    entra.expire_delta_links();
    entra.update_user(&uid(1), |u| u.enabled = false);
    let read = read_with(&entra.spec(), &entra.secrets(), Some(first.cursor.clone()))
        .await
        .unwrap();
    assert!(read.directory.complete, "a full read");
    assert_eq!(read.directory.users.len(), 22);
    assert_ne!(read.cursor[CURSOR_USERS_DELTA], first.cursor[CURSOR_USERS_DELTA]);
    // A link of another Graph root is not followed: a full read too.
    let mut foreign = first.cursor.clone();
    foreign.insert(
        CURSOR_USERS_DELTA.into(),
        "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x".into(),
    );
    let before = entra.requests_to("users_delta").len();
    let read = read_with(&entra.spec(), &entra.secrets(), Some(foreign)).await.unwrap();
    assert!(read.directory.complete);
    assert_eq!(
        entra.requests_to("users_delta").len(),
        before + 1,
        "only the new round's start"
    );
}

async fn read_filtered(
    entra: &EntraDouble,
    user_filter: Option<&str>,
    group_filter: Option<&str>,
    groups: bool,
) -> ReadResult {
    let spec = EntraIdSource {
        user_filter: user_filter.map(str::to_string),
        group_filter: group_filter.map(str::to_string),
        ..entra.spec()
    };
    let mut source = connect_with(&spec, &entra.secrets(), fast()).await.unwrap();
    source
        .read(&ReadRequest {
            users: true,
            groups,
            cursor: None,
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn filters_by_email_group_membership_name_and_administrative_unit() {
    let entra = tenant().await;
    let r = read_filtered(&entra, Some("include:USER1@contoso.com, user2@contoso.com"), None, true).await;
    assert_eq!(user_ids(&r.directory.users), [uid(1), uid(2)]);
    let r = read_filtered(&entra, Some("exclude:user1@contoso.com"), None, true).await;
    assert_eq!(r.directory.users.len(), 21);

    // includeGroup: transitive members (Platform holds Engineering and user 20), computed from
    // direct members; with groups off, the listed group and its descendants are read for it.
    let r = read_filtered(&entra, Some(&format!("includeGroup:{}", gid(4))), None, false).await;
    let mut want: Vec<String> = (0..11).chain([20]).filter(|i| *i != 7).map(uid).collect();
    want.sort();
    assert_eq!(user_ids(&r.directory.users), want);
    assert!(r.directory.groups.is_empty());
    let r = read_filtered(&entra, Some(&format!("excludeGroup:{},{}", gid(6), gid(2))), None, true).await;
    assert_eq!(
        r.directory.users.len(),
        22 - 3 - 4,
        "Leadership (16, Finance: 14, 15) and Sales (11-13, 8)"
    );
    assert!(!r.directory.restrict_users_to_groups);

    // Groups by name; users in no synced group are then left out by the core.
    let r = read_filtered(&entra, None, Some("include:engineering,Sales"), true).await;
    let mut names: Vec<&str> = r.directory.groups.iter().map(|g| g.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Engineering", "Sales"]);
    assert!(r.directory.restrict_users_to_groups);
    let r = read_filtered(&entra, None, Some("exclude:Empty"), true).await;
    assert_eq!(r.directory.groups.len(), 6);

    // Groups by administrative unit.
    entra.set_unit(
        "au-1",
        vec![(Kind::Group, gid(5)), (Kind::User, uid(1)), (Kind::Group, gid(6))],
    );
    let r = read_filtered(&entra, None, Some("includeAdministrativeUnit:au-1"), true).await;
    let mut ids: Vec<String> = r.directory.groups.iter().map(|g| g.external_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, [gid(5), gid(6)]);
    let r = read_filtered(&entra, None, Some("excludeadministrativeunit:au-1"), true).await;
    assert_eq!(r.directory.groups.len(), 5);

    // Ids that do not exist are spec errors.
    let spec = EntraIdSource {
        group_filter: Some("includeAdministrativeUnit:au-missing".into()),
        ..entra.spec()
    };
    let err = read_with(&spec, &entra.secrets(), None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("administrative unit au-missing does not exist"),
        "{err}"
    );
    let spec = EntraIdSource {
        user_filter: Some(format!("includeGroup:{}", gid(99))),
        ..entra.spec()
    };
    let err = read_with(&spec, &entra.secrets(), None).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidSpec(_)) && err.to_string().contains("does not exist"),
        "{err}"
    );
}

/// The source with fast retries, and the Bitwarden double's client.
struct EntraConnector {
    entra: EntraDouble,
    bitwarden: BitwardenDouble,
}

#[async_trait]
impl Connector for EntraConnector {
    async fn source(
        &self,
        spec: &DirectorySyncSpec,
        secrets: &dyn SecretStore,
    ) -> Result<Box<dyn DirectorySource>, Error> {
        let SourceSpec::EntraId(entra) = &spec.source else {
            panic!("an Entra spec")
        };
        Ok(Box::new(EntraDirectory::connect(entra, secrets, fast()).await?))
    }
    async fn bitwarden(&self, _: &DirectorySyncSpec, _: &dyn SecretStore) -> Result<Box<dyn BitwardenApi>, Error> {
        Ok(Box::new(self.bitwarden.client()))
    }
}

#[tokio::test]
async fn a_sync_whose_read_fails_sends_nothing_and_keeps_its_cursor() {
    let c = EntraConnector {
        entra: tenant().await,
        bitwarden: BitwardenDouble::start().await,
    };
    let spec = DirectorySyncSpec {
        bitwarden: c.bitwarden.spec(),
        source: SourceSpec::EntraId(c.entra.spec()),
        sync: SyncOptions::default(),
        collections: Vec::new(),
        mode: Mode::Apply,
        suspend: false,
    };
    let mut secrets = c.entra.secrets();
    for (k, v) in [
        ("client_id", c.bitwarden.client_id()),
        ("client_secret", c.bitwarden.client_secret()),
    ] {
        secrets.insert(crate::support::bitwarden::SECRET_NAME, k, v);
    }
    let outcome = engine::run(&spec, &SyncState::default(), &RunOptions::default(), &secrets, &c)
        .await
        .unwrap();
    assert_eq!(c.bitwarden.imports().len(), 1);
    let state = outcome.state.clone();
    assert!(state.cursor.contains_key(CURSOR_USERS_DELTA));

    // The third page of members breaks for good: the sync fails, nothing more is sent, and the
    // cursor stays as it was.
    c.entra.fail_batched("members", 3, usize::MAX, 503, None);
    let err = engine::run(
        &spec,
        &state,
        &RunOptions {
            force: true,
            ..Default::default()
        },
        &secrets,
        &c,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), Reason::SourceUnavailable);
    assert_eq!(c.bitwarden.imports().len(), 1);
    // The double is used through the connector only.
    let _ = &c.entra;
}

#[test]
fn the_double_and_the_client_use_only_what_the_vendor_describes() {
    let Some(users_yml) =
        crate::support::vendor::vendor_spec("msgraph-v1.0-Users.yml", "Entra: Graph paths, parameters, fields")
    else {
        return;
    };
    let Some(groups_yml) =
        crate::support::vendor::vendor_spec("msgraph-v1.0-Groups.yml", "Entra: Graph paths, parameters, fields")
    else {
        return;
    };
    let load = |p: &std::path::Path| -> Value {
        let text = std::fs::read_to_string(p).unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    };
    let users = load(&users_yml);
    let groups = load(&groups_yml);
    let resolve = |doc: &Value, v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .trim_start_matches("#/")
                .split('/')
                .fold(doc.clone(), |d, k| d[k].clone()),
            None => v.clone(),
        }
    };
    let params = |doc: &Value, path: &str| -> Vec<String> {
        let op = &doc["paths"][path]["get"];
        assert!(op.is_object(), "GET {path} is described");
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| resolve(doc, p)["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The lists and the query options the client sends.
    for (doc, path, used) in [
        (&users, "/users", vec!["$select", "$top"]),
        (&groups, "/groups", vec!["$select", "$top"]),
        (&groups, "/groups/{group-id}/members", vec!["$select", "$top"]),
        (&groups, "/groups/microsoft.graph.delta()", vec!["$select"]),
    ] {
        let names = params(doc, path);
        for u in used {
            assert!(names.iter().any(|n| n == u), "{path} takes {u}: {names:?}");
        }
        assert_eq!(
            doc["paths"][path]["get"]["x-ms-pageable"]["nextLinkName"], "@odata.nextLink",
            "{path} pages by @odata.nextLink"
        );
    }
    // Delta answers carry @odata.deltaLink (users delta is not in these slices: providers.md 1.3).
    let delta = &groups["paths"]["/groups/microsoft.graph.delta()"]["get"]["responses"]["2XX"]["content"]["application/json"]
        ["schema"]["properties"];
    assert!(delta["@odata.deltaLink"].is_object() && delta["@odata.nextLink"].is_object());
    // The fields read.
    let schemas = &users["components"]["schemas"];
    let user_props = |name: &str| -> bool {
        let user = &schemas["microsoft.graph.user"];
        let own = user["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["properties"][name].is_object());
        own || name == "id"
    };
    for field in ["mail", "userPrincipalName", "accountEnabled", "id"] {
        assert!(user_props(field), "user.{field}");
    }
    let group = &groups["components"]["schemas"]["microsoft.graph.group"];
    assert!(
        group["allOf"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["properties"]["displayName"].is_object())
    );
    let dobj = &groups["components"]["schemas"]["microsoft.graph.directoryObjectCollectionResponse"]["properties"];
    assert!(dobj["value"].is_object() && dobj["@odata.nextLink"].is_object());
    // Graph's error body: error.code and error.message.
    let err = &users["components"]["schemas"]["microsoft.graph.ODataErrors.MainError"]["properties"];
    assert!(err["code"].is_object() && err["message"].is_object());
}

/// `dirsync test --json` prints what `bwdc test` prints for the same tenant (derived by hand from
/// `sync-semantics.md`: user displayName = email; group userIds = the flattened direct user
/// members, guests included; everything sorted).
#[tokio::test(flavor = "multi_thread")]
async fn dirsync_test_prints_what_bwdc_test_prints() {
    let id = |n: u8| format!("{n:x}{n:x}{n:x}{n:x}{n:x}{n:x}{n:x}{n:x}-0000-4000-8000-000000000000");
    let (alice, bob, carol, dave, erin, frank) = (id(10), id(11), id(12), id(13), id(14), id(15));
    let gid = |n: u8| format!("10000000-0000-4000-8000-00000000000{n}");
    let (backend, engineering, everyone, sales) = (gid(1), gid(2), gid(3), gid(4));
    let entra = EntraDouble::start().await;
    entra.set_page_sizes(2, 2, 2, 2);
    let users = vec![
        EntraUser::new(&alice, "Alice@Contoso.com"),
        EntraUser {
            mail: None,
            ..EntraUser::new(&bob, "Bob@Contoso.com")
        },
        EntraUser {
            mail: Some("carol@contoso.onmicrosoft.com".into()),
            ..EntraUser::new(&carol, "carol.cooper@contoso.com")
        },
        EntraUser {
            enabled: false,
            ..EntraUser::new(&dave, "dave@contoso.com")
        },
        EntraUser {
            mail: None,
            ..EntraUser::new(&erin, "erin_example.com#EXT#@contoso.onmicrosoft.com")
        },
        EntraUser::new(&frank, "frank@contoso.com"),
    ];
    let member = |k: Kind, id: &String| (k, id.clone());
    let groups = vec![
        EntraGroup::new(
            &backend,
            "Backend",
            vec![member(Kind::User, &bob), member(Kind::User, &dave)],
        ),
        EntraGroup::new(
            &engineering,
            "Engineering",
            vec![
                member(Kind::User, &alice),
                member(Kind::User, &bob),
                member(Kind::Group, &backend),
            ],
        ),
        EntraGroup::new(
            &everyone,
            "Everyone",
            vec![
                member(Kind::Group, &engineering),
                member(Kind::Group, &sales),
                member(Kind::User, &frank),
                (Kind::Device, "laptop-1".into()),
            ],
        ),
        EntraGroup::new(
            &sales,
            "Sales",
            vec![member(Kind::User, &carol), member(Kind::User, &erin)],
        ),
    ];
    entra.set_directory(users, groups);
    let bitwarden = BitwardenDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entra.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: bitwarden-org-key, namespace: identity}}
stringData: {{client_id: "{bw_id}", client_secret: "{bw_secret}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: entra-app, namespace: identity}}
stringData: {{client_id: "{client_id}", client_secret: "{secret}"}}
---
apiVersion: dirsync.dev/v1alpha1
kind: DirectorySync
metadata: {{name: corp-entra, namespace: identity}}
spec:
  bitwarden: {{serverUrl: "{bw}", apiKeySecretRef: {{name: bitwarden-org-key}}}}
  source:
    entraId:
      tenantId: {TENANT}
      credentialsSecretRef: {{name: entra-app}}
      authorityUrl: "{uri}"
      graphUrl: "{uri}"
"#,
            bw_id = bitwarden.client_id(),
            bw_secret = bitwarden.client_secret(),
            client_id = entra.client_id(),
            secret = entra.client_secret(),
            bw = bitwarden.url(),
            uri = entra.uri(),
        ),
    )
    .unwrap();
    let path = file.display().to_string();
    let run = |extra: Option<&'static str>| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
                .args(["test", "--json", "-f", &path])
                .args(extra)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
    };
    let out = run(None).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(&entra.client_secret()), "no secret in the logs");
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let user = |id: &str, email: &str| json!({"externalId": id, "displayName": email});
    let want = json!({
        "groups": [
            {"externalId": backend, "displayName": "Backend", "userIds": [bob, dave]},
            {"externalId": engineering, "displayName": "Engineering", "userIds": [alice, bob, dave]},
            {"externalId": everyone, "displayName": "Everyone", "userIds": [alice, bob, carol, dave, erin, frank]},
            {"externalId": sales, "displayName": "Sales", "userIds": [carol, erin]}
        ],
        "enabledUsers": [
            user(&alice, "alice@contoso.com"),
            user(&bob, "bob@contoso.com"),
            user(&carol, "carol.cooper@contoso.com"),
            user(&frank, "frank@contoso.com")
        ],
        "disabledUsers": [user(&dave, "dave@contoso.com")],
        "deletedUsers": []
    });
    assert_eq!(got, want);
    assert_eq!(
        out.stdout.iter().filter(|&&b| b == b'\n').count(),
        1,
        "compact JSON: one line"
    );
    let pretty = run(Some("--pretty")).await.unwrap();
    assert!(pretty.status.success(), "{}", String::from_utf8_lossy(&pretty.stderr));
    assert!(
        pretty.stdout.starts_with(b"{\n  \"groups\": [\n    {\n"),
        "--pretty indents by two"
    );
    assert_eq!(serde_json::from_slice::<Value>(&pretty.stdout).unwrap(), want);
    assert!(bitwarden.requests().is_empty(), "test sends nothing to Bitwarden");
}
