#!/usr/bin/env bash
# scripts/k8s/oom_overlay.sh TREE OUTDIR — write a Go build overlay (OUTDIR/overlay.json) that
# lets the test cluster's kubelet run where no process may lower oom_score_adj.
#
# Why: dockershim gives every pod's pause container oom_score_adj -998 and Guaranteed pods -997.
# Lowering it needs CAP_SYS_RESOURCE; without it runc fails every pod start ("can't get final
# child's PID from pipe: EOF"). The overlay clamps the two values dockershim hands to Docker to
# a floor read from $DRILLBOOK_OOM_SCORE_ADJ_FLOOR (default 0; -1000 restores upstream
# behaviour). Positive values (Burstable, BestEffort pods) pass unchanged.
#
# Dockershim cannot pick a runtime per pod (RuntimeHandler must be empty), so the alternative, a
# runc wrapper registered with dockerd, would have to become the engine's default runtime for
# every container on the shared test engine. The overlay keeps the engine untouched. The
# upstream tree is not modified on disk: the edited copies live in OUTDIR and only this script
# is part of the repository.
set -euo pipefail
tree=$1 out=$2
d=pkg/kubelet/dockershim
mkdir -p "$out"
sandbox_src=$tree/$d/docker_sandbox.go
helpers_src=$tree/$d/helpers_linux.go
grep -q 'hc.OomScoreAdj = defaultSandboxOOMAdj$' "$sandbox_src" || { echo "oom overlay: $sandbox_src changed upstream" >&2; exit 1; }
grep -q 'createConfig.HostConfig.OomScoreAdj = int(rOpts.OomScoreAdj)$' "$helpers_src" || { echo "oom overlay: $helpers_src changed upstream" >&2; exit 1; }
sed 's/hc.OomScoreAdj = defaultSandboxOOMAdj$/hc.OomScoreAdj = drillbookOOMFloor(defaultSandboxOOMAdj)/' \
  "$sandbox_src" >"$out/docker_sandbox.go"
sed 's/createConfig.HostConfig.OomScoreAdj = int(rOpts.OomScoreAdj)$/createConfig.HostConfig.OomScoreAdj = drillbookOOMFloor(int(rOpts.OomScoreAdj))/' \
  "$helpers_src" >"$out/helpers_linux.go"
cat >"$out/drillbook_oomfloor.go" <<'GO'
package dockershim

import (
	"os"
	"strconv"
)

// drillbookOOMFloor raises an oom_score_adj below the floor in DRILLBOOK_OOM_SCORE_ADJ_FLOOR
// (default 0) to the floor: a sandbox without CAP_SYS_RESOURCE cannot lower it.
func drillbookOOMFloor(v int) int {
	floor := 0
	if s := os.Getenv("DRILLBOOK_OOM_SCORE_ADJ_FLOOR"); s != "" {
		if f, err := strconv.Atoi(s); err == nil {
			floor = f
		}
	}
	if v < floor {
		return floor
	}
	return v
}
GO
# The build compiles through the GOPATH link hack/lib/golang.sh makes (_output/local/go/src/
# k8s.io/kubernetes -> the tree), and overlay paths are not resolved through links: name both.
gp=$tree/_output/local/go/src/k8s.io/kubernetes
cat >"$out/overlay.json" <<JSON
{"Replace": {
  "$gp/$d/docker_sandbox.go": "$out/docker_sandbox.go",
  "$gp/$d/helpers_linux.go": "$out/helpers_linux.go",
  "$gp/$d/drillbook_oomfloor.go": "$out/drillbook_oomfloor.go",
  "$tree/$d/docker_sandbox.go": "$out/docker_sandbox.go",
  "$tree/$d/helpers_linux.go": "$out/helpers_linux.go",
  "$tree/$d/drillbook_oomfloor.go": "$out/drillbook_oomfloor.go"
}}
JSON
echo "$out/overlay.json"
