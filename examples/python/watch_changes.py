#!/usr/bin/env python3
"""Prints kmx's changes as they happen, one line each:

    watch_changes.py [--broker EP] [--events EP] [--since SEQ] [--count N] [PREFIX...]

    1312  upsert  export.JP.2025-H1.physical_album_customs  39100000 USD (was 38000000)

It subscribes before it replays (--since), so no change falls between history and the
live stream, and it fills any gap it sees from the event log.
"""
import argparse
import sys

import kmx


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prefixes", nargs="*")
    ap.add_argument("--broker")
    ap.add_argument("--events")
    ap.add_argument("--since", type=int)
    ap.add_argument("--count", type=int)
    ap.add_argument("--idle", type=float, help="stop after this many quiet seconds")
    args = ap.parse_args()
    with kmx.Client(args.broker, events=args.events) as c:
        try:
            for ev in c.watch(args.prefixes, since=args.since, count=args.count,
                              idle=args.idle):
                rec = ev["record"] or {}
                was = " (was %s)" % ev["previous"] if ev["previous"] is not None else ""
                print("%d  %s  %s  %s %s%s" % (ev["seq"], ev["type"], ev["topic"],
                                              rec.get("value"), rec.get("unit"), was),
                      flush=True)
        except kmx.Error as e:
            print("watch_changes: %s" % e, file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
