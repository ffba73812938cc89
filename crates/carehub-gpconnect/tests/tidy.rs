//! The domain knows no HTTP and no SQL: its files name neither the web framework nor the
//! database driver (ARCHITECTURE.md, "Architecture Invariant" of `carehub-gpconnect`).

#[test]
fn the_domain_knows_no_http_and_no_sql() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/domain exists") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        for forbidden in [
            "axum",
            "hyper",
            "reqwest",
            "sqlx",
            "carehub_store",
            "carehub_server",
            "carehub_gateway",
            "pds::repo",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} mentions {forbidden}: the GP Connect domain must stay free of HTTP and SQL",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} domain files found");
}
