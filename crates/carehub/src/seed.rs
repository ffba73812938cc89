//! Loading a synthetic test data pack into every FHIR base, in large units of work so that
//! seeding a million patients is bounded by indexing, not by commits.

use anyhow::{Context, Result};
use carehub_fhir::FhirVersion;
use carehub_fhir::search::Indexer;
use carehub_server::ServerConfig;
use carehub_store::{Expect, NewResource, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Which pack to load.
#[derive(Debug, Clone)]
pub(crate) struct PackOptions {
    /// Patients to generate.
    pub(crate) patients: u64,
    /// The pack's seed.
    pub(crate) seed: u64,
}

/// Resources written per unit of work.
const CHUNK: usize = 500;

/// Seeds every base of the configuration; `progress` shows a bar on the terminal.
pub(crate) async fn seed(
    store: &Store,
    config: &ServerConfig,
    options: &PackOptions,
    progress: bool,
) -> Result<()> {
    let spec = carehub_testdata::PackSpec {
        seed: options.seed,
        patients: options.patients,
        practices: (options.patients / 2000).clamp(3, 2000) as u32,
        trusts: (options.patients / 50_000).clamp(2, 200) as u32,
        practitioners_per_org: 3,
    };
    let pack = carehub_testdata::Pack::new(spec);
    for base in &config.bases {
        let version = match base.version {
            FhirVersion::Stu3 => carehub_testdata::FhirVersion::Stu3,
            FhirVersion::R4 => carehub_testdata::FhirVersion::R4,
        };
        let indexer = std::sync::Arc::new(Indexer::new(base.version));
        let bar = if progress {
            let total =
                pack.organisation_count() + 2 * pack.practitioner_count() + pack.patient_count();
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:40}] {pos}/{len} resources ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(base.version.label());
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut chunk: Vec<Value> = Vec::with_capacity(CHUNK);
        for resource in pack.all_resources(version) {
            chunk.push(resource);
            if chunk.len() == CHUNK {
                write_chunk(store, &base.store_key, &indexer, std::mem::take(&mut chunk)).await?;
                bar.inc(CHUNK as u64);
            }
        }
        let rest = chunk.len() as u64;
        write_chunk(store, &base.store_key, &indexer, chunk).await?;
        bar.inc(rest);
        bar.finish();
    }
    Ok(())
}

async fn write_chunk(
    store: &Store,
    key: &str,
    indexer: &std::sync::Arc<Indexer>,
    chunk: Vec<Value>,
) -> Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    // Index outside the writer so that the single writer only does I/O.
    let prepared: Vec<NewResource> = chunk
        .into_iter()
        .filter_map(|resource| {
            let resource_type = resource.get("resourceType")?.as_str()?.to_owned();
            let id = resource.get("id")?.as_str()?.to_owned();
            let index = indexer.index(&resource);
            Some(NewResource {
                resource_type,
                id,
                resource,
                index,
            })
        })
        .collect();
    let key = key.to_owned();
    store
        .write(move |tx| {
            Box::pin(async move { tx.put_many(&key, prepared, Expect::Any).await.map(|_| ()) })
        })
        .await
        .context("writing seed resources")
}
