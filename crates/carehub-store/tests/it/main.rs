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

/// Units that read a resource and write it back, all at once: on PostgreSQL several writers run
/// them in parallel transactions, and each must still see the one before it, so none fails
/// and no increment is lost.
#[tokio::test]
async fn concurrent_read_modify_writes_of_one_resource_lose_nothing() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let counter = json!({"resourceType": "Basic", "extension": [{"url": "n", "valueInteger": 0}]});
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.put("b", "Basic", "counter", counter, &[], Expect::Absent)
                    .await
            })
        })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let store = store.clone();
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        tasks.push(tokio::spawn(async move {
            store
                .write(|tx| {
                    Box::pin(async move {
                        let current = tx.read("b", "Basic", "counter").await?.expect("counter");
                        let mut body: serde_json::Value =
                            serde_json::from_str(current.body.as_deref().expect("live")).unwrap();
                        let n = body["extension"][0]["valueInteger"].as_i64().unwrap();
                        body["extension"][0]["valueInteger"] = json!(n + 1);
                        // Long enough for units queued meanwhile to start on other writers.
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        tx.put(
                            "b",
                            "Basic",
                            "counter",
                            body,
                            &[],
                            Expect::Version(current.version),
                        )
                        .await
                    })
                })
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every increment commits");
    }
    let stored = store.read("b", "Basic", "counter").await.unwrap().unwrap();
    let body: serde_json::Value = serde_json::from_str(stored.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["extension"][0]["valueInteger"], 40);
    assert_eq!(stored.version, 41);
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

/// Set in the child process of [`acknowledged_writes_survive_kill_9`]: the database URL to write to.
const CHILD_ENV: &str = "CAREHUB_DURABILITY_CHILD";

/// Writes from many tasks in a child process, which prints each id once its write is
/// acknowledged, is killed with SIGKILL mid-stream; every acknowledged write must be there when
/// the database is opened again.
#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        durability_child(&url);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(fresh_database());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_writes_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &database.config.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ack ") {
            acknowledged.push(id.to_owned());
            if acknowledged.len() == 400 {
                child.kill().unwrap();
                break;
            }
        }
    }
    let _ = child.wait();
    assert_eq!(acknowledged.len(), 400, "the child stopped early");
    runtime.block_on(async {
        let store = Store::open(&database.config).await.unwrap();
        for id in &acknowledged {
            assert!(
                store.read("b", "Patient", id).await.unwrap().is_some(),
                "acknowledged write {id} was lost"
            );
        }
    });
}

fn durability_child(url: &str) {
    use std::io::Write;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&carehub_store::StoreConfig::new(url))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for worker in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("k{worker}-{n}");
                    let written = id.clone();
                    store
                        .write(move |tx| {
                            Box::pin(async move {
                                tx.put(
                                    "b",
                                    "Patient",
                                    &written,
                                    json!({"resourceType": "Patient"}),
                                    &token(&written),
                                    Expect::Any,
                                )
                                .await
                            })
                        })
                        .await
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ack {id}");
                    let _ = out.flush();
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}

/// Reads served from the cache follow every committed write, including concurrent ones, and
/// never show a rolled-back one.
#[tokio::test]
async fn reads_follow_writes_through_the_cache() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let write = |family: String, fail: bool| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let stored = tx
                            .put(
                                "b",
                                "Patient",
                                "c",
                                json!({"resourceType": "Patient", "name": [{"family": family}]}),
                                &[],
                                Expect::Any,
                            )
                            .await?;
                        if fail {
                            return Err(StoreError::BadCursor("deliberate".into()));
                        }
                        Ok(stored.version)
                    })
                })
                .await
        }
    };
    let mut last = 0;
    for round in 0..30 {
        // A reader racing the write must never leave an old version in the cache.
        let reader = {
            let store = store.clone();
            tokio::spawn(async move { store.read("b", "Patient", "c").await })
        };
        last = write(format!("F{round}"), false).await.unwrap();
        let _ = reader.await.unwrap();
        let _ = write("rolled back".into(), true).await;
        let current = store.read("b", "Patient", "c").await.unwrap().unwrap();
        assert_eq!(current.version, last);
        let body: serde_json::Value =
            serde_json::from_str(current.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["name"][0]["family"], format!("F{round}"));
    }
    assert_eq!(last, 30);
}

