#!/usr/bin/env python3
"""The default and FIPS flavours side by side (BENCHMARKS.md, "Default and FIPS flavours"):
Get, Create, Encrypt and new-connection Get on 16 connections, `akm bench` as the load tool,
each flavour's release server in a fresh directory of its own. The two flavours' runs
alternate (default, FIPS, default, ...) so a change of load on the machine falls on both.

    cargo build --release && cp target/release/akm /tmp/akm-default
    cargo build --release --no-default-features --features fips && cp target/release/akm /tmp/akm-fips
    python3 tools/flavour_bench.py --default /tmp/akm-default --fips /tmp/akm-fips --runs 3
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_suite as ps  # noqa: E402

SETS = {
    "Get, 16 connections": ["--mix", "get", "--connections", "16"],
    "Create, 16 connections": ["--mix", "create", "--connections", "16"],
    "Encrypt, 16 connections": ["--mix", "encrypt", "--connections", "16", "--data-bytes", "64"],
    "Get, new connection each, 16": ["--mix", "get", "--connections", "16", "--new-connection"],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--default", required=True)
    ap.add_argument("--fips", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="5")
    a = ap.parse_args()
    timing = ["--warmup", "1", "--duration", a.duration]
    servers = {}
    try:
        for name, akm in (("default", a.default), ("fips", a.fips)):
            root = tempfile.mkdtemp(prefix=f"akm-flavour-{name}-")
            config = ps.akm_config(root)
            p, _ = ps.start_akm(akm, config)
            servers[name] = (akm, config, p)
            ps.stop(p)  # both cannot hold the port at once: restarted per run below
        print(f"load average at start {ps.loadavg()}", flush=True)
        results = {}
        for label, args in SETS.items():
            runs = {"default": [], "fips": []}
            for _ in range(a.runs):
                for name, (akm, config, _) in servers.items():
                    p, _ = ps.start_akm(akm, config)
                    try:
                        runs[name].append(
                            ps.bench(akm, config, p.pid, f"localhost:{ps.AKM_PORT}", args + timing)
                        )
                    finally:
                        ps.stop(p)
            for name in runs:
                r = ps.median_of(runs[name])
                results[(label, name)] = r
                ps.line(f"{label} [{name}]", r)
        print(f"load average at end {ps.loadavg()}\n")
        print("| load | default ops/s | FIPS ops/s | FIPS/default | default p50 / p99 ms | FIPS p50 / p99 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for label in SETS:
            d, f = results[(label, "default")], results[(label, "fips")]
            ratio = f["ops_per_second"] / d["ops_per_second"] if d["ops_per_second"] else 0
            print(
                f"| {label} | {d['ops_per_second']:.0f} | {f['ops_per_second']:.0f} | {ratio:.2f} | "
                f"{d['latency_ms']['p50']:.2f} / {d['latency_ms']['p99']:.2f} | "
                f"{f['latency_ms']['p50']:.2f} / {f['latency_ms']['p99']:.2f} |"
            )
    finally:
        for _, _, p in servers.values():
            if p.poll() is None:
                ps.stop(p)


if __name__ == "__main__":
    main()
