#!/usr/bin/env python3
"""CPU time of processes, and of the whole machine, over a span, read from /proc (for
bench/mixed/run.sh: what the ingest and the readers each cost, in the same run):
    cpu.py snap OUT SPEC ...     writes a snapshot to OUT; SPEC is NAME=PID[,PID...]
                                 [:COMM or :!COMM] (only, or all but, the threads named
                                 COMM), each PID's threads summed (user + system)
    cpu.py diff A B              prints "NAME=SECONDS NAME_wait=SECONDS ..." for every
                                 NAME of B (its CPU, and the time its threads were
                                 ready to run but waited for a core, from schedstat), then
                                 busy=SECONDS (the machine's busy CPU, everyone's work),
                                 span=SECONDS (wall time between the snapshots) and
                                 cores=N (the machine's)
    cpu.py run OUT NAME CMD ...  runs CMD, writes "NAME=SECONDS" (its CPU and its
                                 children's) to OUT, exits with CMD's status
Take B before stopping what is measured: a process gone by then counts nothing."""
import json
import os
import resource
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def s_ticks(path):
    with open(path) as f:
        s = f.read()
    comm = s[s.index("(") + 1:s.rindex(")")]
    f = s[s.rindex(")") + 2:].split()
    return comm, int(f[11]) + int(f[12])  # utime, stime


def s_runq_ns(path):
    """Nanoseconds the thread spent ready to run but waiting for a core (schedstat)."""
    try:
        with open(path) as f:
            return int(f.read().split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def snap(out, specs):
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    busy = sum(cpu[:8]) - cpu[3] - cpu[4]  # all but idle and iowait
    names, waits = {}, {}
    for spec in specs:
        name, rest = spec.split("=", 1)
        pids, _, comm = rest.partition(":")
        total = wait = 0
        for pid in filter(None, pids.split(",")):
            try:
                for tid in os.listdir("/proc/%s/task" % pid):
                    c, n = s_ticks("/proc/%s/task/%s/stat" % (pid, tid))
                    if not comm or (comm[0] == "!" and c != comm[1:]) or c == comm:
                        total += n
                        wait += s_runq_ns("/proc/%s/task/%s/schedstat" % (pid, tid))
            except (FileNotFoundError, ProcessLookupError):
                pass  # ended: counts nothing
        names[name], waits[name] = total, wait
    with open(out, "w") as f:
        json.dump({"t": time.monotonic(), "busy": busy, "names": names, "waits": waits}, f)


def diff(a_path, b_path):
    a, b = json.load(open(a_path)), json.load(open(b_path))
    kv = ["%s=%.2f" % (n, (v - a["names"].get(n, 0)) / HZ) for n, v in b["names"].items()]
    kv += ["%s_wait=%.3f" % (n, (v - a.get("waits", {}).get(n, 0)) / 1e9)
           for n, v in b.get("waits", {}).items()]
    kv += ["busy=%.2f" % ((b["busy"] - a["busy"]) / HZ), "span=%.2f" % (b["t"] - a["t"]),
           "cores=%d" % os.cpu_count()]
    print(" ".join(kv))


def run(out, name, cmd):
    rc = subprocess.call(cmd)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        f.write("%s=%.2f\n" % (name, ru.ru_utime + ru.ru_stime))
    return rc


if __name__ == "__main__":
    if sys.argv[1] == "snap":
        snap(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4:]))
