#!/usr/bin/env bash
# Our pipeline against etcd 3.4.23's own, side by side on this machine.
#
# Usage: bash bench/compare.sh [case-regex]        (from anywhere; paths are the repository's)
#   env: REPS=3          runs per case and side, alternated: ours, etcd, ours, etcd, ...
#        OUT=dir         where the results go (default: a new temporary directory)
#        QUIET_PCT=10 QUIET_WAIT=90   start a run once the machine is at most QUIET_PCT % busy
#                        over 1 s, waiting at most QUIET_WAIT s for that
#        NOISY=0.10 ATTEMPTS=3        repeat a run whose foreign_cpu_frac (CPU of other
#                        processes) is above NOISY, up to ATTEMPTS runs; keep the least noisy
#        SCALE=1         divide every message count and byte size by this (a quick look:
#                        SCALE=1000 REPS=1 QUIET_WAIT=0); the figures are then not comparable
#        IDLE=5s         the idle window of the peers_* cases
#        GO_WORK=dir     where the Go harness is built (default: target/etcd-go)
#
# Cases (regex over their names):
#   w1_retry, w2_16MiBx8_serial, w2_64MiBx4_burst, w2_64MiBx4_serial, w3_latency
#   w1s_window               W1 over etcd's streams, lossless: at most 4096 messages sent
#                            and not yet processed by B (etcd's receive queue), N = 2 000 000
#   w3s_latency              W3 over etcd's streams: MsgApp on A's msgappv2 stream, the
#                            MsgAppResp back on B's message stream
#   w3s_latency_1cpu         the same with both processes on CPU 0 (taskset -c 0): no
#                            round trip waits for an idle CPU to wake (see BENCHMARKS.md)
#   floor                    our bare awc/actix-web floor against bare Go net/http (httpref)
#   sweep_64B ... sweep_1MiB W1 with one entry of 64 B, 1 KiB, 16 KiB, 256 KiB, 1 MiB
#   peers_1 ... peers_64     W1 with K = 1, 4, 16, 64 peers in node A, and an idle window
#   ref_tcp                  the loopback TCP limit (one connection, Go), for the sweep
#
# Our side is the rafthttp-bench crate (bench/src); etcd's side is our Go harness
# (bench/etcd-go), which drives etcd 3.4.23's real rafthttp package from Debian's
# golang-etcd-server-dev in GOPATH mode. Both take the same flags and print the same
# RESULT {json} fields. Go, etcd's sources and jq are installed with apt-get when
# missing. Writes to $OUT: results.jsonl (one kept run per case, rep and side, with
# "side" and "case"), all.jsonl (every attempt), failed.jsonl, *.stderr.log, table.md
# (also printed) and BENCHMARKS-sweep.svg (the size sweep, by `bench plot`).
# Benchmarks only: .ci/run never runs this.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-90}
NOISY=${NOISY:-0.10}
ATTEMPTS=${ATTEMPTS:-3}
SCALE=${SCALE:-1}
IDLE=${IDLE:-5s}
FILTER=${1:-.}
OUT=${OUT:-$(mktemp -d)}
GO_WORK=${GO_WORK:-$ROOT/target/etcd-go}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bench
MiB=1048576
mkdir -p "$OUT"

# --- tools and builds ---------------------------------------------------------------

install_tools() {
  command -v go >/dev/null && command -v jq >/dev/null &&
    dpkg -s golang-etcd-server-dev >/dev/null 2>&1 && return
  local sudo=""
  ((EUID == 0)) || sudo=sudo
  echo "installing golang-go, golang-etcd-server-dev and jq" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-etcd-server-dev jq >&2
}

