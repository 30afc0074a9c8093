//! Entra ID workload identity through the TokenRequest API, on a real kube-apiserver: the
//! controller asks the API server for a token of the DirectorySync's ServiceAccount (audience
//! `api://AzureADTokenExchange`) and sends it to the Entra double, which checks it as Entra does:
//! signature with the cluster's service-account key (from the API server's issuer discovery),
//! issuer, subject and audience. The permission is opted into as a user would with the chart's
//! `rbac.serviceAccountTokens` (here: a Role bound to the test user), never in the default RBAC.

use std::time::Duration;

use crate::support::bitwarden::{BitwardenDouble, SECRET_NAME as BW_SECRET};
use crate::support::entra::{
    EntraDouble, EntraGroup, EntraUser, FEDERATION_AUDIENCE, Federation, IssuerKey, Kind, TENANT,
};
use crate::support::kube::{self as k, ControllerProcess, ready, wait_for, wait_reason};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dirsync::api::DirectorySync;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};

const SERVICE_ACCOUNT: &str = "dirsync-entra";

/// The cluster's service-account issuer and its signing key, as Entra reads them (OIDC discovery).
async fn issuer(client: &kube::Client) -> (String, IssuerKey) {
    let get = |path: &str| http::Request::get(path).body(Vec::new()).unwrap();
    let config: Value = client
        .request(get("/.well-known/openid-configuration"))
        .await
        .expect("issuer discovery");
    let jwks: Value = client.request(get("/openid/v1/jwks")).await.expect("the issuer's keys");
    let key = &jwks["keys"][0];
    (
        config["issuer"].as_str().unwrap().to_string(),
        IssuerKey::Components {
            n: key["n"].as_str().unwrap().into(),
            e: key["e"].as_str().unwrap().into(),
        },
    )
}

/// What the chart's `rbac.serviceAccountTokens` with `serviceAccountTokenNames` grants, in one
/// namespace, bound to the test user the controller runs as.
async fn allow_token_requests(client: &kube::Client, ns: &str, names: &[&str]) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some("dirsync-sa-tokens".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["serviceaccounts/token".into()]),
            verbs: vec!["create".into()],
            resource_names: Some(names.iter().map(|n| n.to_string()).collect()),
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("dirsync-sa-tokens".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "dirsync-sa-tokens".into(),
        },
        subjects: Some(vec![Subject {
            kind: "User".into(),
            name: "tester".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

async fn service_account(client: &kube::Client, ns: &str, name: &str) {
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
}

fn entra_sync(name: &str, entra: &EntraDouble, bitwarden: &BitwardenDouble, service_account: &str) -> DirectorySync {
    serde_json::from_value(json!({
        "apiVersion": "dirsync.dev/v1alpha1",
        "kind": "DirectorySync",
        "metadata": {"name": name},
        "spec": {
            "bitwarden": {"serverUrl": bitwarden.url(), "apiKeySecretRef": {"name": BW_SECRET}},
            "source": {"entraId": {
                "tenantId": TENANT,
                "workloadIdentity": {"clientId": entra.client_id(), "serviceAccountName": service_account},
                "authorityUrl": entra.uri(),
                "graphUrl": entra.uri()
            }},
            "sync": {"interval": "5m"}
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_workload_identity_with_a_token_from_the_api_server() {
    let client = k::admin().await;
    let ns = k::namespace(&client, "entra").await;
    let (issuer, key) = issuer(&client).await;
    let subject = format!("system:serviceaccount:{ns}:{SERVICE_ACCOUNT}");
    let entra = EntraDouble::start().await;
    entra.set_directory(
        vec![
            EntraUser::new("u-1", "alice@contoso.com"),
            EntraUser::new("u-2", "bob@contoso.com"),
        ],
        vec![EntraGroup::new("g-1", "Engineering", vec![(Kind::User, "u-1".into())])],
    );
    entra.trust_federated(Federation {
        issuer: issuer.clone(),
        subject: subject.clone(),
        key,
    });
    let bitwarden = BitwardenDouble::start().await;
    k::put_secret(
        &client,
        &ns,
        k::secret(
            BW_SECRET,
            &[
                ("client_id", &bitwarden.client_id()),
                ("client_secret", &bitwarden.client_secret()),
            ],
        ),
    )
    .await;
    service_account(&client, &ns, SERVICE_ACCOUNT).await;
    service_account(&client, &ns, "other").await;
    allow_token_requests(&client, &ns, &[SERVICE_ACCOUNT]).await;

    let controller = ControllerProcess::start(Some(&ns), &[]);
    let api: Api<DirectorySync> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &entra_sync("corp", &entra, &bitwarden, SERVICE_ACCOUNT),
    )
    .await
    .unwrap();
    let ds = wait_for(
        &api,
        "corp",
        Duration::from_secs(90),
        &controller,
        "Ready after the first sync",
        |d| ready(d).is_some_and(|(status, _, _)| status == "True"),
    )
    .await;
    assert_eq!(ready(&ds).unwrap().1, "Synced", "{:?}", ds.status);
    assert_eq!(bitwarden.imports().len(), 1);

    // What reached Entra: a token the API server signed, for Entra's audience and this
    // ServiceAccount, short-lived.
    let form = entra.requests_to("token")[0].form();
    assert_eq!(form["client_id"], entra.client_id());
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(form["client_assertion"].split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], json!(issuer));
    assert_eq!(claims["sub"], json!(subject));
    assert_eq!(claims["aud"], json!([FEDERATION_AUDIENCE]));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime <= 3600, "{lifetime}");

    // A ServiceAccount the controller was not allowed: the condition says how to allow it.
    if k::cluster().user.is_some() {
        api.create(
            &PostParams::default(),
            &entra_sync("other", &entra, &bitwarden, "other"),
        )
        .await
        .unwrap();
        let ds = wait_reason(&api, "other", "SourceAuthFailed", &controller).await;
        let (_, _, message) = ready(&ds).unwrap();
        assert!(message.contains("rbac.serviceAccountTokens"), "{message}");
    }
}
