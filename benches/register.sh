#!/usr/bin/env bash
# REGISTER with MD5 digest through the challenge (REGISTER, 401, REGISTER with
# credentials, 200: two transactions per registration), SIPp vs sipwright, same
# machine, same run, over UDP on 127.0.0.1.
#
# Two parts (PARTS, both by default):
#   kamailio  against Kamailio, tests/fixtures/kamailio/auth.cfg with CHILDREN=2
#             (usrloc in memory, password pw-<user>), a fresh Kamailio per rung
#   ours      against our own registrar, `sipwright run uas-challenge --inject
#             users.csv` (401 with MD5 qop=auth, the retry checked against the
#             user's CSV row), a fresh one per rung, UAS_WORKERS threads
#
# In each part both tools look for their best clean rate, interleaved rung by
# rung (SIPp, then sipwright, each against a fresh peer): the rate doubles from
# START until a rung fails, then BISECT steps halve the gap between the last
# pass and the first failure. A rung runs rate × DURATION registrations:
#   SIPp       tests/fixtures/sipp/register.xml, -inf (SEQUENTIAL, user;password;),
#              -t u1, -r R -rp 1000 -m N, -buff_size 4194304 (as its experts run it;
#              u1, one socket, is its default and cheapest UDP mode: see
#              docs/performance.md)
#   sipwright  run register --inject users.csv --rate R --calls N (--workers SW_WORKERS)
# and is clean when every registration succeeded (the tool's own count, exit 0,
# 0 failed), the registrations per second over the generator's wall time (process
# start to exit, /usr/bin/time, the same for both tools) are ≥ 97 % of the rate
# asked, and the peer agrees: Kamailio holds min(N, USERS) bindings (kamcmd),
# our UAS counted N successful calls. Retransmissions are shown, not judged (as
# in the other benches): a rung that needed many is late and fails the 97 % bar.
# A failed rung is run once more (RETRY) before it counts: the 2 cores are
# shared, with other users' work too.
#
# Columns: calls asked (rate × DURATION); regs: registrations that succeeded
# (SIPp's SuccessfulCall, our calls.succeeded); wall_s: the generator's wall
# time; reg/s = regs / wall_s; trans/s: REGISTER transactions per second (ours:
# transactions.REGISTER.per_second of the report; SIPp: 2 × reg/s); failed;
# retrans: the generator's retransmissions; gen_cpu: its user + system seconds,
# us/reg per registration; kam_cpu% / uas_cpu%: the peer's CPU over the run (%
# of one core, 200 = both); peer_drops: datagrams the kernel dropped at the
# peer's full socket; peer_regs: Kamailio's bindings, or the calls our UAS
# finished; auth_p50/p99: auth.round_trip_ms of our report (REGISTER sent → 200
# to the retry); others%: the rest of the machine just before the rung.
#
#   benches/register.sh                                  # 10-15 minutes
#   PARTS=ours DURATION=20 BISECT=4 benches/register.sh   # longer, finer
#   KAM_RATES="5000 10000 12500" benches/register.sh      # fixed ladders instead
#
# Settings (environment):
#   PARTS          "kamailio ours"
#   DURATION       seconds of load per rung (10); N = rate × DURATION
#   GRACE          seconds past DURATION a rung may take before it is cut (3)
#   KAM_START, OURS_START   first rate of each search (2500, 5000)
#   KAM_RATES, OURS_RATES   a fixed ladder instead of the search (stops at the
#                  first failed rung, per tool)
#   BISECT         bisection steps after the first failure (3)
#   GRAIN          rates are multiples of this (250)
#   MAX_RATE       the doubling stops here (200000)
#   RETRY          runs of a failed rung before it counts as failed, extra (1)
#   USERS          distinct users in the CSV files (100000); calls take rows in
#                  turn, so a user comes back only USERS registrations later
#   KAM_CHILDREN   Kamailio UDP workers (2); KAM_SHM_MB (1024); KAMAILIO_ARGS
#   UAS_WORKERS    threads of our challenging UAS (2: one per core)
#   SW_WORKERS     threads of our generator (1; empty: its default, one per
#                  15,000 calls/s up to the core count)
#   SANITY_CALLS   registrations of the first, slow check of each part (1000)
#   SETTLE         seconds between rungs (1), over which the machine's other
#                  CPU use is measured (column others%: % of one core)
#   QUIET, QUIET_WAIT   before a rung, wait up to QUIET_WAIT s (10) while
#                  others% is above QUIET (50); the rung then runs anyway
#   PORT_PEER, PORT_SIPP   (27060, 27070)
#   NO_BUILD=1, SW=path     use a built binary
#   OUT            keep the rungs' files (reports, SIPp statistics, logs) here
#
# Needs sipp (sip-tester), kamailio + kamcmd for the kamailio part, python3 and
# /usr/bin/time. Nothing else runs inside: no helper tools.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PARTS=${PARTS:-"kamailio ours"}
DURATION=${DURATION:-10}
GRACE=${GRACE:-3}
KAM_START=${KAM_START:-2500}
OURS_START=${OURS_START:-5000}
KAM_RATES=${KAM_RATES:-}
OURS_RATES=${OURS_RATES:-}
BISECT=${BISECT:-3}
GRAIN=${GRAIN:-250}
MAX_RATE=${MAX_RATE:-200000}
RETRY=${RETRY:-1}
USERS=${USERS:-100000}
KAM_CHILDREN=${KAM_CHILDREN:-2}
KAM_SHM_MB=${KAM_SHM_MB:-1024}
UAS_WORKERS=${UAS_WORKERS:-2}
SW_WORKERS=${SW_WORKERS-1}
SANITY_CALLS=${SANITY_CALLS:-1000}
SETTLE=${SETTLE:-1}
QUIET=${QUIET:-50}
QUIET_WAIT=${QUIET_WAIT:-10}
PORT_PEER=${PORT_PEER:-27060}
PORT_SIPP=${PORT_SIPP:-27070}

