#!/usr/bin/env python3
"""Summarize a bench/hello.sh run: Nexus vs the kailash-nexus peer, per concurrency.

Usage:
    summarize.py [FILE...] [--strict]     # reads stdin when no FILE is given
    summarize.py --self-test

Input: the labelled lines hello.sh / peer.sh print, e.g.
    nexus conc=16 rps=1479.3 p50_ms=9.60 p95_ms=52.00 p99_ms=92.00 max_ms=120.00 requests=29586 non2xx=0 sock_errors=0 tool=wrk
    peer conc=16 FAILED (no wrk result)
    nexus healthy_s=7.31 rss_mib_idle=310.2
    nexus persisted_runs=29601 requests=29586 warmup_requests=3012
    run date=2025-01-01T00:00:00Z dur_s=20 concs=16,64 cpus=2 rev=none
Any other line is ignored. Prints a table (rps / p50 / p95 / p99 / errors per side, where
errors = non2xx + sock_errors), the nexus/peer rps ratio and whether nexus p95 <= peer p95,
then start-up, memory and the persistence check, and lists problems (failed or missing levels,
levels that ran < 90 % of dur_s, e.g. cut short by Ctrl-C, a failed persistence check).

Persistence check: every completed request (bench levels + bench.sh's 2 s warm-up) should
have left one execution row. Allowed window for persisted_runs:
    [requests + warmup - non2xx,  requests + warmup + in-flight + sock_errors]
where in-flight = sum of the concurrencies + the warm-up concurrency (requests cut off when a
run's time is up may still complete server-side; timed-out ones too).

Exit status: 0; 1 if no result line was found; with --strict also 3 if a level failed or is
missing on either side, or the persistence check does not hold.
"""

from __future__ import annotations

import re
import sys

LABELS = ("nexus", "peer")
KV = re.compile(r"^([A-Za-z_][\w.-]*)=(\S*)$")


def parse(lines):
    """-> {"levels": {label: {conc: dict}}, "info": {label: dict}, "persist": {label: dict}}"""
    out = {"levels": {}, "info": {}, "persist": {}}
    for raw in lines:
        parts = raw.strip().split()
        if len(parts) < 2:
            continue
        label, toks = parts[0], parts[1:]
        kv = {}
        other = []
        for t in toks:
            m = KV.match(t)
            if m:
                kv[m.group(1)] = m.group(2)
            else:
                other.append(t)
        if not kv:
            continue
        if "conc" in kv:
            try:
                conc = int(kv["conc"])
            except ValueError:
                continue
            if "FAILED" in other or "rps" not in kv:
                kv = {"conc": kv["conc"], "failed": "1"}
            out["levels"].setdefault(label, {})[conc] = kv
        elif other:  # free text (sample responses, messages): not a metrics line
            continue
        elif "persisted_runs" in kv:
            out["persist"][label] = kv
        else:
            out["info"].setdefault(label, {}).update(kv)
    return out


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, TypeError, ValueError):
        return None


def errors(d):
    a, b = num(d, "non2xx"), num(d, "sock_errors")
    return None if a is None or b is None else int(a + b)


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def side_cells(d):
    if d is None:
        return ["missing", "", "", "", ""]
    if d.get("failed"):
        return ["FAILED", "", "", "", ""]
    return [
        fmt(num(d, "rps"), ".1f"),
        fmt(num(d, "p50_ms"), ".2f"),
        fmt(num(d, "p95_ms"), ".2f"),
        fmt(num(d, "p99_ms"), ".2f"),
        fmt(errors(d), "d"),
    ]


def short_run(d, dur):
    """A level that ran < 90 % of its duration (Ctrl-C makes wrk stop early and report)."""
    if d is None or d.get("failed") or not dur:
        return None
    req, rps = num(d, "requests"), num(d, "rps")
    if not req or not rps:
        return None
    ran = req / rps
    return f"ran only {ran:.1f} s of {dur:g} s (interrupted?)" if ran < 0.9 * dur else None