# build_go: pipebench, httpref and tcpref into $GO_WORK/bin, in GOPATH mode against the
# etcd sources Debian installs under .../src/go.etcd.io.
build_go() {
  local gocode
  # awk reads all of dpkg's output (grep -m1 would close the pipe early: SIGPIPE)
  gocode=$(dpkg -L golang-etcd-server-dev | awk '/\/src\/go.etcd.io$/ && !f {sub("/src/go.etcd.io$", ""); print; f=1}')
  [[ -n $gocode ]] || { echo "golang-etcd-server-dev has no src/go.etcd.io" >&2; exit 1; }
  mkdir -p "$GO_WORK/bin"
  local c
  for c in pipebench httpref tcpref; do
    (cd "$ROOT/bench/etcd-go" && GO111MODULE=off GOPATH="$GO_WORK/gopath:$gocode" \
      GOCACHE=${GOCACHE:-$GO_WORK/gocache} GOFLAGS= go build -o "$GO_WORK/bin/$c" "./cmd/$c")
  done
}

# --- cases ----------------------------------------------------------------------------

scaled() { # a count or a size divided by SCALE, at least $2 (default 1)
  local v=$(($1 / SCALE)) min=${2:-1}
  echo $((v > min ? v : min))
}

CASES=() # name|our command|etcd's command; a command's first word is a program below
both() { # name flags [flags for etcd's side only] [flags for ours only]: the same flags on both sides
  CASES+=("$1|bench $2 ${4:-}|pipebench $2 ${3:-}")
}
W1="--workload w1 --mode retry --retry-sleep 50us"
N=$(scaled 200000)
WARM=$(scaled 1000 50)
both w1_retry "$W1 --n $N --warmup $WARM"
both w2_16MiBx8_serial "--workload w2 --snap-size $(scaled $((16 * MiB))) --snap-count 8 --serial --warmup $WARM"
both w2_64MiBx4_burst "--workload w2 --snap-size $(scaled $((64 * MiB))) --snap-count 4 --warmup $WARM"
both w2_64MiBx4_serial "--workload w2 --snap-size $(scaled $((64 * MiB))) --snap-count 4 --serial --warmup $WARM"
both w3_latency "--workload w3 --n $(scaled 1000 10) --warmup 200"
# etcd's streams, both sides: each node adds the other, the run waits (10 s at most) until
# messages take the streams and fails if a measured one came by POST /raft.
# Our members busy-poll 100 us after each stream send (TransportConfig::busy_poll), as Go's
# scheduler spins before it parks; see BENCHMARKS.md.
SPIN="--busy-poll 100us"
both w1s_window "$W1 --streams --window 4096 --n $(scaled 2000000) --warmup $WARM" "" "$SPIN"
both w3s_latency "--workload w3 --streams --n $(scaled 1000 10) --warmup 200" "" "$SPIN"
both w3s_latency_1cpu "--workload w3 --streams --n $(scaled 1000 10) --warmup 200" "" "$SPIN"
CASES+=("floor|bench --floor --n $N --warmup $WARM|httpref --clients 4 --body 300 --n $N --warmup $WARM")
# The size sweep: fewer messages as they grow, so that each case moves 1 to 5 GB at most.
for spec in 64B:64:200000 1KiB:1024:200000 16KiB:16384:100000 256KiB:262144:20000 1MiB:1048576:5000; do
  IFS=: read -r label size count <<<"$spec"
  warm=$(( size > 65536 ? $(scaled 200 20) : WARM ))
  both "sweep_$label" "$W1 --entry-size $size --n $(scaled "$count") --warmup $warm"
done
# K peers in node A, one receiver process serving them all (see bench/README.md).
# etcd's side: B answers A's stream readers as an established stream would
# (--stream-stub), so that they do not redial 10 times a second each.
for k in 1 4 16 64; do
  both "peers_$k" "$W1 --peers $k --n $N --warmup $(scaled 1024 $((4 * k))) --idle $IDLE" --stream-stub
done
CASES+=("ref_tcp|-|tcpref --bytes $(scaled $((2048 * MiB)))")

# --- running --------------------------------------------------------------------------

busy_pct() { # machine busy % (all CPUs, excl. idle/iowait/steal) over 1 s
  local a b
  read -r -a a </proc/stat
  sleep 1
  read -r -a b </proc/stat
  local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7]) - (a[1] + a[2] + a[3] + a[6] + a[7])))
  local tot=$((busy + (b[4] + b[5] + b[8]) - (a[4] + a[5] + a[8])))
  echo $((tot > 0 ? 100 * busy / tot : 0))
}