/// Appends (fresh ids, no unit of work) share commits with units, are durable and indexed
/// like any write, and one that collides with a stored id fails without touching what is stored
/// or the units beside it.
#[tokio::test]
async fn appends_share_commits_with_units_and_fail_alone() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let event = |id: String| carehub_store::NewResource {
        resource_type: "AuditEvent".into(),
        resource: json!({"resourceType": "AuditEvent", "outcome": "0"}),
        index: token(&id),
        id,
    };
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if n % 3 == 0 {
                let id = format!("u{n}");
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            tx.put(
                                "b",
                                "Patient",
                                &id,
                                json!({"resourceType": "Patient"}),
                                &[],
                                Expect::Absent,
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .await
            } else {
                store.append("a", vec![event(format!("e{n}"))]).await
            }
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for n in 0..60 {
        let (base, resource_type, id) = if n % 3 == 0 {
            ("b", "Patient", format!("u{n}"))
        } else {
            ("a", "AuditEvent", format!("e{n}"))
        };
        let found = store.read(base, resource_type, &id).await.unwrap().unwrap();
        assert_eq!(found.version, 1, "{id}");
    }
    let mut query = carehub_fhir::search::parse_query(
        carehub_fhir::FhirVersion::R4.model(),
        "AuditEvent",
        &[("_id".into(), "e7".into())],
        &carehub_fhir::search::ParseOptions::default(),
    )
    .unwrap();
    query.total = carehub_fhir::search::Total::None;
    assert_eq!(store.search("a", &query).await.unwrap().matches.len(), 1);

    // An id that exists already: the append fails, the stored record keeps its body.
    let mut clash = event("e1".into());
    clash.resource = json!({"resourceType": "AuditEvent", "outcome": "8"});
    let beside = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|tx| {
                    Box::pin(async move {
                        tx.put(
                            "b",
                            "Patient",
                            "beside",
                            json!({"resourceType": "Patient"}),
                            &[],
                            Expect::Absent,
                        )
                        .await
                        .map(|_| ())
                    })
                })
                .await
        })
    };
    let failed = store.append("a", vec![clash]).await;
    assert!(
        matches!(failed, Err(StoreError::AlreadyExists { .. })),
        "{failed:?}"
    );
    beside.await.unwrap().unwrap();
    let kept = store.read("a", "AuditEvent", "e1").await.unwrap().unwrap();
    assert!(kept.body.as_deref().unwrap().contains(r#""outcome":"0""#));
    assert!(
        store
            .read("b", "Patient", "beside")
            .await
            .unwrap()
            .is_some()
    );
}

/// `read_recent` sees this store's own writes at once, and another process's (here a second
/// store over the same database) once its copy is older than the age asked for.
#[tokio::test]
async fn recent_reads_see_own_writes_at_once_and_others_after_max_age() {
    use std::time::Duration;
    let database = fresh_database().await;
    let here = Store::open(&database.config).await.unwrap();
    let elsewhere = Store::open(&database.config).await.unwrap();
    let put = |store: &Store, active: bool| {
        let store = store.clone();
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.put(
                            "p",
                            "ApiKey",
                            "k",
                            json!({"active": active}),
                            &[],
                            Expect::Any,
                        )
                        .await
                    })
                })
                .await
                .unwrap()
        }
    };
    let long = Duration::from_secs(3600);
    put(&here, true).await;
    assert_eq!(
        here.read_recent("p", "ApiKey", "k", long)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    put(&here, false).await;
    assert_eq!(
        here.read_recent("p", "ApiKey", "k", long)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    // Revoked from elsewhere: seen once the cached copy is too old for the caller.
    elsewhere
        .write(|tx| Box::pin(async move { tx.delete("p", "ApiKey", "k", Expect::Any).await }))
        .await
        .unwrap();
    let fresh = here
        .read_recent("p", "ApiKey", "k", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.is_deleted());
    assert!(
        here.read_recent("p", "ApiKey", "k", long)
            .await
            .unwrap()
            .unwrap()
            .is_deleted()
    );
    // Absent records are not cached: one registered elsewhere works at once.
    assert!(
        here.read_recent("p", "ApiKey", "new", long)
            .await
            .unwrap()
            .is_none()
    );
    elsewhere
        .write(|tx| {
            Box::pin(async move {
                tx.put(
                    "p",
                    "ApiKey",
                    "new",
                    json!({"active": true}),
                    &[],
                    Expect::Absent,
                )
                .await
            })
        })
        .await
        .unwrap();
    assert!(
        here.read_recent("p", "ApiKey", "new", long)
            .await
            .unwrap()
            .is_some()
    );
}

/// Bulk writes store new resources in a few statements and existing ones as new versions, and
/// both are found by their index entries.
#[tokio::test]
async fn put_many_creates_in_bulk_and_versions_what_exists() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let batch = |ids: Vec<String>| {
        ids.into_iter()
            .map(|id| carehub_store::NewResource {
                resource_type: "Patient".into(),
                resource: json!({"resourceType": "Patient", "active": true}),
                index: token(&id),
                id,
            })
            .collect::<Vec<_>>()
    };
    let first: Vec<String> = (0..450).map(|n| format!("m{n}")).collect();
    let stored = store
        .write({
            let items = batch(first.clone());
            move |tx| Box::pin(async move { tx.put_many("b", items, Expect::Any).await })
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 450);
    assert!(stored.iter().all(|v| v.version == 1));
    // Again, with some already there.
    let second: Vec<String> = (400..500).map(|n| format!("m{n}")).collect();
    let stored = store
        .write({
            let items = batch(second);
            move |tx| Box::pin(async move { tx.put_many("b", items, Expect::Any).await })
        })
        .await
        .unwrap();
    assert_eq!(stored.iter().filter(|v| v.version == 2).count(), 50);
    assert_eq!(stored.iter().filter(|v| v.version == 1).count(), 50);
    let body: serde_json::Value = serde_json::from_str(
        store
            .read("b", "Patient", "m7")
            .await
            .unwrap()
            .unwrap()
            .body
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["meta"]["versionId"], "1");
    let mut query = carehub_fhir::search::parse_query(
        carehub_fhir::FhirVersion::R4.model(),
        "Patient",
        &[("identifier".into(), "m449".into())],
        &carehub_fhir::search::ParseOptions::default(),
    )
    .unwrap();
    query.total = carehub_fhir::search::Total::None;
    let page = store.search("b", &query).await.unwrap();
    assert_eq!(page.matches.len(), 1);
    assert_eq!(page.matches[0].resource.version, 2);
}

/// A database from before composite parameters were indexed is migrated, and `reindex` gives
/// its resources the rows they lack, leaving bodies, versions and deleted resources alone.
#[tokio::test]
async fn an_older_database_is_migrated_and_indexed_again() {
    use carehub_fhir::FhirVersion;
    use carehub_fhir::search::{Indexer, ParseOptions, parse_query};
    use carehub_store::COMPOSITE_INDEX_SCHEMA;
    use sqlx::Connection;

    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    assert!(!store.predates(COMPOSITE_INDEX_SCHEMA), "a new database");
    let weight = |value: f64| {
        json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "kg"}})
    };
    for (id, value) in [("w1", 60.0), ("w2", 90.0), ("gone", 95.0)] {
        let resource = weight(value);
        store
            .write(move |tx| {
                Box::pin(async move {
                    // Written as an older carehub did: without composite rows.
                    tx.put("b", "Observation", id, resource, &[], Expect::Any)
                        .await?;
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
    }
    store
        .write(|tx| {
            Box::pin(async move { tx.delete("b", "Observation", "gone", Expect::Any).await })
        })
        .await
        .unwrap();
    store.close().await;

    // Back to the schema before composite groups.
    let mut conn = sqlx::AnyConnection::connect(&database.config.url)
        .await
        .unwrap();
    for table in [
        "token",
        "string",
        "reference",
        "date",
        "number",
        "quantity",
        "uri",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE idx_{table} DROP COLUMN grp"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DELETE FROM carehub_schema WHERE version >= {COMPOSITE_INDEX_SCHEMA}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let store = Store::open(&database.config).await.unwrap();
    assert!(store.predates(COMPOSITE_INDEX_SCHEMA));
    let query = parse_query(
        FhirVersion::R4.model(),
        "Observation",
        &[("code-value-quantity".to_owned(), "29463-7$gt80".to_owned())],
        &ParseOptions::default(),
    )
    .unwrap();
    assert!(store.search("b", &query).await.unwrap().matches.is_empty());
    let indexer = std::sync::Arc::new(Indexer::new(FhirVersion::R4));
    let indexed = store
        .reindex(
            "b",
            std::sync::Arc::new(move |resource| indexer.index(resource)),
        )
        .await
        .unwrap();
    assert_eq!(indexed, 2, "live resources only");
    let found = store.search("b", &query).await.unwrap();
    let ids: Vec<&str> = found
        .matches
        .iter()
        .map(|m| m.resource.id.as_str())
        .collect();
    assert_eq!(ids, ["w2"]);
    assert_eq!(found.matches[0].resource.version, 1, "versions unchanged");
    store.close().await;
    let store = Store::open(&database.config).await.unwrap();
    assert!(!store.predates(COMPOSITE_INDEX_SCHEMA), "migrated once");
}

/// Appends of several partitions at once (a transaction of creates and its AuditEvent) are
/// merged with the other appends of their commit, yet each caller gets back exactly what it
/// wrote, part by part and in order.
#[tokio::test]
async fn appends_of_several_parts_come_back_to_their_callers_in_order() {
    let database = fresh_database().await;
    let store = Store::open(&database.config).await.unwrap();
    let new = |resource_type: &str, id: String| carehub_store::NewResource {
        resource_type: resource_type.into(),
        resource: json!({"resourceType": resource_type}),
        index: token(&id),
        id,
    };
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        let patients: Vec<_> = (0..3)
            .map(|k| new("Patient", format!("p{n}-{k}")))
            .collect();
        let events = vec![new("AuditEvent", format!("e{n}"))];
        tasks.push(tokio::spawn(async move {
            let parts = vec![("b".to_owned(), patients), ("a".to_owned(), events)];
            (n, store.append_all(parts).await.unwrap())
        }));
    }
    for task in tasks {
        let (n, stored) = task.await.unwrap();
        let ids: Vec<Vec<&str>> = stored
            .iter()
            .map(|part| part.iter().map(|v| v.id.as_str()).collect())
            .collect();
        let patients = [format!("p{n}-0"), format!("p{n}-1"), format!("p{n}-2")];
        assert_eq!(
            ids,
            vec![
                patients.iter().map(String::as_str).collect(),
                vec![format!("e{n}").as_str()]
            ]
        );
        assert!(
            stored
                .iter()
                .flatten()
                .all(|v| v.version == 1 && v.body.is_some())
        );
        for id in &patients {
            assert!(
                store.read("b", "Patient", id).await.unwrap().is_some(),
                "{id}"
            );
        }
        let event = format!("e{n}");
        assert!(
            store
                .read("a", "AuditEvent", &event)
                .await
                .unwrap()
                .is_some()
        );
    }
}
