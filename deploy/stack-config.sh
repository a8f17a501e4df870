#!/usr/bin/env bash
# Renders kmx's compose files for Docker Swarm on stdout:
#   docker stack deploy -c <(deploy/stack-config.sh) kmx
#   deploy/stack-config.sh -f docker-compose.yml -f my-site.yml > kmx-stack.yml
# docker-compose resolves the variables and merges the files (by default docker-compose.yml
# and docker-compose.override.yml, the published ports); then the two things
# `docker stack deploy` does not take are rewritten: depends_on conditions become a plain
# list (Swarm ignores start order anyway) and build sections go (Swarm pulls images).
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
yaml.safe_dump(doc, sys.stdout, default_flow_style=False, sort_keys=False)
'
