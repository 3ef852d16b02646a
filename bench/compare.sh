#!/usr/bin/env bash
# Our pipeline against etcd 3.4.23's own, side by side on this machine.
#
# Usage: bench/compare.sh [case-regex]
#   env: REPS=3          runs per case and side, alternated: ours, etcd, ours, etcd, ...
#        OUT=dir         where the raw results go (default: a new temp dir)
#        QUIET_PCT=10 QUIET_WAIT=90 NOISY=0.10 ATTEMPTS=3   as in the baseline's run.sh
#        GO_WORK=dir     the baseline's build dir (default: target/etcd-go-baseline)
#
# Cases: w1_retry, w2_16MiBx8_serial, w2_64MiBx4_burst, w2_64MiBx4_serial,
# w3_latency, and floor (our bare awc/actix-web floor against the baseline's
# bare Go net/http reference, ref_http). Prints one markdown table with both
# medians and their ratio per figure; keeps every RESULT line in $OUT.
#
# The baseline is ../shared/bench/etcd-go-baseline beside this repository; its
# run.sh installs Go and etcd's sources when they are missing. Benchmarks only:
# .ci/run never runs this.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASELINE=$ROOT/../shared/bench/etcd-go-baseline
REPS=${REPS:-3}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-90}
NOISY=${NOISY:-0.10}
ATTEMPTS=${ATTEMPTS:-3}
FILTER=${1:-.}
OUT=${OUT:-$(mktemp -d)}
GO_WORK=${GO_WORK:-$ROOT/target/etcd-go-baseline}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench
MiB=1048576
mkdir -p "$OUT"
[[ -f $BASELINE/run.sh ]] || { echo "no baseline at $BASELINE" >&2; exit 1; }
command -v jq >/dev/null || { echo "compare.sh needs jq" >&2; exit 1; }

# case name | our flags | the baseline's case name (run.sh)
CASES=(
  "w1_retry|--workload w1 --mode retry --n 200000 --retry-sleep 50us|w1_retry"
  "w2_16MiBx8_serial|--workload w2 --snap-size $((16 * MiB)) --snap-count 8 --serial|w2_16MiBx8_serial"
  "w2_64MiBx4_burst|--workload w2 --snap-size $((64 * MiB)) --snap-count 4|w2_64MiBx4_burst"
  "w2_64MiBx4_serial|--workload w2 --snap-size $((64 * MiB)) --snap-count 4 --serial|w2_64MiBx4_serial"
  "w3_latency|--workload w3 --n 1000 --warmup 200|w3_latency"
  "floor|--floor --n 200000|ref_http"
)

busy_pct() { # machine busy % (all CPUs, excl. idle/iowait/steal) over 1 s, as run.sh measures it
  local a b
  read -r -a a < /proc/stat; sleep 1; read -r -a b < /proc/stat
  local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]) - (a[1]+a[2]+a[3]+a[6]+a[7]) ))
  local tot=$(( busy + (b[4]+b[5]+b[8]) - (a[4]+a[5]+a[8]) ))
  echo $(( tot > 0 ? 100*busy/tot : 0 ))
}

wait_quiet() {
  local t0=$SECONDS p
  while :; do
    p=$(busy_pct)
    if (( p <= QUIET_PCT )) || (( SECONDS - t0 >= QUIET_WAIT )); then echo "$p"; return; fi
  done
}

# ours CASE REP FLAGS...: like run.sh's run_case: wait for a quiet machine,
# retry a noisy or failed attempt, keep the least noisy one.
ours() {
  local name=$1 rep=$2; shift 2
  local att pre out rc line f best="" bestf=99
  for ((att = 1; att <= ATTEMPTS; att++)); do
    pre=$(wait_quiet)
    echo "[$(date +%T)] ours $name rep=$rep attempt=$att (busy before: ${pre}%): $*" >&2
    out=$(timeout -k 5 600 "$BIN" "$@" 2>>"$OUT/ours_stderr.log") && rc=0 || rc=$?
    line=$(grep '^RESULT ' <<<"$out" || true)
    if ((rc != 0)) || [[ -z $line ]]; then
      echo "  -> failed with exit $rc (see $OUT/ours_stderr.log)" >&2
      [[ -n $line ]] && echo "${line#RESULT }" >>"$OUT/ours_failed.jsonl"
      continue
    fi
    line=$(jq -c --arg c "$name" --argjson r "$rep" --argjson a "$att" --argjson b "$pre" \
      '. + {case: $c, rep: $r, attempt: $a, busy_before_pct: $b}' <<<"${line#RESULT }")
    echo "$line" >>"$OUT/ours_all.jsonl"
    f=$(jq -r '.foreign_cpu_frac // 0' <<<"$line")
    if awk -v f="$f" -v b="$bestf" 'BEGIN{exit !(f<b)}'; then best=$line; bestf=$f; fi
    if awk -v f="$f" -v n="$NOISY" 'BEGIN{exit !(f<=n)}'; then break; fi
  done
  [[ -n $best ]] && echo "$best" >>"$OUT/ours.jsonl"
  return 0
}

# etcd CASE REP GOCASE: one rep of the baseline's own run.sh for one case.
etcd() {
  local name=$1 rep=$2 gocase=$3 dir="$OUT/etcd/$1/$2"
  mkdir -p "$dir"
  echo "[$(date +%T)] etcd $name rep=$rep: run.sh '^$gocase\$'" >&2
  # run.sh's `dpkg -L ... | grep -m1` can die of SIGPIPE under pipefail
  # (exit 141) before it runs anything: try again, up to 3 times.
  local rc
  for _ in 1 2 3; do
    rc=0
    WORK_DIR=$GO_WORK OUT=$dir REPS=1 QUIET_PCT=$QUIET_PCT QUIET_WAIT=$QUIET_WAIT NOISY=$NOISY \
      ATTEMPTS=$ATTEMPTS bash "$BASELINE/run.sh" "^$gocase\$" >"$dir/run.log" 2>&1 || rc=$?
    ((rc == 141)) || break
  done
  ((rc == 0)) || echo "  -> run.sh failed with exit $rc (see $dir/run.log)" >&2
  [[ -s $dir/accepted.jsonl ]] &&
    jq -c --arg c "$name" --argjson r "$rep" '. + {case: $c, rep: $r}' "$dir/accepted.jsonl" >>"$OUT/etcd.jsonl"
  return 0
}

echo "building the bench (release)" >&2
(cd "$ROOT" && cargo build --release --example bench >&2)
mkdir -p "$GO_WORK"
for spec in "${CASES[@]}"; do
  IFS='|' read -r name flags gocase <<<"$spec"
  [[ $name =~ $FILTER ]] || continue
  for ((rep = 1; rep <= REPS; rep++)); do
    # shellcheck disable=SC2086 # the flags are words
    ours "$name" "$rep" $flags
    etcd "$name" "$rep" "$gocase"
  done
done
touch "$OUT/ours.jsonl" "$OUT/etcd.jsonl"
python3 "$ROOT/bench/table.py" "$OUT/ours.jsonl" "$OUT/etcd.jsonl" | tee "$OUT/table.md"
echo "raw results in $OUT" >&2
