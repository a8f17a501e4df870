#!/usr/bin/env bash
# Renders kmx's compose files for Docker Swarm on stdout:
#   docker stack deploy -c <(deploy/stack-config.sh) kmx
#   deploy/stack-config.sh -f docker-compose.yml -f my-site.yml > kmx-stack.yml
# docker-compose resolves the variables and merges the files (by default docker-compose.yml
# and docker-compose.override.yml, the published ports); then the things
# `docker stack deploy` does not take are rewritten: depends_on conditions become a plain
# list (Swarm ignores start order anyway) and build sections go (Swarm pulls images); a
# published host port range becomes its first port (Swarm's routing mesh spreads one
# published port over the replicas).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -gt 0 ]] || set -- -f docker-compose.yml -f docker-compose.override.yml
docker-compose "$@" config | python3 -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
for svc in doc.get("services", {}).values():
    svc.pop("build", None)
    deps = svc.get("depends_on")
    if isinstance(deps, dict):
        svc["depends_on"] = sorted(deps)
    for port in svc.get("ports") or []:
        # A host port range (one port per docker-compose replica) is one published port
        # in Swarm, whose routing mesh spreads connections over the replicas.
        published = port.get("published") if isinstance(port, dict) else None
        if isinstance(published, str) and "-" in published:
            port["published"] = int(published.split("-")[0])
yaml.safe_dump(doc, sys.stdout, default_flow_style=False, sort_keys=False)
'
