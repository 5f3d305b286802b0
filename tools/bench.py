#!/usr/bin/env python3
"""Builds the benchmark suite in Release, runs it, and writes docs/performance.md and docs/performance.png.

    tools/bench.py                 # full run (about 10 minutes on 2 cores)
    tools/bench.py --repetitions 3 --filter W1 --output /tmp/performance.md   # a quick look, page elsewhere
    ORCHESTRIX_BENCH_DOCS=/tmp/docs tools/bench.py --filter scaling   # write the page elsewhere

Every workload pairs the library with a hand-written baseline doing the same work in the same binary; each
row gives the median of the repetitions and, in brackets, the fastest and the slowest, for both sides, and the
ratio library / baseline of the medians. The compile-time check times `#include <orchestrix/orchestrix.hpp>`
against a translation unit with only <variant>, <string>, <vector> and <map>, and the file users write most
(bench/compile_time/user_file.cpp) on the in-memory store and on the SQLite store with the JSON codec, with
g++ -ftime-report's split of the latter (g++ -O0, median of 5). The page
ends with bench/analysis.md, copied verbatim: the hand-written account of the targets that are missed, and why.
Sections of the existing page that this script does not write (hand-written ones, or those of a program the
run left out) are kept, before "## Compile time".

Heap: orchestrix_bench runs with glibc's default heap (the main table). Its W1, W2 and W3 benchmarks run a
second time with ORCHESTRIX_BENCH_HEAP=tuned (bench/heap.cpp: freed memory kept in the process), shown in the
table's "tuned heap" column.

I/O-bound benchmarks (every benchmark of orchestrix_bench whose name holds "sqlite", and the PostgreSQL
program) run in a program run of their own with --benchmark_enable_random_interleaving=true, so that the
library and its baseline see the same disk and load.

Memory: the memory/library, memory/vector-variant, memory/map-store and memory/short-streams/* benchmarks
(bench/memory.cpp, counter bytes_per_event) fill the "Memory per stored event" section.

Emmett: when `node` is on the PATH and `@event-driven-io/emmett` resolves from bench/emmett/
(`npm install --no-save --prefix bench/emmett @event-driven-io/emmett`), bench/emmett/w1_w2_w3.mjs runs W1, W2
and W3 on Emmett's in-memory event store and message bus in the same run, and the "Peer: Emmett" section gives
the ratio library / Emmett; otherwise that section says why it was not run.

    tools/bench.py --emmett-only     # run only the Emmett script and replace that section of the page

The page is docs/performance.md unless --output PATH names another file (performance.png goes beside it);
ORCHESTRIX_BENCH_DOCS names another folder for both (default: docs/).

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
BUILD = os.path.join(ROOT, "build", "bench")  # --build-dir
DOCS = os.environ.get("ORCHESTRIX_BENCH_DOCS") or os.path.join(ROOT, "docs")
PAGE = os.path.join(DOCS, "performance.md")  # --output
EMMETT_DIR = os.path.join(ROOT, "bench", "emmett")
EMMETT_SCRIPT = os.path.join(EMMETT_DIR, "w1_w2_w3.mjs")
# Benchmarks of orchestrix_bench that wait on the disk: run interleaved, in a program run of their own.
IO_BOUND = re.compile(r"sqlite", re.I)
# Benchmarks of orchestrix_bench that run a second time with the tuned heap.
TUNED_HEAP = re.compile(r"^(W1|W2|W3)/")
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
    ("W1 append, 1 event per append", "W1/append/library/1", "W1/append/baseline/1", 2.0),
    ("W1 append, 10 events per append", "W1/append/library/10", "W1/append/baseline/10", 2.0),
    ("W1 append, 1 event, vs baseline with an id index", "W1/append/library/1",
     "W1/append/baseline-with-id-index/1", None),
    ("W1 append, 10 events, vs baseline with an id index", "W1/append/library/10",
     "W1/append/baseline-with-id-index/10", None),
    ("W1 append, 1 event, envelopes with ids made before timing (not the user's path)",
     "W1/append/library-prebuilt-envelopes/1", "W1/append/baseline/1", None),
    ("W1 append, 10 events, envelopes with ids made before timing (not the user's path)",
     "W1/append/library-prebuilt-envelopes/10", "W1/append/baseline/10", None),
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

# Memory per stored event (bench/memory.cpp): (side, benchmark); each reports the counter bytes_per_event.
MEMORY_ROWS = [
    ("InMemoryEventStore", "memory/library"),
    ("`std::vector<Event>` (payloads only, reserved)", "memory/vector-variant"),
    ("W1 baseline's store (`unordered_map` of `std::vector<Event>`)", "memory/map-store"),
]
MEMORY_GOAL = 2.0  # the library's bytes per event over the vector's

# The peer: (workload, library benchmark, workload of bench/emmett/w1_w2_w3.mjs).
EMMETT_PAIRS = [
    ("W1 append, 1 event per append", "W1/append/library/1", "W1/append/1"),
    ("W1 append, 10 events per append", "W1/append/library/10", "W1/append/10"),
    ("W2 replay a 1,000,000-event stream", "W2/replay-1M/library/1000000", "W2/replay-1M"),
    ("W2 replay all W1 streams (by id)", "W2/replay-w1/library", "W2/replay-w1"),
    ("W3 sync bus publish, 1 handler", "W3/publish/library/1", "W3/publish/1"),
    ("W3 sync bus publish, 10 handlers", "W3/publish/library/10", "W3/publish/10"),
    ("W3 sync bus publish, 1,000 handlers", "W3/publish/library/1000", "W3/publish/1000"),
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


def build(jobs):
    if BUILD == os.path.join(ROOT, "build", "bench"):
        run(["cmake", "--preset", "bench"], cwd=ROOT, stdout=subprocess.DEVNULL)
    else:  # the preset's settings in another folder
        run(["cmake", "--preset", "bench", "-B", BUILD], cwd=ROOT, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", BUILD, "-j", str(jobs)], cwd=ROOT)


def bench_binary():
    return os.path.join(BUILD, "bench", "orchestrix_bench")


def list_benchmarks(binary, flt):
    """The names of `binary`'s benchmarks that `flt` selects (all if empty)."""
    cmd = [binary, "--benchmark_list_tests"] + ([f"--benchmark_filter={flt}"] if flt else [])
    listed = subprocess.run(cmd, capture_output=True, text=True)
    if listed.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{listed.stderr}")
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()]


