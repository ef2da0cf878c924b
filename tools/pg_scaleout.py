#!/usr/bin/env python3
"""Scaling out on PostgreSQL (README "Scaling out", BENCHMARKS.md): Get and durable Create
throughput of one akm node on SQLite, one akm node on PostgreSQL, and two akm nodes on the
same PostgreSQL database, with `akm bench` as the load tool.

Starts a private PostgreSQL (Debian's binaries; initdb into a temporary directory, as the
`postgres` user when run as root; fsync and synchronous_commit on, as a production server
keeps them), release `akm serve` processes and the load, all on this machine; prints the
median of each figure over --runs runs and a Markdown table.

    cargo build --release
    python3 tools/pg_scaleout.py --akm target/release/akm --runs 3 [--json figures.json]

The same total load (16 connections) is offered in every set: 16 to the one node, or 8 to each
of the two. On one machine the nodes, the database and the load tool share the same cores; the
figures show what a second node costs and gives here, not what separate machines give.
Needs python3 only (no packages), Linux, and the postgresql package (or --pg-bin).
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_suite as ps  # noqa: E402  (the shared helpers: bench, medians, output lines)

PG_PORT = 15832
NODE_PORTS = [15811, 15812]
SQLITE_PORT = 15810

SETS = {
    "get": ["--mix", "get"],
    "create": ["--mix", "create"],
}
CONNECTIONS = 16


def pg_bin(given):
    if given:
        return given
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL not installed: apt-get install postgresql, or --pg-bin")
    return os.path.dirname(found[-1])


def as_pg_user(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


def start_postgres(bindir, root):
    """initdb and start a private server; returns its data directory."""
    pg = os.path.join(root, "pg")
    os.makedirs(pg)
    if os.geteuid() == 0:
        shutil.chown(pg, "postgres")
    data = os.path.join(pg, "data")
    subprocess.run(as_pg_user([os.path.join(bindir, "initdb"), "-D", data, "-U", "akm",
                               "--auth=trust", "-E", "UTF8"]), check=True,
                   capture_output=True)
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"listen_addresses = '127.0.0.1'\nport = {PG_PORT}\n"
                f"unix_socket_directories = '{pg}'\nmax_connections = 200\n")
    subprocess.run(as_pg_user([os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-l",
                               os.path.join(pg, "server.log"), "start"]), check=True,
                   capture_output=True)
    subprocess.run([os.path.join(bindir, "psql"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U",
                    "akm", "-d", "postgres", "-qc", "CREATE DATABASE akm"], check=True)
    return data


def stop_postgres(bindir, data):
    subprocess.run(as_pg_user([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "fast",
                               "stop"]), capture_output=True)


def config(root, name, port, store):
    """A node's configuration: the shared certificates and KEK, its own data directory."""
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "akm.toml")
    with open(path, "w") as f:
        f.write(f"""[server]
listen = "127.0.0.1:{port}"
auto_init = true
[tls]
certs_dir = "../certs"
cert = "../certs/server.crt"
key = "../certs/server.key"
client_ca = "../certs/ca.crt"
[store]
data_dir = "data"
kek_file = "../kek.key"
{store}
[status]
enabled = false
[client]
server = "localhost:{port}"
cert = "../certs/admin.crt"
key = "../certs/admin.key"
ca = "../certs/ca.crt"
""")
    return path


def postgres_store(node):
    return (f'backend = "postgres"\nurl = "host=127.0.0.1 port={PG_PORT} user=akm dbname=akm"\n'
            f'tls = "off"\nnode_id = "{node}"\n')


def run_on(akm, nodes, args, runs):
    """Runs `args` on every (config, process, port) of `nodes` at once, the connections split
    between them; the median over `runs` of the summed throughput and the worst p50/p99."""
    per_node = CONNECTIONS // len(nodes)
    results = []
    for _ in range(runs):
        procs = []
        for cfg, proc, port in nodes:
            cmd = [akm, "--config", cfg, "bench", "--json", "--server", f"localhost:{port}",
                   "--server-pid", str(proc.pid), "--kmip", ps.KMIP,
                   "--connections", str(per_node)] + args
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        outs = []
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                raise SystemExit(f"akm bench: {err}")
            outs.append(json.loads(out))
        results.append({
            "ops_per_second": sum(o["ops_per_second"] for o in outs),
            "errors": sum(o["errors"] for o in outs),
            "p50": max(o["latency_ms"]["p50"] for o in outs),
            "p99": max(o["latency_ms"]["p99"] for o in outs),
            "server_cpu_us_per_op": sum((o.get("server_cpu_us_per_op") or 0) * o["ops_per_second"]
                                        for o in outs) / max(1, sum(o["ops_per_second"]
                                                                    for o in outs)),
        })
    med = lambda k: sorted(r[k] for r in results)[len(results) // 2]
    return {k: med(k) for k in results[0]} | {
        "runs": [round(r["ops_per_second"]) for r in results]}


def measure(akm, label, nodes, runs, out):
    for name, args in SETS.items():
        r = run_on(akm, nodes, args, runs)
        out[f"{label}/{name}"] = r
        print(f"{label:<28} {name:<7} {r['ops_per_second']:>8.0f} ops/s  p50 {r['p50']:.2f} "
              f"p99 {r['p99']:.2f} ms  errors {r['errors']}  server "
              f"{r['server_cpu_us_per_op']:.0f} us/op  runs {r['runs']}", flush=True)


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--akm", default="target/release/akm")
    a.add_argument("--pg-bin")
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--json")
    args = a.parse_args()
    akm = os.path.abspath(args.akm)
    bindir = pg_bin(args.pg_bin)
    root = tempfile.mkdtemp(prefix="akm-scaleout-")
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    out = {"machine": {"cpus": os.cpu_count(), "loadavg_before": ps.loadavg()}}
    data = start_postgres(bindir, root)
    running = []
    try:
        # SQLite, the embedded default (auto_init makes the PKI and the KEK they all share).
        s = config(root, "sqlite", SQLITE_PORT, "")
        p, _ = ps.start_akm(akm, s)
        running.append(p)
        measure(akm, "SQLite, 1 node", [(s, p, SQLITE_PORT)], args.runs, out)
        ps.stop(p)
        running.clear()
        nodes = []
        for i, port in enumerate(NODE_PORTS):
            c = config(root, f"n{i + 1}", port, postgres_store(f"n{i + 1}"))
            nodes.append((c, port))
        p1, _ = ps.start_akm(akm, nodes[0][0])
        running.append(p1)
        measure(akm, "PostgreSQL, 1 node", [(nodes[0][0], p1, nodes[0][1])], args.runs, out)
        p2, _ = ps.start_akm(akm, nodes[1][0])
        running.append(p2)
        measure(akm, "PostgreSQL, 2 nodes", [(nodes[0][0], p1, nodes[0][1]),
                                            (nodes[1][0], p2, nodes[1][1])], args.runs, out)
    finally:
        for p in running:
            ps.stop(p)
        stop_postgres(bindir, data)
        shutil.rmtree(root, ignore_errors=True)
    out["machine"]["loadavg_after"] = ps.loadavg()
    print("\n| setup | Get ops/s (p99 ms) | durable Create ops/s (p99 ms) |\n|---|---|---|")
    for label in ("SQLite, 1 node", "PostgreSQL, 1 node", "PostgreSQL, 2 nodes"):
        g, c = out[f"{label}/get"], out[f"{label}/create"]
        print(f"| {label} | {g['ops_per_second']:,.0f} ({g['p99']:.2f}) | "
              f"{c['ops_per_second']:,.0f} ({c['p99']:.2f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
