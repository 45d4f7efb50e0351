#!/usr/bin/env bash
# ipivd's HTTP front under abuse on loopback: slowloris clients (a header byte every 2 s) from
# two addresses, 1000 idle connections from a third, 700 more spread over 25 addresses (past
# the total limit), slow readers (the smallest receive window, 4 bytes taken every 250 ms) of
# two responses or of 400 pipelined ones, and oversized requests. /metrics, probed from
# 127.0.0.1, must answer every probe (5 s each) throughout; every abusive connection must be
# closed by ipivd (read deadline, idle timeout, per-address limit, eviction when full);
# oversized requests get a 4xx; the log stays short. Before the abuse, requests pipelined in
# one write on a kept-alive connection must each get their response, in order. Counts and
# times are measured and printed, not asserted on speed beyond "answers at all within a
# generous deadline".
. "$(dirname "$0")/lib.sh"
require_root; require_kvm; require_cmd curl python3 ss; require_bin "$IPIVD"

READ_TIMEOUT=5	# --web.read-timeout: short, so the test sees it act within a minute
PER_IP=32	# --web.max-connections-per-ip (the default)
ABUSE_S=25	# how long the slow and idle clients keep trying

scratch

# The limits' flags: a bad value is one line and exit 2.
for args in "--web.workers 0" "--web.workers 65" "--web.read-timeout 0" \
	    "--web.max-connections x" "--web.max-connections 8 --web.max-connections-per-ip 9"; do
	# shellcheck disable=SC2086
	"$IPIVD" $args > /dev/null 2> "$tmp/err"
	expect_eq "exit of ipivd $args" $? 2
	expect_eq "error lines of ipivd $args" "$(wc -l < "$tmp/err")" 1
done

PORT=$(pick_port)
URL=http://127.0.0.1:$PORT

"$IPIVD" --web.listen-address 127.0.0.1:$PORT --web.read-timeout $READ_TIMEOUT \
	--web.max-connections-per-ip $PER_IP > "$tmp/ipivd.log" 2>&1 &
ipivd=$!; pids+=("$ipivd")
for _ in $(seq 1 100); do curl -sf "$URL/api/v1/status" > /dev/null && break; sleep 0.1; done
curl -sf "$URL/api/v1/status" > /dev/null || fail "ipivd did not start: $(cat "$tmp/ipivd.log")"

# Pipelined requests: three in one write on one connection, three whole responses in order
# (each as long as its Content-Length), and the connection still serves a fourth after them.
cat > "$tmp/pipeline.py" <<'EOF'
import socket, sys

port = int(sys.argv[1])
paths = ["/metrics", "/api/v1/status", "/"]
kinds = ["text/plain", "application/json", "text/html"]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
buf = b""


def response():
    global buf
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            sys.exit(f"connection closed after {buf[:80]!r}")
        buf += data
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(fields.get("content-length", -1))
    if length < 0:
        sys.exit(f"no Content-Length in {lines}")
    while len(buf) < length:
        data = s.recv(65536)
        if not data:
            sys.exit(f"connection closed {len(buf)} bytes into a body of {length}")
        buf += data
    buf = buf[length:]
    return lines[0], fields


s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths))
for path, kind in zip(paths, kinds):
    status, fields = response()
    print(f"{path}: {status}, {fields.get('content-type')}, "
          f"connection: {fields.get('connection', '(kept alive)')}")
    if not status.endswith(" 200 OK") or not fields.get("content-type", "").startswith(kind):
        sys.exit(f"{path}: want 200 and {kind}")
    if fields.get("connection", "").lower() == "close":
        sys.exit(f"{path}: the connection is closed with requests pending")
if buf:
    sys.exit(f"{len(buf)} bytes after the third response")
s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
status, fields = response()
print(f"then /api/v1/status: {status}")
if not status.endswith(" 200 OK"):
    sys.exit("the kept-alive connection did not serve a fourth request")
EOF
python3 "$tmp/pipeline.py" "$PORT" || fail "pipelined requests were not all answered"

# The abusive clients: non-blocking sockets bound to their own loopback source addresses,
# one event loop; prints what it saw as "key value" lines.
cat > "$tmp/abuse.py" <<'EOF'
import errno, selectors, socket, sys, time

port, duration = int(sys.argv[1]), float(sys.argv[2])
# (kind, source address, connections, when to open them): the spread flood comes once the
# slow clients have met the read deadline, as it would otherwise evict them.
groups = [("slow", "127.0.0.2", 300, 0), ("slow", "127.0.0.4", 64, 0),
          ("idle", "127.0.0.3", 1000, 0)]
groups += [("spread", "127.0.1.%d" % i, 28, duration / 2) for i in range(1, 26)]
partial = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
sel = selectors.DefaultSelector()
conns = []  # dicts: kind, sock, opened, closed, sent
start = time.monotonic()