def persistence(data):
    """-> (text, ok: bool | None)"""
    p = data["persist"].get("nexus")
    if p is None:
        return "nexus persistence: not measured", None
    runs, req = num(p, "persisted_runs"), num(p, "requests")
    warm = num(p, "warmup_requests")
    if runs is None or req is None:
        return f"nexus persistence: incomplete ({' '.join(f'{k}={v}' for k, v in p.items())})", False
    levels = [d for d in data["levels"].get("nexus", {}).values() if not d.get("failed")]
    concs = sorted(data["levels"].get("nexus", {}))
    non2xx = sum(int(num(d, "non2xx") or 0) for d in levels)
    sock = sum(int(num(d, "sock_errors") or 0) for d in levels)
    inflight = sum(concs) + (concs[0] if concs else 0)
    sent = req + (warm or 0)
    lo, hi = sent - non2xx, sent + inflight + sock
    ok = lo <= runs <= hi
    warm_txt = f" + warm-up {int(warm)}" if warm is not None else " (warm-up not counted)"
    return (
        f"nexus persistence: persisted_runs={int(runs)} vs requests={int(req)}{warm_txt}; "
        f"allowed [{int(lo)}, {int(hi)}] (diff {int(runs - sent):+d}) -> "
        f"{'ok' if ok else 'MISMATCH'}"
    ), ok