def exactly(names):
    """A --benchmark_filter that selects exactly `names`."""
    return "^(" + "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", n) for n in names) + ")$"


def run_binary(binary, repetitions, names, out, interleave=False, heap=None):
    """Runs the benchmarks `names` of `binary`, `repetitions` times each, and returns its JSON results."""
    env = dict(os.environ)
    env.pop("ORCHESTRIX_BENCH_HEAP", None)
    if heap:
        env["ORCHESTRIX_BENCH_HEAP"] = heap
    cmd = [binary, f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=false",
           f"--benchmark_out={out}", "--benchmark_out_format=json", f"--benchmark_filter={exactly(names)}"]
    if interleave:
        cmd.append("--benchmark_enable_random_interleaving=true")
    print(f"+ ORCHESTRIX_BENCH_HEAP={heap}" if heap else "+ (default heap)", end=" ", flush=True)
    run(cmd, cwd=ROOT, env=env)
    with open(out) as f:
        results = json.load(f)
    ran = results.get("context", {}).get("heap", "default")
    if ran != (heap or "default"):
        raise SystemExit(f"{binary} ran with the {ran} heap, not the {heap or 'default'} one")
    return results


def run_benchmarks(repetitions, flt):
    """orchestrix_bench's results: {"in_memory": in-memory benchmarks, default heap; "tuned": W1/W2/W3 again with
    the tuned heap; "io": the I/O-bound ones, interleaved}. A part the filter leaves empty is None."""
    binary = bench_binary()
    names = list_benchmarks(binary, flt)
    in_memory = [n for n in names if not IO_BOUND.search(n)]
    io_bound = [n for n in names if IO_BOUND.search(n)]
    tuned = [n for n in in_memory if TUNED_HEAP.match(n)]
    return {
        "in_memory": run_binary(binary, repetitions, in_memory, os.path.join(BUILD, "results.json"))
        if in_memory else None,
        "tuned": run_binary(binary, repetitions, tuned, os.path.join(BUILD, "results-tuned-heap.json"),
                            heap="tuned") if tuned else None,
        "io": run_binary(binary, repetitions, io_bound, os.path.join(BUILD, "results-io.json"), interleave=True)
        if io_bound else None,
    }


def merged(*results):
    """One result set holding the benchmarks of all of `results` (None ones left out)."""
    return {"benchmarks": [b for r in results if r for b in r.get("benchmarks", [])]}


def spread(values, show):
    """median (fastest – slowest) of `values`, each shown with `show`."""
    return f"{show(statistics.median(values))} ({show(min(values))} – {show(max(values))})"


