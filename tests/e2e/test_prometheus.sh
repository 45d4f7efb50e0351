#!/usr/bin/env bash
# The monitoring mixin (deploy/) against a real Prometheus: promtool checks and unit-tests
# the rules; then ipivd watches ipivbench guests with known habits, a Prometheus of its own
# scrapes it every second and evaluates the deploy rule files every second, and through
# its HTTP API every recording rule's expression and every dashboard panel's query must
# return data (the few whose inputs cannot exist on this host are listed below, with the
# reason, and must still parse), every rule must evaluate cleanly, and the scenario's
# alerts must fire (and the others must not). Needs Debian's prometheus package
# (scripts/deps installs it).
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd jq curl ss prometheus promtool
require_bin "$IPIVBENCH" "$IPIVD"

DEPLOY=$E2E_ROOT/deploy
RULES=$DEPLOY/prometheus/ipiv-rules.yml
ALERTS=$DEPLOY/prometheus/ipiv-alerts.yml
DASH=$DEPLOY/grafana/ipiv-dashboard.json
RUNBOOK=$E2E_ROOT/docs/runbook.md
for f in "$RULES" "$ALERTS" "$DASH" "$RUNBOOK"; do [ -f "$f" ] || fail "$f missing"; done

tmp=$(mktemp -d)
pids=()
cleanup() {
	# Prometheus first (it scrapes ipivd), then ipivd, then the guests.
	local i
	for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do kill "${pids[i]}" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
start=$SECONDS

# ---- the scenario (started first: ipivd loads its BPF programs during the static checks) --
# Ports in 29000-29999 that nothing listens on: ipivd, Prometheus, and a dead target.
IPORT=$(free_port 29000 29999); PPORT=$(free_port 29000 29999); DEAD=$(free_port 29000 29999)
IURL=http://127.0.0.1:$IPORT
PURL=http://127.0.0.1:$PPORT
INST=127.0.0.1:$IPORT

# Guests that keep sending until the end (killed by the trap): logical destination mode
# (logical_dest_mode), NMIs (special_delivery; NMIs have no EOI, so latency deliveries
# go unmatched), and a physical-unicast guest (IPIv-eligible). Halting targets keep
# the rate up on a loaded host (see test_diagnose.sh).
guests=(); guest_names=()
start_vm() {	# NAME ARGS...
	local name=$1; shift
	"$IPIVBENCH" --name "$name" -r 1000 -k 100000 "$@" > /dev/null 2> "$tmp/$name.err" &
	pids+=($!); guests+=($!); guest_names+=("$name")
}
start_vm prom-logical -n 2 -m x2apic-logical -t halt
start_vm prom-nmi -n 2 -m nmi -t halt
start_vm prom-phys -n 2 -m x2apic-phys -t halt

# Findings within seconds: a 2 s window and low sample minimums (test_diagnose.sh's). Every
# histogram family: rules and panels query the opt-in ones too (--collector.per-vcpu
# implies it; said outright so that the test does not lean on that).
"$IPIVD" --web.listen-address "$INST" --collector.per-vcpu --collector.vm-histograms=all \
	--diag.window 2 \
	--diag.min-ipis=10 --diag.min-received=10 --diag.min-special=5 > "$tmp/ipivd.log" 2>&1 &
pids+=($!)

# ---- static checks -------------------------------------------------------------------
promtool check rules "$RULES" "$ALERTS" > "$tmp/check.out" 2>&1 ||
	fail "promtool check rules: $(cat "$tmp/check.out")"
promtool test rules "$DEPLOY"/prometheus/tests/*.yml > "$tmp/test.out" 2>&1 ||
	fail "promtool test rules: $(cat "$tmp/test.out")"
n_records=$(grep -c '^ *- record:' "$RULES")
n_alerts=$(grep -c '^ *- alert:' "$ALERTS")
alert_names=$(sed -n 's/^ *- alert: *//p' "$ALERTS" | sort -u)
note "promtool: $n_records recording rules and $n_alerts alerting rules check;" \
	"$(grep -c SUCCESS "$tmp/test.out") unit test files pass"

# Every alert has its runbook section: headings "## <AlertName>" give the anchors.
anchors=$(sed -n 's/^## *\([A-Za-z]*\) *$/\1/p' "$RUNBOOK" | tr '[:upper:]' '[:lower:]')
for a in $alert_names; do
	lc=$(tr '[:upper:]' '[:lower:]' <<<"$a")
	grep -qx "$lc" <<<"$anchors" || fail "docs/runbook.md has no section '## $a'"
done

# The dashboard: a prometheus datasource variable used by every panel and query, unique
# panel ids, a vm variable, and every query in a target.
jq -e '.templating.list[] | select(.name == "datasource" and .type == "datasource" and .query == "prometheus")' \
	"$DASH" > /dev/null || fail "dashboard has no datasource variable of type prometheus"
jq -e '.templating.list[] | select(.name == "vm" and .type == "query")' "$DASH" > /dev/null ||
	fail "dashboard has no vm variable"
jq -r '[.panels[] | (., .panels[]?)] | map(.id) | group_by(.) | map(select(length > 1)) | .[][0]' "$DASH" \
	> "$tmp/dupids"
[ -s "$tmp/dupids" ] && fail "dashboard panel ids used twice: $(tr '\n' ' ' < "$tmp/dupids")"
nodatasource=$(jq -r '[.panels[] | (., .panels[]?) | select(.type != "row")]
	| map(select(.datasource.uid != "${datasource}" or ([.targets[]? | select(.datasource.uid != "${datasource}")] | length > 0)
		or ((.targets // []) | length == 0)))
	| map(.title) | join(", ")' "$DASH")
[ -z "$nodatasource" ] || fail "dashboard panels not on \${datasource} or without queries: $nodatasource"
note "runbook has a section per alert; dashboard uses \${datasource} throughout"

# up_within SECS URL: URL answers within SECS seconds
up_within() {
	local end=$(( SECONDS + $1 ))
	while [ $SECONDS -lt $end ]; do curl -sf -m 2 "$2" > /dev/null && return 0; sleep 0.2; done
	curl -sf -m 2 "$2" > /dev/null
}
up_within 60 "$IURL/api/v1/status" || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"
note "ipivd up after $(( SECONDS - start )) s"

# Scrapes every second, unless ipivd takes longer than half a second to answer /metrics:
# it watches every VM on the host, and on a host loaded with other tests' VMs (hundreds,
# a few MB of metrics) and processes, a 1 s scrape timeout would fail every scrape.
slowest=0
for _ in 1 2 3; do
	ms=$(curl -s -m 10 -o /dev/null -w '%{time_total}' "$IURL/metrics" | awk '{ printf "%d", $1 * 1000 }')
	[ "${ms:-0}" -gt "$slowest" ] && slowest=$ms
	sleep 0.3
done
SCRAPE=1
[ "$slowest" -gt 500 ] && SCRAPE=$(( (2 * slowest + 999) / 1000 )) && [ $SCRAPE -gt 5 ] && SCRAPE=5
[ $SCRAPE -gt 1 ] && note "ipivd answered /metrics in up to $slowest ms: scraping every $SCRAPE s, not 1 s"

# Prometheus with the deploy rule files. The alerts are loaded from a copy whose for:
# durations are 1s, so that they fire within the test; it must differ in nothing else
# (the real durations are covered by the promtool unit tests).
sed -E 's/^( *for:) .*/\1 1s/' "$ALERTS" > "$tmp/ipiv-alerts.yml"
diff <(grep -v '^ *for:' "$ALERTS") <(grep -v '^ *for:' "$tmp/ipiv-alerts.yml") > /dev/null ||
	fail "the alerts copy differs in more than for:"
cat > "$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: ${SCRAPE}s
  scrape_timeout: ${SCRAPE}s
  evaluation_interval: 1s
rule_files:
  - $RULES
  - $tmp/ipiv-alerts.yml
scrape_configs:
  - job_name: ipiv
    static_configs:
      - targets: ['$INST', '127.0.0.1:$DEAD']
    # Other VMs on this host (other tests' guests) are not part of the scenario: keep the
    # series of the prom- guests and those with no vm label.
    metric_relabel_configs:
      - source_labels: [vm]
        regex: '(prom-.*)?'
        action: keep
EOF
promtool check config "$tmp/prometheus.yml" > "$tmp/checkconfig.out" 2>&1 ||
	fail "promtool check config: $(cat "$tmp/checkconfig.out")"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn > "$tmp/prometheus.log" 2>&1 &
pids+=($!)
up_within 30 "$PURL/-/ready" || fail "prometheus did not start: $(tail -5 "$tmp/prometheus.log")"
note "ipivd on $INST, prometheus on 127.0.0.1:$PPORT, dead target 127.0.0.1:$DEAD"

# query EXPR [TIME]: an instant query's JSON answer in $tmp/q.json; false if it failed
query() {
	curl -s -m 10 "$PURL/api/v1/query" --data-urlencode "query=$1" ${2:+--data-urlencode "time=$2"} > "$tmp/q.json" &&
		jq -e '.status == "success"' "$tmp/q.json" > /dev/null
}
# nonempty EXPR [TIME]: the query succeeds and returns at least one series
nonempty() { query "$@" && jq -e '.data.result | length > 0' "$tmp/q.json" > /dev/null; }
# wait_for SECS WHAT EXPR
wait_for() {
	local t=$1 what=$2 expr=$3 end=$(( SECONDS + $1 ))
	while [ $SECONDS -lt $end ]; do nonempty "$expr" && return 0; sleep 0.5; done
	fail "$what: no data for '$expr' in $t s; scrapes of ipivd: $(curl -s -m 5 "$PURL/api/v1/targets" |
		jq -c --arg i "$INST" '.data.activeTargets[] | select(.labels.instance == $i)
			| {health, lastError, lastScrapeDuration}'); ipivd's findings: $(curl -s -m 5 "$IURL/api/v1/findings" |
		jq -c '[.vms[] | select(.name | startswith("prom-")) | {name, rules: [.findings[].rule]}]')"
}
# batch LIST [TIME]: evaluates every expression of LIST ("key<TAB>expr" lines) at TIME
# (default now) in one curl process (spawning processes is slow on a loaded host); prints
# "line<TAB>ok|failed<TAB>series<TAB>error" per answer, line counting from 0.
batch() {
	local dir=$tmp/batch
	rm -rf "$dir"; mkdir -p "$dir"
	jq -R -s -r --arg u "$PURL/api/v1/query?${2:+time=$2&}query=" --arg d "$dir" '
		split("\n") | map(select(length > 0) | split("\t")) | to_entries[]
		| "url = \"\($u)\(.value[1] | @uri)\"\noutput = \"\($d)/\(.key).json\""' "$1" > "$dir/curl.cfg"
	curl -s -m 20 -K "$dir/curl.cfg"
	jq -r --arg d "$dir/" '[(input_filename | ltrimstr($d) | rtrimstr(".json")),
		(if .status == "success" then "ok" else "failed" end),
		((.data.result // []) | length), (.error // "")] | @tsv' "$dir"/*.json 2> /dev/null
}

# last_scrape: the time of the last successful scrape of ipivd. Queries are evaluated then:
# on a loaded host a scrape can time out, and its stale markers would hide every series
# from instant selectors until the next one succeeds.
last_scrape() {
	query "timestamp(ipiv_build_info{instance=\"$INST\"})" &&
		jq -r '.data.result[0].value[1] // empty' "$tmp/q.json"
}

# Enough good scrapes for the 15 s rate windows (the dashboard's $__rate_interval below).
SCRAPES=$(( 10 / SCRAPE )); [ $SCRAPES -lt 4 ] && SCRAPES=4
wait_for 60 "ipivd scraped" "sum_over_time(up{instance=\"$INST\"}[1m]) >= $SCRAPES"
# The guests' findings, in ipivd and then in Prometheus.
note "ipivd scraped $SCRAPES times after $(( SECONDS - start )) s"
wait_for 60 "prom-logical finding" "max_over_time(ipiv_finding{instance=\"$INST\",vm=\"prom-logical\",rule=\"logical_dest_mode\"}[10s])"
wait_for 30 "prom-nmi finding" "max_over_time(ipiv_finding{instance=\"$INST\",vm=\"prom-nmi\",rule=\"special_delivery\"}[10s])"
note "findings in Prometheus after $(( SECONDS - start )) s"

# What this host (or this run) cannot produce: key, condition and reason, tab-separated;
# key is rule:<record> or panel:<title>/<refId>. An exclusion applies while its condition
# query has data; an excluded expression must still parse, and must have no data.
COND_NO_EXITS='sum(ipiv_host_vm_exits_total{job="ipiv"}) == 0'
COND_NO_AVIC='ipiv_host_accel_info{job="ipiv",mechanism!~"x2avic|avic"}'
NO_EXITS="kvm_exit never fires (kvm_pvm): no ipiv_vm_exits_total series"
NO_SENDER_EXIT="the sender's exit is timed from kvm_exit to kvm_entry (VMX/SVM only)"
NO_AVIC="AVIC incomplete-IPI exits exist on AMD AVIC hosts only"
cat > "$tmp/exclusions" <<EOF
rule:instance_vm_reason:ipiv_vm_exits:rate5m	$COND_NO_EXITS	$NO_EXITS
rule:instance_vm:ipiv_vm_exits_per_ipi:ratio_rate5m	$COND_NO_EXITS	$NO_EXITS
rule:instance_vm_path_quantile:ipiv_ipi_sender_exit_seconds:histogram_quantile_rate5m	$COND_NO_EXITS	$NO_SENDER_EXIT
rule:instance_vm_cause:ipiv_avic_incomplete_ipis:rate5m	$COND_NO_AVIC	$NO_AVIC
panel:VM exits by reason/A	$COND_NO_EXITS	$NO_EXITS
panel:VM exits by reason/B	$COND_NO_EXITS	$NO_EXITS
panel:Stage p99/C	$COND_NO_EXITS	$NO_SENDER_EXIT
panel:Sender exit (\$path)/A	$COND_NO_EXITS	$NO_SENDER_EXIT
panel:AVIC incomplete IPIs by cause/A	$COND_NO_AVIC	$NO_AVIC
panel:Deliveries not timed/A	absent(ipiv_ipi_latency_unmatched_total{vm="prom-logical"})	prom-logical had every delivery timed, and ipivd writes only reasons that occurred (prom-nmi is checked below)
panel:Halt durations (ended by polling)/A	absent(ipiv_vcpu_halt_duration_seconds_count{vm="prom-logical",halted="false"})	halt-polling caught none of prom-logical's halts (it depends on the host's load)
panel:Halt durations (blocked)/A	absent(ipiv_vcpu_halt_duration_seconds_count{vm="prom-logical",halted="true"})	halt-polling caught all of prom-logical's halts (it depends on the host's load)
panel:Probes not attached/A	absent(ipiv_probe_attached{job="ipiv"} == 0)	every probe attached on this host
panel:Diagnosis rules not evaluated/A	absent(ipiv_diag_rule_not_evaluated{job="ipiv"} > 0)	every diagnosis rule had its inputs
panel:Active host findings/A	absent(ipiv_host_finding{job="ipiv"} == 1)	no host finding on this host
panel:APICv/AVIC inhibits/A	absent(ipiv_apicv_inhibited{vm="prom-logical"})	no APICv inhibit reason known for prom-logical
EOF
cut -f1,2 "$tmp/exclusions" > "$tmp/exclusion-conds"
declare -A excluded=()
# exclusions_at TIME: which exclusions apply at TIME (their conditions have data)
exclusions_at() {
	local i=0 key reason st n err
	local -A res=()
	while IFS=$'\t' read -r key st n err; do res[$key]="$st	$n"; done < <(batch "$tmp/exclusion-conds" "$1")
	excluded=()
	while IFS=$'\t' read -r key _ reason; do
		IFS=$'\t' read -r st n <<<"${res[$i]:-missing	0}"
		# a condition that did not answer excludes nothing: check_all then retries
		[ "$st" = ok ] && [ "$n" -gt 0 ] && excluded[$key]=$reason
		i=$((i + 1))
	done < "$tmp/exclusions"
}

# check_all LIST WHAT [quiet]: every expression of LIST ("key<TAB>expr" lines) returns data, or is
# excluded here, parses and returns none. All are evaluated at the time of the last good
# scrape; retried for up to 45 s while the rules warm up.
check_all() {
	local list=$1 what=$2 quiet=${3:-} end=$(( SECONDS + 45 )) i key expr st n err why t
	local -A res
	while :; do
		res=(); bad=(); notes=(); n_checked=0; n_excluded=0; i=0
		t=$(last_scrape)
		if [ -z "$t" ]; then
			bad=("no successful scrape of ipivd to evaluate at")
		else
			exclusions_at "$t"
			while IFS=$'\t' read -r key st n err; do res[$key]="$st	$n	$err"; done < <(batch "$list" "$t")
		fi
		[ -z "$t" ] || while IFS=$'\t' read -r key expr; do
			IFS=$'\t' read -r st n err <<<"${res[$i]:-missing	0	no answer}"
			why=${excluded[$key]:-}
			if [ "$st" != ok ]; then
				bad+=("$key: query $st ($err): $expr")
			elif [ -n "$why" ] && [ "$n" -gt 0 ]; then
				bad+=("$key: excluded ($why) but has data")
			elif [ -n "$why" ]; then
				notes+=("excluded $key: $why (parses, no data)"); n_excluded=$((n_excluded + 1))
			elif [ "$n" -eq 0 ]; then
				bad+=("$key: no data from $expr")
			else
				n_checked=$((n_checked + 1))
			fi
			i=$((i + 1))
		done < "$list"
		[ ${#bad[@]} -eq 0 ] && break
		[ $SECONDS -ge $end ] && fail "$what:$(printf '\n  %s' "${bad[@]}")"
		sleep 2
	done
	[ ${#notes[@]} -eq 0 ] || [ -n "$quiet" ] || printf -- '--- %s\n' "${notes[@]}" | sort -u
}

# ---- recording rules -------------------------------------------------------------------
curl -sf -m 10 "$PURL/api/v1/rules" > "$tmp/rules.json" || fail "/api/v1/rules failed"
expect_eq "recording rules loaded" \
	"$(jq '[.data.groups[].rules[] | select(.type == "recording")] | length' "$tmp/rules.json")" "$n_records"
expect_eq "alerting rules loaded" \
	"$(jq '[.data.groups[].rules[] | select(.type == "alerting")] | length' "$tmp/rules.json")" "$n_alerts"
jq -r '.data.groups[].rules[] | select(.type == "recording") | "rule:\(.name)\t\(.query)"' \
	"$tmp/rules.json" > "$tmp/rule-exprs"
check_all "$tmp/rule-exprs" "recording rules"
note "recording rules: all $(wc -l < "$tmp/rule-exprs") expressions evaluated, $n_checked with data, $n_excluded excluded"
# The series the rules wrote exist under their names.
cut -f1 "$tmp/rule-exprs" | sort -u | while read -r key; do printf '%s\t%s\n' "$key" "${key#rule:}"; done \
	> "$tmp/rule-names"
check_all "$tmp/rule-names" "recorded series" quiet
note "recorded series: $n_checked names have series, $n_excluded excluded"

# Every rule evaluates without error; every alert carries severity, summary, description
# and a runbook_url into docs/runbook.md.
for _ in $(seq 1 10); do
	curl -sf -m 10 "$PURL/api/v1/rules" > "$tmp/rules.json"
	jq -e '[.data.groups[].rules[] | select(.health != "ok")] | length == 0' "$tmp/rules.json" > /dev/null && break
	sleep 1
done
jq -e '[.data.groups[].rules[] | select(.health != "ok")] | length == 0' "$tmp/rules.json" > /dev/null ||
	fail "rules not healthy: $(jq -c '[.data.groups[].rules[] | select(.health != "ok") | {name, health, lastError}]' "$tmp/rules.json")"
unfit=$(jq -r '.data.groups[].rules[] | select(.type == "alerting")
	| select((.labels.severity // "" | test("^(critical|warning|info)$") | not)
		or (.annotations.summary // "") == "" or (.annotations.description // "") == ""
		or (.annotations.runbook_url // "" | test("^docs/runbook\\.md#[a-z]+$") | not)) | .name' "$tmp/rules.json")
[ -z "$unfit" ] || fail "alerts without severity, summary, description or runbook_url: $unfit"
for url in $(jq -r '.data.groups[].rules[] | select(.type == "alerting") | .annotations.runbook_url' "$tmp/rules.json" | sort -u); do
	grep -qx "${url#docs/runbook.md#}" <<<"$anchors" || fail "$url: no such section in docs/runbook.md"
done
note "every rule healthy; every alert has severity, summary, description and a runbook section"

# ---- dashboard -------------------------------------------------------------------------
# Template variables as Grafana would set them for this host and the logical guest.
jq -r --arg inst "$INST" --arg vm prom-logical '
	def subst: gsub("\\$__rate_interval"; "15s") | gsub("\\$__interval"; "5s")
		| gsub("\\$__range"; "1m") | gsub("\\$\\{?job\\}?"; "ipiv")
		| gsub("\\$\\{?instance\\}?"; $inst) | gsub("\\$\\{?vm\\}?"; $vm)
		| gsub("\\$\\{?path\\}?"; "x2apic_msr");
	.panels[] | (., .panels[]?) | select(.targets) | . as $p
	| .targets[] | "panel:\($p.title)/\(.refId)\t\(.expr | subst)"' "$DASH" > "$tmp/panel-exprs"
cut -f2 "$tmp/panel-exprs" | grep -q '\$' && fail "template variables left in: $(cut -f2 "$tmp/panel-exprs" | grep '\$' | head -3)"
check_all "$tmp/panel-exprs" "dashboard"
note "dashboard: all $(wc -l < "$tmp/panel-exprs") panel queries evaluated, $n_checked with data, $n_excluded excluded"
# The NMI guest's deliveries have no EOI to time: its drill-down shows them.
nmi_expr=$(grep -F 'panel:Deliveries not timed/A' "$tmp/panel-exprs" | cut -f2 | sed 's/vm="prom-logical"/vm="prom-nmi"/')
nonempty "$nmi_expr" "$(last_scrape)" || fail "Deliveries not timed: no data for prom-nmi: $nmi_expr"

# The variables' label_values(SELECTOR, LABEL) queries offer the values substituted above.
jq -r --arg inst "$INST" '.templating.list[] | select(.type == "query")
	| "\(.name)\t\(.definition | gsub("\\$\\{?job\\}?"; "ipiv") | gsub("\\$\\{?instance\\}?"; $inst) | gsub("\\$\\{?vm\\}?"; "prom-logical"))"' \
	"$DASH" > "$tmp/vars"
t=$(last_scrape) || fail "no successful scrape of ipivd"
while IFS=$'\t' read -r name def; do
	[[ $def =~ ^label_values\((.*),\ *([a-z_]+)\)$ ]] || fail "variable $name: not label_values(selector, label): $def"
	sel=${BASH_REMATCH[1]} label=${BASH_REMATCH[2]}
	case $name in job) want=ipiv ;; instance) want=$INST ;; vm) want=prom-logical ;; path) want=x2apic_msr ;; *) want= ;; esac
	query "count by ($label) ($sel)" "$t" || fail "variable $name: $sel does not parse"
	jq -e --arg l "$label" --arg w "$want" '[.data.result[].metric[$l]] | index($w)' "$tmp/q.json" > /dev/null ||
		fail "variable $name: $sel offers no '$want' ($(jq -c "[.data.result[].metric.$label]" "$tmp/q.json"))"
done < "$tmp/vars"
note "dashboard variables $(cut -f1 "$tmp/vars" | tr '\n' ' ')offer this host's values"

# ---- alerts ----------------------------------------------------------------------------
# Must fire (label subsets): the guests' findings, the dead target, and every host finding
# ipivd reports now, each with its severity.
want="[{\"alertname\":\"IpivFinding\",\"instance\":\"$INST\",\"vm\":\"prom-logical\",\"rule\":\"logical_dest_mode\",\"severity\":\"warning\"},
	{\"alertname\":\"IpivFinding\",\"instance\":\"$INST\",\"vm\":\"prom-nmi\",\"rule\":\"special_delivery\"},
	{\"alertname\":\"IpivDown\",\"instance\":\"127.0.0.1:$DEAD\",\"severity\":\"warning\"}]"
query "ipiv_host_finding{instance=\"$INST\"} == 1" || fail "ipiv_host_finding query failed"
want=$(jq -c --argjson w "$want" '$w + [.data.result[].metric | {alertname: "IpivHostFinding", instance, rule, severity}]' "$tmp/q.json")
# missing: those of $m (the wanted alerts not seen firing yet) not firing in $tmp/alerts.json.
# A failed scrape resolves findings' alerts until they fire again, so each wanted alert
# need only be seen firing once.
missing() {
	jq -c --argjson w "$m" '[.data.alerts[] | select(.state == "firing") | .labels] as $f
		| $w | map(. as $x | select([$f[] | . as $l | $x | to_entries | all(.value == $l[.key])] | any | not))' \
		"$tmp/alerts.json"
}
m=$want; end=$(( SECONDS + 45 ))
while :; do
	curl -sf -m 10 "$PURL/api/v1/alerts" > "$tmp/alerts.json" || fail "/api/v1/alerts failed"
	m=$(missing)
	[ "$m" = "[]" ] && break
	[ $SECONDS -ge $end ] && fail "alerts not firing: $m; firing: $(jq -c '[.data.alerts[] | select(.state == "firing") | .labels]' "$tmp/alerts.json")"
	sleep 0.5
done
note "firing: $(jq -r 'map("\(.alertname){\(del(.alertname) | to_entries | map("\(.key)=\(.value)") | join(","))}") | join(" ")' <<<"$want")"

# Annotations rendered from the series' labels.
jq -e '[.data.alerts[] | select(.labels.alertname == "IpivFinding" and .labels.vm == "prom-logical" and .state == "firing")
	| .annotations | (.summary | test("prom-logical")) and (.description | test("vm=prom-logical"))
	  and ((.summary + .description) | test("no value|error") | not)] | all and length > 0' \
	"$tmp/alerts.json" > /dev/null || fail "IpivFinding annotations not rendered: $(jq -c '[.data.alerts[] | select(.labels.vm == "prom-logical") | .annotations][0]' "$tmp/alerts.json")"

# Neither firing nor pending: the live ipivd is up and complete, nothing was lost (while
# eoi_duplicate grows, which is no loss), nothing had acceleration to lose, and there is
# no day-old baseline.
nonempty "increase(ipiv_events_dropped_total{instance=\"$INST\",reason=\"eoi_duplicate\"}[1m]) > 0" ||
	fail "eoi_duplicate did not grow: the IpivEventsDropped check below would prove nothing"
# IpivDown for the live ipivd is only wrong if no scrape of it failed lately: on a loaded
# host one can time out (scrape_timeout is the scrape interval), and then it is right.
down_ok=IpivDown
nonempty "min_over_time(up{instance=\"$INST\"}[20s]) == 1" || down_ok=
active=$(jq -r --arg i "$INST" --arg d "$down_ok" '.data.alerts[] | .labels
	| select((.alertname | IN("IpivDegraded", "IpivEventsDropped", "IpivAccelerationLost", "IpivLatencyRegression"))
		or (.alertname == $d and .instance == $i)) | tostring' "$tmp/alerts.json")
[ -z "$active" ] || fail "alerts active that must not be: $active"
note "not active: IpivDegraded IpivEventsDropped IpivAccelerationLost IpivLatencyRegression$([ -n "$down_ok" ] &&
	echo ", IpivDown for $INST" || echo "; IpivDown for $INST not checked: a scrape of it timed out lately")"

# The guests sent all along (they are killed only by the trap).
for i in 0 1 2; do
	kill -0 "${guests[i]}" 2>/dev/null || fail "guest ${guest_names[i]} ended early: $(tail -2 "$tmp/${guest_names[i]}.err")"
done
note "done in $(( SECONDS - start )) s"
echo ok
