#!/usr/bin/env bash
# The man pages (docs/man/) against the programs' --help: for ipivd, ipivtop and ipivbench,
# the options --help prints (and 'ipivd diagnose --help', and the help of any ipivbench
# subcommand that has one) must be exactly the options documented under OPTIONS in the man
# page, each with the same short form, the same argument and the default --help states;
# the subcommands the usage lines name must be the entries under SUBCOMMANDS; and every
# page must render with no groff warnings. Needs no root and no KVM.
#
# What counts as an option of --help:
# - a row of the option table: a line indented by 1 to 8 spaces that starts with '-'
#   ("  -d, --delay SECS   refresh..."); the argument is what follows the name after '=',
#   inside '[=...]', or after exactly one space when it starts with a capital (the
#   description starts after two or more spaces); the default is the text after
#   "(default" up to ')' or ';' in the row and its indented continuation lines;
# - a bracketed form in a usage line ("[--vm NAME]", "[--json]", "[--diag.NAME=VALUE...]").
# Options merely mentioned in prose are not counted (the help may name another program's).
# What counts as documented: the tag line after each .TP (and .TQ) between '.SH OPTIONS' and
# the next .SH, read the same way once roff escapes and font macros are removed; the entry's
# body must contain "Default: VALUE" (or "default VALUE") for the default --help prints.
#
# Option families: a name with capitals, such as --diag.NAME=VALUE, is a placeholder for a
# family (here the diagnosis thresholds). The placeholder must be documented itself, each
# member --help lists (--diag.min-ipis=N, ...) must be too, and ipivd and ipivtop must list
# the same thresholds. The test ends with a self-check: an option added to a copy of the
# help, an entry removed from and a default changed in a copy of a man page must each fail.
#
# IPIV_MANTEST_BINDIR and IPIV_MANTEST_MANDIR point the test at other binaries or pages;
# IPIV_MANTEST_KEEP=1 keeps its temporary directory (the extracted records).
. "$(dirname "$0")/lib.sh"
require_cmd man groff awk timeout
BINDIR=${IPIV_MANTEST_BINDIR:-$OUT}
MANDIR=${IPIV_MANTEST_MANDIR:-$E2E_ROOT/docs/man}
require_bin "$BINDIR/ipivd" "$BINDIR/ipivtop" "$BINDIR/ipivbench"

tmp=$(mktemp -d)
trap '[ -n "${IPIV_MANTEST_KEEP:-}" ] || rm -rf "$tmp"' EXIT