def open_group(kind, src, n):
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.bind((src, 0))
        rc = s.connect_ex(("127.0.0.1", port))
        c = {"kind": kind, "src": src, "sock": s, "opened": None, "closed": None, "sent": 0}
        if rc not in (0, errno.EINPROGRESS):
            c["closed"] = 0.0
            s.close()
        else:
            sel.register(s, selectors.EVENT_WRITE, c)
        conns.append(c)


next_byte = time.monotonic()
while time.monotonic() - start < duration:
    now = time.monotonic()
    for g in [g for g in groups if g[3] <= now - start]:
        open_group(*g[:3])
        groups.remove(g)
    if now >= next_byte:  # one more header byte from every live slow client
        for c in conns:
            if c["kind"] == "slow" and c["opened"] is not None and c["closed"] is None:
                try:
                    c["sock"].send(partial[c["sent"]:c["sent"] + 1])
                    c["sent"] += 1
                except OSError:
                    pass  # the read side records the close
        next_byte = now + 2
    for key, ev in sel.select(timeout=0.2):
        c = key.data
        s = c["sock"]
        t = time.monotonic() - start
        if c["opened"] is None:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                c["closed"] = t
                sel.unregister(s)
                s.close()
                continue
            c["opened"] = t
            sel.modify(s, selectors.EVENT_READ, c)
            continue
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            c["closed"] = t
            sel.unregister(s)
            s.close()

for kind in ("slow", "idle", "spread"):
    mine = [c for c in conns if c["kind"] == kind]
    held = [c["closed"] - c["opened"] for c in mine
            if c["opened"] is not None and c["closed"] is not None]
    print(f"{kind}_clients {len(mine)}")
    print(f"{kind}_connected {sum(c['opened'] is not None for c in mine)}")
    print(f"{kind}_open_at_end {sum(c['closed'] is None for c in mine)}")
    print(f"{kind}_held_3s {sum(h >= 3 for h in held)}")
    print(f"{kind}_longest_held_s {max(held, default=0):.1f}")
print(f"slow_bytes_sent {sum(c['sent'] for c in conns)}")
EOF

# Slow readers, from their own addresses: 64 ask for /metrics twice (the kernel's socket
# buffers take both responses, so ipivd is done with them at once and its read deadline
# closes the kept-alive connections), 4 pipeline 400 requests (megabytes that no socket
# buffer takes: ipivd holds those until they make no progress for the idle timeout, as a
# third of a send buffer of megabytes takes minutes at 16 bytes a second). The write
# deadline, for a reader fast enough to escape the idle timeout but too slow to finish a
# response larger than the socket buffers (none is without guests), is in test_httpd.
cat > "$tmp/readers.py" <<'EOF'
import socket, sys, time

port, duration = int(sys.argv[1]), float(sys.argv[2])
request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
# (kind, source address, connections, requests each)
groups = [("reader", "127.0.0.5", 32, 2), ("reader", "127.0.0.6", 32, 2),
          ("piper", "127.0.0.7", 4, 400)]
conns = []
for kind, src, n, requests in groups:
    for _ in range(n):
        s = socket.socket()
        # before connecting: the window scale is agreed in the handshake
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        s.bind((src, 0))
        s.settimeout(5)
        c = {"kind": kind, "sock": s, "got": 0, "ended": False}
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(request * requests)
            s.setblocking(False)
        except OSError:
            c["ended"] = True
        conns.append(c)
start = time.monotonic()
while time.monotonic() - start < duration:
    for c in conns:
        if c["ended"]:
            continue
        try:
            data = c["sock"].recv(4)
            c["got"] += len(data)
            c["ended"] = not data
        except BlockingIOError:
            pass
        except OSError:
            c["ended"] = True
    time.sleep(0.25)
for kind in ("reader", "piper"):
    mine = [c for c in conns if c["kind"] == kind]
    print(f"{kind}_clients {len(mine)}")
    print(f"{kind}_answered {sum(c['got'] > 0 for c in mine)}")
    print(f"{kind}_bytes_taken {sum(c['got'] for c in mine)}")
EOF

(ulimit -n 4096 && timeout $((ABUSE_S + 20)) python3 "$tmp/abuse.py" "$PORT" "$ABUSE_S") \
	> "$tmp/abuse.out" 2> "$tmp/abuse.err" &
abuse=$!; pids+=("$abuse")
timeout $((ABUSE_S + 20)) python3 "$tmp/readers.py" "$PORT" "$ABUSE_S" \
	> "$tmp/readers.out" 2> "$tmp/readers.err" &
readers=$!; pids+=("$readers")