command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time" >&2; exit 2; }
if [ -z "${NO_BUILD:-}" ]; then cargo build --release --quiet; fi
SW=${SW:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sipwright}
[ -x "$SW" ] || { echo "no sipwright binary at $SW" >&2; exit 2; }
SCENARIO=$ROOT/tests/fixtures/sipp/register.xml
KAM_CFG=$ROOT/tests/fixtures/kamailio/auth.cfg

if [ -n "${OUT:-}" ]; then WORK=$OUT; mkdir -p "$WORK"; else WORK=$(mktemp -d /tmp/sipwright-register.XXXXXX); fi
KAM_PID=
KAM_JOB=
UAS_PID=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$UAS_PID" ]; then kill -INT "$UAS_PID" 2>/dev/null || true; wait "$UAS_PID" 2>/dev/null || true; fi
  [ -n "$KAM_PID" ] && stop_kamailio
  [ -n "${OUT:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The users, in both formats: u000001 … with auth.cfg's password rule pw-<user>
# (our UAS checks the same file's column).
awk -v n="$USERS" 'BEGIN { print "user,password"; for (k = 1; k <= n; k++) { u = sprintf("u%06d", k); print u ",pw-" u } }' \
  >"$WORK/users.csv"
awk -v n="$USERS" 'BEGIN { print "SEQUENTIAL"; for (k = 1; k <= n; k++) { u = sprintf("u%06d", k); print u ";pw-" u ";" } }' \
  >"$WORK/users-sipp.csv"

TCK=$(getconf CLK_TCK)
# CPU seconds (user + system, all threads) of the given processes so far.
cpu_of_pids() {
  local p total=0 t
  for p in "$@"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  awk -v t="$total" -v h="$TCK" 'BEGIN { printf "%.2f", t / h }'
}
session_pids() { ps -o pid= --sid "$1" 2>/dev/null || true; }
# shellcheck disable=SC2046  # one word per pid
peer_cpu() {
  if [ "$PEER" = kamailio ]; then cpu_of_pids $(session_pids "$KAM_PID"); else cpu_of_pids "$UAS_PID"; fi
}

# CPU the rest of the machine uses while none of ours runs, sampled over
# SETTLE s, as % of one core (200 = both): sets others. Other users' builds on
# these 2 cores move every figure, so before a rung wait (up to QUIET_WAIT s)
# until they use at most QUIET %.
NCPU=$(nproc)
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
quiet() {
  local b0 t0 b1 t1 waited=0
  while :; do
    read -r b0 t0 < <(cpu_ticks)
    sleep "$SETTLE"
    read -r b1 t1 < <(cpu_ticks)
    others=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v n="$NCPU" 'BEGIN { printf "%.0f", (t > 0 ? 100 * n * b / t : 0) }')
    waited=$((waited + SETTLE))
    [ "$others" -le "$QUIET" ] || [ "$waited" -ge "$QUIET_WAIT" ] && break
  done
  return 0
}