def summarize(data):
    """-> (report text, problems: list[str])"""
    problems = []
    concs = sorted({c for lab in LABELS for c in data["levels"].get(lab, {})})
    run = data["info"].get("run", {})
    tools = sorted({d.get("tool", "?") for lab in LABELS for d in data["levels"].get(lab, {}).values() if not d.get("failed")})
    head = "hello-world execution benchmark: Nexus vs kailash-nexus (handler, durability off)"
    meta = [f"{k}={v}" for k, v in run.items()]
    if tools:
        meta.append("tool=" + ",".join(tools))
    rows = [
        ["conc", "nexus rps", "p50", "p95", "p99", "err", "peer rps", "p50", "p95", "p99", "err", "rps ratio", "p95 nexus<=peer"]
    ]
    for c in concs:
        n = data["levels"].get("nexus", {}).get(c)
        p = data["levels"].get("peer", {}).get(c)
        ok_n = n is not None and not n.get("failed")
        ok_p = p is not None and not p.get("failed")
        if not ok_n:
            problems.append(f"nexus conc={c} {'failed' if n else 'missing'}")
        if not ok_p:
            problems.append(f"peer conc={c} {'failed' if p else 'missing'}")
        for lab, d in (("nexus", n), ("peer", p)):
            short = short_run(d, num(run, "dur_s"))
            if short:
                problems.append(f"{lab} conc={c} {short}")
        ratio = better = None
        if ok_n and ok_p:
            nr, pr = num(n, "rps"), num(p, "rps")
            if nr is not None and pr:
                ratio = f"{nr / pr:.2f}x"
            n95, p95 = num(n, "p95_ms"), num(p, "p95_ms")
            if n95 is not None and p95 is not None:
                better = "yes" if n95 <= p95 else "no"
        rows.append([str(c)] + side_cells(n) + side_cells(p) + [ratio or "n/a", better or "n/a"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(r):
        cells = [r[i].rjust(widths[i]) for i in range(len(r))]
        return " | ".join([cells[0], "  ".join(cells[1:6]), "  ".join(cells[6:11]), cells[11], cells[12]])

    out = [head]
    if meta:
        out.append("  " + " ".join(meta))
    out.append("  latencies in ms; err = non2xx + sock_errors; ratio = nexus rps / peer rps")
    out.append("")
    out.append(line(rows[0]))
    out.append("-" * len(line(rows[0])))
    out.extend(line(r) for r in rows[1:])
    out.append("")
    for lab in LABELS:
        i = data["info"].get(lab, {})
        bits = []
        if "healthy_s" in i:
            bits.append(f"healthy in {i['healthy_s']} s")
        if "rss_mib_idle" in i or "rss_mib_after" in i:
            bits.append(f"RSS idle {i.get('rss_mib_idle', 'n/a')} MiB, after load {i.get('rss_mib_after', 'n/a')} MiB")
        if "stop_s" in i:
            bits.append(f"stopped in {i['stop_s']} s")
        vers = [f"{k} {v}" for k, v in i.items() if k.startswith("kailash")]
        if vers:
            bits.append(", ".join(vers))
        if bits:
            out.append(f"{lab}: " + "; ".join(bits))
    text, ok = persistence(data)
    out.append(text)
    if ok is False:
        problems.append("persistence check does not hold")
    if problems:
        out.append("problems: " + "; ".join(problems))
    return "\n".join(out) + "\n", problems


SAMPLE = """\
run date=2025-01-01T00:00:00Z dur_s=20 concs=16,64 cpus=2 rev=none
nexus healthy_s=7.31 rss_mib_idle=310.2
nexus: created workflow hello-world
nexus conc=16 rps=1600.0 p50_ms=9.00 p95_ms=40.00 p99_ms=80.00 max_ms=100.00 requests=32000 non2xx=0 sock_errors=0 tool=wrk
nexus conc=64 rps=1100.0 p50_ms=50.00 p95_ms=140.00 p99_ms=160.00 max_ms=300.00 requests=22000 non2xx=2 sock_errors=1 tool=wrk
nexus rss_mib_after=400.5
nexus persisted_runs=57210 requests=54000 warmup_requests=3200
nexus stop_s=1.20
peer kailash-nexus=2.16.0 kailash=2.65.0
peer healthy_s=0.84 rss_mib_idle=118.8
peer sample={"outputs":{"handler":{"message":"Hello, u0!"}}} http=200
peer conc=16 rps=1479.3 p50_ms=9.60 p95_ms=52.00 p99_ms=92.00 max_ms=120.00 requests=29586 non2xx=0 sock_errors=0 tool=wrk
peer conc=64 rps=1206.0 p50_ms=44.00 p95_ms=133.00 p99_ms=145.00 max_ms=200.00 requests=24120 non2xx=0 sock_errors=0 tool=wrk
"""


def self_test():
    data = parse(SAMPLE.splitlines())
    assert sorted(data["levels"]["nexus"]) == [16, 64], data
    assert data["info"]["peer"]["healthy_s"] == "0.84"
    assert "sample" not in data["info"].get("peer", {})
    text, problems = summarize(data)
    rows = {ln.split("|")[0].strip(): ln for ln in text.splitlines() if "|" in ln}
    assert "1.08x" in rows["16"] and rows["16"].rstrip().endswith("yes"), rows["16"]
    assert "0.91x" in rows["64"] and rows["64"].rstrip().endswith("no"), rows["64"]
    assert " 3 " in rows["64"].split("|")[1] + " ", rows["64"]  # errors = 2 non2xx + 1 sock
    # sent = 54000 + 3200 = 57200; window [57198, 57200 + 96 + 1]; 57210 is inside
    assert "-> ok" in text and not problems, (text, problems)
    bad = parse(SAMPLE.replace("persisted_runs=57210", "persisted_runs=100").splitlines())
    assert "MISMATCH" in summarize(bad)[0] and summarize(bad)[1]
    failed = parse(
        [ln for ln in SAMPLE.splitlines() if not ln.startswith("peer conc=64")] + ["peer conc=64 FAILED (no wrk result)"]
    )
    t, pr = summarize(failed)
    assert "FAILED" in t and any("peer conc=64" in p for p in pr), t
    short = parse(SAMPLE.replace("requests=24120", "requests=1206").splitlines())
    t, pr = summarize(short)
    assert any("peer conc=64 ran only 1.0 s of 20 s" in x for x in pr), pr
    t, pr = summarize(parse(["nexus conc=16 rps=10.0 p50_ms=1 p95_ms=2 p99_ms=3 non2xx=0 sock_errors=0"]))
    assert "missing" in t and "not measured" in t, t
    print(summarize(data)[0], end="")
    print("self-test ok")


def main(argv):
    if "--self-test" in argv:
        self_test()
        return 0
    strict = "--strict" in argv
    files = [a for a in argv if a != "--strict"]
    lines = []
    if files:
        for f in files:
            with open(f, encoding="utf-8", errors="replace") as fh:
                lines.extend(fh)
    else:
        lines = sys.stdin.readlines()
    data = parse(lines)
    if not any(data["levels"].values()):
        print("no benchmark result lines (`<label> conc=... rps=...`) found", file=sys.stderr)
        return 1
    text, problems = summarize(data)
    sys.stdout.write(text)
    return 3 if strict and problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