def compile_time():
    """Compile times with g++ -O0 (median of 5): what including orchestrix.hpp adds to a small translation unit,
    and the file users write most (bench/compile_time/user_file.cpp) on the in-memory store and on the SQLite
    store with the JSON codec, with where the SQLite one's time goes (g++ -ftime-report)."""
    cxx = shutil.which("g++")
    if not cxx:
        return None
    include = os.path.join(ROOT, "include")
    user_file = os.path.join(ROOT, "bench", "compile_time", "user_file.cpp")
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, "plain.cpp")
        with_lib = os.path.join(tmp, "with.cpp")
        nlohmann_only = os.path.join(tmp, "nlohmann.cpp")
        std = "#include <variant>\n#include <string>\n#include <vector>\n#include <map>\nint main() { return 0; }\n"
        with open(plain, "w") as f:
            f.write(std)
        with open(with_lib, "w") as f:
            f.write("#include <orchestrix/orchestrix.hpp>\n" + std)
        with open(nlohmann_only, "w") as f:
            f.write("#include <nlohmann/json.hpp>\nint main() { return 0; }\n")

        def command(src, *flags):
            return [cxx, "-std=c++20", "-O0", "-I", include, *flags, "-c", src, "-o", os.path.join(tmp, "out.o")]

        def timed(src, *flags):
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                subprocess.run(command(src, *flags), check=True)
                samples.append(time.perf_counter() - start)
            return statistics.median(samples)

        base, lib = timed(plain), timed(with_lib)
        # nlohmann_json and fmt must stay out of the umbrella header's include path.
        pre = subprocess.run([cxx, "-std=c++20", "-I", include, "-E", with_lib],
                             check=True, capture_output=True, text=True).stdout
        leaked = sorted(set(re.findall(r'# \d+ "[^"]*/(nlohmann|fmt)/', pre)))
        result = {"base": base, "umbrella": lib, "leaked": leaked}
        if os.path.exists(user_file):
            result["user_memory"] = timed(user_file)
            result["user_sqlite"] = timed(user_file, "-DORCHESTRIX_COMPILE_TIME_SQLITE")
            # The store compiled once (ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE), in
            # instance.cpp; then, on top, the headers precompiled as CMake's target_precompile_headers does.
            separate = ("-DORCHESTRIX_COMPILE_TIME_SQLITE", "-DORCHESTRIX_COMPILE_TIME_SEPARATE")
            result["user_separate"] = timed(user_file, *separate)
            result["instance"] = timed(os.path.join(ROOT, "bench", "compile_time", "instance.cpp"), *separate)
            pch = os.path.join(tmp, "pch.hpp")
            with open(user_file) as f:
                includes = [line for line in f if line.startswith("#include <")]
            with open(pch, "w") as f:
                f.writelines(includes)
            subprocess.run([cxx, "-std=c++20", "-O0", "-I", include, *separate, "-x", "c++-header", pch,
                            "-o", pch + ".gch"], check=True)
            result["user_separate_pch"] = timed(user_file, *separate, "-include", pch, "-Winvalid-pch")
            result["nlohmann"] = timed(nlohmann_only)
            report = subprocess.run(command(user_file, "-DORCHESTRIX_COMPILE_TIME_SQLITE", "-ftime-report"),
                                    check=True, capture_output=True, text=True).stderr
            phases = {}
            for name in ("phase parsing", "phase lang. deferred", "phase opt and generate", "TOTAL"):
                m = re.search(re.escape(name) + r"\s*:\s*([\d.]+)", report)
                if m:
                    phases[name] = float(m.group(1))
            result["phases"] = phases
            objdump = subprocess.run(["nm", "-C", "--defined-only", os.path.join(tmp, "out.o")],
                                     capture_output=True, text=True).stdout.splitlines()
            result["functions"] = len(objdump)
            result["nlohmann_functions"] = sum(1 for line in objdump if " nlohmann::" in line)
        return result


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
            f.write(f'set output "{os.path.join(os.path.dirname(PAGE), "performance.png")}"\n')
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


def times_of(runs):
    """{benchmark: [real time in ns of each repetition]}."""
    return {name: [real_ns(r) for r in reps] for name, reps in runs.items()}


def rates_of(runs):
    """{benchmark: median items per second}, for the benchmarks that report it."""
    return {name: statistics.median(r["items_per_second"] for r in reps)
            for name, reps in runs.items() if all("items_per_second" in r for r in reps)}


def verdict(ratio, target):
    return "" if target is None else (f"<= {target}x " + ("met" if ratio <= target else "**not met**"))