# Datagrams the kernel dropped because a socket on 127.0.0.1:PORT had a full
# receive queue (the drops column of /proc/net/udp, summed over the sockets,
# e.g. our UAS's one per worker).
udp_drops() {
  awk -v p="$(printf ':%04X' "$1")" 'NR > 1 && substr($2, length($2) - 4) == p { d += $NF } END { print d + 0 }' /proc/net/udp
}

wait_udp_bound() { # PORT
  for _ in $(seq 100); do
    [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.05
  done
  return 1
}

start_kamailio() {
  rm -rf "$WORK/kam"
  mkdir -p "$WORK/kam"
  # Its own session and process group, to stop the whole of it (and only it).
  # setsid forks when started from a shell with job control: the session is
  # Kamailio's main process, read from its pid file, not $!.
  # shellcheck disable=SC2086  # KAMAILIO_ARGS: several options
  setsid kamailio -f "$KAM_CFG" -DD -E -m "$KAM_SHM_MB" -M 32 -Y "$WORK/kam" -P "$WORK/kam/kamailio.pid" \
    -A "LISTEN_PORT=$PORT_PEER" -A "CHILDREN=$KAM_CHILDREN" ${KAMAILIO_ARGS:-} \
    >"$WORK/kamailio.log" 2>&1 &
  KAM_JOB=$!
  KAM_PID=
  for _ in $(seq 100); do
    if [ -s "$WORK/kam/kamailio.pid" ]; then
      KAM_PID=$(cat "$WORK/kam/kamailio.pid")
      "$SW" options "sip:127.0.0.1:$PORT_PEER" --timeout 300ms >/dev/null 2>&1 && return 0
      kill -0 "$KAM_PID" 2>/dev/null || break
    fi
    sleep 0.1
  done
  echo "kamailio not answering; its log:" >&2
  tail -20 "$WORK/kamailio.log" >&2
  exit 1
}

stop_kamailio() {
  kill -TERM -- "-$KAM_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$KAM_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$KAM_PID" 2>/dev/null || true
  wait "$KAM_JOB" 2>/dev/null || true
  KAM_PID=
}

kamcmd_() { kamcmd -s "unix:$WORK/kam/kamailio_ctl" "$@"; }
# How many users Kamailio holds a binding for (usrloc's statistic).
kam_bindings() {
  kamcmd_ stats.get_statistics registered_users 2>/dev/null | awk -F= '{ gsub(/ /, "", $2); print $2 }' | head -1
}

start_uas() {
  "$SW" run uas-challenge --bind "127.0.0.1:$PORT_PEER" --inject "$WORK/users.csv" --workers "$UAS_WORKERS" \
    --drain-timeout 1s --quiet --report "$WORK/uas.json" >"$WORK/uas.log" 2>&1 &
  UAS_PID=$!
  wait_udp_bound "$PORT_PEER" || { echo "our uas-challenge does not listen; its log:" >&2; cat "$WORK/uas.log" >&2; exit 1; }
}

stop_uas() {
  kill -INT "$UAS_PID" 2>/dev/null || true
  wait "$UAS_PID" 2>/dev/null || true
  UAS_PID=
}

start_peer() { if [ "$PEER" = kamailio ]; then start_kamailio; else rm -f "$WORK/uas.json"; start_uas; fi; }

# stop_peer N → sets peer_regs (Kamailio's bindings, or the calls our UAS saw
# succeed) and peer_note (our UAS: challenges sent, auth failures)
stop_peer() {
  local n=$1
  peer_note=""
  peer_drops=$(udp_drops "$PORT_PEER")
  if [ "$PEER" = kamailio ]; then
    peer_regs=$(kam_bindings)
    peer_regs=${peer_regs:-?}
    stop_kamailio
  else
    stop_uas
    if [ -s "$WORK/uas.json" ]; then
      read -r peer_regs peer_note < <(python3 -c "
import json, sys; j = json.load(open(sys.argv[1]))
print(j['calls']['succeeded'], 'sent=%d,auth_failures=%d' % (j['auth']['sent'], j['auth']['failures']))" "$WORK/uas.json")
    else
      peer_regs='?'
    fi
  fi
  expected_regs=$n
  [ "$PEER" = kamailio ] && [ "$n" -gt "$USERS" ] && expected_regs=$USERS
  return 0
}

# run_sipp RATE N → rc regs failed retrans wall cpu
run_sipp() {
  local rate=$1 n=$2
  rm -f "$WORK/sipp.csv"
  rc=0
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/gen.time" \
    sipp "127.0.0.1:$PORT_PEER" -sf "$SCENARIO" -inf "$WORK/users-sipp.csv" -t u1 \
    -i 127.0.0.1 -p "$PORT_SIPP" -key contact_port "$PORT_SIPP" \
    -r "$rate" -rp 1000 -m "$n" -buff_size 4194304 -nostdin \
    -timeout "$((DURATION + GRACE + 2))s" -timeout_error \
    -trace_stat -stf "$WORK/sipp.csv" >/dev/null 2>"$WORK/sipp.err" || rc=$?
  # SIPp's own counts: the last row of its statistics file.
  read -r regs failed retrans < <(python3 -c "
import csv, sys
try:
    rows = [r for r in csv.reader(open(sys.argv[1]), delimiter=';') if r]
    h, last = rows[0], rows[-1]
    print(*(last[h.index(k)] for k in ('SuccessfulCall(C)', 'FailedCall(C)', 'Retransmissions(C)')))
except Exception:
    print(0, '?', '?')" "$WORK/sipp.csv")
  auth_p50=- auth_p99=- trans_s=
}

# run_sw RATE N → the same, plus auth_p50 auth_p99 trans_s from the report
run_sw() {
  local rate=$1 n=$2 workers=()
  [ -n "$SW_WORKERS" ] && workers=(--workers "$SW_WORKERS")
  rm -f "$WORK/sw.json"
  rc=0
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/gen.time" \
    "$SW" run register --target "sip:127.0.0.1:$PORT_PEER" --inject "$WORK/users.csv" \
    --rate "$rate" --calls "$n" --duration "$((DURATION + GRACE))s" --drain-timeout 2s "${workers[@]}" \
    --quiet --report "$WORK/sw.json" >/dev/null 2>"$WORK/sw.err" || rc=$?
  if [ -s "$WORK/sw.json" ]; then
    read -r regs failed retrans auth_p50 auth_p99 trans_s < <(python3 -c "
import json, sys; j = json.load(open(sys.argv[1]))
a = j['auth']['round_trip_ms']
print(j['calls']['succeeded'], j['calls']['failed'], j['messages']['retransmitted'],
      a['p50'], a['p99'], round(j['transactions']['REGISTER']['per_second']))" "$WORK/sw.json")
  else
    regs=0 failed='?' retrans='?' auth_p50=- auth_p99=- trans_s=
  fi
}

ROW='%-9s %7s %7s %8s %6s %7s %7s %6s %8s %7s %6s %8s %9s %8s %8s %8s %7s %4s\n'
header() {
  # shellcheck disable=SC2059
  printf "$ROW" tool asked calls regs wall_s reg/s trans/s failed retrans gen_cpu us/reg "${PEER_COL}%" peer_drops peer_regs auth_p50 auth_p99 others% ok
}

# rung TOOL RATE → prints a row, sets ok (and the row's figures, kept per tool
# for the summary when clean)
rung() {
  local tool=$1 rate=$2 n wall cpu p0 p1 pcpu reg_s
  n=$((rate * DURATION))
  quiet
  start_peer
  p0=$(peer_cpu)
  if [ "$tool" = sipp ]; then run_sipp "$rate" "$n"; else run_sw "$rate" "$n"; fi
  p1=$(peer_cpu)
  stop_peer "$n"
  read -r wall cpu < <(tail -n 1 "$WORK/gen.time" | awk '{ printf "%s %.2f\n", $1, $2 + $3 }')
  reg_s=$(awk -v r="$regs" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? r / w : 0) }')
  # SIPp has no transaction count: two REGISTER transactions per registration.
  [ -z "$trans_s" ] && trans_s=$(awk -v r="$regs" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 2 * r / w : 0) }')
  pcpu=$(awk -v a="$p0" -v b="$p1" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * (b - a) / w : 0) }')
  local us_reg
  us_reg=$(awk -v c="$cpu" -v r="$regs" 'BEGIN { if (r > 0) printf "%.1f", 1e6 * c / r; else print "-" }')
  ok=no
  if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$regs" = "$n" ] && [ "$peer_regs" = "$expected_regs" ] &&
    awk -v x="$reg_s" -v r="$rate" 'BEGIN { exit !(x >= 0.97 * r) }'; then
    ok=yes
  fi
  local name=$tool
  [ "$tool" = sw ] && name=sipwright
  # shellcheck disable=SC2059
  printf "$ROW" "$name" "$rate" "$n" "$regs" "$wall" "$reg_s" "$trans_s" "$failed" "$retrans" "$cpu" "$us_reg" \
    "$pcpu" "$peer_drops" "$peer_regs" "$auth_p50" "$auth_p99" "$others" "$ok"
  if [ "$ok" = yes ] && [ "$rate" -gt "${best[$tool]}" ]; then
    best[$tool]=$rate
    best_row[$tool]="$reg_s $trans_s $cpu $us_reg $pcpu $auth_p50 $auth_p99 $retrans $peer_drops $others"
  fi
}

# The search, one state per tool: lo (last pass), hi (first failure, 0: none
# yet), steps (bisections done), next rate, done.
declare -A lo hi steps next fin tries best best_row ladder_pos

round_rate() { awk -v x="$1" -v g="$GRAIN" 'BEGIN { printf "%d", int(x / g + 0.5) * g }'; }

# advance TOOL: after a rung, the tool's next rate (or fin=1)
advance() {
  local t=$1 r=${next[$1]} rates=$2
  if [ "$ok" = no ] && [ "${tries[$t]}" -lt "$RETRY" ]; then
    tries[$t]=$((tries[$t] + 1))
    return 0
  fi
  tries[$t]=0
  if [ -n "$rates" ]; then # a fixed ladder
    local arr
    read -r -a arr <<<"$rates"
    ladder_pos[$t]=$((ladder_pos[$t] + 1))
    if [ "$ok" = no ] || [ "${ladder_pos[$t]}" -ge "${#arr[@]}" ]; then fin[$t]=1; else next[$t]=${arr[${ladder_pos[$t]}]}; fi
    return 0
  fi
  if [ "$ok" = yes ]; then lo[$t]=$r; else hi[$t]=$r; fi
  if [ "${hi[$t]}" = 0 ]; then
    next[$t]=$((r * 2))
    if [ "${next[$t]}" -gt "$MAX_RATE" ]; then fin[$t]=1; fi
    return 0
  fi
  local mid
  mid=$(round_rate "$(((lo[$t] + hi[$t]) / 2))")
  if [ "${steps[$t]}" -ge "$BISECT" ] || [ "$mid" -le "${lo[$t]}" ] || [ "$mid" -ge "${hi[$t]}" ]; then
    fin[$t]=1
    return 0
  fi
  steps[$t]=$((steps[$t] + 1))
  next[$t]=$mid
}

# sanity: a slow first run of each tool; SIPp's own success count, and what the
# registrar holds afterwards.
sanity() {
  local tool n=$SANITY_CALLS rate bad=0 contact last
  rate=$(((SANITY_CALLS + 4) / 5)) # about 5 s
  last=$(printf 'u%06d' "$n")
  for tool in sipp sw; do
    start_peer
    if [ "$tool" = sipp ]; then run_sipp "$rate" "$n"; else run_sw "$rate" "$n"; fi
    contact=
    if [ "$PEER" = kamailio ]; then
      contact=$(kamcmd_ ul.lookup location "$last" 2>/dev/null | awk '/Address:/ { print $2; exit }')
    fi
    stop_peer "$n"
    printf '  sanity %-9s %s/%s registered by its own count, %s failed (exit %s); ' \
      "$tool" "$regs" "$n" "$failed" "$rc"
    if [ "$PEER" = kamailio ]; then
      echo "Kamailio holds $peer_regs bindings; $last → ${contact:-none}"
    else
      echo "our UAS counted $peer_regs successful (${peer_note})"
    fi
    if [ "$regs" != "$n" ] || [ "$failed" != 0 ] || [ "$peer_regs" != "$n" ] ||
      { [ "$PEER" = kamailio ] && [ -z "$contact" ]; }; then
      bad=1
    fi
    sleep "$SETTLE"
  done
  return "$bad"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }'; }

part() { # PEER START RATES
  PEER=$1
  local start=$2 rates=$3 t
  if [ "$PEER" = kamailio ]; then
    if ! command -v kamailio >/dev/null || ! command -v kamcmd >/dev/null; then
      echo "== against Kamailio: skipped (apt-get install kamailio)"
      return 0
    fi
    PEER_COL=kam_cpu
    echo "== REGISTER + 401 + REGISTER + 200 against Kamailio $(kamailio -v | awk 'NR == 1 { print $3 }')" \
      "(auth.cfg, $KAM_CHILDREN UDP workers, usrloc in memory), a fresh one per rung; ${DURATION}s per rung"
  else
    PEER_COL=uas_cpu
    echo "== REGISTER + 401 + REGISTER + 200 against our run uas-challenge (--workers $UAS_WORKERS)," \
      "a fresh one per rung; ${DURATION}s per rung"
  fi
  echo "   SIPp $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1) -t u1 -buff_size 4194304;" \
    "sipwright $("$SW" --version | awk '{ print $2 }') ${SW_WORKERS:+--workers $SW_WORKERS}; $USERS users"
  if ! sanity; then
    echo "  sanity check failed: no figures for this part (files in $WORK)"
    return 0
  fi
  for t in sipp sw; do
    lo[$t]=0 hi[$t]=0 steps[$t]=0 fin[$t]=0 tries[$t]=0 best[$t]=0 best_row[$t]="" ladder_pos[$t]=0
    if [ -n "$rates" ]; then
      local arr
      read -r -a arr <<<"$rates"
      next[$t]=${arr[0]}
    else
      next[$t]=$start
    fi
  done
  header
  while [ "${fin[sipp]}" = 0 ] || [ "${fin[sw]}" = 0 ]; do
    for t in sipp sw; do
      [ "${fin[$t]}" = 1 ] && continue
      rung "$t" "${next[$t]}"
      advance "$t" "$rates"
    done
  done
  echo
  local s=${best[sipp]} w=${best[sw]}
  printf '%-44s %10s %10s %8s\n' "" SIPp sipwright ratio
  printf '%-44s %10s %10s %8s\n' "best clean rate (REGISTER/s, registrations)" "$s" "$w" "$(ratio "$s" "$w")"
  local -a bs bw
  read -r -a bs <<<"${best_row[sipp]:-- - - - - - - - - -}"
  read -r -a bw <<<"${best_row[sw]:-- - - - - - - - - -}"
  printf '%-44s %10s %10s\n' "  at it: registrations/s achieved" "${bs[0]}" "${bw[0]}"
  printf '%-44s %10s %10s\n' "  REGISTER transactions/s" "${bs[1]}" "${bw[1]}"
  printf '%-44s %10s %10s %8s\n' "  generator CPU µs per registration" "${bs[3]}" "${bw[3]}" "$(ratio "${bs[3]}" "${bw[3]}")"
  printf '%-44s %10s %10s\n' "  $PEER_COL (% of one core; 200 = both)" "${bs[4]}" "${bw[4]}"
  printf '%-44s %10s %10s\n' "  retransmissions (generator's)" "${bs[7]}" "${bw[7]}"
  printf '%-44s %10s %10s\n' "  datagrams dropped at the peer's socket" "${bs[8]}" "${bw[8]}"
  printf '%-44s %10s %10s\n' "  others% before the rung" "${bs[9]}" "${bw[9]}"
  printf '%-44s %10s %10s\n' "  auth round trip p50 / p99 ms (our report)" "-" "${bw[5]} / ${bw[6]}"
  awk -v a="$s" -v b="$w" 'BEGIN { if (a > 0) printf "target ≥ 2x SIPp: %s\n", (b >= 2 * a ? "met" : "not met") }'
  echo "(a search ends at its last bisection; a rung counts failed after $((RETRY + 1)) failed runs;"
  echo " trans/s: sipwright's transactions.REGISTER.per_second, SIPp 2 × regs/s)"
  echo
}

for p in $PARTS; do
  case $p in
  kamailio) part kamailio "$KAM_START" "$KAM_RATES" ;;
  ours) part ours "$OURS_START" "$OURS_RATES" ;;
  *) echo "unknown part $p (kamailio, ours)" >&2; exit 2 ;;
  esac
done
[ -n "${OUT:-}" ] && echo "files in $WORK"
exit 0
