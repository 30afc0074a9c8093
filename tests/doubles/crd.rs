//! The committed CRDs are generated from the Rust types: this test fails when they drift.

use std::path::Path;

#[test]
fn committed_crd_matches_the_types() {
    let generated = dirsync::api::crd_yaml();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in [
        "crds/directorysync.yaml",
        "charts/dirsync/crds/directorysync.yaml",
        "deploy/directorysync-crd.yaml",
    ] {
        let committed = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        assert!(
            committed == generated,
            "{path} is out of date: run scripts/gen-crds.sh (it writes every copy from `dirsync crd`) and commit it"
        );
    }
}

#[test]
fn crd_has_the_fixed_names_status_subresource_and_one_source_rule() {
    let crd: serde_json::Value =
        serde_yaml_ng::from_str(dirsync::api::crd_yaml().split_once("---\n").unwrap().1).unwrap();
    assert_eq!(crd["metadata"]["name"], "directorysyncs.dirsync.dev");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "dsync");
    assert_eq!(crd["spec"]["names"]["categories"][0], "dirsync");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["Source", "Ready", "Reason", "Users", "Groups", "Last Sync", "Age"]
    );
    let source = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["source"];
    assert_eq!(source["oneOf"].as_array().unwrap().len(), 5);
    let mode = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["mode"];
    assert_eq!(mode["enum"], serde_json::json!(["Apply", "DryRun"]));
}