wait_quiet() {
  local t0=$SECONDS p
  while :; do
    p=$(busy_pct)
    if ((p <= QUIET_PCT)) || ((SECONDS - t0 >= QUIET_WAIT)); then
      echo "$p"
      return
    fi
  done
}

program() { # the path of a case's program
  case $1 in
    bench) echo "$BIN" ;;
    pipebench | httpref | tcpref) echo "$GO_WORK/bin/$1" ;;
    *) echo "unknown program $1" >&2; exit 1 ;;
  esac
}

# run_one SIDE CASE REP PROGRAM FLAGS...: wait for a quiet machine, run, retry a noisy or
# failed attempt, keep the least noisy one in results.jsonl.
run_one() {
  local side=$1 name=$2 rep=$3 prog
  prog=$(program "$4")
  shift 4
  local att pre out rc line f best="" bestf=99 pin=()
  [[ $name == *_1cpu ]] && pin=(taskset -c 0)
  for ((att = 1; att <= ATTEMPTS; att++)); do
    pre=$(wait_quiet)
    echo "[$(date +%T)] $side $name rep=$rep attempt=$att (busy before: ${pre}%): $*" >&2
    out=$(timeout -k 5 600 "${pin[@]}" "$prog" "$@" 2>>"$OUT/$side.stderr.log") && rc=0 || rc=$?
    line=$(grep -m1 '^RESULT ' <<<"$out" || true)
    line=${line#RESULT }
    [[ -n $line ]] && line=$(jq -c --arg s "$side" --arg c "$name" --argjson r "$rep" \
      --argjson a "$att" --argjson b "$pre" \
      '. + {side: $s, case: $c, rep: $r, attempt: $a, busy_before_pct: $b}' <<<"$line")
    if ((rc != 0)) || [[ -z $line ]]; then
      echo "  -> failed with exit $rc (see $OUT/$side.stderr.log)" >&2
      [[ -n $line ]] && echo "$line" >>"$OUT/failed.jsonl"
      continue
    fi
    echo "$line" >>"$OUT/all.jsonl"
    f=$(jq -r '.foreign_cpu_frac // 0' <<<"$line")
    if awk -v f="$f" -v b="$bestf" 'BEGIN{exit !(f<b)}'; then best=$line bestf=$f; fi
    if awk -v f="$f" -v n="$NOISY" 'BEGIN{exit !(f<=n)}'; then break; fi
  done
  if [[ -n $best ]]; then echo "$best" >>"$OUT/results.jsonl"; fi
}

install_tools
echo "building the bench (release) and the Go harness" >&2
(cd "$ROOT" && cargo build --release -p rafthttp-bench >&2)
build_go
for spec in "${CASES[@]}"; do
  IFS='|' read -r name ours etcd <<<"$spec"
  [[ $name =~ $FILTER ]] || continue
  for ((rep = 1; rep <= REPS; rep++)); do
    # shellcheck disable=SC2086 # a command is words
    [[ $ours == - ]] || run_one ours "$name" "$rep" $ours
    # shellcheck disable=SC2086
    [[ $etcd == - ]] || run_one etcd "$name" "$rep" $etcd
  done
done
touch "$OUT/results.jsonl"
{
  ((SCALE == 1)) || printf '%s\n\n' "SCALE=$SCALE: every count and size divided by $SCALE; this checks the chain, its figures compare nothing."
  python3 "$ROOT/bench/table.py" "$OUT/results.jsonl"
} | tee "$OUT/table.md"
if grep -q '"case":"sweep_' "$OUT/results.jsonl"; then
  "$BIN" plot "$OUT/results.jsonl" >"$OUT/BENCHMARKS-sweep.svg"
  echo "size sweep plot: $OUT/BENCHMARKS-sweep.svg" >&2
fi
echo "raw results in $OUT" >&2
