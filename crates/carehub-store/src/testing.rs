//! Fresh databases for tests: a new SQLite file, or a new PostgreSQL database on the server that
//! `DATABASE_URL` names, so every test starts empty and tests run in parallel.

use std::path::PathBuf;

use sqlx::Connection;

use crate::StoreConfig;

/// A database made for one test; a SQLite file is removed when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// How to open it.
    pub config: StoreConfig,
    file: Option<PathBuf>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Creates an empty database: on PostgreSQL when `DATABASE_URL` is set, else a SQLite file.
pub async fn fresh_database() -> TestDatabase {
    let name = format!("carehub_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("DATABASE_URL") {
        Ok(admin_url) if admin_url.starts_with("postgres") => {
            sqlx::any::install_default_drivers();
            let mut admin = sqlx::AnyConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|err| panic!("cannot reach DATABASE_URL {admin_url}: {err}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|err| panic!("cannot create test database: {err}"));
            let (server, _) = admin_url
                .rsplit_once('/')
                .unwrap_or((admin_url.as_str(), ""));
            TestDatabase {
                config: StoreConfig {
                    url: format!("{server}/{name}"),
                    max_connections: 4,
                    writers: 4,
                    cache_capacity: 1000,
                },
                file: None,
            }
        }
        _ => {
            let file = std::env::temp_dir().join(format!("{name}.db"));
            TestDatabase {
                config: StoreConfig {
                    url: format!("sqlite://{}?mode=rwc", file.display()),
                    max_connections: 4,
                    writers: 4,
                    cache_capacity: 1000,
                },
                file: Some(file),
            }
        }
    }
}
