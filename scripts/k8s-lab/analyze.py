#!/usr/bin/env python3
"""analyze.py RUN_DIR: what run-pod-identity.sh's soak saw, over time.

Reads RUN_DIR/ready.jsonl (the node bridge's /ready every 10 s) and RUN_DIR/app-*.log (one "CALL" line per
aws sts get-caller-identity). Prints:
  ROTATION t id svid_expiry old -> new         a new SVID reached the identity's session (from /ready)
  SESSION  t id expiration old -> new (refreshes n)   a new CreateSession's credentials (from /ready)
  KEY      role key first .. last calls pods   each access key id the apps were given
  per identity: rotations, sessions, and whether each rotation was followed by a new session before the
  next rotation (the answer the lead asked for).
"""
import collections
import datetime as dt
import glob
import json
import os
import re
import sys


def ts(s):
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    # Go's RFC 3339 with nanoseconds: trim to microseconds for fromisoformat
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)
    try:
        return dt.datetime.fromisoformat(s)
    except ValueError:
        return None


def hms(t):
    return t.strftime("%H:%M:%S") if t else "-"


def identities(obj):
    """Every object in /ready that names a spiffe_id (a profile or a pod identity session)."""
    if isinstance(obj, dict):
        if "spiffe_id" in obj:
            yield obj
        for v in obj.values():
            yield from identities(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from identities(v)


def main(run):
    rot = collections.defaultdict(list)   # id -> [(t, old, new)]
    ses = collections.defaultdict(list)   # id -> [(t, old, new, refreshes)]
    last = {}
    samples = 0
    path = os.path.join(run, "ready.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        t = ts(rec.get("t"))
        if not rec.get("ready"):
            continue
        samples += 1
        for o in identities(rec["ready"]):
            k = f'{o.get("spiffe_id")} -> {o.get("role_arn", "?").rsplit("/", 1)[-1]}'
            cur = (o.get("svid_expiry"), o.get("expiration"), o.get("refreshes"))
            prev = last.get(k)
            if prev is not None:
                if cur[0] != prev[0]:
                    rot[k].append((t, prev[0], cur[0]))
                    print(f"ROTATION {hms(t)} {k} svid_expiry {prev[0]} -> {cur[0]}")
                if cur[1] != prev[1]:
                    ses[k].append((t, prev[1], cur[1], cur[2]))
                    print(f"SESSION  {hms(t)} {k} expiration {prev[1]} -> {cur[1]} (refreshes {cur[2]})")
            else:
                print(f"FIRST    {hms(t)} {k} svid_expiry {cur[0]} expiration {cur[1]} refreshes {cur[2]}")
            last[k] = cur
    print(f"/ready samples: {samples}")

    keys = {}  # key -> [role, first, last, calls, pods]
    fails = collections.Counter()
    for f in sorted(glob.glob(os.path.join(run, "app-*.log"))):
        pod = os.path.basename(f)[4:-4]
        for line in open(f):
            m = re.match(r"CALL (\S+) rc=(\d+)(.*)", line)
            if not m:
                continue
            t = ts(m.group(1))
            if m.group(2) != "0":
                fails[pod] += 1
                print(f"FAILED   {hms(t)} {pod}: {m.group(3).strip()[:200]}")
                continue
            arn = re.search(r"arn=(\S+)", line)
            key = re.search(r"key=(\S+)", line)
            role = arn.group(1).split("/")[1] if arn and "/" in arn.group(1) else "?"
            k = key.group(1) if key else "?"
            e = keys.setdefault(k, [role, t, t, 0, set()])
            e[2] = t
            e[3] += 1
            e[4].add(pod)
    for k, (role, first, lastt, n, pods) in sorted(keys.items(), key=lambda kv: kv[1][1]):
        print(f"KEY      {role:9} {k} {hms(first)} .. {hms(lastt)} calls {n:3} pods {','.join(sorted(pods))}")
    for pod, n in fails.items():
        print(f"failures {pod}: {n}")

    print()
    for k in sorted(set(rot) | set(ses)):
        r, s = rot.get(k, []), ses.get(k, [])
        followed = 0
        for i, (t, _, _) in enumerate(r):
            nxt = r[i + 1][0] if i + 1 < len(r) else None
            if any(st >= t and (nxt is None or st < nxt) for st, *_ in s):
                followed += 1
        print(f"SUMMARY  {k}: {len(r)} SVID rotations, {len(s)} new sessions; "
              f"{followed}/{len(r)} rotations followed by a new session before the next rotation")
    by_role = collections.defaultdict(list)
    for k, (role, *_rest) in keys.items():
        by_role[role].append(k)
    for role, ks in sorted(by_role.items()):
        print(f"SUMMARY  apps of role {role}: {len(ks)} distinct access key ids")


if __name__ == "__main__":
    main(sys.argv[1])
