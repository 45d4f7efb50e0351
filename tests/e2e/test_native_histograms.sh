#!/usr/bin/env bash
# Native histograms and the series budget against real Prometheus servers: two ipivds watch
# ipivbench guests of different patterns that run a fixed number of IPIs and then hold
# still, so their histograms stop changing; one with --collector.vm-histograms=all (job
# ipiv: every histogram family), one with default flags (job ipiv-default). Two Prometheus
# servers scrape both, one with --enable-feature=native-histograms (it asks for the
# protobuf format and stores each histogram as one native series) and one without (text,
# classic _bucket series). Then for every latency series of the guests and q in 0.5, 0.9,
# 0.99, histogram_quantile() over the native series, over the classic buckets and ipivd's
# own /api/v1 quantile must agree within their bucket errors, and the stored counts must
# equal ipivd's. Last, the series budget (docs/metrics.md#series-budget): what each guest
# costs in default mode, in both servers and in the text exposition, stays within 60, and
# the default /metrics has only send_to_eoi among the histograms while its API has all.
# NH_PORTS=FIRST-LAST picks the ports (default 29000-29999), NH_PREFIX the VMs' names.
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl ss prometheus
require_bin "$IPIVBENCH" "$IPIVD"

BUDGET=60			# series per VM in default mode, docs/metrics.md
PREFIX=${NH_PREFIX:-nh}
IFS=- read -r PORT_FIRST PORT_LAST <<<"${NH_PORTS:-29000-29999}"

tmp=$(mktemp -d)
pids=()
cleanup() {
	local i
	for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do kill "${pids[i]}" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

IPORT=$(free_port "$PORT_FIRST" "$PORT_LAST"); DPORT=$(free_port "$PORT_FIRST" "$PORT_LAST")
NPORT=$(free_port "$PORT_FIRST" "$PORT_LAST"); CPORT=$(free_port "$PORT_FIRST" "$PORT_LAST")
INST=127.0.0.1:$IPORT
IURL=http://$INST
DINST=127.0.0.1:$DPORT		# the ipivd with default flags
DURL=http://$DINST
NURL=http://127.0.0.1:$NPORT	# the native-histogram server
CURL=http://127.0.0.1:$CPORT	# the classic one

"$IPIVD" --web.listen-address "$INST" --collector.vm-histograms=all > "$tmp/ipivd.log" 2>&1 &
pids+=($!)
"$IPIVD" --web.listen-address "$DINST" > "$tmp/ipivd-default.log" 2>&1 &
pids+=($!)

up_within() {
	local end=$(( SECONDS + $1 ))
	while [ $SECONDS -lt $end ]; do curl -sf -m 2 "$2" > /dev/null && return 0; sleep 0.2; done
	curl -sf -m 2 "$2" > /dev/null
}
up_within 60 "$IURL/api/v1/status" || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"
up_within 60 "$DURL/api/v1/status" || fail "ipivd did not start: $(cat "$tmp/ipivd-default.log")"

# The guests, once ipivd watches (it must see every IPI they send): patterns that between
# them take the paths every host has (x2APIC MSR, xAPIC MMIO; PV send-IPI is not completed
# by every host), halting and spinning targets, NMIs (no EOI) and shorthands.
patterns=(x2apic-phys:halt xapic-phys:halt x2apic-allbutself:spin nmi:halt)
names=()
for p in "${patterns[@]}"; do
	mode=${p%%:*} target=${p##*:} name=$PREFIX-${mode}
	"$IPIVBENCH" --name "$name" -n 2 -m "$mode" -t "$target" -w 0 -r 1 -k 3000 --json \
		-o "$tmp/$name.json" --hold inf > /dev/null 2> "$tmp/$name.json.err" &
	pids+=($!); names+=("$name")
done

# Both servers scrape both ipivds and keep the guests' series and those without a vm label.
for kind in native classic; do
	port=$NPORT; [ $kind = classic ] && port=$CPORT
	cat > "$tmp/$kind.yml" <<EOC
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ipiv
    static_configs:
      - targets: ['$INST']
    metric_relabel_configs:
      - source_labels: [vm]
        regex: '($PREFIX-.*)?'
        action: keep
  - job_name: ipiv-default
    static_configs:
      - targets: ['$DINST']
    metric_relabel_configs:
      - source_labels: [vm]
        regex: '($PREFIX-.*)?'
        action: keep
EOC
	flags=(); [ $kind = native ] && flags=(--enable-feature=native-histograms)
	prometheus "${flags[@]}" --config.file="$tmp/$kind.yml" --storage.tsdb.path="$tmp/$kind" \
		--web.listen-address="127.0.0.1:$port" --log.level=warn > "$tmp/$kind.log" 2>&1 &
	pids+=($!)
done
up_within 30 "$NURL/-/ready" || fail "native prometheus did not start: $(tail -5 "$tmp/native.log")"
up_within 30 "$CURL/-/ready" || fail "classic prometheus did not start: $(tail -5 "$tmp/classic.log")"
note "ipivd on $INST (all histograms), $DINST (default); prometheus native on :$NPORT, classic on :$CPORT"

# ipivd itself answers the protobuf Accept header with the protobuf format.
ctype=$(curl -s -m 10 -o "$tmp/metrics.pb" -w '%{content_type}' -H 'Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited' "$IURL/metrics")
expect_eq "protobuf content type" "$ctype" \
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

for n in "${names[@]}"; do wait_json "$tmp/$n.json"; done
note "guests done after $SECONDS s; histograms frozen"

# Both servers must have scraped the frozen state: their counts equal ipivd's.
sleep 3
vms=$(curl -s -m 10 "$IURL/api/v1/vms" | jq -c --arg p "$PREFIX-" '[.vms[] | select(.name | startswith($p)) | {name, id}]')
[ "$(jq length <<<"$vms")" -eq ${#names[@]} ] || fail "ipivd lists $(jq -c 'map(.name)' <<<"$vms")"
metric_of() {
	case $1 in
	send_to_accept) echo ipiv_ipi_send_to_accept_seconds ;;
	accept_to_running) echo ipiv_ipi_accept_to_running_seconds ;;
	send_to_eoi) echo ipiv_ipi_send_to_eoi_seconds ;;
	sender_exit) echo ipiv_ipi_sender_exit_seconds ;;
	halt) echo ipiv_vcpu_halt_duration_seconds ;;
	*) fail "latency kind $1 has no metric here" ;;
	esac
}
label_of() { case $1 in accept_to_running) echo target ;; halt) echo halted ;; *) echo path ;; esac; }

