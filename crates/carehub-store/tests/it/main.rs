//! The store's guarantees, tested on a fresh database (SQLite, or PostgreSQL with DATABASE_URL).

use carehub_fhir::search::{IndexEntry, IndexValue};
use carehub_store::testing::fresh_database;
use carehub_store::{Expect, HistoryRequest, Store, StoreError};
use serde_json::json;

fn token(code: &str) -> Vec<IndexEntry> {
    vec![IndexEntry {
        param: "identifier".into(),
        value: IndexValue::Token {
            system: None,
            code: Some(code.into()),
            text: None,
        },
    }]
}

#[tokio::test]
async fn a_failed_unit_is_rolled_back_while_its_batch_mates_commit() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let id = format!("p{n}");
                        tx.put(
                            "b",
                            "Patient",
                            &id,
                            json!({"resourceType": "Patient"}),
                            &token(&id),
                            Expect::Absent,
                        )
                        .await?;
                        if n % 5 == 0 {
                            // Wrote, then failed: the write must vanish.
                            return Err(StoreError::BadCursor("deliberate".into()));
                        }
                        Ok(())
                    })
                })
                .await
        }));
    }
    let mut failed = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        assert_eq!(result.is_err(), n % 5 == 0);
        failed += usize::from(result.is_err());
    }
    assert_eq!(failed, 10);
    for n in 0..50 {
        let found = store.read("b", "Patient", &format!("p{n}")).await.unwrap();
        assert_eq!(found.is_some(), n % 5 != 0, "p{n}");
    }
    let (history, _) = store
        .history(&HistoryRequest {
            base: "b",
            limit: 100,
            ..HistoryRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(history.len(), 40);
}

#[tokio::test]
async fn versions_tombstones_and_conflicts() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let put = |expect: Expect, family: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.put(
                            "b",
                            "Patient",
                            "x",
                            json!({"resourceType": "Patient", "name": [{"family": family}]}),
                            &[],
                            expect,
                        )
                        .await
                    })
                })
                .await
        }
    };
    assert_eq!(put(Expect::Absent, "A").await.unwrap().version, 1);
    assert!(matches!(
        put(Expect::Absent, "B").await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        put(Expect::Version(7), "B").await,
        Err(StoreError::VersionConflict { current: 1, .. })
    ));
    let second = put(Expect::Version(1), "B").await.unwrap();
    assert_eq!(second.version, 2);
    let body: serde_json::Value = serde_json::from_str(second.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["id"], "x");
    assert_eq!(body["meta"]["versionId"], "2");
    let deleted = store
        .write(|tx| Box::pin(async move { tx.delete("b", "Patient", "x", Expect::Any).await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.version, 3);
    assert!(
        store
            .read("b", "Patient", "x")
            .await
            .unwrap()
            .unwrap()
            .is_deleted()
    );
    assert!(store.vread("b", "Patient", "x", 1).await.unwrap().is_some());
    // A deleted resource can be created again, continuing its version line.
    assert_eq!(put(Expect::Absent, "C").await.unwrap().version, 4);
    // Another base does not see it.
    assert!(store.read("other", "Patient", "x").await.unwrap().is_none());
}
