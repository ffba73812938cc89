#!/usr/bin/env python3
"""Measures `carehub up`: time to the "ready" line, time until the first search is answered, and
resident memory then. First start on a fresh data directory (which seeds test data), then three
restarts on the same directory.

    python3 scripts/startup.py [--binary target/release/carehub] [--data-dir /tmp/carehub-startup]
"""

import argparse
import shutil
import subprocess
import time
import urllib.request


def measure(command, label):
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = None
    for line in process.stdout:
        if "FHIR R4" in line and url is None:
            url = next(word for word in line.split() if word.startswith("http"))
        if line.startswith("ready"):
            break
    ready = time.monotonic() - started
    with urllib.request.urlopen(url + "/Patient?_count=1") as response:
        response.read()
    answered = time.monotonic() - started
    with open(f"/proc/{process.pid}/status") as status:
        rss_kb = int(next(line for line in status if line.startswith("VmRSS")).split()[1])
    process.kill()
    process.wait()
    print(f"| {label} | {ready * 1000:.0f} ms | {answered * 1000:.0f} ms | {rss_kb // 1024} MB |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/release/carehub")
    parser.add_argument("--data-dir", default="/tmp/carehub-startup")
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    command = [args.binary, "up", "--port", "0", "--data-dir", args.data_dir]
    print("| run | ready line | first search answered | RSS |")
    print("|---|---|---|---|")
    measure(command, "first start (seeds)")
    for _ in range(3):
        measure(command, "restart")


if __name__ == "__main__":
    main()
