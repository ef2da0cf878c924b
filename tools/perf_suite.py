#!/usr/bin/env python3
"""The measurements behind BENCHMARKS.md, with `akm bench` as the load tool.

Starts a release `akm serve` in a fresh directory, runs each load several times and prints the
median of every figure, then (with --pykmip) runs the same load tool against PyKMIP's server on
the same machine and prints the ratios. Also: server memory with idle connections, Get and
Locate latency as the key count grows (keys created over the wire with batched Creates), the
database size per key and the server's start time with those keys.

    cargo build --release
    python3 tools/perf_suite.py --akm target/release/akm --runs 3 \
        [--pykmip target/pykmip-venv/bin/pykmip-server] [--scale 1000,100000] [--idle 10,1000,10000]

Needs python3 only (no packages) and Linux (/proc). The idle-connection run needs a file
descriptor limit above the connection count (ulimit -n).
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

AKM_PORT = 15796
PYKMIP_PORT = 15797


def akm_config(root):
    os.makedirs(os.path.join(root, "config"), exist_ok=True)
    path = os.path.join(root, "config", "akm.toml")
    with open(path, "w") as f:
        f.write(
            f"""[server]
listen = "127.0.0.1:{AKM_PORT}"
auto_init = true
max_connections = 12000
[tls]
certs_dir = "../certs"
cert = "../certs/server.crt"
key = "../certs/server.key"
client_ca = "../certs/ca.crt"
[store]
data_dir = "../data"
[client]
server = "localhost:{AKM_PORT}"
cert = "../certs/admin.crt"
key = "../certs/admin.key"
ca = "../certs/ca.crt"
"""
        )
    return path


def start_akm(akm, config):
    """Starts the server; returns (process, seconds from spawn to the listening line)."""
    t0 = time.monotonic()
    p = subprocess.Popen(
        [akm, "--config", config, "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in p.stdout:
        if line.startswith("akm serve: listening on"):
            return p, time.monotonic() - t0
    raise SystemExit("akm serve exited before listening")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def bench(akm, config, pid, server, args):
    cmd = [akm, "--config", config, "bench", "--json", "--server", server]
    cmd += ["--server-pid", str(pid)] + args
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: {out.stderr}")
    return json.loads(out.stdout)


def median_of(runs):
    """The median of each numeric figure across runs."""

    def med(values):
        values = [v for v in values if isinstance(v, (int, float))]
        return statistics.median(values) if values else None

    r = dict(runs[0])
    for k in ("ops_per_second", "errors", "load_tool_cpu_us_per_op", "server_cpu_us_per_op",
              "server_peak_rss_kib"):
        r[k] = med([x.get(k) for x in runs])
    r["latency_ms"] = {
        q: med([x["latency_ms"][q] for x in runs]) for q in runs[0]["latency_ms"]
    }
    r["runs"] = len(runs)
    r["ops_per_second_each"] = [round(x["ops_per_second"]) for x in runs]
    return r


def line(label, r):
    lat = r["latency_ms"]
    fmt = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
    print(
        f"{label:<44} {r['ops_per_second']:>9.0f} ops/s  p50 {fmt(lat['p50'])} p90 "
        f"{fmt(lat['p90'])} p99 {fmt(lat['p99'])} p999 {fmt(lat['p999'])} max "
        f"{fmt(lat['max'])} ms  errors {r['errors']:.0f}  server {fmt(r['server_cpu_us_per_op'], 0)}"
        f" us/op  tool {fmt(r['load_tool_cpu_us_per_op'], 0)} us/op  peak "
        f"{fmt((r['server_peak_rss_kib'] or 0) / 1024, 1)} MiB  runs {r['ops_per_second_each']}",
        flush=True,
    )


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_set(akm, config, pid, server, label, args, runs):
    r = median_of([bench(akm, config, pid, server, args) for _ in range(runs)])
    line(label, r)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--akm", default="target/release/akm")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", default="5")
    ap.add_argument("--pykmip", help="the pykmip-server executable, for the reference runs")
    ap.add_argument("--scale", default="1000,100000", help="key counts for the scale runs")
    ap.add_argument("--idle", default="10,1000,10000", help="idle connection counts")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--json", help="write every figure here")
    a = ap.parse_args()
    akm = os.path.abspath(a.akm)
    root = tempfile.mkdtemp(prefix="akm-perf-")
    config = akm_config(root)
    subprocess.run([akm, "--config", config, "init"], check=True, capture_output=True)
    results = {"load_average_start": loadavg(), "cpus": os.cpu_count()}
    server = f"localhost:{AKM_PORT}"
    w = ["--warmup", "1", "--duration", a.duration]
    print(f"load average at start: {results['load_average_start']}", flush=True)

    p, _ = start_akm(akm, config)
    try:
        if not a.skip_load:
            sets = {
                "get_16": ["--mix", "get", "--connections", "16"],
                "create_16": ["--mix", "create", "--connections", "16"],
                "locate_16": ["--mix", "locate", "--connections", "16"],
                "mixed_16": ["--mix", "get=8,locate=1,create=1", "--connections", "16"],
                "get_16_kmip21": ["--mix", "get", "--connections", "16", "--kmip", "2.1"],
                "get_16_batch8": ["--mix", "get", "--connections", "16", "--batch", "8"],
                "get_1": ["--mix", "get", "--connections", "1"],
                "new_conn_get_16": ["--mix", "get", "--connections", "16", "--new-connection"],
            }
            for name, args in sets.items():
                results[name] = run_set(akm, config, p.pid, server, f"akm {name}", args + w, a.runs)
            results["load_average_after_load"] = loadavg()
            print(f"load average: {results['load_average_after_load']}", flush=True)
        for n in [int(x) for x in a.idle.split(",") if x]:
            r = bench(akm, config, p.pid, server, ["--idle", str(n), "--warmup", "2"])
            results[f"idle_{n}"] = r
            print(
                f"akm idle {n:<6} connections held {r['idle_connections']} failed "
                f"{r['failed_connections']}: server RSS {r['server_rss_kib'] / 1024:.1f} MiB "
                f"({r['server_kib_per_connection'] or 0:.1f} KiB per connection)",
                flush=True,
            )
    finally:
        stop(p)

    # Scale: fill to each count with batched Creates, then Get and Locate latency. The load
    # runs above already stored keys, so the fill counts the rows that are there.
    db = os.path.join(root, "data", "akm.db")
    for n in [int(x) for x in a.scale.split(",") if x]:
        p, _ = start_akm(akm, config)
        try:
            have = objects(db)
            if n > have:
                bench(akm, config, p.pid, server,
                      ["--mix", "create", "--batch", "100", "--connections", "4", "--warmup", "0",
                       "--duration", "86400", "--count", str(n - have), "--keys", "1"])
            for name, args in {"get": ["--mix", "get", "--connections", "16"],
                               "locate": ["--mix", "locate", "--connections", "16"],
                               "get_1": ["--mix", "get", "--connections", "1"]}.items():
                results[f"scale_{n}_{name}"] = run_set(
                    akm, config, p.pid, server, f"akm {n} keys {name}", args + w, a.runs)
        finally:
            stop(p)
        n = objects(db)
        results[f"scale_{n}_keys"] = n
        size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
        starts = []
        for _ in range(a.runs):
            p, took = start_akm(akm, config)
            stop(p)
            starts.append(took)
        results[f"scale_{n}_db_bytes"] = size
        results[f"scale_{n}_start_seconds"] = statistics.median(starts)
        print(f"akm {n} keys: database {size / 2**20:.1f} MiB ({size / n:.0f} bytes per key, "
              f"{n} keys stored), start to listening {statistics.median(starts) * 1000:.0f} ms "
              f"(median of {starts})", flush=True)

    if a.pykmip:
        results.update(pykmip(a, akm, config, root, w))
    results["load_average_end"] = loadavg()
    print(f"load average at end: {results['load_average_end']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(root, ignore_errors=True)


def objects(db):
    """The number of objects stored (read-only; safe beside the running server)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM objects").fetchone()[0]