# q URL EXPR: the single value of an instant query ("" when there is none)
q() {
	curl -s -m 10 "$1/api/v1/query" --data-urlencode "query=$2" > "$tmp/q.json"
	jq -e '.status == "success"' "$tmp/q.json" > /dev/null || fail "query $2 on $1: $(cat "$tmp/q.json")"
	jq -r '.data.result[0].value[1] // ""' "$tmp/q.json"
}
curl -s -m 10 "$IURL/metrics" > "$tmp/metrics.txt"
checked=0
for row in $(jq -c '.[]' <<<"$vms"); do
	vm=$(jq -r .name <<<"$row") id=$(jq -r .id <<<"$row")
	curl -s -m 10 "$IURL/api/v1/vms/$id" > "$tmp/vm.json"
	before=$checked
	while IFS=$'\t' read -r kind sub count; do
		# the fastpath's share of the sender's exits is exported host-wide only
		# (ipiv_host_ipi_sender_exit_seconds), no per-VM series to compare
		[ "$kind" = sender_exit_fastpath ] && continue
		metric=$(metric_of "$kind") label=$(label_of "$kind")
		sel="{job=\"ipiv\",vm=\"$vm\",$label=\"$sub\"}"
		expect_eq "$metric$sel native count" "$(q "$NURL" "histogram_count($metric$sel)")" "$count"
		expect_eq "$metric$sel classic count" "$(q "$CURL" "${metric}_count$sel")" "$count"
		# the classic bounds of this series, as ipivd writes them
		bounds=$(grep -F "${metric}_bucket{vm=\"$vm\",$label=\"$sub\",le=" "$tmp/metrics.txt" |
			sed 's/.*le="\([^"]*\)".*/\1/' | grep -v Inf | tr '\n' ' ')
		[ -n "$bounds" ] || fail "no classic buckets for $metric$sel in /metrics"
		for qq in 0.5 0.9 0.99; do
			key=p${qq#0.}; [ "$key" = p5 ] && key=p50; [ "$key" = p9 ] && key=p90
			api=$(jq -c --arg k "$kind" --arg s "$sub" --arg p "$key" '.latency[$k][$s][$p]' "$tmp/vm.json")
			[ "$(jq -r '.overflow // false' <<<"$api")" = true ] && continue
			mid=$(jq -r .value_ns <<<"$api")
			native=$(q "$NURL" "histogram_quantile($qq, $metric$sel)")
			classic=$(q "$CURL" "histogram_quantile($qq, ${metric}_bucket$sel)")
			# native: within the schema-4 bucket around ipivd's bucket midpoint (or the zero
			# bucket); classic: within the classic bucket that holds that midpoint
			verdict=$(awk -v m="$mid" -v n="$native" -v c="$classic" -v b="$bounds" 'BEGIN {
				base = 2 ^ (1 / 16); eps = 1e-9; m *= 1e-9
				if (m <= 63e-9) nok = n >= 0 && n <= 63e-9 * (1 + eps)
				else nok = n >= m / base * (1 - eps) && n <= m * base * (1 + eps)
				k = split(b, le, " "); lo = 0; hi = -1
				for (i = 1; i <= k; i++) { if (m <= le[i] + 0) { hi = le[i] + 0; break } lo = le[i] + 0 }
				if (hi < 0) cok = c == lo	# above the last bound: Prometheus answers it
				else cok = c >= lo * (1 - eps) && c <= hi * (1 + eps)
				printf "%s %s [%g, %g]", nok ? "ok" : "NATIVE", cok ? "ok" : "CLASSIC", lo, hi
			}')
			case $verdict in
			"ok ok"*) ;;
			*) fail "$metric$sel q=$qq: ipivd ${mid} ns, native $native s, classic $classic s (bucket ${verdict#* * }): $verdict" ;;
			esac
			checked=$(( checked + 1 ))
		done
	done < <(jq -r '.latency | to_entries[] | .key as $k | .value | to_entries[]
		| select(.value.count >= 100) | [$k, .key, .value.count] | @tsv' "$tmp/vm.json")
	[ $checked -gt $before ] || fail "$vm has no latency series with 100 observations: $(jq -c '.latency' "$tmp/vm.json")"
done
[ $checked -ge 20 ] || fail "only $checked quantiles compared: too few latency series with 100 observations"
note "$checked quantiles: native within one schema-4 bucket of ipivd's, classic within its bucket"

# The series budget in default mode: what each guest costs the native server (a histogram
# is one series), the classic one and the text exposition, each within the budget.
curl -s -m 10 "$DURL/metrics" > "$tmp/default.txt"
for kind in native classic; do
	url=$NURL; [ $kind = classic ] && url=$CURL
	q "$url" "count({job=\"ipiv-default\",vm=~\"$PREFIX-.*\"})" > /dev/null
	curl -s -m 10 "$url/api/v1/query" --data-urlencode \
		"query=count by (vm) ({job=\"ipiv-default\",vm=~\"$PREFIX-.*\"})" |
		jq -r '.data.result[] | [.metric.vm, .value[1]] | @tsv' | sort > "$tmp/$kind.count"
	[ "$(wc -l < "$tmp/$kind.count")" -eq ${#names[@]} ] ||
		fail "$kind server has default-mode series of $(wc -l < "$tmp/$kind.count") guests"
done
while IFS=$'\t' read -r vm n; do
	c=$(awk -F'\t' -v v="$vm" '$1 == v { print $2 }' "$tmp/classic.count")
	t=$(grep -c "vm=\"$vm\"" "$tmp/default.txt")
	a=$(grep -c "vm=\"$vm\"" "$tmp/metrics.txt")
	note "$vm: $n series native, ${c:-?} classic, $t in the text exposition ($a with --collector.vm-histograms=all)"
	[ "$n" -le $BUDGET ] || fail "$vm costs $n series with native histograms, over the budget of $BUDGET"
	[ "${c:-999}" -le $BUDGET ] || fail "$vm costs ${c:-?} series with classic histograms, over the budget of $BUDGET"
	[ "$t" -le $BUDGET ] || fail "$vm has $t series in the default text exposition, over the budget of $BUDGET"
done < "$tmp/native.count"
note "every guest within $BUDGET series in default mode, native and classic"

# Default mode keeps only send_to_eoi among a VM's histograms in /metrics, in the text and
# the protobuf format alike; its JSON API keeps every family it records.
for f in send_to_accept accept_to_running sender_exit; do
	! grep -q "^ipiv_ipi_${f}_seconds" "$tmp/default.txt" || fail "default /metrics has ipiv_ipi_${f}_seconds"
done
! grep -q '^ipiv_vcpu_halt_duration_seconds' "$tmp/default.txt" || fail "default /metrics has ipiv_vcpu_halt_duration_seconds"
grep -q '^ipiv_ipi_send_to_eoi_seconds_count{vm="'"$PREFIX"'-' "$tmp/default.txt" || fail "default /metrics has no send_to_eoi histogram"
curl -s -m 10 -H 'Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited' \
	"$DURL/metrics" > "$tmp/default.pb"
for f in send_to_accept accept_to_running sender_exit; do
	! grep -qa "ipiv_ipi_${f}_seconds" "$tmp/default.pb" || fail "default protobuf /metrics has ipiv_ipi_${f}_seconds"
done
grep -qa ipiv_ipi_send_to_eoi_seconds "$tmp/default.pb" || fail "default protobuf /metrics has no send_to_eoi"
# the same guest's latency kinds in both ipivds' APIs, more than send_to_eoi; send_to_accept
# only where it is recorded (--collector.vm-histograms=all: a clock read per accept)
kinds() {
	local id
	id=$(curl -s -m 10 "$1/api/v1/vms" | jq -r --arg n "$PREFIX-x2apic-phys" '.vms[] | select(.name == $n) | .id')
	curl -s -m 10 "$1/api/v1/vms/$id" | jq -c '.latency | keys'
}
dk=$(kinds "$DURL")
ik=$(kinds "$IURL")
jq -e 'index("send_to_accept")' <<<"$ik" >/dev/null || fail "no send_to_accept in the API with every histogram: $ik"
expect_eq "latency kinds in the API of the default ipivd" "$dk" "$(jq -c 'map(select(. != "send_to_accept"))' <<<"$ik")"
[ "$(jq length <<<"$dk")" -ge 3 ] || fail "the default ipivd's API has only $dk"
note "default mode: only send_to_eoi in /metrics (text and protobuf), every family but send_to_accept in the API"
