#!/usr/bin/env python3
"""Builds the benchmark suite in Release, runs it, and writes docs/performance.md and docs/performance.png.

    tools/bench.py                 # full run (about 5 minutes on 2 cores)
    tools/bench.py --repetitions 3 --filter W1
    ORCHESTRIX_BENCH_DOCS=/tmp/docs tools/bench.py --filter scaling   # write the page elsewhere

Every workload pairs the library with a hand-written baseline doing the same work in the same binary; the
table gives the median of the repetitions and the ratio library / baseline. The compile-time check times
`#include <orchestrix/orchestrix.hpp>` against a translation unit with only <variant>, <string>, <vector>
and <map> (g++ -O0, median of 5). The page ends with bench/analysis.md, copied verbatim: the hand-written
account of the targets that are missed, and why.

ORCHESTRIX_BENCH_DOCS names another folder for performance.md and performance.png (default: docs/).

PostgreSQL: orchestrix_bench_postgres (bench/postgres.cpp, built when libpq is found) starts a throwaway cluster
and runs its benchmarks interleaved; the page gets a PostgreSQL section from it, followed by bench/postgres.md
(the hand-written account). ORCHESTRIX_BENCH_PG_MAX_EVENTS sets the largest table of its scaling series
(default 100,000; 1000000 adds a few minutes).

    tools/bench.py --postgres-only   # run only the PostgreSQL benchmarks and replace that section of the page

Decisions across streams (DCB): bench/dcb.cpp (in memory), bench/dcb_sqlite.cpp and the PG/dcb-* benchmarks of
bench/postgres.cpp fill the page's "Decisions across streams (DCB)" section (dcb_section): each pair with the
median and the range of its repetitions, and the decision throughput from 1, 4 and 8 threads.

    tools/bench.py --dcb-only   # run only the DCB benchmarks (^DCB/ and ^PG/dcb-) and replace that section of the page
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")
DOCS = os.environ.get("ORCHESTRIX_BENCH_DOCS") or os.path.join(ROOT, "docs")
ANALYSIS = os.path.join(ROOT, "bench", "analysis.md")
PG_NOTES = os.path.join(ROOT, "bench", "postgres.md")
DCB_NOTES = os.path.join(ROOT, "bench", "dcb.md")

# PostgreSQL: (workload, benchmark, library side, baseline side, target ratio). Each benchmark of
# orchestrix_bench_postgres times its sides in turns (counters <side>_us and <side>_server_us, per event).
PG_PAIRS = [
    ("PostgreSQL append, 1 event per append", "PG/append/1/real_time", "library", "baseline", 1.2),
    ("PostgreSQL append, 10 events per append", "PG/append/10/real_time", "library", "baseline", 1.2),
    ("PostgreSQL append, 1 event, vs baseline without NOTIFY", "PG/append/1/real_time", "library",
     "baseline_no_notify", None),
    ("PostgreSQL append, 10 events, vs baseline without NOTIFY", "PG/append/10/real_time", "library",
     "baseline_no_notify", None),
    ("PostgreSQL append, 1 event, the store without its codec's read-back check", "PG/append/1/real_time",
     "library_unverified", "baseline", None),
    ("PostgreSQL append, 10 events, the store without its codec's read-back check", "PG/append/10/real_time",
     "library_unverified", "baseline", None),
    ("PostgreSQL replay, stream by stream (read_stream)", "PG/replay-stream/real_time", "library", "baseline", 1.2),
    ("PostgreSQL replay, everything (read_all)", "PG/replay-all/real_time", "library", "baseline", 1.2),
]

# (workload, library benchmark, baseline benchmark, target ratio)
PAIRS = [
    ("W1 append, 1 event per append", "W1/append/library/1", "W1/append/baseline/1", 1.5),
    ("W1 append, 10 events per append", "W1/append/library/10", "W1/append/baseline/10", 1.3),
    ("W1 append, 1 event, vs baseline with an id index", "W1/append/library/1",
     "W1/append/baseline-with-id-index/1", None),
    ("W1 append, 10 events, vs baseline with an id index", "W1/append/library/10",
     "W1/append/baseline-with-id-index/10", None),
    ("W1 append, 1 event, a no-op observer attached vs none", "W1/append/library-observed/1",
     "W1/append/library/1", None),
    ("W1 append, 10 events, a no-op observer attached vs none", "W1/append/library-observed/10",
     "W1/append/library/10", None),
    ("W2 replay a 1,000,000-event stream", "W2/replay-1M/library/1000000", "W2/replay-1M/baseline/1000000", 1.2),
    ("W2 replay all W1 streams (by id)", "W2/replay-w1/library", "W2/replay-w1/baseline", 1.2),
    ("W3 sync bus publish, 1 handler", "W3/publish/library/1", "W3/publish/baseline/1", None),
    ("W3 sync bus publish, 10 handlers", "W3/publish/library/10", "W3/publish/baseline/10", 1.5),
    ("W3 sync bus publish, 1,000 handlers", "W3/publish/library/1000", "W3/publish/baseline/1000", 1.5),
    ("W3 routing by run-time type (vs unordered_map<type_index>)", "W3/route/library", "W3/route/baseline", 1.0),
    ("W3 async bus, 100,000 events, 2 workers", "W3/async-throughput/library/real_time",
     "W3/async-throughput/baseline/real_time", None),
    ("W3 async bus, one event at a time", "W3/async-latency/library/real_time",
     "W3/async-latency/baseline/real_time", None),
    ("W4 SQLite append, 1 event, synchronous=NORMAL", "W4/sqlite-append/library/per_append:1/full:0/real_time",
     "W4/sqlite-append/baseline/per_append:1/full:0/real_time", 1.2),
    ("W4 SQLite append, 10 events, synchronous=NORMAL", "W4/sqlite-append/library/per_append:10/full:0/real_time",
     "W4/sqlite-append/baseline/per_append:10/full:0/real_time", 1.2),
    ("W4 SQLite append, 1 event, synchronous=FULL", "W4/sqlite-append/library/per_append:1/full:1/real_time",
     "W4/sqlite-append/baseline/per_append:1/full:1/real_time", 1.2),
    ("W4 SQLite append, 10 events, synchronous=FULL", "W4/sqlite-append/library/per_append:10/full:1/real_time",
     "W4/sqlite-append/baseline/per_append:10/full:1/real_time", 1.2),
    ("W4 SQLite bulk import (100 events per append, NORMAL)", "W4/sqlite-import/library/real_time",
     "W4/sqlite-import/baseline/real_time", 1.2),
    ("W4 SQLite replay of 1,000 x 100 events", "W4/sqlite-replay/library/real_time",
     "W4/sqlite-replay/baseline/real_time", 1.2),
    ("Warm command, stream of 10, with an AggregateCache", "Command/warm/library-cached/10",
     "Command/warm/baseline-map/10", 1.5),
    ("Warm command, stream of 1,000, with an AggregateCache", "Command/warm/library-cached/1000",
     "Command/warm/baseline-map/1000", 1.5),
    ("Warm command, stream of 100,000, with an AggregateCache", "Command/warm/library-cached/100000",
     "Command/warm/baseline-map/100000", 1.5),
    ("Command without a cache, stream of 100,000 (replays it)", "Command/warm/library-uncached/100000/iterations:2000",
     "Command/warm/baseline-map/100000", None),
]

# Decisions across streams (DCB): (workload, library benchmark, baseline benchmark) of orchestrix_bench. Each
# decision benchmark runs a fixed number of decisions, each on a fresh course and student (bench/dcb_workload.hpp).
DCB_PAIRS = [
    ("Decision in memory, 10,000 events, vs a hand-written tag index",
     "DCB/decide/library/10000/iterations:1000", "DCB/decide/baseline-index/10000/iterations:1000"),
    ("Decision in memory, 100,000 events, vs a hand-written tag index",
     "DCB/decide/library/100000/iterations:10000", "DCB/decide/baseline-index/100000/iterations:10000"),
    ("Decision in memory through the store's calls (no DecisionRepository), 10,000 events, vs the tag index",
     "DCB/decide/library-store/10000/iterations:1000", "DCB/decide/baseline-index/10000/iterations:1000"),
    ("Decision in memory through the store's calls (no DecisionRepository), 100,000 events, vs the tag index",
     "DCB/decide/library-store/100000/iterations:10000", "DCB/decide/baseline-index/100000/iterations:10000"),
    ("Decision in memory, 10,000 events, vs a filtered vector scan",
     "DCB/decide/library/10000/iterations:1000", "DCB/decide/baseline-scan/10000/iterations:1000"),
    ("Decision in memory, 100,000 events, vs a filtered vector scan",
     "DCB/decide/library/100000/iterations:10000", "DCB/decide/baseline-scan/100000/iterations:100"),
    ("Read by query in memory, 10,000 events, vs a hand-written tag index",
     "DCB/read/library/10000", "DCB/read/baseline-index/10000"),
    ("Read by query in memory, 100,000 events, vs a hand-written tag index",
     "DCB/read/library/100000", "DCB/read/baseline-index/100000"),
    ("Read by query in memory, 10,000 events, vs a filtered vector scan",
     "DCB/read/library/10000", "DCB/read/baseline-scan/10000"),
    ("Read by query in memory, 100,000 events, vs a filtered vector scan",
     "DCB/read/library/100000", "DCB/read/baseline-scan/100000"),
    ("Decision on SQLite, 10,000 events, vs raw SQL (BEGIN IMMEDIATE)",
     "DCB/sqlite-decide/library/10000/iterations:1000/real_time",
     "DCB/sqlite-decide/baseline/10000/iterations:1000/real_time"),
    ("Decision on SQLite, 100,000 events, vs raw SQL (BEGIN IMMEDIATE)",
     "DCB/sqlite-decide/library/100000/iterations:1000/real_time",
     "DCB/sqlite-decide/baseline/100000/iterations:1000/real_time"),
    ("Read by query on SQLite, 10,000 events, vs raw SQL", "DCB/sqlite-read/library/10000/real_time",
     "DCB/sqlite-read/baseline/10000/real_time"),
    ("Read by query on SQLite, 100,000 events, vs raw SQL", "DCB/sqlite-read/library/100000/real_time",
     "DCB/sqlite-read/baseline/100000/real_time"),
]

# DCB on PostgreSQL: (workload, benchmark of orchestrix_bench_postgres, library side, baseline side), timed in
# turns as the PostgreSQL section's benchmarks are (counters <side>_us and <side>_server_us, per decision or read).
DCB_PG_PAIRS = [
    ("Decision on PostgreSQL, 10,000 events, vs raw SQL (LOCK TABLE events IN EXCLUSIVE MODE)",
     "PG/dcb-decide/10000/real_time", "library", "baseline"),
    ("Read by query on PostgreSQL, 10,000 events, vs raw SQL", "PG/dcb-read/10000/real_time", "library",
     "baseline"),
]


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build():
    run(["cmake", "--preset", "bench"], cwd=ROOT, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", "--preset", "bench", "-j", str(os.cpu_count() or 2)], cwd=ROOT)


def run_benchmarks(repetitions, flt):
    out = os.path.join(BUILD, "results.json")
    cmd = [os.path.join(BUILD, "bench", "orchestrix_bench"), f"--benchmark_repetitions={repetitions}",
           "--benchmark_report_aggregates_only=false", f"--benchmark_out={out}", "--benchmark_out_format=json"]
    if flt:
        cmd.append(f"--benchmark_filter={flt}")
    run(cmd, cwd=ROOT)
    with open(out) as f:
        return json.load(f)


def medians(results):
    """Median real time (ns) and items/s of each benchmark over its repetitions."""
    times, rates = {}, {}
    for b in results["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"]
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        times.setdefault(name, []).append(b["real_time"] * scale)
        if "items_per_second" in b:
            rates.setdefault(name, []).append(b["items_per_second"])
    return ({k: statistics.median(v) for k, v in times.items()},
            {k: statistics.median(v) for k, v in rates.items()})


def compile_time():
    """Seconds that including orchestrix.hpp adds to a small translation unit (g++ -O0, median of 5)."""
    cxx = shutil.which("g++")
    if not cxx:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.cpp")
        with_lib = os.path.join(tmp, "with.cpp")
        std = "#include <variant>\n#include <string>\n#include <vector>\n#include <map>\nint main() { return 0; }\n"
        with open(plain, "w") as f:
            f.write(std)
        with open(with_lib, "w") as f:
            f.write("#include <orchestrix/orchestrix.hpp>\n" + std)

        def timed(src):
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                subprocess.run([cxx, "-std=c++20", "-O0", "-I", os.path.join(ROOT, "include"), "-c", src, "-o",
                                os.path.join(tmp, "out.o")], check=True)
                samples.append(time.perf_counter() - start)
            return statistics.median(samples)

        base, lib = timed(plain), timed(with_lib)
        # nlohmann_json and fmt must stay out of the umbrella header's include path.
        pre = subprocess.run([cxx, "-std=c++20", "-I", os.path.join(ROOT, "include"), "-E", with_lib],
                             check=True, capture_output=True, text=True).stdout
        leaked = sorted(set(re.findall(r'# \d+ "[^"]*/(nlohmann|fmt)/', pre)))
        return base, lib, leaked


def scaling_series(rates):
    """{(kind, side): [(stream length, events per second), ...]} of the scaling/KIND/SIDE/N benchmarks."""
    series = {}
    for name, rate in rates.items():
        m = re.match(r"scaling/(append|replay)/(library|baseline)/(\d+)$", name)
        if m:
            series.setdefault((m.group(1), m.group(2)), []).append((int(m.group(3)), rate))
    return {key: sorted(points) for key, points in series.items()}


def plot(rates):
    """performance.png: append and replay rate of the library and its baseline against stream length."""
    series = scaling_series(rates)
    if not series or not shutil.which("gnuplot"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for kind in ("append", "replay"):
            for side in ("library", "baseline"):
                if (kind, side) not in series:
                    continue
                path = os.path.join(tmp, f"{kind}-{side}.dat")
                with open(path, "w") as f:
                    for length, rate in series[(kind, side)]:
                        f.write(f"{length} {rate / 1e6}\n")
                files.append((f"{kind}, {side}", path))
        script = os.path.join(tmp, "plot.gp")
        # pngcairo draws dashed lines; the plain png terminal (libgd) tells the series apart by their points.
        cairo = subprocess.run(["gnuplot", "-e", "set terminal pngcairo"], capture_output=True).returncode == 0
        with open(script, "w") as f:
            f.write(f'set terminal {"pngcairo" if cairo else "png"} size 900,500\n')
            f.write(f'set output "{os.path.join(DOCS, "performance.png")}"\n')
            f.write('set title "InMemoryEventStore and a std::vector baseline: rate against stream length"\n')
            f.write('set logscale x\nset logscale y\nset xrange [500:2000000]\n')
            f.write('set xtics ("1,000" 1000, "10,000" 10000, "100,000" 100000, "1,000,000" 1000000)\n')
            f.write('set xlabel "events in the stream"\nset ylabel "million events per second (log scale)"\n')
            f.write('set key outside right\nset grid\n')
            # Append and replay in their own colours; the library solid, its baseline dashed.
            styles = {"append, library": "lc rgb '#1f77b4' dt 1 pt 7",
                      "append, baseline": "lc rgb '#1f77b4' dt 2 pt 6",
                      "replay, library": "lc rgb '#d62728' dt 1 pt 5",
                      "replay, baseline": "lc rgb '#d62728' dt 2 pt 4"}
            f.write("plot " + ", ".join(f'"{p}" using 1:2 with linespoints {styles[k]} lw 2 title "{k}"'
                                        for k, p in files) + "\n")
        run(["gnuplot", script])
    return True


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, {cxx}, -O3 (CMake Release)"


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


def write_doc(times, rates, repetitions, ct, plotted, postgres=None, dcb=None):
    lines = ["# Performance", "",
             "Measured by `tools/bench.py` (it builds `bench/` in Release, runs it and writes this page).",
             f"Machine: {machine()}. Median of {repetitions} repetitions; time is per whole workload.", "",
             "| Workload | Library | Baseline | Ratio | Target |", "|---|---|---|---|---|"]
    for label, lib, base, target in PAIRS:
        if lib not in times or base not in times:
            continue
        ratio = times[lib] / times[base]
        verdict = "" if target is None else (f"<= {target}x " + ("met" if ratio <= target else "**not met**"))
        lib_rate = f" ({rates[lib] / 1e6:.2f} M ev/s)" if lib in rates else ""
        base_rate = f" ({rates[base] / 1e6:.2f} M ev/s)" if base in rates else ""
        lines.append(f"| {label} | {fmt_time(times[lib])}{lib_rate} | {fmt_time(times[base])}{base_rate} | "
                     f"{ratio:.2f}x | {verdict} |")
    lines += ["", "## Cost per event against stream length", ""]
    series = scaling_series(rates)
    if series:
        lines += ["Events appended one at a time to one stream (`scaling/append`), and that stream folded "
                  "(`scaling/replay`), against the same work on a `std::vector<Event>` (the W1 and W2 baselines).",
                  "", "| Benchmark | Events | Library ns/event | Baseline ns/event | Ratio |", "|---|---|---|---|---|"]
        for kind in ("append", "replay"):
            lib = dict(series.get((kind, "library"), []))
            base = dict(series.get((kind, "baseline"), []))
            for length in sorted(set(lib) | set(base)):
                lib_ns = f"{1e9 / lib[length]:.1f}" if length in lib else ""
                base_ns = f"{1e9 / base[length]:.1f}" if length in base else ""
                ratio = f"{base[length] / lib[length]:.2f}x" if length in lib and length in base else ""
                lines.append(f"| {kind} | {length:,} | {lib_ns} | {base_ns} | {ratio} |")
    if plotted:
        lines += ["", "![append and replay rate of the library and its baseline against stream length]"
                      "(performance.png)"]
    if postgres:
        lines += [""] + postgres
    if dcb:
        lines += [""] + dcb
    if ct:
        base, lib, leaked = ct
        lines += ["", "## Compile time", "",
                  f"Including `<orchestrix/orchestrix.hpp>` in a translation unit that already includes `<variant>`, "
                  f"`<string>`, `<vector>` and `<map>` costs **{lib - base:.2f} s** extra with g++ -O0 "
                  f"({base:.2f} s without, {lib:.2f} s with; goal: under 1 s). "
                  + ("nlohmann_json and fmt are not on its include path." if not leaked else
                     f"**It pulls in {', '.join(leaked)}.**")]
    lines += ["", "## Reading the figures", "",
              "- W1 is defined as 1,000 streams x 100 events of three event types "
              "(`{account_id: \"acc-000123\", amount}`), appended round-robin with an expected-version check. "
              "Its baseline is an `unordered_map` of stream id to `std::vector<std::variant>` with the same "
              "check and nothing else. The library also generates nothing during the timed loop (event ids "
              "are made beforehand for both), but it validates the stream id and the batch, takes a lock, "
              "makes sure no event id is stored already (idempotent appends: ids greater than every stored "
              "id, as `Uuid::generate()` makes them, need no lookup), stores metadata and a timestamp, and "
              "maintains the global order. The second baseline adds only an id index "
              "(`std::unordered_set<Uuid>`, every id looked up and inserted) and shows what the plain way to "
              "that guarantee costs.",
              "- W2 folds stored events in place through `Repository::load` (`visit_stream` hands out "
              "`RecordedEventView`s over the stream's contiguous event array); the baseline is a `std::visit` "
              "loop over a `std::vector` that also counts the version, as an aggregate must. The W1-streams "
              "variant looks each stream up by id on both sides.",
              "- Both sides of every pair run in one process with the same heap settings (`bench/heap.cpp`).",
              ""]
    text = "\n".join(lines)
    if os.path.exists(ANALYSIS):  # the hand-written account, verbatim
        with open(ANALYSIS) as f:
            text += "\n" + f.read()
    path = os.path.join(DOCS, "performance.md")
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


# --- PostgreSQL ----------------------------------------------------------------------------------------------

def run_postgres(repetitions, flt):
    """Results of orchestrix_bench_postgres (its benchmarks interleaved), or None if it was not built or the
    filter leaves none of its benchmarks."""
    binary = os.path.join(BUILD, "bench", "orchestrix_bench_postgres")
    if not os.path.exists(binary):
        print("orchestrix_bench_postgres was not built (no libpq): no PostgreSQL section", flush=True)
        return None
    selected = [f"--benchmark_filter={flt}"] if flt else []
    listed = subprocess.run([binary, "--benchmark_list_tests"] + selected, capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout.strip():
        return None
    out = os.path.join(BUILD, "results-postgres.json")
    run([binary, f"--benchmark_repetitions={repetitions}", "--benchmark_enable_random_interleaving=true",
         "--benchmark_report_aggregates_only=false", f"--benchmark_out={out}", "--benchmark_out_format=json"]
        + selected, cwd=ROOT)
    with open(out) as f:
        return json.load(f)


def postgres_version():
    env = os.environ.get("ORCHESTRIX_POSTGRES_BIN")
    bins = [env] if env else sorted(
        (os.path.join("/usr/lib/postgresql", d, "bin") for d in os.listdir("/usr/lib/postgresql")),
        key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p)]) \
        if os.path.isdir("/usr/lib/postgresql") else []
    for b in reversed(bins):
        try:
            out = subprocess.run([os.path.join(b, "postgres"), "--version"], capture_output=True, text=True).stdout
        except OSError:
            continue
        m = re.search(r"PostgreSQL\)?\s*([\d.]+)", out)
        if m:
            return f"PostgreSQL {m.group(1)}"
    return "PostgreSQL"


def postgres_section(results, repetitions):
    """The page's PostgreSQL section (a list of lines), from orchestrix_bench_postgres's results."""
    runs = {}  # benchmark -> [counters of each repetition]
    for b in results["benchmarks"]:
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            runs.setdefault(b["run_name"], []).append(b)

    def side(name, counter):
        return statistics.median(r[counter] for r in runs[name])

    def ratio(name, lib, base):  # the median of the repetitions' ratios: both sides ran in the same turns
        return statistics.median(r[f"{lib}_us"] / r[f"{base}_us"] for r in runs[name])

    def cell(name, who):
        return f"{side(name, who + '_us'):.1f} us/event (server {side(name, who + '_server_us'):.1f} us)"

    lines = ["## PostgreSQL", "",
             f"Measured by `orchestrix_bench_postgres` (`bench/postgres.cpp`), which starts a throwaway "
             f"{postgres_version()} cluster on 127.0.0.1 (fsync off, as the tests run it) and stops it at the end. "
             "The library and its baselines run in turns of about 100 appends (or reads) within each benchmark, "
             "so that all of them see the same load on the machine; each side is timed on its own. Time per "
             "event, and in brackets the server process's CPU time per event; median of "
             f"{repetitions} repetitions, and the median of their ratios.", "",
             "| Workload | Library | Baseline | Ratio | Target |", "|---|---|---|---|---|"]
    for label, name, lib, base, target in PG_PAIRS:
        if name not in runs or f"{lib}_us" not in runs[name][0] or f"{base}_us" not in runs[name][0]:
            continue
        r = ratio(name, lib, base)
        verdict = "" if target is None else (f"<= {target}x " + ("met" if r <= target else "**not met**"))
        lines.append(f"| {label} | {cell(name, lib)} | {cell(name, base)} | {r:.2f}x | {verdict} |")
    sizes = sorted(int(m.group(1)) for m in (re.match(r"PG/scaling/(\d+)/real_time$", n) for n in runs) if m)
    if sizes:
        lines += ["", "### Append cost against the size of the table", "",
                  "One event per append, 1,000 appends round-robin over 100 streams per repetition, into a table "
                  "that holds the given number of events, was never analysed (autovacuum off for it), and whose "
                  "sessions planned their statements while it was empty. The baseline is the hand-written "
                  "append with NOTIFY.", "",
                  "| Events in the table | Library us/event | Baseline us/event | Ratio |", "|---|---|---|---|"]
        for size in sizes:
            name = f"PG/scaling/{size}/real_time"
            lines.append(f"| {size:,} | {cell(name, 'library')} | {cell(name, 'baseline')} | "
                         f"{ratio(name, 'library', 'baseline'):.2f}x |")
    if os.path.exists(PG_NOTES):  # the hand-written account, verbatim
        with open(PG_NOTES) as f:
            lines += ["", f.read().rstrip("\n")]
    return lines + [""]


def splice_postgres_section(lines):
    """Replaces the PostgreSQL section of the existing page (or adds it before "## Compile time")."""
    splice_section("PostgreSQL", lines)


def splice_section(heading, lines):
    """Replaces the section `## <heading>` of the existing page (or adds it before "## Compile time")."""
    path = os.path.join(DOCS, "performance.md")
    with open(path) as f:
        text = f.read()
    section = "\n".join(lines)
    m = re.search(r"^## " + re.escape(heading) + r"\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    if m:
        text = text[:m.start()] + section + "\n" + text[m.end():]
    else:
        anchor = text.find("## Compile time")
        anchor = anchor if anchor >= 0 else len(text)
        text = text[:anchor] + section + "\n" + text[anchor:]
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote the {heading} section of {path}")


# --- Decisions across streams (DCB) ----------------------------------------------------------------------------

def runs_of(results):
    """{benchmark: [the result of each repetition]}, errors left out."""
    runs = {}
    for b in (results or {}).get("benchmarks", []):
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            runs.setdefault(b["run_name"], []).append(b)
    return runs


def real_ns(b):
    return b["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]


def fmt_ratio(r):
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.4f}x (1/{1 / r:.0f})"


def dcb_section(results, pg, repetitions):
    """The page's DCB section (a list of lines), or None if neither program ran a DCB benchmark."""
    runs, pg_runs = runs_of(results), runs_of(pg)
    if not any(n.startswith("DCB/") for n in runs) and not any(n.startswith("PG/dcb-") for n in pg_runs):
        return None

    def spread(values, show):
        return f"{show(statistics.median(values))} ({show(min(values))} – {show(max(values))})"

    lines = ["## Decisions across streams (DCB)", "",
             "Dynamic consistency boundaries (`docs/dcb.md`): the course/student workload of "
             "`bench/dcb_workload.hpp`, one decision (read by query, fold, decide, conditional append of one event) "
             "per iteration, or the decision's read alone. Time per decision or read: the median of "
             f"{repetitions} repetitions and, in brackets, the fastest and the slowest; the ratio is library / "
             "baseline of the medians (on PostgreSQL, where both sides run in turns within each repetition, the "
             "median of the repetitions' ratios, with the server process's CPU time). "
             "`bench/dcb.md` describes each baseline.", "",
             f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end of the run "
             f"({time.strftime('%Y-%m-%d')}).", "",
             "| Workload | Library | Baseline | Ratio |", "|---|---|---|---|"]
    for label, lib, base in DCB_PAIRS:
        if lib not in runs or base not in runs:
            continue
        lib_ns, base_ns = [real_ns(r) for r in runs[lib]], [real_ns(r) for r in runs[base]]
        ratio = statistics.median(lib_ns) / statistics.median(base_ns)
        lines.append(f"| {label} | {spread(lib_ns, fmt_time)} | {spread(base_ns, fmt_time)} | {fmt_ratio(ratio)} |")
    for label, name, lib, base in DCB_PG_PAIRS:
        if name not in pg_runs or f"{lib}_us" not in pg_runs[name][0] or f"{base}_us" not in pg_runs[name][0]:
            continue
        reps = pg_runs[name]

        def cell(who):
            server = statistics.median(r[f"{who}_server_us"] for r in reps)
            return f"{spread([r[f'{who}_us'] for r in reps], lambda v: f'{v:,.0f} us')}, server {server:,.0f} us"

        ratios = [r[f"{lib}_us"] / r[f"{base}_us"] for r in reps]
        lines.append(f"| {label} | {cell(lib)} | {cell(base)} | {spread(ratios, lambda v: f'{v:.2f}x')} |")

    shapes = {}
    for name, reps in runs.items():
        m = re.match(r"DCB/throughput/(disjoint|overlap)/iterations:(\d+)/real_time/threads:(\d+)$", name)
        if m:
            shapes[(m.group(1), int(m.group(3)))] = (int(m.group(2)) * int(m.group(3)), reps)
    if shapes:
        lines += ["", "### Decision throughput", "",
                  "`DecisionRepository::execute` on one `InMemoryEventStore` of 10,000 events from 1, 4 and 8 "
                  "threads (the machine has " + str(os.cpu_count()) + " cores), a fixed number of decisions per "
                  "run split between the threads. Disjoint: each thread on courses of its own, no conflicts. "
                  "Overlap: every thread on the same course (capacity unlimited), whose events grow by one per "
                  "decision (2,000 in a run): compare its rows with each other, not with disjoint. Retries: "
                  "conflicts (`AppendConditionError`) per stored decision; the retry policy waits by yielding the "
                  "CPU, from under 1 us doubling up to 32 us. CPU per decision: the threads' CPU time over the "
                  "decisions stored (retries included).", "",
                  "| Tags | Threads | Decisions per run | Decisions/s | CPU per decision | Retries per decision |",
                  "|---|---|---|---|---|---|"]
        for (kind, threads) in sorted(shapes, key=lambda k: (k[0] != "disjoint", k[1])):
            decisions, reps = shapes[(kind, threads)]
            rates = [r["items_per_second"] for r in reps]
            cpu = statistics.median(
                r["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[r.get("time_unit", "ns")] for r in reps)
            retries = statistics.median(r.get("retries_per_decision", 0) for r in reps)
            lines.append(f"| {kind} | {threads} | {decisions:,} | {spread(rates, lambda v: f'{v / 1e3:,.1f} k')} | "
                         f"{fmt_time(cpu)} | {retries:.3f} |")
    if os.path.exists(DCB_NOTES):  # the hand-written account, verbatim
        with open(DCB_NOTES) as f:
            lines += ["", f.read().rstrip("\n")]
    return lines + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--filter", default="")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--postgres-only", action="store_true",
                        help="run only the PostgreSQL benchmarks and replace that section of the page")
    parser.add_argument("--dcb-only", action="store_true",
                        help="run only the DCB benchmarks (of both programs) and replace that section of the page")
    args = parser.parse_args()
    if not args.no_build:
        build()
    if args.dcb_only:
        results = run_benchmarks(args.repetitions, args.filter or "^DCB/")
        pg = run_postgres(args.repetitions, args.filter or "^PG/dcb-")
        section = dcb_section(results, pg, args.repetitions)
        if section is not None:
            splice_section("Decisions across streams (DCB)", section)
        return 0
    pg = run_postgres(args.repetitions, args.filter)
    if args.postgres_only:
        if pg is not None:
            splice_postgres_section(postgres_section(pg, args.repetitions))
        return 0
    results = run_benchmarks(args.repetitions, args.filter)
    times, rates = medians(results)
    ct = compile_time()
    os.makedirs(DOCS, exist_ok=True)
    plotted = plot(rates)
    write_doc(times, rates, args.repetitions, ct, plotted,
              postgres_section(pg, args.repetitions) if pg is not None else None,
              dcb_section(results, pg, args.repetitions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
