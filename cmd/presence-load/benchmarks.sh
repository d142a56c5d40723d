#!/usr/bin/env bash
# Runs the load benchmarks of docs/benchmarks.md in one go on this machine:
# the write(2) floor, then a hub, each freshly started, with the same
# generator commands. Run from the repository root; results go to $OUT
# (default /tmp/presence-bench), one JSON summary per run plus a text log.
#
#   bash cmd/presence-load/benchmarks.sh            # 10,000 widgets, as documented
#   WIDGETS=500 CHANGES=5 bash cmd/presence-load/benchmarks.sh   # a quick try
#   BASE=a152f97 bash cmd/presence-load/benchmarks.sh   # also the fanout, storm and agent path of an older hub
#   NICE=-15 bash cmd/presence-load/benchmarks.sh      # ahead of other work on the machine (root)
#   SCENARIOS="agent agent-noevents" RUNS=3 bash cmd/presence-load/benchmarks.sh
#       # the agent path with events on and off (--events-stream none), alternated
#   INTERVAL=500ms BASE=97c4176 SCENARIOS=fanout bash cmd/presence-load/benchmarks.sh
#       # issue 25's fan-out below saturation, beside the hub before it
#   WIDGETS=18000 SRC=127.0.0.1,127.0.0.2 SCENARIOS=fanout bash cmd/presence-load/benchmarks.sh
#       # more sockets than one source address has ports for comfortably
#   HUB_ARGS="--poller goroutine" ... # flags added to the hub of this commit
#   BASE_SCENARIOS=base-fanout ...      # which scenarios the older hub runs
#   SCENARIOS=replicas NICE=-15 bash cmd/presence-load/benchmarks.sh
#       # issue 21's scale simulation: `presence-load replicas` with a
#       # standalone nats-server (REPLICAS_ARGS adds flags, e.g. "--steps 0,500")
#
# SCENARIOS (default "fanout storm agent") picks the hub scenarios; the floor
# runs with each of fanout, storm and agent. The replicas scenario starts
# its own deployments.
set -euo pipefail
OUT=${OUT:-/tmp/presence-bench}
WIDGETS=${WIDGETS:-10000}
CHANGES=${CHANGES:-40}
RUNS=${RUNS:-1}
INTERVAL=${INTERVAL:-150ms}
ulimit -n 20000
mkdir -p "$OUT"
go build -o "$OUT/ph" ./cmd/presencehub
go build -o "$OUT/pload" ./cmd/presence-load
git rev-parse HEAD >"$OUT/commit"
git status --porcelain >>"$OUT/commit"
scenarios=${SCENARIOS:-fanout storm agent}
[[ " $scenarios " == *" replicas "* ]] && go build -o "$OUT/nats-server" github.com/nats-io/nats-server/v2
if [ -n "${BASE:-}" ]; then
  # From git archive, not a worktree: nothing is added to the repository.
  rm -rf "$OUT/base-src" && mkdir -p "$OUT/base-src"
  git archive "$BASE" | tar -x -C "$OUT/base-src"
  (cd "$OUT/base-src" && go build -o "$OUT/ph-base" ./cmd/presencehub)
  rm -rf "$OUT/base-src"
fi

wait_http() { # URL: waits up to 30 s for it to answer
  for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

prio=()
[ -n "${NICE:-}" ] && prio=(nice -n "$NICE")
src=()
[ -n "${SRC:-}" ] && src=(--src "$SRC")
fanout=(--widgets "$WIDGETS" --agents 1 --changes "$CHANGES" --interval "$INTERVAL" "${src[@]}")
storm=(--widgets "$WIDGETS" --agents 1 --storm "${src[@]}")
agentpath=(--scenario groups --groups 100 --agents 100 --widgets "$WIDGETS" --rate 100 --duration 10s)

for run in $(seq "$RUNS"); do
  # The floor: frames once, write(2) per socket, nothing else; for the
  # fanout scenario, the reconnect storm and the agent path.
  for scenario in fanout storm agent; do
    [[ " $scenarios " == *" $scenario "* ]] || continue
    "${prio[@]}" "$OUT/pload" floor --addr 127.0.0.1:18182 --jwt-secret s >"$OUT/floor.log" 2>&1 &
    floor=$!
    sleep 0.5
    case $scenario in
    fanout) args=("${fanout[@]}") ;;
    storm) args=("${storm[@]}") ;;
    agent) args=("${agentpath[@]}") ;;
    esac
    "${prio[@]}" "$OUT/pload" --url http://127.0.0.1:18182 --jwt-secret s "${args[@]}" --pids "$floor" --json >"$OUT/floor-$scenario-$run.json"
    stop "$floor"
  done

  # The hub, fresh for each scenario: RSS per socket means something only then.
  run_scenarios=$scenarios
  [ -n "${BASE:-}" ] && run_scenarios="${BASE_SCENARIOS:-base-fanout base-storm base-agent} $scenarios"
  for scenario in $run_scenarios; do
    [ "$scenario" = replicas ] && continue
    rm -rf "$OUT/data"
    bin="$OUT/ph"
    [[ $scenario == base-* ]] && bin="$OUT/ph-base"
    hubargs=()
    [ "$scenario" = agent-noevents ] && hubargs=(--events-stream none)
    # shellcheck disable=SC2206 # HUB_ARGS is a list of flags
    [[ $scenario != base-* ]] && hubargs+=(${HUB_ARGS:-})
    "${prio[@]}" "$bin" --addr 127.0.0.1:18181 --data-dir "$OUT/data" --jwt-secret s --grace 30s \
      --max-widgets-per-client -1 --log-level warn "${hubargs[@]}" >"$OUT/hub-$scenario-$run.log" 2>&1 &
    hub=$!
    wait_http http://127.0.0.1:18181/readyz
    case $scenario in
    fanout | base-fanout) args=("${fanout[@]}") ;;
    storm | base-storm) args=("${storm[@]}") ;;
    agent | agent-noevents | base-agent) args=("${agentpath[@]}") ;;
    esac
    "${prio[@]}" "$OUT/pload" --url http://127.0.0.1:18181 --jwt-secret s "${args[@]}" --pids "$hub" --json >"$OUT/hub-$scenario-$run.json"
    stop "$hub"
  done

  # Issue 21's scale simulation: its own nats-server and replicas.
  if [[ " $scenarios " == *" replicas "* ]]; then
    rm -rf "$OUT/replicas-$run"
    # shellcheck disable=SC2086 # REPLICAS_ARGS is a list of flags
    "${prio[@]}" "$OUT/pload" replicas --presencehub "$OUT/ph" --nats-server "$OUT/nats-server" \
      --dir "$OUT/replicas-$run" --json "$OUT/replicas-$run.json" ${REPLICAS_ARGS:-} | tee "$OUT/replicas-$run.txt"
  fi
done
echo "results in $OUT"
