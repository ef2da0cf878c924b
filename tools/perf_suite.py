#!/usr/bin/env python3
"""The measurements behind BENCHMARKS.md, with `akm bench` as the load tool.

Starts a release `akm serve` in a fresh directory, runs each load several times and prints the
median of every figure, then (with --pykmip) runs the same load tool against PyKMIP's server on
the same machine and prints the ratios. Also: server memory with idle connections, Get and
Locate latency as the key count grows (keys created over the wire with batched Creates), the
database size per key and the server's start time with those keys.

    cargo build --release
    python3 tools/perf_suite.py --akm target/release/akm --runs 3 \
        [--pykmip target/pykmip-venv/bin/pykmip-server] [--scale 1000,100000,1000000] \
        [--idle 10,1000,10000] [--json figures.json]

With --reference HOST:PORT it also runs the round-two sets against another KMIP server that
is already running (Cosmian KMS, say), with the client certificate of --reference-client, and
prints akm's ratio to it beside each target; --kmip sets the protocol version of every set.

At the end it prints BENCHMARKS.md's tables in Markdown, ready to paste: every target with its
measured figure, the load sets, the scale runs and the PyKMIP comparison.

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
# The KMIP version of every set that does not name one (--kmip).
KMIP = "1.4"
PYKMIP_PORT = 15797


def akm_config(root, extra="", name="akm.toml", data="data"):
    """Writes a server configuration; `extra` is appended (e.g. an [audit] section). Every
    configuration shares the certificates and the KEK of `data`; `data` names the database
    directory (the scale runs use their own, so the load runs' keys do not count)."""
    os.makedirs(os.path.join(root, "config"), exist_ok=True)
    path = os.path.join(root, "config", name)
    with open(path, "w") as f:
        f.write(
            f"""[server]
listen = "127.0.0.1:{AKM_PORT}"
auto_init = true
max_connections = 12000
max_connections_per_identity = 12000
[tls]
certs_dir = "../certs"
cert = "../certs/server.crt"
key = "../certs/server.key"
client_ca = "../certs/ca.crt"
[store]
data_dir = "../{data}"
kek_file = "../data/kek.key"
[client]
server = "localhost:{AKM_PORT}"
cert = "../certs/admin.crt"
key = "../certs/admin.key"
ca = "../certs/ca.crt"
"""
            + extra
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
    if "--kmip" not in args:
        args = args + ["--kmip", KMIP]
    r = median_of([bench(akm, config, pid, server, args) for _ in range(runs)])
    line(label, r)
    return r


LOAD_SETS = {
    "get_16": ["--mix", "get", "--connections", "16"],
    "create_16": ["--mix", "create", "--connections", "16"],
    "locate_16": ["--mix", "locate", "--connections", "16"],
    "mixed_16": ["--mix", "get=8,locate=1,create=1", "--connections", "16"],
    "get_16_kmip21": ["--mix", "get", "--connections", "16", "--kmip", "2.1"],
    "get_16_batch8": ["--mix", "get", "--connections", "16", "--batch", "8"],
    "get_1": ["--mix", "get", "--connections", "1"],
    "get_256": ["--mix", "get", "--connections", "256"],
    "create_1": ["--mix", "create", "--connections", "1"],
    "encrypt_16": ["--mix", "encrypt", "--connections", "16", "--data-bytes", "1024"],
    "new_conn_get_16": ["--mix", "get", "--connections", "16", "--new-connection"],
    "new_conn_get_16_no_resumption": ["--mix", "get", "--connections", "16", "--new-connection",
                                      "--no-resumption"],
}

# The same server with `[audit] sync = "interval"`: records written before the response and
# fdatasync'd every 50 ms (see the book's audit page), and with `"every-record"` (every record
# fdatasync'd before its response), beside the default `"by-class"`.
INTERVAL_SETS = {
    "get_16": LOAD_SETS["get_16"],
    "create_16": LOAD_SETS["create_16"],
    "get_1": LOAD_SETS["get_1"],
    "create_1": LOAD_SETS["create_1"],
}
SYNC_MODES = {
    "interval": '[audit]\nsync = "interval"\nsync_interval_ms = 50\n',
    "every_record": '[audit]\nsync = "every-record"\n',
}

SCALE_SETS = {
    "get": ["--mix", "get", "--connections", "16"],
    "get_1": ["--mix", "get", "--connections", "1"],
    "locate": ["--mix", "locate", "--connections", "16"],
    "locate_1": ["--mix", "locate", "--connections", "1"],
}


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
    ap.add_argument("--kmip", default="1.4", help="KMIP version of the sets (1.2, 1.4, 2.0, 2.1)")
    ap.add_argument("--reference", metavar="HOST:PORT",
                    help="another KMIP server, already running, to run the same sets against")
    ap.add_argument("--reference-name", default="reference")
    ap.add_argument("--reference-pid", type=int, help="its process ID (CPU and memory figures)")
    ap.add_argument("--reference-client", metavar="AKM_TOML",
                    help="an akm configuration whose [client] cert, key and CA that server "
                         "accepts")
    a = ap.parse_args()
    global KMIP
    KMIP = a.kmip
    akm = os.path.abspath(a.akm)
    root = tempfile.mkdtemp(prefix="akm-perf-")
    config = akm_config(root)
    subprocess.run([akm, "--config", config, "init"], check=True, capture_output=True)
    results = {"load_average_start": loadavg(), "cpus": os.cpu_count(),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    server = f"localhost:{AKM_PORT}"
    w = ["--warmup", "1", "--duration", a.duration]
    print(f"load average at start: {results['load_average_start']}", flush=True)

    p, _ = start_akm(akm, config)
    try:
        if not a.skip_load:
            for name, args in LOAD_SETS.items():
                results[name] = run_set(akm, config, p.pid, server, f"akm {name}", args + w, a.runs)
            results["load_average_after_load"] = loadavg()
            print(f"load average: {results['load_average_after_load']}", flush=True)
    finally:
        stop(p)

    # Idle connections on a fresh server of their own: the load sets leave the allocator
    # holding their peak, which is not what idle connections cost.
    for n in [int(x) for x in a.idle.split(",") if x]:
        p, _ = start_akm(akm, config)
        try:
            r = bench(akm, config, p.pid, server, ["--idle", str(n), "--warmup", "2"])
        finally:
            stop(p)
        results[f"idle_{n}"] = r
        print(
            f"akm idle {n:<6} connections held {r['idle_connections']} failed "
            f"{r['failed_connections']}: server RSS {r['server_rss_kib'] / 1024:.1f} MiB "
            f"({r['server_kib_per_connection'] or 0:.1f} KiB per connection; fresh server)",
            flush=True,
        )

    if not a.skip_load:
        for mode, extra in SYNC_MODES.items():
            conf = akm_config(root, extra, f"akm-{mode}.toml")
            p, _ = start_akm(akm, conf)
            try:
                for name, args in INTERVAL_SETS.items():
                    results[f"{mode}_{name}"] = run_set(
                        akm, conf, p.pid, server, f"akm audit-{mode} {name}", args + w, a.runs)
            finally:
                stop(p)

    # Scale: a database of its own, filled to each count with batched Creates over the wire
    # (many connections, so the store's group commit takes many Creates per fsync), then Get
    # and Locate on 16 and on 1 connection. The key count is read from the database.
    # The fill runs with `[audit] sync = "interval"` (the keys are committed the same way; only
    # the fill's own audit records wait less), the measurements with the default.
    scale_config = akm_config(root, "", "akm-scale.toml", data="data-scale")
    fill_config = akm_config(root, '[audit]\nsync = "interval"\n', "akm-fill.toml",
                             data="data-scale")
    db = os.path.join(root, "data-scale", "akm.db")
    for n in [int(x) for x in a.scale.split(",") if x]:
        have = objects(db) if os.path.exists(db) else 0
        if n > have:
            p, _ = start_akm(akm, fill_config)
            try:
                t0 = time.monotonic()
                bench(akm, fill_config, p.pid, server,
                      ["--mix", "create", "--batch", "50", "--connections", "32", "--warmup", "0",
                       "--duration", "86400", "--count", str(n - have), "--keys", "1",
                       "--keep"])
                took = time.monotonic() - t0
            finally:
                stop(p)
            results[f"scale_{n}_fill_seconds"] = took
            print(f"akm filled {n - have} keys in {took:.0f} s "
                  f"({(n - have) / took:.0f} Creates/s)", flush=True)
        p, _ = start_akm(akm, scale_config)
        try:
            for name, args in SCALE_SETS.items():
                results[f"scale_{n}_{name}"] = run_set(
                    akm, scale_config, p.pid, server, f"akm {n} keys {name}", args + w, a.runs)
        finally:
            stop(p)
        keys = objects(db)
        results[f"scale_{n}_keys"] = keys
        checkpoint(db)
        size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
        starts = []
        for _ in range(a.runs):
            p, took = start_akm(akm, scale_config)
            stop(p)
            starts.append(took)
        results[f"scale_{n}_db_bytes"] = size
        results[f"scale_{n}_db_bytes_per_key_by_table"] = db_breakdown(db, keys)
        results[f"scale_{n}_start_seconds"] = statistics.median(starts)
        print(f"akm {keys} keys: database {size / 2**20:.1f} MiB ({size / keys:.0f} bytes per "
              f"key, after a WAL checkpoint), start to listening "
              f"{statistics.median(starts) * 1000:.0f} ms (median of "
              f"{[round(x * 1000) for x in starts]} ms)", flush=True)

    if a.pykmip:
        results.update(pykmip(a, akm, config, root, w))
    if a.reference:
        results.update(reference(a, akm, w))
    results["load_average_end"] = loadavg()
    print(f"load average at end: {results['load_average_end']}")
    print()
    print(summary(results, a))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(root, ignore_errors=True)


def db_breakdown(db, keys):
    """Bytes per key of each table and index (SQLite's dbstat), largest first."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            rows = c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name "
                             "ORDER BY 2 DESC").fetchall()
    except sqlite3.Error:
        return None
    return {name: round(size / max(keys, 1)) for name, size in rows if size >= 4096 * 4}


def checkpoint(db):
    """Folds the WAL into the database (the server is stopped), so the size counts once."""
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def fmt(v, d=0, unit=""):
    if v is None:
        return "-"
    return f"{v:,.{d}f}{unit}"


def figure(r, lat="p99"):
    """ops/s (runs), pNN, server CPU per op, of one set's medians."""
    if not r:
        return "not run"
    runs = " / ".join(f"{x:,}" for x in r["ops_per_second_each"])
    return (f"{fmt(r['ops_per_second'])} ops/s ({runs}), {lat} "
            f"{fmt(r['latency_ms'][lat], 2)} ms, server CPU {fmt(r['server_cpu_us_per_op'])} us/op")


def met(ok):
    return "-" if ok is None else ("yes" if ok else "**no**")


def ratio_to_reference(res, name, want):
    """'2.1x the reference' and whether it reaches `want`, or why there is no ratio."""
    r, k = res.get(f"reference_{name}"), res.get(name)
    if not r:
        return "no reference server run (--reference)", None
    if not k or not r["ops_per_second"]:
        return "-", None
    x = k["ops_per_second"] / r["ops_per_second"]
    return f"{x:.2f}x ({fmt(r['ops_per_second'])} ops/s there)", x >= want


def both(*oks):
    """Met only when every known part is met; unknown when a part could not be measured."""
    if any(ok is False for ok in oks):
        return False
    return None if any(ok is None for ok in oks) else True


def comparison(res, prefix, other, sets):
    """akm beside another server, set by set, from the same load tool in the same session."""
    if not any(k.startswith(f"{prefix}_") for k in res):
        return []
    out = ["", f"| set (same load tool, same session) | akm ops/s | {other} ops/s (runs) | "
               f"akm / {other} throughput | {other} p50 / p99 ms | server CPU us/op akm / "
               f"{other} |", "|---|---|---|---|---|---|"]
    for name in sets:
        r, k = res.get(f"{prefix}_{name}"), res.get(name)
        if not (r and k):
            continue
        ratio = k["ops_per_second"] / r["ops_per_second"] if r["ops_per_second"] else None
        out.append(f"| {name} | {fmt(k['ops_per_second'])} | {fmt(r['ops_per_second'])} "
                   f"({' / '.join(f'{x:,}' for x in r['ops_per_second_each'])}) | "
                   f"{'> 1000' if ratio is None else fmt(ratio, 1)}x | "
                   f"{fmt(r['latency_ms']['p50'], 2)} / {fmt(r['latency_ms']['p99'], 2)} | "
                   f"{fmt(k['server_cpu_us_per_op'])} / {fmt(r['server_cpu_us_per_op'])} |")
    return out


def round_two_targets(res, a):
    """Issue 20's targets, each with its figure, its ratio to --reference, and whether met."""
    out = [f"Round two targets (issue 20), KMIP {a.kmip}, default configuration "
           f"(`[audit] sync = \"by-class\"`):", "",
           "| target | measured | to the reference server | met? |", "|---|---|---|---|"]

    def row(target, name, want_ratio, own_ok, lat="p99"):
        r = res.get(name)
        if not r:
            return
        ratio, ratio_ok = ratio_to_reference(res, name, want_ratio) if want_ratio else ("", True)
        out.append(f"| {target} | {figure(r, lat)} | {ratio} | "
                   f"{met(both(ratio_ok, own_ok(r)))} |")

    lat = lambda r, q: r["latency_ms"][q]
    row("Get, 1 connection: >= 2x the reference; p50 <= 0.2 ms", "get_1", 2,
        lambda r: lat(r, "p50") <= 0.2, "p50")
    row("Get, 16 connections: >= 3x the reference; >= 30,000/s; p99 < 2 ms", "get_16", 3,
        lambda r: r["ops_per_second"] >= 30000 and lat(r, "p99") < 2)
    row("Get, 256 connections: p99 < 20 ms, no errors", "get_256", None,
        lambda r: lat(r, "p99") < 20 and not r["errors"])
    row("durable Create, 1 connection: >= 2x the reference", "create_1", 2, lambda r: None)
    row("durable Create, 16 connections: >= 2x the reference", "create_16", 2, lambda r: None)
    for name, target, limit in (("get_16", "server CPU per Get <= 45 us", 45),
                                ("create_16", "server CPU per Create <= 150 us", 150)):
        r = res.get(name)
        if r and r["server_cpu_us_per_op"] is not None:
            out.append(f"| {target} | {fmt(r['server_cpu_us_per_op'])} us ({name}) | | "
                       f"{met(r['server_cpu_us_per_op'] <= limit)} |")
    row("Encrypt 1 KiB AES-GCM, 16 connections: >= 25,000/s", "encrypt_16", None,
        lambda r: r["ops_per_second"] >= 25000)
    counts = sorted(int(x) for x in a.scale.split(",") if x)
    if counts and res.get(f"scale_{counts[-1]}_db_bytes"):
        hi = counts[-1]
        keys = res[f"scale_{hi}_keys"]
        per_key = res[f"scale_{hi}_db_bytes"] / keys
        out.append(f"| bytes on disk per key at 1,000,000 keys: <= 600 | {per_key:,.0f} with "
                   f"{keys:,} keys | | {met(per_key <= 600 and keys >= 1_000_000)} |")
    idle = res.get("idle_10000")
    if idle:
        rss = idle["server_rss_kib"] / 1024
        out.append(f"| 10,000 idle mutual-TLS connections: <= 150 MiB | {rss:,.1f} MiB with "
                   f"{idle['idle_connections']:,} held | | "
                   f"{met(rss <= 150 and idle['idle_connections'] == 10000)} |")
    out.append("")
    out.append("A durable Create's own target is its ratio to the reference; without a "
               "reference run it shows '-'. The Get and Create ratios need the reference "
               "server measured in the same invocation.")
    return out


def summary(res, a):
    """BENCHMARKS.md's tables, ready to paste."""
    out = []
    add = out.append
    add(f"Measured {res['date']} with `tools/perf_suite.py --runs {a.runs} --duration "
        f"{a.duration} --scale {a.scale} --idle {a.idle}`, {res['cpus']} CPUs; load average "
        f"{res['load_average_start']} at start, {res['load_average_end']} at end. Every figure "
        f"is the median of {a.runs} runs.")
    add("")
    out.extend(round_two_targets(res, a))
    add("")
    add("Earlier targets (round one):")
    add("")
    add("| target | measured | met? |")
    add("|---|---|---|")
    g, gi = res.get("get_16"), res.get("interval_get_16")
    for label, r in (("", g), (" (`[audit] sync = \"interval\"`)", gi)):
        if r:
            add(f"| Get, 16 persistent connections: >= 30,000 ops/s, p99 < 2 ms{label} | "
                f"{figure(r)} | {met(r['ops_per_second'] >= 30000 and r['latency_ms']['p99'] < 2)} |")
    for label, r in (("", res.get("create_16")),
                     (" (`[audit] sync = \"interval\"`)", res.get("interval_create_16"))):
        if r:
            add(f"| Create (durable), 16 connections: >= 8,000 ops/s{label} | {figure(r)} | "
                f"{met(r['ops_per_second'] >= 8000)} |")
    for label, key in (("TLS resumption", "new_conn_get_16"),
                       ("no resumption", "new_conn_get_16_no_resumption")):
        r = res.get(key)
        if r:
            add(f"| New mutual-TLS connection + one Get: >= 1,500/s ({label}) | {figure(r)} | "
                f"{met(r['ops_per_second'] >= 1500)} |")
    counts = sorted(int(x) for x in a.scale.split(",") if x)
    if counts:
        lo, hi = counts[0], counts[-1]
        loc16, loc1 = res.get(f"scale_{hi}_locate"), res.get(f"scale_{hi}_locate_1")
        if loc1:
            add(f"| Locate by name with {res.get(f'scale_{hi}_keys', hi):,} keys: p99 < 2 ms | "
                f"1 connection: {figure(loc1)}; 16 connections: {figure(loc16)} | "
                f"{met(loc1['latency_ms']['p99'] < 2)} (1 connection) |")
        g_lo, g_hi = res.get(f"scale_{lo}_get_1"), res.get(f"scale_{hi}_get_1")
        if g_lo and g_hi and lo != hi:
            p_lo, p_hi = g_lo["latency_ms"]["p50"], g_hi["latency_ms"]["p50"]
            c_lo, c_hi = g_lo["server_cpu_us_per_op"], g_hi["server_cpu_us_per_op"]
            growth = (p_hi / p_lo - 1) * 100 if p_lo else None
            add(f"| Get latency within 20% from {lo:,} to {hi:,} keys | 1 connection p50 "
                f"{fmt(p_lo, 3)} -> {fmt(p_hi, 3)} ms ({fmt(growth, 0)}%), p99 "
                f"{fmt(g_lo['latency_ms']['p99'], 2)} -> {fmt(g_hi['latency_ms']['p99'], 2)} ms; "
                f"server CPU {fmt(c_lo)} -> {fmt(c_hi)} us/op | "
                f"{met(growth is not None and growth <= 20)} |")
        size = res.get(f"scale_{hi}_db_bytes")
        if size:
            keys = res[f"scale_{hi}_keys"]
            add(f"| 1,000,000 keys < 1 GiB on disk | {size / 2**20:,.1f} MiB for {keys:,} keys "
                f"({size / keys:,.0f} bytes per key) -> {size / keys * 1e6 / 2**30:.2f} GiB per "
                f"million | {met(size / keys * 1e6 < 2**30)} |")
            start = res[f"scale_{hi}_start_seconds"] * 1000
            parts = res.get(f"scale_{hi}_db_bytes_per_key_by_table") or {}
            if parts:
                add(f"| (where the bytes per key go) | "
                    + ", ".join(f"{k} {v}" for k, v in parts.items()) + " | |")
            add(f"| Server start to accepting connections < 200 ms with 1,000,000 keys | "
                f"{start:.0f} ms with {keys:,} keys (spawn to the listening line) | "
                f"{met(start < 200)} |")
    idle = res.get("idle_10000")
    if idle:
        rss = idle["server_rss_kib"] / 1024
        add(f"| 10,000 idle TLS connections < 300 MiB resident | {rss:,.1f} MiB with "
            f"{idle['idle_connections']:,} held ({fmt(idle['server_kib_per_connection'], 1)} KiB "
            f"each) | {met(rss < 300 and idle['idle_connections'] == 10000)} |")
    add("")
    add("| set | akm ops/s (runs) | p50 / p99 ms | server CPU us/op | tool CPU us/op |")
    add("|---|---|---|---|---|")
    for name in list(LOAD_SETS) + [f"{m}_{n}" for m in SYNC_MODES for n in INTERVAL_SETS]:
        r = res.get(name)
        if r:
            add(f"| {name} | {fmt(r['ops_per_second'])} ({' / '.join(f'{x:,}' for x in r['ops_per_second_each'])}) | "
                f"{fmt(r['latency_ms']['p50'], 2)} / {fmt(r['latency_ms']['p99'], 2)} | "
                f"{fmt(r['server_cpu_us_per_op'])} | {fmt(r['load_tool_cpu_us_per_op'])} |")
    if counts:
        add("")
        add("| keys stored | Get 16 conns | Get 1 conn p50 / p99 | Locate 16 conns | "
            "Locate 1 conn p50 / p99 | database | start |")
        add("|---|---|---|---|---|---|---|")
        for n in counts:
            keys = res.get(f"scale_{n}_keys", n)
            g16, g1 = res.get(f"scale_{n}_get"), res.get(f"scale_{n}_get_1")
            l16, l1 = res.get(f"scale_{n}_locate"), res.get(f"scale_{n}_locate_1")
            size = res.get(f"scale_{n}_db_bytes", 0)
            add(f"| {keys:,} | {figure(g16)} | {fmt(g1['latency_ms']['p50'], 3)} / "
                f"{fmt(g1['latency_ms']['p99'], 2)} ms, {fmt(g1['server_cpu_us_per_op'])} us | "
                f"{figure(l16)} | {fmt(l1['latency_ms']['p50'], 3)} / "
                f"{fmt(l1['latency_ms']['p99'], 2)} ms, {fmt(l1['server_cpu_us_per_op'])} us | "
                f"{size / 2**20:,.1f} MiB ({size / max(keys, 1):,.0f} B/key) | "
                f"{res.get(f'scale_{n}_start_seconds', 0) * 1000:.0f} ms |")
    out.extend(comparison(res, "pykmip", "PyKMIP", PYKMIP_SETS))
    out.extend(comparison(res, "reference", a.reference_name, REFERENCE_SETS))
    return "\n".join(out)


# The sets run against --reference: the round-two targets' workloads.
REFERENCE_SETS = ["get_1", "get_16", "get_256", "create_1", "create_16", "encrypt_16",
                  "locate_16", "mixed_16", "new_conn_get_16"]


def reference(a, akm, w):
    """The same load tool against another KMIP server the operator started (for example
    Cosmian KMS); its client certificate comes from --reference-client."""
    if not a.reference_client:
        raise SystemExit("--reference needs --reference-client (an akm.toml with its [client])")
    pid = ["--server-pid", str(a.reference_pid)] if a.reference_pid else []
    out = {}
    for name in REFERENCE_SETS:
        args = LOAD_SETS[name] + w + ["--kmip", KMIP]
        runs = []
        for _ in range(a.runs):
            cmd = [akm, "--config", a.reference_client, "bench", "--json", "--server",
                   a.reference] + pid + args
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{a.reference_name} {name}: failed: {done.stderr.strip()[:200]}")
                break
            runs.append(json.loads(done.stdout))
        if runs:
            r = median_of(runs)
            line(f"{a.reference_name} {name}", r)
            out[f"reference_{name}"] = r
    return out


def objects(db):
    """The number of objects stored (read-only; safe beside the running server)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM objects").fetchone()[0]


# What PyKMIP's server supports of the load sets (not 2.1, batches or Encrypt).
PYKMIP_SETS = ["get_16", "create_16", "locate_16", "get_1", "new_conn_get_16",
               "new_conn_get_16_no_resumption"]


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
        for name in PYKMIP_SETS:
            args = LOAD_SETS[name]
            out[f"pykmip_{name}"] = run_set(akm, config, p.pid, server, f"pykmip {name}",
                                            args + w, a.runs)
    finally:
        stop(p)
    return out


if __name__ == "__main__":
    sys.exit(main())
