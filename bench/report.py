#!/usr/bin/env python3
"""Turns bench/run's results file into the table on stdout and a JSON file.

usage: report.py RESULTS.tsv OUT.json

RESULTS.tsv lines are FIGURE, SYSTEM, VALUE, NOTE (tab separated); VALUE is a
raw number (µs, req/s or KiB), "n/a" (not measurable yet) or "failed".
Lines "meta KEY VALUE" carry versions and settings. Every ratio is tine's
value divided by the peer's; budgets are printed and judged, never enforced.
When the run measured a baseline build as well (system "tine-base", from
BENCH_BASE_BIN), it gets a column and every figure the ratio tine/tine-base.
"""
import datetime
import json
import os
import platform
import subprocess
import sys

SYSTEMS = ["tine", "nginx+lua", "workerd", "cgi"]
PEERS = SYSTEMS[1:]
BASE = "tine-base"  # another build of tine measured in the same run

# key, label, unit shown, divisor from the raw value, budget
# budget: ("max", raw limit, text) or ("ratio_min", {peer: ratio}, text)
FIGURES = [
    ("warm_rps", "warm hello throughput", "req/s", 1,
     ("ratio_min", {"nginx+lua": 0.5, "workerd": 5.0}, ">= 0.5x nginx+lua, >= 5x workerd")),
    ("warm_p50_us", "warm latency p50 under load", "ms", 1000, None),
    ("warm_p90_us", "warm latency p90 under load", "ms", 1000, None),
    ("warm_p99_us", "warm latency p99 under load", "ms", 1000, None),
    ("warm_act_on_rps", "warm throughput, activation records on", "req/s", 1, None),
    ("warm_act_off_rps", "warm throughput, activation records off", "req/s", 1, None),
    ("warm_keys_public_rps", "warm throughput, API keys on, public route", "req/s", 1, None),
    ("warm_keys_private_rps", "warm throughput, API keys on, private route + key", "req/s", 1, None),
    ("warm_quota_rps", "warm throughput, quotas set on its namespace", "req/s", 1, None),
    ("warm_split_rps", "warm throughput, a traffic split active", "req/s", 1, None),
    ("warm_tls_rps", "warm throughput over HTTPS (HTTP/1.1)", "req/s", 1, None),
    ("conn_p50_us", "new connection + request p50", "ms", 1000, None),
    ("conn_p99_us", "new connection + request p99", "ms", 1000, None),
    ("cold_p50_us", "cold start p50", "ms", 1000, ("max", 1000, "<= 1 ms")),
    ("cold_p99_us", "cold start p99", "ms", 1000, ("max", 3000, "<= 3 ms")),
    ("cold_iso_on_p50_us", "cold start p50, isolation on", "ms", 1000, ("max", 1000, "<= 1 ms")),
    ("cold_iso_on_p99_us", "cold start p99, isolation on", "ms", 1000, ("max", 3000, "<= 3 ms")),
    ("cold_iso_off_p50_us", "cold start p50, isolation off", "ms", 1000, None),
    ("cold_iso_off_p99_us", "cold start p99, isolation off", "ms", 1000, None),
    ("pss_kib", "memory per warm instance (PSS)", "KiB", 1, ("max", 512, "<= 512 KiB")),
    ("hop_p50_us", "tine.invoke hop p50", "us", 1, ("max", 25, "<= 25 us")),
    ("hop_p99_us", "tine.invoke hop p99", "us", 1, None),
    ("chain_p50_us", "250-function invoke chain p50", "ms", 1000, ("max", 10000, "<= 10 ms")),
    ("chain_p99_us", "250-function invoke chain p99", "ms", 1000, None),
    ("group_hop_p50_us", "tine.invoke hop in a co-location group p50", "us", 1, ("max", 2, "<= 2 us")),
    ("group_hop_p99_us", "tine.invoke hop in a co-location group p99", "us", 1, None),
    ("group_chain_p50_us", "250-function chain in one group p50", "ms", 1000, ("max", 10000, "<= 10 ms")),
    ("group_chain_p99_us", "250-function chain in one group p99", "ms", 1000, None),
    ("group_chain_first_us", "250-function chain in one group, first after deploy", "ms", 1000, None),
    ("chain_fresh_p50_us", "250-function chain p50, right after its deploy", "ms", 1000, ("max", 10000, "<= 10 ms")),
    ("chain_fresh_p99_us", "250-function chain p99, right after its deploy", "ms", 1000, None),
    ("chain_idle_p50_us", "250-function chain p50, after idle gaps", "ms", 1000, None),
    ("chain_idle_p99_us", "250-function chain p99, after idle gaps", "ms", 1000, None),
    ("chain_floor_p50_us", "floor: 250 bare processes relaying, p50", "ms", 1000, None),
    ("chain_floor_p99_us", "floor: 250 bare processes relaying, p99", "ms", 1000, None),
    ("deploy_p50_us", "deploy 250 functions until served p50", "ms", 1000, ("max", 1000000, "<= 1 s")),
    ("deploy_max_us", "deploy 250 functions until served max", "ms", 1000, None),
    ("event_p50_us", "event ingest to function done p50", "ms", 1000, ("max", 2000, "<= 2 ms")),
    ("event_p99_us", "event ingest to function done p99", "ms", 1000, None),
    # Runtimes (issue 20): hello in Python, and as exec running python3 per call.
    ("cold_python_p50_us", "cold start p50, Python (fork-server)", "ms", 1000,
     ("max", 3000, "<= 3 ms, >= 10x faster than exec python3")),
    ("cold_python_p99_us", "cold start p99, Python (fork-server)", "ms", 1000, None),
    ("cold_exec_python_p50_us", "cold start p50, exec running python3", "ms", 1000, None),
    ("cold_exec_python_p99_us", "cold start p99, exec running python3", "ms", 1000, None),
    ("warm_python_rps", "warm hello throughput, Python", "req/s", 1,
     ("of_figure", ("warm_rps", 0.25), ">= 0.25x tine's warm (Lua) hello")),
    ("warm_exec_python_rps", "warm hello throughput, exec running python3", "req/s", 1, None),
    ("pss_python_kib", "memory per warm instance (PSS), Python", "KiB", 1, None),
    ("cold_node_p50_us", "cold start p50, Node (started spares)", "ms", 1000, ("max", 10000, "<= 10 ms")),
    ("cold_node_p99_us", "cold start p99, Node (started spares)", "ms", 1000, None),
    ("cold_node_burst_p50_us", "cold start p50, Node, back to back", "ms", 1000, None),
    ("cold_node_burst_p99_us", "cold start p99, Node, back to back", "ms", 1000, None),
    ("warm_node_rps", "warm hello throughput, Node", "req/s", 1,
     ("of_figure", ("warm_rps", 0.25), ">= 0.25x tine's warm (Lua) hello")),
    ("pss_node_kib", "memory per warm instance (PSS), Node", "KiB", 1, None),
]