def write_doc(results, repetitions, ct, plotted, postgres=None, dcb=None, memory=None, emmett=None):
    """Writes the page from orchestrix_bench's results (run_benchmarks) and the other programs' sections."""
    runs, tuned = runs_of(merged(results["in_memory"], results["io"])), runs_of(results["tuned"])
    times, tuned_times = times_of(runs), times_of(tuned)
    lines = ["# Performance", "",
             "Measured by `tools/bench.py` (it builds `bench/` in Release, runs it and writes this page).",
             f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end of the run "
             f"({time.strftime('%Y-%m-%d')}). Each figure is the median of {repetitions} repetitions and, in "
             "brackets, the fastest and the slowest; time is per whole workload (W3: per publish or event); the "
             "ratio is library / baseline of the medians.", ""]
    rows = [p for p in PAIRS if TUNED_HEAP.match(p[1]) and p[1] in times and p[2] in times]
    if rows:
        lines += ["## In memory: W1, W2, W3", "",
                  "The Library, Baseline and Ratio columns come from a run of `orchestrix_bench` with glibc's "
                  "default heap, the one a user's program gets. The \"tuned heap\" column comes from a second run "
                  "of the same benchmarks with `ORCHESTRIX_BENCH_HEAP=tuned` (`bench/heap.cpp`: "
                  "`M_MMAP_THRESHOLD` 32 MiB and `M_TRIM_THRESHOLD` 1 GiB, so that freed memory stays in the "
                  "process and is not faulted in afresh by the next iteration): library / baseline, and their "
                  "ratio. Targets are judged on the default heap.", "",
                  "| Workload | Library | Baseline | Ratio | Target | Tuned heap: library / baseline, ratio |",
                  "|---|---|---|---|---|---|"]
        for label, lib, base, target in rows:
            ratio = statistics.median(times[lib]) / statistics.median(times[base])
            if lib in tuned_times and base in tuned_times:
                tuned_ratio = statistics.median(tuned_times[lib]) / statistics.median(tuned_times[base])
                tuned_cell = (f"{spread(tuned_times[lib], fmt_time)} / {spread(tuned_times[base], fmt_time)}, "
                              f"{tuned_ratio:.2f}x")
            else:
                tuned_cell = "not run"
            lines.append(f"| {label} | {spread(times[lib], fmt_time)} | {spread(times[base], fmt_time)} | "
                         f"{ratio:.2f}x | {verdict(ratio, target)} | {tuned_cell} |")
        lines.append("")
    rows = [p for p in PAIRS if not TUNED_HEAP.match(p[1]) and p[1] in times and p[2] in times]
    if rows:
        lines += ["## Commands and SQLite", "",
                  "Default heap. The SQLite rows (names with `sqlite`, here and in the DCB section) ran in a run of "
                  "their own with `--benchmark_enable_random_interleaving=true`: the repetitions of every SQLite "
                  "benchmark in random order, so that the library and its baseline meet the same state of the "
                  "disk and of the machine.", "",
                  "| Workload | Library | Baseline | Ratio | Target |", "|---|---|---|---|---|"]
        for label, lib, base, target in rows:
            ratio = statistics.median(times[lib]) / statistics.median(times[base])
            lines.append(f"| {label} | {spread(times[lib], fmt_time)} | {spread(times[base], fmt_time)} | "
                         f"{ratio:.2f}x | {verdict(ratio, target)} |")
        lines.append("")
    series = {}  # (kind, side) -> {length: [ns per event of each repetition]}
    for name, reps in runs.items():
        m = re.match(r"scaling/(append|replay)/(library|baseline)/(\d+)$", name)
        if m and all("items_per_second" in r for r in reps):
            series.setdefault((m.group(1), m.group(2)), {})[int(m.group(3))] = [1e9 / r["items_per_second"]
                                                                                for r in reps]
    if series:
        lines += ["## Cost per event against stream length", "",
                  "Events appended one at a time to one stream (`scaling/append`; the library's append gives each "
                  "its id, as W1's does), and that stream folded (`scaling/replay`), against the same work on a "
                  "`std::vector<Event>` (the W1 and W2 baselines). Default heap.", "",
                  "| Benchmark | Events | Library ns/event | Baseline ns/event | Ratio |", "|---|---|---|---|---|"]
        ns = lambda v: f"{v:.1f}"  # noqa: E731
        for kind in ("append", "replay"):
            lib, base = series.get((kind, "library"), {}), series.get((kind, "baseline"), {})
            for length in sorted(set(lib) | set(base)):
                ratio = (f"{statistics.median(lib[length]) / statistics.median(base[length]):.2f}x"
                         if length in lib and length in base else "")
                lines.append(f"| {kind} | {length:,} | {spread(lib[length], ns) if length in lib else ''} | "
                             f"{spread(base[length], ns) if length in base else ''} | {ratio} |")
        if plotted:
            lines += ["", "![append and replay rate of the library and its baseline against stream length]"
                          "(performance.png)"]
        lines.append("")
    lines += memory or []
    lines += emmett or []
    if postgres:
        lines += postgres
    if dcb:
        lines += dcb
    generated = {line[3:] for line in lines if line.startswith("## ")} | {"Compile time", "Reading the figures"}
    lines += kept_sections(generated)
    if ct:
        base, lib, leaked = ct["base"], ct["umbrella"], ct["leaked"]
        lines += ["## Compile time", "",
                  f"Including `<orchestrix/orchestrix.hpp>` in a translation unit that already includes `<variant>`, "
                  f"`<string>`, `<vector>` and `<map>` costs **{lib - base:.2f} s** extra with g++ -O0 "
                  f"({base:.2f} s without, {lib:.2f} s with; goal: under 1 s). "
                  + ("nlohmann_json and fmt are not on its include path." if not leaked else
                     f"**It pulls in {', '.join(leaked)}.**"), ""]
        if "user_sqlite" in ct:
            phases = ct.get("phases", {})
            total = phases.get("TOTAL") or 1.0

            def share(name):
                return f"{100 * phases.get(name, 0.0) / total:.0f} %"

            lines += [f"The file users write most ([`bench/compile_time/user_file.cpp`](../bench/compile_time/user_file.cpp): "
                      "three events that name their fields, an aggregate with three commands, a repository) "
                      f"takes **{ct['user_memory']:.2f} s** with g++ -O0 on the in-memory store and "
                      f"**{ct['user_sqlite']:.2f} s** on the SQLite store with the JSON codec (goal: 3 s). "
                      f"Of the SQLite one's time, g++ spends {share('phase parsing')} parsing headers, "
                      f"{share('phase lang. deferred')} instantiating templates and "
                      f"{share('phase opt and generate')} generating code for "
                      f"{ct['functions']:,} functions, {ct['nlohmann_functions']:,} of them nlohmann_json's; "
                      f"`<nlohmann/json.hpp>` alone takes {ct['nlohmann']:.2f} s to parse.", ""]
            if "user_separate" in ct:
                lines += ["With the store compiled once, in another file "
                          "(`ORCHESTRIX_EXTERN_SQLITE_EVENT_STORE`, docs/stores.md \"Compiling a store once\"), "
                          f"the same SQLite file takes **{ct['user_separate']:.2f} s**, and "
                          f"**{ct['user_separate_pch']:.2f} s** with its headers precompiled as well (CMake's "
                          "`target_precompile_headers`); the file that compiles them "
                          f"([`bench/compile_time/instance.cpp`](../bench/compile_time/instance.cpp)) takes "
                          f"{ct['instance']:.2f} s, once.", ""]
    lines += ["## Reading the figures", "",
              "- W1 is defined as 1,000 streams x 100 events of three event types "
              "(`{account_id: \"acc-000123\", amount}`), appended round-robin with an expected-version check. "
              "Every side appends the same plain events, made before timing. The library's row is the user's "
              "path, `store.append(stream, events, expected)` with a `std::vector<Event>`: inside the timed loop "
              "each event is copied into an envelope that gets a fresh `Uuid::generate()` id, as "
              "`store.append(stream, {Deposited{...}}, ...)` does; then the store validates the stream id and "
              "the batch, takes a lock, makes sure no event id is stored already (idempotent appends: ids "
              "greater than every stored id, as `Uuid::generate()` makes them, need no lookup), stores metadata "
              "and a timestamp, and maintains the global order. The bare baseline is an `unordered_map` of "
              "stream id to `std::vector<std::variant>` with the same check and nothing else (no ids). The "
              "baseline with an id index also gives each event a `Uuid::generate()` id inside the timed loop, "
              "looks it up in and inserts it into a `std::unordered_set<Uuid>`: the plain way to the same "
              "guarantee. The rows \"envelopes with ids made before timing\" hand the store envelopes raised "
              "beforehand: the store's own share of the append, without the ids and the copies into envelopes; "
              "not what a user's append costs.",
              "- W2 folds stored events in place through `Repository::load` (`visit_stream` hands out "
              "`RecordedEventView`s over the stream's event blocks, walked block by block); the baseline is a `std::visit` "
              "loop over a `std::vector` that also counts the version, as an aggregate must. The W1-streams "
              "variant looks each stream up by id on both sides.",
              "- Heap: both sides of every pair run in one process with the same heap. Every figure comes from "
              "glibc's default heap except the \"tuned heap\" column of the W1/W2/W3 table (`bench/heap.cpp`, "
              "`ORCHESTRIX_BENCH_HEAP=tuned`). Before each repetition of W1, on both sides, the default heap "
              "gives its free memory back to the system (`bench::settle_heap`, `malloc_trim`), so that every "
              "repetition starts from the same heap and a side's figure does not depend on what ran before it; "
              "each side then pays the page faults of the memory it touches (about 11 us each on this virtual "
              "machine).",
              "- I/O-bound programs and benchmarks (SQLite here, PostgreSQL, JetStream) run with "
              "`--benchmark_enable_random_interleaving=true`.",
              ""]
    text = "\n".join(lines)
    if os.path.exists(ANALYSIS):  # the hand-written account, verbatim
        with open(ANALYSIS) as f:
            text += "\n" + f.read()
    os.makedirs(os.path.dirname(PAGE) or ".", exist_ok=True)
    with open(PAGE, "w") as f:
        f.write(text)
    print(f"wrote {PAGE}")


