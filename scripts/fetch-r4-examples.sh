#!/usr/bin/env bash
# Downloads the official FHIR R4 examples (npm package hl7.fhir.r4.examples@4.0.1) into
# target/fhir-examples/r4/package, where crates/carehub-fhir/tests/examples.rs looks for them.
# The examples are test data only: they are fetched on demand rather than committed (the package
# is tens of megabytes). Idempotent: does nothing when the package is already unpacked.
set -euo pipefail

package="hl7.fhir.r4.examples@4.0.1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
destination="$repo_root/target/fhir-examples/r4"

if [ -f "$destination/package/package.json" ]; then
    echo "R4 examples already in $destination/package"
    exit 0
fi

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

# `npm pack` fetches the tarball from the registry without installing or running anything.
(cd "$work_dir" && npm pack --silent "$package" >/dev/null)
tarball="$(find "$work_dir" -maxdepth 1 -name '*.tgz' | head -n 1)"
if [ -z "$tarball" ]; then
    echo "npm pack produced no tarball for $package" >&2
    exit 1
fi

# Unpack beside the destination and move into place, so an interrupted run never leaves a
# half-filled package directory that the next run would take as complete.
mkdir -p "$work_dir/unpacked"
tar xzf "$tarball" -C "$work_dir/unpacked"
mkdir -p "$destination"
rm -rf "$destination/package"
mv "$work_dir/unpacked/package" "$destination/package"
echo "R4 examples unpacked into $destination/package ($(find "$destination/package" -type f | wc -l) files)"