def read_results(path):
    """Returns (values {fig: {sys: str}}, notes [(sys, fig, note)], meta {k: v})."""
    values, notes, meta = {}, [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            fig, system, value = parts[0], parts[1], parts[2]
            note = parts[3] if len(parts) > 3 else ""
            if fig == "meta":
                meta[system] = value
                continue
            if fig != "-":
                values.setdefault(fig, {})[system] = value
            if note:
                notes.append((system, fig, note))
    return values, notes, meta


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(raw, unit, div):
    n = number(raw)
    if n is None:
        return raw if raw else "-"
    x = n / div
    if unit == "req/s":
        return f"{x:,.0f}"
    if unit == "KiB":
        return f"{x:,.0f}"
    if unit == "us":
        return f"{x:.1f}"
    return f"{x:.3f}"


def judge(budget, vals, values=None):
    """Returns (met: bool | None, text) of tine's value against a budget:
    a maximum, ratios to peers, or a ratio to another of tine's figures
    ("of_figure": (key, least ratio))."""
    if budget is None:
        return None, ""
    kind, limit, text = budget
    tine = number(vals.get("tine"))
    if tine is None:
        return None, text
    if kind == "max":
        return tine <= limit, text
    if kind == "of_figure":
        other = number((values or {}).get(limit[0], {}).get("tine"))
        return (None, text) if not other else (tine / other >= limit[1], text)
    met = True
    for peer, need in limit.items():
        p = number(vals.get(peer))
        if p is None or p == 0:
            return None, text
        met = met and tine / p >= need
    return met, text


def ratios(vals, against=PEERS):
    """tine's value divided by each of `against`'s, where both are numbers."""
    out = {}
    tine = number(vals.get("tine"))
    for peer in against:
        p = number(vals.get(peer))
        if tine is not None and p:
            out[peer] = tine / p
    return out


def headline_lines(values):
    """The issue's headline: warm throughput ratios and cold start p50/p99."""
    out = []
    warm = values.get("warm_rps", {})
    rat = ratios(warm)
    parts = []
    for peer, need in (("nginx+lua", 0.5), ("workerd", 5.0)):
        if peer in rat:
            verdict = "met" if rat[peer] >= need else "MISSED"
            parts.append(f"{rat[peer]:.2f}x {peer} (budget >= {need:g}x: {verdict})")
        else:
            parts.append(f"n/a against {peer}")
    out.append("warm hello throughput: " + ", ".join(parts))
    cold = values.get("cold_p50_us", {}).get("tine"), values.get("cold_p99_us", {}).get("tine")
    parts = []
    for name, raw, limit in (("p50", cold[0], 1000), ("p99", cold[1], 3000)):
        n = number(raw)
        if n is None:
            parts.append(f"{name} {raw or 'n/a'}")
        else:
            verdict = "met" if n <= limit else "MISSED"
            parts.append(f"{name} {n / 1000:.3f} ms (budget <= {limit / 1000:g} ms: {verdict})")
    out.append("tine cold start: " + ", ".join(parts))
    if BASE in warm:
        # A change is held to "no figure worse than 3%" against the build before it.
        worse = []
        for key, label, _unit, _div, _budget in FIGURES:
            r = ratios(values.get(key, {}), [BASE]).get(BASE)
            if r is None:
                continue
            higher_is_better = key.endswith("_rps")
            if (r < 0.97) if higher_is_better else (r > 1.03):
                worse.append(f"{label} {r:.3f}x")
        r = ratios(warm, [BASE]).get(BASE)
        out.append(f"against the baseline build: warm hello {r:.3f}x" if r else "against the baseline build: n/a")
        out.append("figures more than 3% worse than the baseline: " + (", ".join(worse) if worse else "none"))
    # API keys (issue 19): the key variants against the build without keys
    # (the baseline's warm hello when measured, else this build's own).
    off = number(warm.get(BASE)) or number(warm.get("tine"))
    public = number(values.get("warm_keys_public_rps", {}).get("tine"))
    private = number(values.get("warm_keys_private_rps", {}).get("tine"))
    if off and public:
        against = "the baseline build" if number(warm.get(BASE)) else "this build's public hello"
        r = public / off
        parts = [f"public route {r:.3f}x {against} (budget >= 0.97x: {'met' if r >= 0.97 else 'MISSED'})"]
        if private:
            r = private / off
            parts.append(f"private route with a key {r:.3f}x ({'met' if r >= 0.97 else 'MISSED'})")
        out.append("API keys and audit on vs off: " + ", ".join(parts))
    # Quotas (issue 19): the same node as the public route's, with every
    # quota of its namespace set (high enough never to refuse).
    quota = number(values.get("warm_quota_rps", {}).get("tine"))
    if quota and public:
        r = quota / public
        out.append(f"quotas set vs none (same node, public route): {r:.3f}x (budget >= 0.97x: "
                   f"{'met' if r >= 0.97 else 'MISSED'})")
    # Traffic split (issue 21): hello with a split active against this
    # build's own hello without one.
    split = number(values.get("warm_split_rps", {}).get("tine"))
    alone = number(warm.get("tine"))
    if split and alone:
        r = split / alone
        out.append(f"traffic split active vs none: {r:.3f}x (budget >= 0.97x: {'met' if r >= 0.97 else 'MISSED'})")
    out += runtime_lines(values)
    tls, plain = number(values.get("warm_tls_rps", {}).get("tine")), number(warm.get("tine"))
    if tls is not None and plain:
        out.append(f"tine warm hello over HTTPS: {tls / plain:.2f}x its plain HTTP throughput (same rounds)")
    return out


def runtime_lines(values):
    """Python beside Lua and exec python3 (issue 20): cold start p50 (<= 3 ms
    and >= 10x faster than exec) and warm hello (>= 0.25x Lua's)."""
    def tine_of(key):
        return number(values.get(key, {}).get("tine"))
    py50, py99, ex50 = tine_of("cold_python_p50_us"), tine_of("cold_python_p99_us"), tine_of("cold_exec_python_p50_us")
    lua50, pyw, luaw, exw = tine_of("cold_p50_us"), tine_of("warm_python_rps"), tine_of("warm_rps"), \
        tine_of("warm_exec_python_rps")
    out = node_lines(tine_of)
    if py50 is None:
        return out
    parts = [f"p50 {py50 / 1000:.3f} ms (budget <= 3 ms: {'met' if py50 <= 3000 else 'MISSED'})"]
    if py99 is not None:
        parts.append(f"p99 {py99 / 1000:.3f} ms")
    if ex50:
        parts.append(f"{ex50 / py50:.1f}x faster than exec python3 ({ex50 / 1000:.1f} ms; budget >= 10x: "
                     f"{'met' if ex50 / py50 >= 10 else 'MISSED'})")
    if lua50:
        parts.append(f"Lua {lua50 / 1000:.3f} ms")
    out.insert(0, "Python cold start: " + ", ".join(parts))
    if pyw and luaw:
        line = (f"Python warm hello: {pyw:,.0f} req/s = {pyw / luaw:.2f}x Lua's {luaw:,.0f} "
                f"(budget >= 0.25x: {'met' if pyw / luaw >= 0.25 else 'MISSED'})")
        if exw:
            line += f"; exec python3: {exw:,.0f} req/s"
        out.insert(1, line)
    return out


def node_lines(tine_of):
    """Node beside Lua (issue 20): cold start p50 (<= 10 ms) and warm hello
    (>= 0.25x Lua's)."""
    n50, n99, nw, luaw = tine_of("cold_node_p50_us"), tine_of("cold_node_p99_us"), tine_of("warm_node_rps"), \
        tine_of("warm_rps")
    b50 = tine_of("cold_node_burst_p50_us")
    out = []
    if n50 is not None:
        line = f"Node cold start: p50 {n50 / 1000:.3f} ms (budget <= 10 ms: {'met' if n50 <= 10000 else 'MISSED'})"
        if n99 is not None:
            line += f", p99 {n99 / 1000:.3f} ms"
        if b50 is not None:
            line += f"; back to back p50 {b50 / 1000:.3f} ms"
        out.append(line)
    if nw and luaw:
        out.append(f"Node warm hello: {nw:,.0f} req/s = {nw / luaw:.2f}x Lua's {luaw:,.0f} "
                   f"(budget >= 0.25x: {'met' if nw / luaw >= 0.25 else 'MISSED'})")
    return out


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem = f"{int(f.readline().split()[1]) / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    os_name = "?"
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return {"uname": uname, "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "os": os_name,
            "python": platform.python_version()}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    values, notes, meta = read_results(argv[1])
    down = {system for system, fig, _ in notes if fig == "-"}  # could not start at all
    failed = sorted(down | {s for vals in values.values() for s, v in vals.items() if v == "failed"})
    present = [f for f in FIGURES if f[0] in values]
    base = any(BASE in vals for vals in values.values())
    systems = SYSTEMS + [BASE] if base else SYSTEMS
    compared = PEERS + [BASE] if base else PEERS
    headers = ["figure", "unit"] + systems + [f"tine/{p}" for p in compared] + ["budget (tine)"]
    rows, figures_json = [], []
    for key, label, unit, div, budget in present:
        vals = values[key]
        rat = ratios(vals, compared)
        met, btext = judge(budget, vals, values)
        verdict = {True: "met", False: "MISSED", None: "-" if not btext else "n/a"}[met]
        rows.append([label, unit] + [fmt(vals.get(s, "failed" if s in down else ""), unit, div) for s in systems]
                    + [f"{rat[p]:.3f}x" if p == BASE and p in rat else f"{rat[p]:.2f}x" if p in rat else ""
                       for p in compared]
                    + [f"{btext}: {verdict}" if btext else ""])
        figures_json.append({
            "key": key, "label": label, "unit": unit,
            "values": {s: (number(v) / div if number(v) is not None else v) for s, v in vals.items()},
            "ratios": {p: round(r, 4) for p, r in rat.items()},
            "budget": btext or None, "budget_met": met,
        })
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    m = machine()
    print()
    print(f"tine benchmarks, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {m['cpu']}, {m['nproc']} cpus, {m['memory']}, {m['os']}")
    print(f"uname: {m['uname']}")
    for k in meta:
        print(f"{k}: {meta[k]}")
    busy = number(meta.get("load_before", "").split(" ")[0])
    if busy is not None and busy > (os.cpu_count() or 1) / 2:
        print(f"WARNING: the machine was busy before the run (load {busy:g} on {os.cpu_count()} cpus): "
              "other processes share the cores, figures are noisy")
    print()
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print()
    headline = headline_lines(values)
    print("Headline (tine / peer; budgets from DESIGN.md, reported, never enforced):")
    for h in headline:
        print(f"  {h}")
    print()
    labels = {f[0]: f[1] for f in FIGURES}
    seen, note_list = set(), []
    for system, fig, note in notes:
        if (system, note) in seen:
            continue
        seen.add((system, note))
        note_list.append({"system": system, "figure": fig, "note": note})
        where = "" if fig == "-" else f", {labels.get(fig, fig)}"
        print(f"* {system}{where}: {note}")
    if failed:
        print(f"FAILED: {', '.join(failed)} could not be started or measured (see the notes)")
    out = {"timestamp": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": m, "meta": meta, "systems": systems, "figures": figures_json,
           "headline": headline, "notes": note_list, "failed_systems": failed}
    os.makedirs(os.path.dirname(os.path.abspath(argv[2])), exist_ok=True)
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