def sections_of(text):
    """[(heading, text of the section)] of the `## ` sections of `text`, in order."""
    return [(m.group(1), m.group(0).rstrip("\n"))
            for m in re.finditer(r"^## ([^\n]*)\n.*?(?=^## |\Z)", text, flags=re.S | re.M)]


def kept_sections(generated):
    """The lines of the sections of the existing page that this run does not write: hand-written ones, and those
    of programs the run left out (bench/analysis.md's own sections excepted: it is appended afresh)."""
    if not os.path.exists(PAGE):
        return []
    with open(PAGE) as f:
        text = f.read()
    skip = set(generated)
    if os.path.exists(ANALYSIS):
        with open(ANALYSIS) as f:
            skip |= {heading for heading, _ in sections_of(f.read())}
    lines = []
    for heading, section in sections_of(text):
        if heading not in skip:
            print(f"kept the section \"{heading}\" of {PAGE}", flush=True)
            lines += [section, ""]
    return lines


# --- Memory ----------------------------------------------------------------------------------------------------

def memory_section(results, repetitions, why_not=None):
    """The page's "Memory per stored event" section (a list of lines) from orchestrix_bench's memory/* rows."""
    runs = runs_of(results)
    lines = ["## Memory per stored event", ""]
    found = {}  # row -> [bytes per event of each repetition]; a row's benchmark may carry a suffix (/iterations:1)
    for _, name in MEMORY_ROWS:
        for run_name, reps in sorted(runs.items()):
            if (run_name == name or run_name.startswith(name + "/")) and all("bytes_per_event" in r for r in reps):
                found[name] = [r["bytes_per_event"] for r in reps]
                break
    if not found:
        names = ", ".join(f"`{name}`" for _, name in MEMORY_ROWS)
        lines += [f"Not measured in this run: the benchmarks {names} (`bench/memory.cpp`) "
                  + (why_not or "were not run (left out by the run's filter, or not in the program)") + ".", ""]
        return lines
    lines += ["W1's 100,000 events (1,000 streams x 100) held by each structure (`bench/memory.cpp`): the heap in "
              "use after filling it, less before, per event (counter `bytes_per_event`); default heap, median of "
              f"{repetitions} repetitions and the range. Goal: the library within {MEMORY_GOAL}x the bytes of a "
              "`std::vector<Event>` holding the same events.", "",
              "| Structure | Bytes per event | Ratio to vector-variant | Goal |", "|---|---|---|---|"]
    vector = statistics.median(found["memory/vector-variant"]) if "memory/vector-variant" in found else None
    for label, name in MEMORY_ROWS:
        if name not in found:
            lines.append(f"| {label} | not run | | |")
            continue
        value = statistics.median(found[name])
        ratio = f"{value / vector:.2f}x" if vector else ""
        goal = verdict(value / vector, MEMORY_GOAL) if vector and name == "memory/library" else ""
        lines.append(f"| {label} | {spread(found[name], lambda v: f'{v:,.1f}')} | {ratio} | {goal} |")
    # Many short streams (memory/short-streams/{library,map-store}/N): what a stream costs beside its events.
    short = {}  # (side, N) -> [bytes per event of each repetition]
    for run_name, reps in runs.items():
        parts = run_name.split("/")
        if len(parts) >= 4 and parts[:2] == ["memory", "short-streams"] and \
                all("bytes_per_event" in r for r in reps):
            short[(parts[2], int(parts[3]))] = [r["bytes_per_event"] for r in reps]
    sizes = sorted({n for _, n in short})
    if sizes:
        lines += ["", "10,000 streams of N events each, appended round-robin one event at a time "
                  "(`memory/short-streams/*/N`): bytes per event, median and range.", "",
                  "| Events per stream | InMemoryEventStore | W1 baseline's store |", "|---|---|---|"]
        for n in sizes:
            cells = [spread(short[(side, n)], lambda v: f"{v:,.1f}") if (side, n) in short else "not run"
                     for side in ("library", "map-store")]
            lines.append(f"| {n} | {cells[0]} | {cells[1]} |")
    return lines + [""]


