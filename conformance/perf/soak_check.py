#!/usr/bin/env python3
"""Checks a soak's series (the JSON of `fsctl bench mixed --interval ... --watch-pid ...`) and
plots it when matplotlib is there. Exits 1 when the soak shows an error, memory or descriptors
growing, or p99 drifting. Usage: soak_check.py SOAK.json [PLOT.png]"""
import json
import statistics
import sys


def main():
    result = json.load(open(sys.argv[1]))
    series = result["series"]
    if len(series) < 10:
        sys.exit(f"soak: only {len(series)} samples; run longer")
    # Warm-up: the first fifth, while RocksDB's memtables (128 MiB for all) and block cache
    # (64 MiB) fill.
    warm = max(1, len(series) // 5)
    tenth = max(1, len(series) // 10)
    rest = series[warm:]
    rss = [s["rss_mib"] for s in rest]
    # Descriptors other than RocksDB's table files, which grow with the data (the audit log).
    fds = [s["fds"] - (s.get("sst_fds") or 0) for s in rest]
    sst = [s.get("sst_fds") or 0 for s in rest]
    p99_early = statistics.median(s["p99_ms"] for s in rest[:tenth])
    p99_late = statistics.median(s["p99_ms"] for s in series[-tenth:])
    errors = result["errors"] + sum(s["errors"] for s in series)
    report = {
        "seconds": round(result["seconds"]),
        "ops": result["ops"],
        "ops_per_sec": round(result["ops_per_sec"], 1),
        "errors": result["errors"],
        "rss_mib": {"after_warmup": rss[0], "min": min(rss), "max": max(rss), "end": rss[-1]},
        "fds_besides_tables": {"after_warmup": fds[0], "min": min(fds), "max": max(fds),
                               "end": fds[-1]},
        "table_fds": {"after_warmup": sst[0], "end": sst[-1]},
        "p99_ms": {"after_warmup": p99_early, "last_tenth": p99_late},
    }
    print(json.dumps(report, indent=2))
    problems = []
    if errors:
        problems.append(f"{errors} errors")
    if max(rss) > 1.10 * min(rss):
        problems.append(f"resident memory moved {min(rss):.1f} -> {max(rss):.1f} MiB (> 10 %)")
    if max(fds) - min(fds) > 32:
        problems.append(f"file descriptors moved {min(fds)} -> {max(fds)}")
    if p99_late > 2 * p99_early:
        problems.append(f"p99 grew {p99_early:.2f} -> {p99_late:.2f} ms")
    if len(sys.argv) > 2:
        plot(series, sys.argv[2])
    if problems:
        sys.exit("soak: " + "; ".join(problems))
    print("soak: passed")


def plot(series, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: no matplotlib, no plot", file=sys.stderr)
        return
    t = [s["t"] / 60 for s in series]
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    for ax, key, label in zip(axes, ["ops", "p99_ms", "rss_mib", "fds"],
                              ["requests / interval", "p99 (ms)", "resident memory (MiB)",
                               "open descriptors"]):
        ax.plot(t, [s[key] for s in series])
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    fig.suptitle("fsgate soak: fsctl bench mixed --versioning --multipart, 16 connections")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
