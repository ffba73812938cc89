#!/usr/bin/env bash
# Downloads the official FHIRPath test suite (HL7 fhir-test-cases, r4/fhirpath/tests-fhir-r4.xml
# and its input resources) into target/fhirpath-tests/r4, where
# crates/carehub-fhir/tests/fhirpath_suite.rs looks for it.
#
# HL7 publishes the suite on GitHub only, which this build cannot reach; the crates.io package
# of helios-fhirpath 0.2.7 carries an unmodified copy under tests/data/r4, so the suite is taken
# from there (checked against the registry index's SHA-256). Only those data files are used;
# nothing of that crate is built or linked. Idempotent.
set -euo pipefail

crate="helios-fhirpath"
version="0.2.7"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
destination="$repo_root/target/fhirpath-tests/r4"

if [ -f "$destination/tests-fhir-r4.xml" ]; then
    echo "FHIRPath tests already in $destination"
    exit 0
fi

work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

index="https://index.crates.io"
# The sparse index says where crates are downloaded from and what each one's checksum is.
dl="$(curl -fsSL "$index/config.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dl"])')"
checksum="$(curl -fsSL "$index/he/li/$crate" | python3 -c '
import json, sys
for line in sys.stdin:
    entry = json.loads(line)
    if entry["vers"] == sys.argv[1]:
        print(entry["cksum"])
' "$version")"
if [[ "$dl" == *"{crate}"* ]]; then
    url="${dl//\{crate\}/$crate}"
    url="${url//\{version\}/$version}"
else
    url="$dl/$crate/$version/download"
fi
curl -fsSL -o "$work_dir/crate.tar.gz" "$url"
echo "$checksum  $work_dir/crate.tar.gz" | sha256sum --check --quiet

mkdir -p "$work_dir/unpacked"
tar xzf "$work_dir/crate.tar.gz" -C "$work_dir/unpacked"
mkdir -p "$(dirname "$destination")"
rm -rf "$destination"
mv "$work_dir/unpacked/$crate-$version/tests/data/r4" "$destination"
echo "FHIRPath tests unpacked into $destination ($(grep -c '<test ' "$destination/tests-fhir-r4.xml") tests)"
