#!/usr/bin/env python3
"""Helm post-renderer for the k8s-lab: host-network workloads reach the API server at the node's address.

The lab has no kube-proxy: the kubernetes Service IP (10.96.0.1:443) is DNAT'ed in PREROUTING only, which
traffic from pods on the pod network passes and traffic from host-network pods (the node bridge's
DaemonSet) does not. Every container and init container of a pod template with hostNetwork: true gets
KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (client-go's in-cluster config) set to
$APISERVER_HOST:$APISERVER_PORT (default 10.250.0.1:6443, in the API server's certificate), unless the
container sets them itself. Every patched object is named on stderr. Reads the manifests on stdin, writes
them on stdout (helm --post-renderer).
"""
import os
import sys

import yaml

HOST = os.environ.get("APISERVER_HOST", "10.250.0.1")
PORT = os.environ.get("APISERVER_PORT", "6443")


def pod_spec(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return (spec.get("template") or {}).get("spec")


def _str(dumper, data):
    # multi-line strings (the ConfigMap's bridge.hcl) as block literals, as the chart writes them
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


yaml.SafeDumper.add_representer(str, _str)


def main():
    docs = list(yaml.safe_load_all(sys.stdin))
    for obj in docs:
        if not isinstance(obj, dict):
            continue
        ps = pod_spec(obj)
        if not ps or not ps.get("hostNetwork"):
            continue
        for c in (ps.get("containers") or []) + (ps.get("initContainers") or []):
            env = c.setdefault("env", [])
            have = {e.get("name") for e in env}
            for name, value in (("KUBERNETES_SERVICE_HOST", HOST), ("KUBERNETES_SERVICE_PORT", PORT)):
                if name not in have:
                    env.append({"name": name, "value": value})
            print(f"postrender: {obj['kind']}/{obj['metadata']['name']} container {c['name']}: "
                  f"KUBERNETES_SERVICE_HOST={HOST} KUBERNETES_SERVICE_PORT={PORT}", file=sys.stderr)
    yaml.safe_dump_all([d for d in docs if d is not None], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
