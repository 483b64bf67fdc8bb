"""Where the CPU of W1's full lineitem scan goes, with 1 and 2 page ranges.

Runs `COPY (SELECT * FROM a.public.lineitem) TO STDOUT (FORMAT binary)`
through tautan (2 parts, then `SET tautan.scan_parts = 1`) and the same COPY
on PostgreSQL directly (the floor), and prints for each the wall time and the
CPU seconds of the tautan process, of psql, of the whole machine, and the
rest of the machine (PostgreSQL's backends, counted this way because a
backend that exits during the run takes its own counters with it). Needs the benchmark's data loaded and a tautan server
on the benchmark's config and port:

    ~/.cache/tautan-release/release/tautan -c ~/.cache/tautan-bench/run/federation.toml \
        serve --listen 127.0.0.1:6599 &
    python3 benches/cpu_split.py [runs]
"""

import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def process_ticks(match):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not match(f.read().strip()):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass  # the process ended meanwhile
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        values = list(map(int, f.readline().split()[1:]))
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def measure(label, command):
    tautan0 = process_ticks(lambda c: c == "tautan")
    busy0, all0 = machine_ticks()
    start = time.time()
    run = subprocess.run(["/usr/bin/time", "-f", "%U %S"] + command,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - start
    tautan1 = process_ticks(lambda c: c == "tautan")
    busy1, all1 = machine_ticks()
    user, system = map(float, run.stderr.strip().splitlines()[-1].split())
    tautan = (tautan1 - tautan0) / HZ
    psql = user + system
    busy = (busy1 - busy0) / HZ
    print(f"{label}: wall {wall:.2f} s | CPU s: tautan {tautan:.2f}, psql {psql:.2f}, "
          f"rest (PostgreSQL) {busy - tautan - psql:.2f}, "
          f"machine busy {busy:.2f} of {(all1 - all0) / HZ:.2f} core-s")


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    port = os.environ.get("TAUTAN_BENCH_PORT", "6599")
    os.environ.setdefault("PGPASSWORD", "bench-tautan")
    tautan = ["psql", "-X", "-h", "127.0.0.1", "-p", port, "-U", "bench", "-d", "tautan"]
    copy = "COPY (SELECT * FROM a.public.lineitem) TO STDOUT (FORMAT binary)"
    floor = ["psql", "-X", "-h", os.environ.get("BENCH_PGHOST", "127.0.0.1"),
             "-U", os.environ.get("BENCH_PGUSER", "postgres"), "-d", "tpch_a",
             "-c", "COPY (SELECT * FROM public.lineitem) TO STDOUT (FORMAT binary)"]
    for _ in range(runs):
        measure("tautan, 2 parts", tautan + ["-c", copy])
        measure("tautan, 1 part ", tautan + ["-c", "SET tautan.scan_parts = 1", "-c", copy])
        measure("floor          ", floor)


if __name__ == "__main__":
    main()
