//! Project automation that is easier to keep in Rust than in shell:
//! - `cargo codegen [--check]` regenerates the FHIR metadata from the official definitions, or
//!   fails when the committed files are stale;
//! - `cargo xtask test [nextest args]` is the one test command: it fetches the official R4
//!   examples when they are missing, then runs the whole suite with nextest.

mod codegen;
mod profiles;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&workspace, args.iter().any(|a| a == "--check")),
        Some("test") => test(&workspace, &args[1..]),
        _ => bail!("usage: cargo xtask codegen [--check] | cargo xtask test [nextest args]"),
    }
}

fn test(workspace: &Path, extra: &[String]) -> Result<()> {
    // Test data that is fetched rather than committed. Without a registry the tests that use it
    // say they were skipped, and everything else still runs.
    for (script, what) in [
        ("scripts/fetch-r4-examples.sh", "the official R4 examples"),
        (
            "scripts/fetch-fhirpath-tests.sh",
            "the official FHIRPath test suite",
        ),
    ] {
        let status = Command::new("bash")
            .arg(workspace.join(script))
            .current_dir(workspace)
            .status()
            .with_context(|| format!("running {script}"))?;
        if !status.success() {
            eprintln!("warning: could not fetch {what}");
        }
    }
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(extra)
        .current_dir(workspace)
        .status()
        .context("running cargo nextest")?;
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}
