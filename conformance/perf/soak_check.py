#!/usr/bin/env python3
"""Checks a soak's series (the JSON of `fsctl bench mixed --interval ... --watch-pid ...`) and
plots it when matplotlib is there. Exits 1 when the soak shows an error, memory or descriptors
growing, or p99 drifting. Usage: soak_check.py SOAK.json [PLOT.png [ROCKSDB.jsonl]]

ROCKSDB.jsonl (soak.sh writes it) holds RocksDB's memory gauges each minute (and mimalloc's
committed memory: fsgate's own allocations). With it, the
warm-up lasts until the block cache is full, if that is after the first fifth: the cache fills
as the data grows (it holds the tables' indexes and filters), at a pace set by the load.

Resident memory is flat when, after the warm-up, every sample is within 10 % of their median
and the last tenth's median is within 10 % of the first tenth's (no trend). Memtables fill
and flush all along (128 MiB for all families), so resident memory is a saw-tooth around a
level, not a line: max/min is reported too."""
BLOCK_CACHE_MIB = 64
import json
import statistics
import sys


def main():
    result = json.load(open(sys.argv[1]))
    series = result["series"]
    if len(series) < 10:
        sys.exit(f"soak: only {len(series)} samples; run longer")
    rocks = []
    if len(sys.argv) > 3:
        rocks = [json.loads(line) for line in open(sys.argv[3]) if line.strip()]
    # Warm-up: the first fifth, while RocksDB's memtables (128 MiB for all) and block cache
    # (64 MiB) fill; longer (up to half the run) while the block cache is not yet full.
    warm = max(1, len(series) // 5)
    full = next((r["t"] for r in rocks if r.get("block_cache", 0) >= 0.9 * BLOCK_CACHE_MIB), None)
    if full is not None:
        warm = min(len(series) // 2, max(warm, sum(1 for s in series if s["t"] < full)))
    elif rocks:
        warm = len(series) // 2
    tenth = max(1, len(series) // 10)
    rest = series[warm:]
    rss = [s["rss_mib"] for s in rest]
    rss_median = statistics.median(rss)
    rss_early = statistics.median(rss[:tenth])
    rss_late = statistics.median(rss[-tenth:])
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
        "warmup_minutes": round(rest[0]["t"] / 60, 1),
        "rss_mib": {"after_warmup": rss[0], "min": min(rss), "max": max(rss), "end": rss[-1],
                    "median": rss_median, "first_tenth_median": rss_early,
                    "last_tenth_median": rss_late,
                    "max_over_min": round(max(rss) / min(rss), 3)},
        "fds_besides_tables": {"after_warmup": fds[0], "min": min(fds), "max": max(fds),
                               "end": fds[-1]},
        "table_fds": {"after_warmup": sst[0], "end": sst[-1]},
        "p99_ms": {"after_warmup": p99_early, "last_tenth": p99_late},
    }
    print(json.dumps(report, indent=2))
    problems = []
    if errors:
        problems.append(f"{errors} errors")
    off = max(abs(r - rss_median) for r in rss) / rss_median
    if off > 0.10:
        problems.append(f"resident memory {min(rss):.1f}..{max(rss):.1f} MiB strays {off:.0%} "
                        f"from its median {rss_median:.1f} (> 10 %)")
    if abs(rss_late - rss_early) > 0.10 * rss_early:
        problems.append(f"resident memory moved {rss_early:.1f} -> {rss_late:.1f} MiB (> 10 %)")
    if max(fds) - min(fds) > 32:
        problems.append(f"file descriptors moved {min(fds)} -> {max(fds)}")
    if p99_late > 2 * p99_early:
        problems.append(f"p99 grew {p99_early:.2f} -> {p99_late:.2f} ms")
    if len(sys.argv) > 2:
        plot(series, rocks, rest[0]["t"] / 60, sys.argv[2])
    if problems:
        sys.exit("soak: " + "; ".join(problems))
    print("soak: passed")


def plot(series, rocks, warm_min, path):
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
        ax.plot(t, [s[key] for s in series], label="fsgate" if key == "rss_mib" else None)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.axvline(warm_min, color="grey", linestyle=":", linewidth=1)
        if key == "rss_mib" and rocks:
            # RocksDB's own memory, stacked: what of the resident memory it accounts for.
            rt = [r["t"] / 60 for r in rocks]
            parts = ["memtables", "block_cache", "table_readers"]
            ax.stackplot(rt, *[[r.get(p, 0) for r in rocks] for p in parts],
                         labels=[f"RocksDB {p.replace('_', ' ')}" for p in parts], alpha=0.4)
            if any("mimalloc" in r for r in rocks):
                # fsgate's own allocations (mimalloc's committed memory), on top of RocksDB's.
                ax.plot(rt, [sum(r.get(p, 0) for p in parts) + r.get("mimalloc", 0)
                             for r in rocks], linestyle="--", label="+ mimalloc committed")
            ax.legend(loc="lower right", fontsize="small")
    axes[-1].set_xlabel("minutes")
    fig.suptitle("fsgate soak: fsctl bench mixed --versioning --multipart, 16 connections")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
