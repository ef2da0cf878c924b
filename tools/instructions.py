#!/usr/bin/env python3
"""Instructions per Get and per Create, by component, counted by callgrind.

Instruction counts do not depend on what else the machine is doing, so this is the figure
to compare two builds with on a shared machine (BENCHMARKS.md, round two). It starts a
release `akm serve` under `valgrind --tool=callgrind` with instrumentation off, warms each
operation up, switches instrumentation on for a fixed number of operations sent by
`akm bench` on 4 connections, dumps, and groups the exclusive cost of every function by
component (akm's own modules, then each library: rustls, ring, SQLite, tokio, the C
library). The totals include the 4 TLS handshakes and, for Get, the Creates of the 4 keys
it reads.

    cargo build --release
    python3 tools/instructions.py --akm target/release/akm [--gets 3000] [--creates 1000] \
        [--json out.json]

Two builds side by side: run it once per binary and compare the JSON. Needs valgrind
(callgrind_control, callgrind_annotate) and python3.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_suite  # noqa: E402  (the shared configuration writer)

# Components by symbol, first match wins. The exclusive cost of every function lands in
# exactly one, so the rows add up to the total.
COMPONENTS = [
    ("akm: audit (record, chain, journal)", r"\bakm::audit::"),
    ("akm: store (rows, change log, group commit)", r"\bakm::(store|group_commit)::"),
    ("akm: TTLV and KMIP encoding", r"\bakm::(ttlv|kmip)::"),
    ("akm: operations and policy", r"\bakm::(ops|policy|identity)::"),
    ("akm: connection and dispatch", r"\bakm::server::"),
    ("akm: other", r"\bakm::"),
    ("SQLite", r"sqlite3|rusqlite::"),
    ("rustls (TLS records, handshakes)", r"\brustls::|\bwebpki::"),
    ("ring / aws-lc (AES-GCM, SHA-256, signatures)", r"\bring::|\baws_lc|\bring_core_|/ring-0|"
     r"/aws-lc|"
     r"aes_hw_|aes_nohw_|gcm_|sha256_block|p256_|p384_|ecp_nistz|ChaCha|bn_mul|GFp_"),
    ("tokio (runtime, sockets)", r"\btokio::|\bmio::"),
    ("memory (malloc, free, memcpy)", r"malloc|free|memcpy|memmove|memset|realloc|calloc|\bmi_|_mi_|"
     r"_int_|alloc::"),
    ("Rust standard library", r"\bcore::|\bstd::"),
    ("other libraries", r"::"),
    ("C library and kernel entry", r"."),
]


def annotate(path):
    """{component: instructions} of one callgrind dump, and the total."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          path],
                         capture_output=True, text=True, check=True).stdout
    by = {name: 0 for name, _ in COMPONENTS}
    rows = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$")
    started = False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = rows.match(line) if started else None
        if not m:
            continue
        cost, where = int(m.group(1).replace(",", "")), m.group(2)
        # "file:function [object]": classify by the function's name, then by its file (SQLite's
        # and ring's internal functions carry no crate prefix).
        file, _, function = where.partition(":")
        symbol = re.sub(r"\s+\[[^\]]*\]$", "", function) + " @" + file
        for name, pattern in COMPONENTS:
            if re.search(pattern, symbol):
                by[name] += cost
                break
    return by, sum(by.values())


def bench(akm, config, args):
    done = subprocess.run([akm, "--config", config, "bench", "--json", "--keep",
                           "--warmup", "0", "--duration", "3600", "--connections", "4"] + args,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"akm bench {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def measure(akm, config, pid, mix, count, dumps):
    """Instructions for `count` operations of `mix`, by component."""
    bench(akm, config, ["--mix", mix, "--count", "300", "--keys", "4"])
    control(pid, "--zero")
    control(pid, "--instr=on")
    report = bench(akm, config, ["--mix", mix, "--count", str(count), "--keys", "4"])
    control(pid, "--instr=off")
    before = set(os.listdir(dumps))
    control(pid, "--dump")
    for _ in range(100):
        new = set(os.listdir(dumps)) - before
        if new:
            break
        time.sleep(0.1)
    path = os.path.join(dumps, sorted(new)[-1])
    time.sleep(0.5)
    ops = report["operations"] if isinstance(report["operations"], int) else count
    by, total = annotate(path)
    return {"operations": ops, "total": total, "per_operation": round(total / ops),
            "by_component": {k: round(v / ops) for k, v in by.items() if v}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--akm", default="target/release/akm")
    ap.add_argument("--gets", type=int, default=3000)
    ap.add_argument("--creates", type=int, default=1000)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    akm = os.path.abspath(a.akm)
    root = tempfile.mkdtemp(prefix="akm-instructions-")
    dumps = os.path.join(root, "callgrind")
    os.makedirs(dumps)
    config = perf_suite.akm_config(root)
    subprocess.run([akm, "--config", config, "init"], check=True, capture_output=True)
    p = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={dumps}/callgrind.out.%p", akm, "--config", config, "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in p.stdout:
            if line.startswith("akm serve: listening on"):
                break
        else:
            raise SystemExit("akm serve exited under valgrind before listening")
        results = {"get": measure(akm, config, p.pid, "get", a.gets, dumps),
                   "create": measure(akm, config, p.pid, "create", a.creates, dumps)}
    finally:
        perf_suite.stop(p)
    for op, r in results.items():
        print(f"{op}: {r['per_operation']:,} instructions per operation "
              f"({r['operations']:,} operations)")
        for name, v in sorted(r["by_component"].items(), key=lambda kv: -kv[1]):
            print(f"  {v:>9,}  {name}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    if os.environ.get("AKM_KEEP_CALLGRIND"):
        print(f"callgrind dumps kept in {dumps}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