def pykmip(a, akm, config, root, w):
    """The same load tool against PyKMIP's server, with the same certificates."""
    d = os.path.join(root, "pykmip")
    os.makedirs(os.path.join(d, "policies"), exist_ok=True)
    certs = os.path.join(root, "certs")
    conf = os.path.join(d, "server.conf")
    with open(conf, "w") as f:
        f.write(
            f"""[server]
hostname=127.0.0.1
port={PYKMIP_PORT}
certificate_path={certs}/server.crt
key_path={certs}/server.key
ca_path={certs}/ca.crt
auth_suite=TLS1.2
policy_path={d}/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path={d}/pykmip.db
"""
        )
    p = subprocess.Popen([a.pykmip, "-f", conf, "-l", os.path.join(d, "server.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = f"localhost:{PYKMIP_PORT}"
    out = {}
    try:
        for _ in range(100):
            if subprocess.run(["sh", "-c", f"ss -ltn | grep -q :{PYKMIP_PORT}"]).returncode == 0:
                break
            time.sleep(0.2)
        sets = {
            "get_16": ["--mix", "get", "--connections", "16"],
            "create_16": ["--mix", "create", "--connections", "16"],
            "locate_16": ["--mix", "locate", "--connections", "16"],
            "get_1": ["--mix", "get", "--connections", "1"],
            "new_conn_get_16": ["--mix", "get", "--connections", "16", "--new-connection"],
        }
        for name, args in sets.items():
            out[f"pykmip_{name}"] = run_set(akm, config, p.pid, server, f"pykmip {name}",
                                            args + w, a.runs)
    finally:
        stop(p)
    return out


if __name__ == "__main__":
    sys.exit(main())
