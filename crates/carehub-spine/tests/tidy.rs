//! PDS's rules know no HTTP and no SQL: only `pds/repo.rs` touches the store, and only
//! `pds_http.rs` the web framework (ARCHITECTURE.md, "Architecture Invariant" of
//! `carehub-spine`).

#[test]
fn the_pds_rules_know_no_http_and_no_sql() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pds");
    let mut checked = 0;
    for name in ["record.rs", "search.rs", "view.rs", "error.rs", "seed.rs"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).expect("readable");
        for forbidden in [
            "axum",
            "hyper",
            "reqwest",
            "sqlx",
            "carehub_store",
            "carehub_server",
            "carehub_gateway",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} mentions {forbidden}",
                path.display()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}