# Probes while the abuse runs: each must answer 200 within 5 s.
probes=0; answered=0; slowest=0; per_ip_max=0; pipers_held_max=0
# held SRC: connections ipivd holds from SRC (the server side of loopback, established: one
# it closed with a response still queued in the kernel is an orphan in FIN-WAIT-1)
held() { ss -Htn state established src "127.0.0.1:$PORT" dst "$1" | wc -l; }
end=$(( $(date +%s) + ABUSE_S ))
while [ "$(date +%s)" -lt "$end" ]; do
	r=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "$URL/metrics")
	probes=$((probes + 1))
	if [ "${r%% *}" = 200 ]; then
		answered=$((answered + 1))
		slowest=$(awk -v a="$slowest" -v b="${r#* }" 'BEGIN { print (b > a) ? b : a }')
	else
		echo "probe $probes: '$r'"
	fi
	n=$(held 127.0.0.2)
	[ "$n" -gt "$per_ip_max" ] && per_ip_max=$n
	n=$(held 127.0.0.7)
	[ "$n" -gt "$pipers_held_max" ] && pipers_held_max=$n
	sleep 1
done

# Oversized requests, still under abuse, each answered within 5 s.
code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@"; }
many_args=$(python3 -c 'print("&".join("a%d=1" % i for i in range(450)))')
expect_eq "450 query arguments" "$(code "$URL/metrics?$many_args")" 414
expect_eq "16000 empty query arguments" \
	"$(code "$URL/metrics?$(python3 -c 'print("&" * 16000)')")" 414
expect_eq "64 query arguments still served" \
	"$(code "$URL/metrics?$(python3 -c 'print("&".join("a%d=1" % i for i in range(64)))')")" 200
expect_eq "a 40 KB header" \
	"$(code -H "X-Big: $(python3 -c 'print("y" * 40000)')" "$URL/metrics")" 431
python3 -c 'print("\n".join("X-H%d: y" % i for i in range(1000)))' > "$tmp/headers"
expect_eq "1000 headers" "$(code -H "@$tmp/headers" "$URL/metrics")" 431

wait $abuse || fail "abuse client failed: $(cat "$tmp/abuse.err")"
cat "$tmp/abuse.out"
val() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/abuse.out"; }
note "probes answered: $answered of $probes (slowest ${slowest}s); at most $per_ip_max" \
	"connections held from 127.0.0.2 (limit $PER_IP)"

kill -0 $ipivd 2>/dev/null || fail "ipivd died: $(tail -5 "$tmp/ipivd.log")"
[ "$probes" -ge 10 ] || fail "only $probes probes in ${ABUSE_S}s"
expect_eq "probes answered within 5 s" "$answered" "$probes"
[ "$per_ip_max" -le "$PER_IP" ] ||
	fail "ipivd held $per_ip_max connections from one address (limit $PER_IP)"
[ "$(val slow_connected)" -gt 0 ] && [ "$(val idle_connected)" -gt 0 ] &&
	[ "$(val spread_connected)" -gt 0 ] ||
	fail "the abusive clients never connected: $(cat "$tmp/abuse.out")"
[ "$(val slow_bytes_sent)" -gt 0 ] || fail "the slow clients sent nothing"
# Every one was closed by ipivd: slow ones past the read deadline though they kept sending,
# idle ones by the same deadline or to make room for newer ones, the rest at once by the
# per-address limit.
# The slow readers: every one was answered, and by the end ipivd holds none of them (they
# still read what the kernel has queued for them).
readers_held="$(held 127.0.0.5) $(held 127.0.0.6) $(held 127.0.0.7)"
wait $readers || fail "slow reader client failed: $(cat "$tmp/readers.err")"
cat "$tmp/readers.out"
rval() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/readers.out"; }
note "slow readers: ipivd held at most $pipers_held_max pipelining ones at a probe;" \
	"after ${ABUSE_S}s it held $readers_held (from .5, .6, .7)"
expect_eq "slow readers answered" "$(rval reader_answered)" "$(rval reader_clients)"
expect_eq "pipelining slow readers answered" "$(rval piper_answered)" "$(rval piper_clients)"
[ "$pipers_held_max" -ge 1 ] ||
	fail "ipivd never held a pipelining slow reader: the test did not hold a response up"
expect_eq "slow readers ipivd still held at the end" "$readers_held" "0 0 0"

expect_eq "slow connections ipivd left open" "$(val slow_open_at_end)" 0
expect_eq "idle connections ipivd left open" "$(val idle_open_at_end)" 0
expect_eq "spread idle connections ipivd left open" "$(val spread_open_at_end)" 0
[ "$(val slow_held_3s)" -le $((2 * PER_IP)) ] ||
	fail "$(val slow_held_3s) slow connections held over 3 s (two addresses, limit $PER_IP each)"
[ "$(val spread_held_3s)" -le 512 ] ||
	fail "$(val spread_held_3s) spread connections held over 3 s (--web.max-connections 512)"

# After the abuse: still serving, and the log did not get a line per client.
expect_eq "/metrics after the abuse" "$(code "$URL/metrics")" 200
lines=$(grep -c 'component=httpd' "$tmp/ipivd.log")
note "httpd log lines: $lines"
[ "$lines" -le 12 ] ||
	fail "$lines httpd log lines (5 a minute): $(grep 'component=httpd' "$tmp/ipivd.log" | head -20)"
note "slowloris, idle flood and oversized requests did not take /metrics offline"
