#!/usr/bin/env bash
# Transports at load, same machine, same run, printed as tables with ratios:
#
#  1. TCP uac → uas: best clean call rate (a ladder; zero failed calls and ≥ 97 % of
#     the offered rate over DURATION s), SIPp 3.6.1 with -t t1 and -t tn against
#     sipwright --connections per-worker and per-call. SIPp runs as its experts run
#     it: -buff_size 4194304, -max_socket for tn.
#  2. TLS: HOLD connections held open by one UAC process against a separate UAS
#     process (per-call connections, calls paused), peak RSS per connection on both
#     sides; then new TLS connections per second (calls of zero length, one TLS
#     connection each, ladder of rates).
#  3. WSS through Kamailio (2 workers, tests/fixtures/kamailio/transports.cfg):
#     uac over wss → kamailio → uas over UDP, ladder of rates for WSS_DURATION s,
#     with Kamailio's CPU share (skipped when kamailio or its modules are missing).
#
#   benches/transports.sh                     # everything (about 15 minutes)
#   PARTS="tcp" DURATION=10 benches/transports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PARTS=${PARTS:-"tcp tls wss"}
DURATION=${DURATION:-20}
SIPP_RATES=${SIPP_RATES:-"5000 10000 15000 20000 25000"}
SW_RATES=${SW_RATES:-"10000 20000 30000 40000 50000 60000"}
# A connection per call is bounded by connection set-up and TIME_WAIT, not by SIP.
SIPP_TN_RATES=${SIPP_TN_RATES:-"250 500 750 1000 2000 3000"}
SW_TN_RATES=${SW_TN_RATES:-"2000 4000 6000 8000 10000 12000 14000"}
HOLD=${HOLD:-10000}
TLS_RATES=${TLS_RATES:-"1000 2000 3000 4000 6000 8000"}
WSS_RATES=${WSS_RATES:-"1000 2000 3000 4000 5000 6000"}
# per-call WSS: Kamailio 5.6.3 + OpenSSL 3 (Debian 12) double-frees in its tls module
# under concurrent handshakes (kamailio#3791), so this ladder starts low.
WSS_PERCALL_RATES=${WSS_PERCALL_RATES:-"100 200 300 500 1000"}
WSS_DURATION=${WSS_DURATION:-60}
# per-call: a TLS handshake and WebSocket upgrade per call at Kamailio, as browsers;
# per-worker: the calls share two long-lived connections.
WSS_MODELS=${WSS_MODELS:-"per-call per-worker"}
PORT_UAS=${PORT_UAS:-26060}
PORT_UAC=${PORT_UAC:-26070}