# --- Emmett ----------------------------------------------------------------------------------------------------

def find_emmett():
    """(node, the module file of @event-driven-io/emmett, None) if the peer can run, else (.., .., why not)."""
    node = shutil.which("node")
    if not node:
        return None, None, "`node` is not on the PATH"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    found = subprocess.run([node, "-e", "process.stdout.write(require.resolve('@event-driven-io/emmett'))"],
                           cwd=EMMETT_DIR, capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout:
        error = next((line.strip() for line in found.stderr.splitlines() if line.startswith("Error")), "")
        return node, None, (f"Node.js {version} is on the PATH, but the package `@event-driven-io/emmett` does not "
                            f"resolve from `bench/emmett/`" + (f" ({error})" if error else ""))
    return node, found.stdout, None


def parse_emmett(text):
    """The JSON line bench/emmett/w1_w2_w3.mjs prints, checked: {"emmett", "node", "module", "repetitions",
    "results": {workload: [ns of each repetition]}}. Raises ValueError naming what is wrong."""
    try:
        data = json.loads(text.strip().splitlines()[-1] if text.strip() else "")
    except json.JSONDecodeError as e:
        raise ValueError(f"the Emmett script's output is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError("the Emmett script's output has no \"results\" object")
    expected = {workload for _, _, workload in EMMETT_PAIRS}
    missing = sorted(expected - set(data["results"]))
    if missing:
        raise ValueError(f"the Emmett script's results lack {', '.join(missing)}")
    for workload, times in data["results"].items():
        if (not isinstance(times, list) or not times
                or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in times)):
            raise ValueError(f"the Emmett script's times for {workload} are not a list of positive numbers")
    return data


def run_emmett(repetitions):
    """(the parsed results of bench/emmett/w1_w2_w3.mjs, None), or (None, why it did not run)."""
    node, module, why_not = find_emmett()
    if why_not:
        print(f"Emmett not run: {why_not}.", flush=True)
        return None, why_not
    cmd = [node, EMMETT_SCRIPT, "--module", module, "--repetitions", str(repetitions)]
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        why_not = f"`bench/emmett/w1_w2_w3.mjs` failed: {done.stderr.strip().splitlines()[-1:] or ['no message']}"
        print(f"Emmett not run: {why_not}", flush=True)
        return None, why_not
    try:
        return parse_emmett(done.stdout), None
    except ValueError as e:
        print(f"Emmett not run: {e}", flush=True)
        return None, str(e)


def shown_path(path):
    """`path` relative to the repository if it is inside it, else as it is."""
    inside = os.path.abspath(path).startswith(ROOT + os.sep)
    return os.path.relpath(path, ROOT) if inside else path


def emmett_section(results, emmett, why_not):
    """The page's "Peer: Emmett" section: the library's W1/W2/W3 figures (default heap) against Emmett's."""
    lines = ["## Peer: Emmett", ""]
    if emmett is None:
        return lines + [f"Not run: {why_not}. To run it: `npm install --no-save --prefix bench/emmett "
                        "@event-driven-io/emmett`, then `tools/bench.py` (or `tools/bench.py --emmett-only`).", ""]
    times = times_of(runs_of(results))
    rows = [(label, lib, workload) for label, lib, workload in EMMETT_PAIRS if lib in times]
    lines += [f"Emmett {emmett.get('emmett') or '(version unknown)'} (`@event-driven-io/emmett`, from "
              f"`{shown_path(emmett.get('module', '?'))}`) on Node.js {emmett.get('node', '?')}, in the "
              "same run as the library: `bench/emmett/w1_w2_w3.mjs` runs W1, W2 and W3 on Emmett's in-memory "
              "event store (`getInMemoryEventStore`: `appendToStream` with `expectedStreamVersion`, "
              "`aggregateStream`) and message bus (`getInMemoryMessageBus`: `subscribe`, `publish`), with the "
              "same events, streams and handlers; each workload runs once untimed (the JIT's warm-up), then "
              f"{emmett.get('repetitions', '?')} timed repetition(s). The library's figures come from the same run "
              "of `tools/bench.py` (default heap). Median (fastest – slowest); the ratio is library / Emmett of the "
              "medians: below 1.00x the library is faster.", ""]
    if not rows:
        return lines + ["The library's W1/W2/W3 benchmarks were not run (left out by the run's filter).", ""]
    lines += ["| Workload | Library | Emmett | Ratio (library / Emmett) |", "|---|---|---|---|"]
    for label, lib, workload in rows:
        peer = emmett["results"][workload]
        ratio = statistics.median(times[lib]) / statistics.median(peer)
        lines.append(f"| {label} | {spread(times[lib], fmt_time)} | {spread(peer, fmt_time)} | {fmt_ratio(ratio)} |")
    return lines + [""]


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
        values = [r[who + "_us"] for r in runs[name]]
        return (f"{statistics.median(values):.1f} us/event ({min(values):.1f} – {max(values):.1f}; "
                f"server {side(name, who + '_server_us'):.1f} us)")

    lines = ["## PostgreSQL", "",
             f"Measured by `orchestrix_bench_postgres` (`bench/postgres.cpp`), which starts a throwaway "
             f"{postgres_version()} cluster on 127.0.0.1 (fsync off, as the tests run it) and stops it at the end. "
             "The library and its baselines run in turns of about 100 appends (or reads) within each benchmark, "
             "so that all of them see the same load on the machine; each side is timed on its own. Time per "
             "event: the median of "
             f"{repetitions} repetitions and, in brackets, the fastest and the slowest, and the server process's "
             "CPU time per event (median); the ratio is the median of the repetitions' ratios.", "",
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
    path = PAGE
    text = "# Performance\n\n"
    if os.path.exists(path):
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
    global BUILD, PAGE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--filter", default="", help="a --benchmark_filter regex for every program")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--build-dir", default=BUILD,
                        help="the build folder (default build/bench, the bench preset's; another one is "
                             "configured with the preset's settings)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel build jobs")
    parser.add_argument("--output", default=PAGE,
                        help="the page to write (default docs/performance.md, or ORCHESTRIX_BENCH_DOCS/...); "
                             "performance.png goes beside it")
    parser.add_argument("--postgres-only", action="store_true",
                        help="run only the PostgreSQL benchmarks and replace that section of the page")
    parser.add_argument("--dcb-only", action="store_true",
                        help="run only the DCB benchmarks (of both programs) and replace that section of the page")
    parser.add_argument("--emmett-only", action="store_true",
                        help="run only the library's W1/W2/W3 benchmarks and bench/emmett/w1_w2_w3.mjs, and "
                             "replace the page's \"Peer: Emmett\" section (which says why, if Emmett cannot run)")
    args = parser.parse_args()
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    BUILD = os.path.abspath(args.build_dir)
    PAGE = os.path.abspath(args.output)
    if args.emmett_only:
        emmett, why_not = run_emmett(args.repetitions)
        results = None
        if emmett is not None:
            if not args.no_build:
                build(args.jobs)
            results = run_binary(bench_binary(), args.repetitions, [lib for _, lib, _ in EMMETT_PAIRS],
                                 os.path.join(BUILD, "results-emmett.json"))
        splice_section("Peer: Emmett", emmett_section(results, emmett, why_not))
        return 0
    if not args.no_build:
        build(args.jobs)
    if args.dcb_only:
        results = run_benchmarks(args.repetitions, args.filter or "^DCB/")
        pg = run_postgres(args.repetitions, args.filter or "^PG/dcb-")
        section = dcb_section(merged(results["in_memory"], results["io"]), pg, args.repetitions)
        if section is not None:
            splice_section("Decisions across streams (DCB)", section)
        return 0
    pg = run_postgres(args.repetitions, args.filter)
    if args.postgres_only:
        if pg is not None:
            splice_postgres_section(postgres_section(pg, args.repetitions))
        return 0
    results = run_benchmarks(args.repetitions, args.filter)
    if any(lib in runs_of(results["in_memory"]) for _, lib, _ in EMMETT_PAIRS):
        emmett, why_not = run_emmett(args.repetitions)
    else:
        emmett, why_not = None, "the run's filter left out the library's W1, W2 and W3 benchmarks"
    ct = compile_time()
    os.makedirs(os.path.dirname(PAGE), exist_ok=True)
    plotted = plot(rates_of(runs_of(results["in_memory"])))
    everything = merged(results["in_memory"], results["io"])
    write_doc(results, args.repetitions, ct, plotted,
              postgres_section(pg, args.repetitions) if pg is not None else None,
              dcb_section(everything, pg, args.repetitions),
              memory_section(results["in_memory"], args.repetitions),
              emmett_section(results["in_memory"], emmett, why_not))
    return 0


if __name__ == "__main__":
    sys.exit(main())