# ---- extraction (one awk program, two modes) ----
cat > "$tmp/extract.awk" <<'AWK'
# mode=help: reads --help texts; mode=man: reads a man page.
# Prints   O <key> <short> <arg> <default>   per option (help) or
#          O <key> <short> <arg> <body>      per OPTIONS entry (man), fields split by \037,
# and      S <name>                          per subcommand.
# <key> is the long name (or the short one for a short-only option); <default> is "-" when
# --help states none and "" for a bare "(default)".
function ltrim(s) { sub(/^[ \t]+/, "", s); return s }
function unesc(s) {
	gsub(/\\f\[[^]]*\]/, "", s); gsub(/\\f\([A-Za-z0-9][A-Za-z0-9]/, "", s)
	gsub(/\\f[A-Za-z0-9]/, "", s)
	gsub(/\\\(aq/, "'", s); gsub(/\\\(dq/, "\"", s); gsub(/\\\(->/, "->", s)
	gsub(/\\\([A-Za-z*][A-Za-z]/, "?", s); gsub(/\\\[[^]]*\]/, "?", s)
	gsub(/\\-/, "-", s); gsub(/\\[&%:|^]/, "", s); gsub(/\\c$/, "", s)
	gsub(/\\ /, " ", s); gsub(/\\e/, "\\", s)
	return s
}
function split_args(s, a,    n, i, c, cur, inq, have) {
	n = 0; cur = ""; inq = 0; have = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (inq) {
			if (c == "\"") {
				if (substr(s, i + 1, 1) == "\"") { cur = cur c; i++ } else inq = 0
			} else cur = cur c
			continue
		}
		if (c == "\"") { inq = 1; have = 1; continue }
		if (c == " " || c == "\t") { if (have) { a[++n] = cur; cur = ""; have = 0 } continue }
		cur = cur c; have = 1
	}
	if (have) a[++n] = cur
	return n
}
# The text a roff line contributes, or "\001" for a request that is not text.
function roff_text(line,    m, rest, n, i, out, a) {
	if (line !~ /^[.']/) return unesc(line)
	m = line; sub(/^[.'][ \t]*/, "", m); sub(/[ \t].*$/, "", m)
	rest = line; sub(/^[.'][ \t]*[^ \t]*[ \t]*/, "", rest)
	if (m !~ /^(B|I|SM|SB|BR|RB|BI|IB|IR|RI)$/) return "\001"
	n = split_args(rest, a); out = ""
	for (i = 1; i <= n; i++)
		out = out ((m ~ /^(B|I|SM|SB)$/ && i > 1) ? " " : "") a[i]
	return unesc(out)
}
# Parses an option spec ("-d, --delay SECS", "--pin[=CPUS]", "--diag.NAME=VALUE...") into
# P_short, P_long, P_arg.
function parse_arg(s) {
	P_arg = ""
	if (s ~ /^\[=/) { match(s, /^\[=[^]]*\]/); P_arg = substr(s, 1, RLENGTH) }
	else if (s ~ /^=/) { match(s, /^=[^ \t\]]*/); P_arg = substr(s, 1, RLENGTH) }
	else if (s ~ /^ [A-Z]/) { P_arg = substr(s, 1); sub(/^ /, "", P_arg); sub(/[ \t\]].*$/, "", P_arg); P_arg = " " P_arg }
	sub(/\.\.\.$/, "", P_arg)
}
function parse_spec(s) {
	P_short = ""; P_long = ""; P_arg = ""
	s = ltrim(s)
	if (s ~ /^-[A-Za-z0-9]/) {
		P_short = substr(s, 1, 2); s = substr(s, 3)
		if (s ~ /^, *--/) sub(/^, */, "", s)
		else { parse_arg(s); return }
	}
	if (match(s, /^--[A-Za-z0-9][A-Za-z0-9._-]*/)) {
		P_long = substr(s, 1, RLENGTH); parse_arg(substr(s, RLENGTH + 1))
	}
}
function key() { return P_long != "" ? P_long : P_short }
function default_of(text,    i, r) {
	i = index(text, "(default")
	if (!i) return "-"
	r = substr(text, i + 8)
	if (r ~ /^\)/) return ""
	sub(/^:? +/, "", r); sub(/[);].*$/, "", r); sub(/ +$/, "", r)
	return r
}
# ---- help ----
function flush_row() {
	if (row == "") return
	parse_spec(row)
	if (key() != "") {
		if (!(key() in seen)) order[++n_order] = key()
		seen[key()] = 1; short[key()] = P_short; arg[key()] = P_arg
		def[key()] = default_of(row_text)
	}
	row = ""; row_text = ""
}
mode == "help" {
	line = $0
	match(line, /^ */); indent = RLENGTH	# (mawk has no {m,n})
	if (indent >= 1 && indent <= 8 && substr(line, indent + 1, 1) == "-") {
		flush_row(); row = line; row_text = line; next
	}
	if (row != "" && indent >= 9 && length(line) > indent) { row_text = row_text " " ltrim(line); next }
	flush_row()
	# usage lines: "Usage: prog sub ..." or "       prog sub ..."
	if (match(line, /^(Usage:)? +[a-z][a-z0-9_-]* +[a-z][a-z0-9-]*( |$)/)) {
		u = ltrim(line); sub(/^Usage: +/, "", u); split(u, w, / +/)
		if (w[1] == prog) subs[w[2]] = 1
	}
	t = line
	while (match(t, /\[--?[A-Za-z][A-Za-z0-9._-]*(\[=[^]]*\])?[^][]*\]/)) {
		b = substr(t, RSTART + 1, RLENGTH - 2); t = substr(t, RSTART + RLENGTH)
		parse_spec(b)
		if (key() != "" && !(key() in seen)) {
			order[++n_order] = key(); seen[key()] = 1
			short[key()] = P_short; arg[key()] = P_arg; def[key()] = "-"
		}
	}
	next
}
# ---- man ----
function flush_entry(    i) {
	if (n_tags == 0) return
	for (i = 1; i <= n_tags; i++) {
		parse_spec(tags[i])
		if (key() != "") printf "O\037%s\037%s\037%s\037%s\n", key(), P_short, P_arg, body
		else printf "X\037%s\n", tags[i]
	}
	n_tags = 0; body = ""
}
mode == "man" {
	line = $0
	if (line ~ /^[.'][ \t]*\\"/) next
	if (line ~ /^[.'][ \t]*SH([ \t]|$)/) {
		flush_entry(); pending = 0
		sec = line; sub(/^[.'][ \t]*SH[ \t]*/, "", sec); gsub(/"/, "", sec)
		next
	}
	if (sec != "OPTIONS" && sec != "SUBCOMMANDS") next
	if (line ~ /^[.'][ \t]*(TP|TQ)([ \t]|$)/) {
		if (line ~ /TP/) flush_entry()
		pending = 1; next
	}
	if (line ~ /^[.'][ \t]*(SS|PP|LP|P|IP|HP)([ \t]|$)/) { flush_entry(); pending = 0; next }
	txt = roff_text(line)
	if (txt == "\001") next
	if (pending) {
		pending = 0
		if (sec == "SUBCOMMANDS") { split(ltrim(txt), w, / +/); print "S\037" w[1]; next }
		tags[++n_tags] = txt; next
	}
	if (n_tags) body = body " " txt
	next
}
END {
	if (mode == "man") { flush_entry(); exit }
	flush_row()
	for (i = 1; i <= n_order; i++) {
		k = order[i]
		printf "O\037%s\037%s\037%s\037%s\n", k, short[k], arg[k], def[k]
	}
	for (s in subs) print "S\037" s
}
AWK

help_records() {	# PROG FILE...: option and subcommand records of --help texts
	local prog=$1; shift
	cat "$@" | awk -v mode=help -v prog="$prog" -f "$tmp/extract.awk"
}
man_records() {	# PAGE
	awk -v mode=man -f "$tmp/extract.awk" "$1"
}

# compare LABEL PAGE HELP-RECORDS MAN-RECORDS: prints one line per disagreement, returns
# the number of them.
compare() {
	local label=$1 page=$2 hrec=$3 mrec=$4 bad=0 k short a d body
	local -A h_short=() h_arg=() h_def=() m_short=() m_arg=() m_body=() h_sub=() m_sub=()
	while IFS=$'\x1f' read -r t k short a d; do
		case $t in
		O) h_short[$k]=$short; h_arg[$k]=$a; h_def[$k]=$d ;;
		S) h_sub[$k]=1 ;;
		esac
	done < "$hrec"
	while IFS=$'\x1f' read -r t k short a body; do
		case $t in
		O) m_short[$k]=$short; m_arg[$k]=$a; m_body[$k]=$body ;;
		S) m_sub[$k]=1 ;;
		X) echo "$label: $page OPTIONS has an entry naming no option: '$k'"; bad=$((bad + 1)) ;;
		esac
	done < "$mrec"
	if [ ${#h_short[@]} -lt 5 ]; then
		echo "$label: only ${#h_short[@]} options found in --help: has its layout changed?"
		bad=$((bad + 1))
	fi
	for k in "${!h_short[@]}"; do
		if [ -z "${m_short[$k]+x}" ]; then
			echo "$label: $k is in --help but not under OPTIONS in $page"
			bad=$((bad + 1)); continue
		fi
		if [ "${h_short[$k]}" != "${m_short[$k]}" ]; then
			echo "$label: $k: short form '${h_short[$k]}' in --help, '${m_short[$k]}' in $page"
			bad=$((bad + 1))
		fi
		if [ "${h_arg[$k]}" != "${m_arg[$k]}" ]; then
			echo "$label: $k: argument '${h_arg[$k]# }' in --help, '${m_arg[$k]# }' in $page"
			bad=$((bad + 1))
		fi
		d=${h_def[$k]}
		body=${m_body[$k],,}
		if [ "$d" = "" ]; then
			[[ $body == *default* ]] || {
				echo "$label: $k: --help marks a default, $page does not say which"
				bad=$((bad + 1))
			}
		elif [ "$d" != "-" ] && [[ $body != *"default: ${d,,}"* && $body != *"default ${d,,}"* ]]; then
			echo "$label: $k: default '$d' in --help, not 'Default: $d' in $page"
			bad=$((bad + 1))
		fi
	done
	for k in "${!m_short[@]}"; do
		[ -n "${h_short[$k]+x}" ] && continue
		echo "$label: $k is under OPTIONS in $page but not in --help"
		bad=$((bad + 1))
	done
	for k in "${!h_sub[@]}"; do
		[ -n "${m_sub[$k]+x}" ] || { echo "$label: subcommand '$k' is in --help but not under SUBCOMMANDS in $page"; bad=$((bad + 1)); }
	done
	for k in "${!m_sub[@]}"; do
		[ -n "${h_sub[$k]+x}" ] || { echo "$label: subcommand '$k' is under SUBCOMMANDS in $page but not in --help"; bad=$((bad + 1)); }
	done
	# Families: a placeholder (capitals in the name) must come with members in --help.
	for k in "${!h_short[@]}"; do
		[[ $k == --*[A-Z]* ]] || continue
		local stem=${k%%[A-Z]*} members=0 m
		for m in "${!h_short[@]}"; do
			[[ $m == "$stem"* && $m != *[A-Z]* && ${h_arg[$m]} == =* ]] && members=$((members + 1))
		done
		if [ $members -eq 0 ]; then
			echo "$label: $k${h_arg[$k]} stands for a family, but --help lists no $stem<name>=... member"
			bad=$((bad + 1))
		fi
	done
	return $((bad > 255 ? 255 : bad))
}

# ---- the help texts ----
# help_of OUT CMD...: stdout of CMD (which must exit 0 and print something)
help_of() {
	local out=$1; shift
	timeout 20 "$@" > "$out" 2> "$out.err" || fail "'$*' failed (exit $?): $(head -3 "$out.err")"
	[ -s "$out" ] || fail "'$*' printed nothing"
}
# sub_help OUT CMD...: a subcommand's own help if it has one (exit 0 and a Usage: line)
sub_help() {
	local out=$1; shift
	if timeout 20 "$@" > "$out" 2> "$out.err" && grep -q '^Usage:' "$out"; then
		note "'$*' has help of its own: checked too"
		return 0
	fi
	note "'$*' has no help of its own: $(cat "$out.err" "$out" | head -c 120 | tr '\n' ' ')"
	: > "$out"
}

help_of "$tmp/ipivd.help" "$BINDIR/ipivd" --help
help_of "$tmp/ipivd-diagnose.help" "$BINDIR/ipivd" diagnose --help
help_of "$tmp/ipivtop.help" "$BINDIR/ipivtop" --help
help_of "$tmp/ipivbench.help" "$BINDIR/ipivbench" --help
sub_help "$tmp/ipivbench-compare.help" "$BINDIR/ipivbench" compare --help
sub_help "$tmp/ipivbench-check.help" "$BINDIR/ipivbench" check --help

help_records ipivd "$tmp/ipivd.help" "$tmp/ipivd-diagnose.help" > "$tmp/ipivd.hrec"
help_records ipivtop "$tmp/ipivtop.help" > "$tmp/ipivtop.hrec"
help_records ipivbench "$tmp/ipivbench.help" "$tmp/ipivbench-compare.help" \
	"$tmp/ipivbench-check.help" > "$tmp/ipivbench.hrec"

failures=0
report() { cat "$1"; failures=$((failures + $(wc -l < "$1"))); }

# ---- rendering ----
for page in ipivd.8 ipivtop.1 ipivbench.1; do
	f=$MANDIR/$page
	[ -f "$f" ] || fail "$f is missing"
	name=${page%.*} section=${page##*.}
	grep -q "^\.TH ${name^^} $section " "$f" || { echo "$page: .TH does not say ${name^^} $section"; failures=$((failures + 1)); }
	for w in "" "=w"; do
		if ! LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings$w -l "$f" > "$tmp/$page.txt" 2> "$tmp/$page.warn"; then
			echo "$page: man --warnings$w -l failed: $(head -3 "$tmp/$page.warn")"
			failures=$((failures + 1))
		elif [ -s "$tmp/$page.warn" ]; then
			echo "$page: man --warnings$w -l prints warnings:"; sed 's/^/    /' "$tmp/$page.warn"
			failures=$((failures + 1))
		fi
	done
	grep -q '^OPTIONS' "$tmp/$page.txt" || { echo "$page: no OPTIONS section rendered"; failures=$((failures + 1)); }
done

# ---- options ----
for p in ipivd:ipivd.8 ipivtop:ipivtop.1 ipivbench:ipivbench.1; do
	prog=${p%%:*} page=${p#*:}
	man_records "$MANDIR/$page" > "$tmp/$prog.mrec"
	compare "$prog" "$page" "$tmp/$prog.hrec" "$tmp/$prog.mrec" > "$tmp/$prog.diff"
	report "$tmp/$prog.diff"
	note "$prog: $(grep -c '^O' "$tmp/$prog.hrec") options in --help," \
		"$(grep -c '^O' "$tmp/$prog.mrec") in $page"
done

# ipivtop takes the diagnosis thresholds "as ipivd takes it": the same members, same kinds.
thresholds() { awk -F'\037' '$1 == "O" && $2 ~ /^--diag\.[a-z]/ && $4 ~ /^=/ { print $2 $4 }' "$1" | sort; }
thresholds "$tmp/ipivd.hrec" > "$tmp/ipivd.th"
thresholds "$tmp/ipivtop.hrec" > "$tmp/ipivtop.th"
if ! diff "$tmp/ipivd.th" "$tmp/ipivtop.th" > "$tmp/th.diff"; then
	echo "ipivd --help and ipivtop --help list different diagnosis thresholds:"
	sed 's/^/    /' "$tmp/th.diff"
	failures=$((failures + 1))
fi
[ "$(wc -l < "$tmp/ipivd.th")" -ge 1 ] || { echo "no --diag.NAME=VALUE members found in ipivd --help"; failures=$((failures + 1)); }

[ $failures -eq 0 ] || fail "$failures problem(s): the man pages and --help disagree or a page does not render cleanly (see above)"

# ---- self-check: the comparison must catch each kind of drift ----
expect_caught() {	# WHAT PATTERN PROG PAGE-FILE HELP-FILE...
	local what=$1 pattern=$2 prog=$3 page=$4; shift 4
	help_records "$prog" "$@" > "$tmp/self.hrec"
	man_records "$page" > "$tmp/self.mrec"
	if compare "$prog" "$(basename "$page")" "$tmp/self.hrec" "$tmp/self.mrec" > "$tmp/self.out"; then
		fail "self-check: $what went unnoticed"
	fi
	grep -qF -- "$pattern" "$tmp/self.out" ||
		fail "self-check: $what: the failure does not name '$pattern': $(cat "$tmp/self.out")"
	note "self-check: $what is caught: $(head -1 "$tmp/self.out")"
}
{ cat "$tmp/ipivtop.help"; echo "      --zz-new-option N  added to the help only (default 7)"; } > "$tmp/added.help"
expect_caught "an option added to --help" "--zz-new-option" ipivtop "$MANDIR/ipivtop.1" "$tmp/added.help"
{ cat "$tmp/ipivd.help"; echo "  --diag.zz-new-threshold=N          added to the help only (default 3)"; } > "$tmp/added-th.help"
expect_caught "a threshold added to --help" "--diag.zz-new-threshold" ipivd "$MANDIR/ipivd.8" "$tmp/added-th.help"
sed -e 's/^\.TP$/.TP\n.ZZ/' "$MANDIR/ipivtop.1" | awk '
	/^\.ZZ$/ { held = 1; next }
	held && /no\\-color/ { skip = 1 }
	held { held = 0 }
	skip && /^\.TP$/ { skip = 0 }
	!skip' > "$tmp/removed.1"
grep -q 'no\\-color\\fR$' "$tmp/removed.1" && fail "self-check: could not remove --no-color from the copy"
expect_caught "an entry missing from the man page" "--no-color" ipivtop "$tmp/removed.1" "$tmp/ipivtop.help"
sed '/^\\fB\\-\\-web.workers\\fR/,/^Default:/ s/^Default: 4\./Default: 5./' "$MANDIR/ipivd.8" > "$tmp/default.8"
cmp -s "$tmp/default.8" "$MANDIR/ipivd.8" && fail "self-check: could not change a default in the copy"
expect_caught "a default that differs" "--web.workers: default '4'" ipivd "$tmp/default.8" "$tmp/ipivd.help"
sed 's/^\\fB\\-\\-pin\\fR\[\\fB=\\fICPUS\\fR\]$/\\fB\\-\\-pin\\fR \\fICPUS\\fR/' "$MANDIR/ipivbench.1" > "$tmp/arg.1"
cmp -s "$tmp/arg.1" "$MANDIR/ipivbench.1" && fail "self-check: could not change an argument in the copy"
expect_caught "an argument that differs" "--pin: argument" ipivbench "$tmp/arg.1" "$tmp/ipivbench.help"

echo "PASS: man pages and --help agree"