[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time"; exit 2; }
cargo build --release --quiet
SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
WORK=$(mktemp -d)
cleanup() {
  pkill -f "sipp -sn uas -i 127.0.0.1 -p $PORT_UAS" 2>/dev/null || true
  pkill -f "run uas --bind 127.0.0.1:$PORT_UAS" 2>/dev/null || true
  [ -n "${KAM_PID:-}" ] && kill -- "-$KAM_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cpu_of() { tail -n 1 "$1" | awk '{printf "%.3f", $2 + $3}'; }
rss_of() { tail -n 1 "$1" | awk '{print $4}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a > 0) printf "%.2fx", b / a; else print "-"}'; }

# Connections closed by an earlier run sit in TIME_WAIT for 60 s and make every new
# connect search the ephemeral port range: wait until they are gone so each run
# starts from the same state.
settle_timewait() {
  local i
  for i in $(seq 70); do
    [ "$(ss -tan state time-wait | wc -l)" -lt 500 ] && return
    sleep 1
  done
}

# clean RC FAILED STARTED RATE SECONDS: yes when the run exited 0, no call failed and
# ≥ 97 % of the calls the rate asked for were started in time (a UAC that cannot
# keep up starts them late, and --duration cuts the rest).
clean() {
  [ "$1" = 0 ] && [ "$2" = 0 ] && awk -v n="$3" -v r="$4" -v d="$5" 'BEGIN{exit !(n >= 0.97 * r * d)}' \
    && echo yes || echo no
}

stop_uas() {
  local pattern=$1 pid=$2 i
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pkill -INT -f "$pattern" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# run_sipp MODE RATE → ok calls achieved cpu
run_sipp() {
  local mode=$1 rate=$2 extra=()
  [ "$mode" = tn ] && extra=(-max_socket 16000)
  settle_timewait
  calls=$(( rate * DURATION ))
  sipp -sn uas -t "$mode" -i 127.0.0.1 -p "$PORT_UAS" -buff_size 4194304 "${extra[@]}" -nostdin \
    -m "$calls" -timeout $((DURATION * 3))s >/dev/null 2>&1 &
  local uas=$! rc=0 t0 t1
  sleep 0.5
  t0=$(date +%s.%N)
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uac.time" \
    sipp -sn uac -t "$mode" 127.0.0.1:"$PORT_UAS" -i 127.0.0.1 -p "$PORT_UAC" -buff_size 4194304 \
    "${extra[@]}" -nostdin -r "$rate" -rp 1000 -m "$calls" -timeout $((DURATION * 3))s >/dev/null 2>&1 || rc=$?
  t1=$(date +%s.%N)
  stop_uas "sipp -sn uas -t $mode -i 127.0.0.1 -p $PORT_UAS" "$uas"
  achieved=$(awk -v c="$calls" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", c / (b - a)}')
  cpu=$(cpu_of "$WORK/uac.time")
  ok=$([ "$rc" = 0 ] && awk -v x="$achieved" -v r="$rate" 'BEGIN{exit !(x >= 0.97 * r)}' && echo yes || echo no)
}

# run_sw MODEL RATE → same variables
run_sw() {
  local model=$1 rate=$2
  settle_timewait
  "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --transport tcp --quiet >/dev/null 2>&1 &
  local uas=$! rc=0
  sleep 0.5
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uac.time" \
    "$SW" run uac --target "sip:127.0.0.1:$PORT_UAS;transport=tcp" --connections "$model" \
    --rate "$rate" --duration "${DURATION}s" --quiet --report "$WORK/r.json" >/dev/null 2>&1 || rc=$?
  stop_uas "run uas --bind 127.0.0.1:$PORT_UAS" "$uas"
  read -r calls failed achieved < <(python3 -c "
import json; j = json.load(open('$WORK/r.json'))
print(j['calls']['started'], j['calls']['failed'], j['rate']['achieved_cps'])")
  cpu=$(cpu_of "$WORK/uac.time")
  ok=$(clean "$rc" "$failed" "$calls" "$rate" "$DURATION")
}

ladder() { # LABEL RUNNER MODE RATES... → table; sets best
  local label=$1 runner=$2 mode=$3; shift 3
  best=0
  for r in "$@"; do
    "$runner" "$mode" "$r"
    printf '%-24s %8s %9s %10s %9s %4s\n' "$label" "$r" "$calls" "$achieved" "$cpu" "$ok"
    if [ "$ok" = yes ]; then best=$r; else break; fi
  done
}

part_tcp() {
  command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester (or run .ci/run)"; return; }
  echo "== TCP uac → uas, ${DURATION}s per rate; SIPp $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1) with -buff_size 4194304"
  printf '%-24s %8s %9s %10s %9s %4s\n' tool rate calls achieved uac_cpu ok
  ladder "SIPp -t t1" run_sipp t1 $SIPP_RATES; sipp_t1=$best
  ladder "SIPp -t tn" run_sipp tn $SIPP_TN_RATES; sipp_tn=$best
  ladder "sipwright per-worker" run_sw per-worker $SW_RATES; sw_t1=$best
  ladder "sipwright per-call" run_sw per-call $SW_TN_RATES; sw_tn=$best
  echo
  printf '%-36s %8s %10s %8s\n' "best clean rate (calls/s)" SIPp sipwright ratio
  printf '%-36s %8s %10s %8s\n' "one connection (t1 / per-worker)" "$sipp_t1" "$sw_t1" "$(ratio "$sipp_t1" "$sw_t1")"
  printf '%-36s %8s %10s %8s\n' "one per call (tn / per-call)" "$sipp_tn" "$sw_tn" "$(ratio "$sipp_tn" "$sw_tn")"
  echo "(a ladder stops at its first rate with failed calls or < 97 % of the offered rate;"
  echo " a top rung passing means the tool's limit is higher than measured)"
  echo
}

make_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/req.pem" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$WORK/ext"
  openssl x509 -req -in "$WORK/req.pem" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/ext" -out "$WORK/cert.pem" 2>/dev/null
}

rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

part_tls() {
  command -v openssl >/dev/null || { echo "openssl not found"; return; }
  make_certs
  local rate=2000 hold_s
  hold_s=$(( HOLD / rate + 20 ))
  echo "== TLS: $HOLD connections held (per-call, calls paused ${hold_s}s), one UAC process against one UAS process"
  "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --transport tls --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
    --quiet >/dev/null 2>&1 &
  local uas=$!
  sleep 0.5
  local uas0; uas0=$(rss_kb "$uas")
  "$SW" run uac --target "sips:127.0.0.1:$PORT_UAS" --ca "$WORK/ca.pem" --calls "$HOLD" --rate "$rate" \
    --call-duration "${hold_s}s" --quiet --report "$WORK/hold.json" >/dev/null 2>&1 &
  local uac=$!
  sleep 0.3
  local uac0; uac0=$(rss_kb "$uac")
  # Every connection is up once the last call has started and been answered.
  sleep $(( HOLD / rate + 5 ))
  local uac1 uas1 conns
  uac1=$(rss_kb "$uac"); uas1=$(rss_kb "$uas")
  conns=$(ls "/proc/$uac/fd" | wc -l)
  wait "$uac" || true
  stop_uas "run uas --bind 127.0.0.1:$PORT_UAS" "$uas"
  python3 - "$WORK/hold.json" "$HOLD" "$uac0" "$uac1" "$uas0" "$uas1" "$conns" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); n = int(sys.argv[2])
uac0, uac1, uas0, uas1, fds = map(int, sys.argv[3:8])
c = j["connections"]
print(f"calls {j['calls']['succeeded']}/{n} ok, {j['calls']['failed']} failed; UAC descriptors open while held: {fds}")
print(f"connections opened {c['opened']}, failed {c['failed']}; TLS handshake p50 {c['tls_handshake_ms']['p50']} ms, p99 {c['tls_handshake_ms']['p99']} ms")
print(f"{'':10} {'RSS idle KB':>12} {'RSS held KB':>12} {'KB per connection (call included)':>34}")
print(f"{'UAC':10} {uac0:>12} {uac1:>12} {(uac1 - uac0) / n:>34.1f}")
print(f"{'UAS':10} {uas0:>12} {uas1:>12} {(uas1 - uas0) / n:>34.1f}")
EOF
  echo
  echo "== new TLS connections per second (calls of zero length, each its own connection), 10 s per rate"
  printf '%-10s %9s %10s %7s %12s\n' rate calls achieved failed handshake_p99
  for r in $TLS_RATES; do
    "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --transport tls --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
      --quiet >/dev/null 2>&1 &
    local u=$! rc=0
    sleep 0.5
    "$SW" run uac --target "sips:127.0.0.1:$PORT_UAS" --ca "$WORK/ca.pem" --rate "$r" --duration 10s \
      --quiet --report "$WORK/rate.json" >/dev/null 2>&1 || rc=$?
    stop_uas "run uas --bind 127.0.0.1:$PORT_UAS" "$u"
    read -r calls failed achieved p99 < <(python3 -c "
import json; j = json.load(open('$WORK/rate.json'))
print(j['calls']['started'], j['calls']['failed'], j['rate']['achieved_cps'], j['connections']['tls_handshake_ms']['p99'])")
    printf '%-10s %9s %10s %7s %12s\n' "$r" "$calls" "$achieved" "$failed" "$p99"
    [ "$(clean "$rc" "$failed" "$calls" "$r" 10)" = yes ] || break
  done
  echo
}

part_wss() {
  local kam mods=/usr/lib/x86_64-linux-gnu/kamailio/modules
  kam=$(command -v kamailio || true)
  if [ -z "$kam" ] || [ ! -f "$mods/websocket.so" ] || [ ! -f "$mods/tls.so" ]; then
    echo "== WSS through Kamailio: skipped (apt-get install kamailio kamailio-websocket-modules kamailio-tls-modules)"
    return
  fi
  make_certs
  local wss_port=26443 udp_port=26061 run="$WORK/kam"
  mkdir -p "$run"
  printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\ncertificate = %s\nprivate_key = %s\nca_list = %s\n' \
    "$WORK/cert.pem" "$WORK/key.pem" "$WORK/ca.pem" > "$run/tls.cfg"
  echo "== WSS through Kamailio $("$kam" -v | awk 'NR==1{print $3}') (2 UDP + 2 TCP workers): uac over wss → kamailio → uas over UDP, ${WSS_DURATION}s per rate"
  printf '%-11s %8s %9s %10s %7s %10s %12s %6s\n' model rate calls achieved failed kam_cpu% setup_p99_ms crash
  local model rates r
  for model in $WSS_MODELS; do
    rates=$WSS_RATES
    [ "$model" = per-call ] && rates=$WSS_PERCALL_RATES
    for r in $rates; do
      # A fresh Kamailio per rung: one that crashed must not spoil the next.
      setsid "$kam" -f tests/fixtures/kamailio/transports.cfg -DD -E -m 2048 -M 64 -Y "$run" \
        -A UDP_PORT=$udp_port -A TCP_PORT=26062 -A TLS_PORT=26063 -A WS_PORT=26080 -A WSS_PORT=$wss_port \
        -A UAS_PORT=$PORT_UAS -A CHILDREN=2 -A TCP_CHILDREN=2 -A "TLS_CFG=\"$run/tls.cfg\"" \
        >"$WORK/kam.log" 2>&1 &
      KAM_PID=$!
      sleep 2
      "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --quiet >/dev/null 2>&1 &
      local u=$! rc=0 k0 k1 t0 t1 crash=no
      sleep 0.5
      k0=$({ ps -o cputimes= --sid "$KAM_PID" 2>/dev/null || true; } | awk '{s+=$1} END{print s+0}')
      t0=$(date +%s.%N)
      "$SW" run uac --target "wss://127.0.0.1:$wss_port/" --ca "$WORK/ca.pem" --rate "$r" --connections "$model" \
        --duration "${WSS_DURATION}s" --quiet --report "$WORK/wss.json" >/dev/null 2>&1 || rc=$?
      t1=$(date +%s.%N)
      k1=$({ ps -o cputimes= --sid "$KAM_PID" 2>/dev/null || true; } | awk '{s+=$1} END{print s+0}')
      stop_uas "run uas --bind 127.0.0.1:$PORT_UAS" "$u"
      grep -q "exited by a signal" "$WORK/kam.log" && crash=yes
      kill -- "-$KAM_PID" 2>/dev/null || true
      KAM_PID=
      sleep 1
      read -r calls failed achieved p99 < <(python3 -c "
import json; j = json.load(open('$WORK/wss.json'))
print(j['calls']['started'], j['calls']['failed'], j['rate']['achieved_cps'], j['latency_ms'].get('invite_to_final', {}).get('p99', '-'))")
      # Kamailio's CPU over the run, as a share of one core (2 cores here: 200 % is all).
      local cpu; cpu=$(awk -v a="$k0" -v b="$k1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", 100 * (b - a) / (e - s)}')
      printf '%-11s %8s %9s %10s %7s %10s %12s %6s\n' "$model" "$r" "$calls" "$achieved" "$failed" "$cpu" "$p99" "$crash"
      [ "$(clean "$rc" "$failed" "$calls" "$r" "$WSS_DURATION")" = yes ] || break
    done
  done
  echo
}

for p in $PARTS; do "part_$p"; done
