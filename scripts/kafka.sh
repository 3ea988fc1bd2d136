#!/usr/bin/env bash
# Runs real Apache Kafka (KRaft, combined broker+controller nodes) on loopback
# without Docker, for tests and local development.
#
#   scripts/kafka.sh fetch
#   scripts/kafka.sh start        --dir DIR [--nodes 1|3] [--owner-pid PID]
#   scripts/kafka.sh stop         --dir DIR [--node N]
#   scripts/kafka.sh kill         --dir DIR --node N
#   scripts/kafka.sh restart-node --dir DIR --node N
#   scripts/kafka.sh status       --dir DIR
#
# Run `scripts/kafka.sh help` for details. Only stdout output of `start` is the
# bootstrap address list; every diagnostic goes to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT_PATH="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J2_XML="$SCRIPT_DIR/kafka/log4j2.xml"
readonly SCRIPT_DIR SCRIPT_PATH POM LOG4J2_XML

KAFKA_VERSION="${KAFKA_VERSION:-4.3.0}"
CACHE_DIR="${HOOKSTREAM_KAFKA_CACHE:-${HOME:-/tmp}/.cache/hookstream/kafka-$KAFKA_VERSION}"
LIB_DIR="$CACHE_DIR/libs"
MARKER="$CACHE_DIR/.complete"
START_TIMEOUT="${HOOKSTREAM_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${HOOKSTREAM_KAFKA_STOP_TIMEOUT:-30}"
JAVA_BIN=""
READY_PATTERN='Kafka Server started'

usage() {
	cat >&2 <<EOF
usage: scripts/kafka.sh COMMAND [OPTIONS]

Commands:
  fetch                          resolve Kafka $KAFKA_VERSION jars with Maven into the cache
                                 (idempotent); prints the jar directory
  start --dir DIR [--nodes 1|3]  format and start a KRaft cluster in DIR on free 127.0.0.1
        [--owner-pid PID]        ports; prints the bootstrap list (one line) and writes it to
                                 DIR/bootstrap. With --owner-pid, a watcher stops the cluster
                                 once PID exits. On an already formatted DIR, starts its nodes
                                 again with their existing config and data.
  stop --dir DIR [--node N]      SIGTERM the node(s) recorded in DIR, SIGKILL after
                                 \$HOOKSTREAM_KAFKA_STOP_TIMEOUT s (default 30)
  kill --dir DIR --node N        SIGKILL node N (simulated crash)
  restart-node --dir DIR --node N
                                 start a stopped node again with its config and data
  status --dir DIR               print node, port, pid, state; exit 0 if all nodes run, 3 if not

Environment:
  KAFKA_VERSION                  Kafka version (default 4.3.0)
  HOOKSTREAM_KAFKA_CACHE         jar cache (default \$HOME/.cache/hookstream/kafka-\$KAFKA_VERSION)
  HOOKSTREAM_KAFKA_MAVEN_REPO    Maven local repository to use (default: Maven's own)
  HOOKSTREAM_KAFKA_START_TIMEOUT seconds to wait for nodes to serve (default 90)
  HOOKSTREAM_KAFKA_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 30)
  HOOKSTREAM_KAFKA_HEAP          max heap per node (default 512m for 1 node, 384m for 3)
  HOOKSTREAM_KAFKA_JIT           quick (default): C1 only, a fast start for tests; full: the
                                 JVM's default tiered C1+C2, slower to warm up, less CPU per
                                 request once warm (benchmarks, long-running clusters)
  HOOKSTREAM_KAFKA_JAVA_OPTS     extra JVM options for the nodes

Layout of DIR: bootstrap, nodes ("node port controller_port pid"), cluster.id,
log4j2.xml, node-N/{server.properties,data/,server.log,format.log,pid,port,controller_port}.
EOF
}

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

now() { date +%s; }

# ---------------------------------------------------------------------------
# Prerequisites and fetch

find_java() {
	if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
		JAVA_BIN="$JAVA_HOME/bin/java"
	elif command -v java >/dev/null 2>&1; then
		JAVA_BIN="$(command -v java)"
	else
		die "java not found (set JAVA_HOME or put java on PATH); Kafka $KAFKA_VERSION needs Java 17+"
	fi
	local line major
	line="$("$JAVA_BIN" -version 2>&1 | head -n 1)" || true
	# openjdk version "17.0.15" 2025-04-15 | java version "1.8.0_412"
	major="$(sed -n 's/.*version "\([0-9][0-9]*\)[^"]*".*/\1/p' <<<"$line")"
	if [[ "$major" == 1 ]]; then
		major="$(sed -n 's/.*version "1\.\([0-9][0-9]*\).*/\1/p' <<<"$line")"
	fi
	if [[ -z "$major" ]]; then
		die "cannot parse the Java version from '$JAVA_BIN -version': $line"
	fi
	if ((major < 17)); then
		die "Java $major found at $JAVA_BIN ($line); Kafka $KAFKA_VERSION needs Java 17+"
	fi
}

check_mvn() {
	command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven 3.6.3+) not found on PATH; it is needed to fetch the Kafka jars (apt-get install maven)"
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

fetch_complete() {
	[[ -f "$MARKER" && -d "$LIB_DIR" ]] || return 1
	local want have
	want="$(printf 'kafka_version=%s\npom_sha256=%s\njars=%s\n' "$KAFKA_VERSION" "$(pom_sum)" "$(find "$LIB_DIR" -maxdepth 1 -name '*.jar' | wc -l)")"
	have="$(cat "$MARKER")"
	[[ "$want" == "$have" ]]
}

# ensure_fetched resolves the jars unless a previous fetch completed. Safe to
# run concurrently (flock on the cache dir).
ensure_fetched() {
	find_java
	mkdir -p "$CACHE_DIR"
	if fetch_complete; then
		return 0
	fi
	check_mvn
	exec 8>"$CACHE_DIR/.lock"
	flock 8
	if fetch_complete; then # another process finished while we waited
		exec 8>&-
		return 0
	fi
	log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION with Maven into $LIB_DIR"
	local start tmp
	start="$(now)"
	rm -f "$MARKER"
	rm -rf "$CACHE_DIR"/.fetch.*
	tmp="$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")"
	# Run Maven on a copy of the pom so nothing is written into the source tree.
	cp "$POM" "$tmp/pom.xml"
	local -a mvn_args=(-q -B -f "$tmp/pom.xml" "-Dkafka.version=$KAFKA_VERSION"
		dependency:copy-dependencies "-DoutputDirectory=$tmp/libs" -DincludeScope=runtime)
	if [[ -n "${HOOKSTREAM_KAFKA_MAVEN_REPO:-}" ]]; then
		mvn_args=("-Dmaven.repo.local=$HOOKSTREAM_KAFKA_MAVEN_REPO" "${mvn_args[@]}")
	fi
	if ! mvn "${mvn_args[@]}" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		rm -rf "$tmp"
		die "mvn dependency:copy-dependencies failed for kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"
	fi
	local f
	for f in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-server-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
		[[ -f "$tmp/libs/$f" ]] || die "fetch incomplete: $f missing from $tmp/libs"
	done
	compgen -G "$tmp/libs/slf4j-api-2.*.jar" >/dev/null || die "fetch produced no slf4j-api 2.x jar; the broker would log nothing"
	compgen -G "$tmp/libs/log4j-slf4j2-impl-*.jar" >/dev/null || die "fetch produced no log4j-slf4j2-impl jar"
	rm -rf "$LIB_DIR"
	mv "$tmp/libs" "$LIB_DIR"
	rm -rf "$tmp"
	printf 'kafka_version=%s\npom_sha256=%s\njars=%s\n' "$KAFKA_VERSION" "$(pom_sum)" \
		"$(find "$LIB_DIR" -maxdepth 1 -name '*.jar' | wc -l)" >"$MARKER.tmp"
	mv "$MARKER.tmp" "$MARKER"
	exec 8>&-
	log "fetched $(find "$LIB_DIR" -maxdepth 1 -name '*.jar' | wc -l) jars in $(($(now) - start))s"
}

cmd_fetch() {
	[[ $# -eq 0 ]] || die "fetch takes no arguments"
	ensure_fetched
	log "Kafka $KAFKA_VERSION jars ready in $LIB_DIR"
	printf '%s\n' "$LIB_DIR"
}

# ---------------------------------------------------------------------------
# Helpers for a cluster directory

DIR=""
NODES=""
NODE=""
OWNER_PID=""

parse_opts() {
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--dir)
			[[ $# -ge 2 ]] || die "--dir needs a value"
			DIR="$2"
			shift 2
			;;
		--dir=*)
			DIR="${1#*=}"
			shift
			;;
		--nodes)
			[[ $# -ge 2 ]] || die "--nodes needs a value"
			NODES="$2"
			shift 2
			;;
		--nodes=*)
			NODES="${1#*=}"
			shift
			;;
		--node)
			[[ $# -ge 2 ]] || die "--node needs a value"
			NODE="$2"
			shift 2
			;;
		--node=*)
			NODE="${1#*=}"
			shift
			;;
		--owner-pid)
			[[ $# -ge 2 ]] || die "--owner-pid needs a value"
			OWNER_PID="$2"
			shift 2
			;;
		--owner-pid=*)
			OWNER_PID="${1#*=}"
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown option '$1' (see scripts/kafka.sh help)" ;;
		esac
	done
	[[ -n "$DIR" ]] || die "--dir DIR is required"
	if [[ -n "$NODE" && ! "$NODE" =~ ^[1-9][0-9]*$ ]]; then
		die "--node must be a node number starting at 1, got '$NODE'"
	fi
	if [[ -n "$OWNER_PID" && ! "$OWNER_PID" =~ ^[1-9][0-9]*$ ]]; then
		die "--owner-pid must be a process id, got '$OWNER_PID'"
	fi
}

# abs_dir makes DIR absolute (creating it when asked).
abs_dir() {
	if [[ "${1:-}" == create ]]; then
		mkdir -p "$DIR"
	fi
	[[ -d "$DIR" ]] || die "no such directory: $DIR"
	DIR="$(cd "$DIR" && pwd)"
}

lock_dir() {
	exec 9>"$DIR/.lock"
	flock 9
}

node_dir() { printf '%s/node-%s' "$DIR" "$1"; }

# existing_nodes prints the node numbers that have a config in DIR.
existing_nodes() {
	local d
	for d in "$DIR"/node-*; do
		[[ -f "$d/server.properties" ]] && printf '%s\n' "${d##*/node-}"
	done | sort -n
}

# is_alive PID: true when PID exists and is not a zombie.
is_alive() {
	local pid="$1" state
	[[ -e "/proc/$pid" ]] || { kill -0 "$pid" 2>/dev/null || return 1; return 0; }
	state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null)" || return 1
	[[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# node_pid N prints the pid of node N if it is alive and really is that node's
# broker (guards against a recycled pid); otherwise prints nothing.
node_pid() {
	local nd pid cmdline
	nd="$(node_dir "$1")"
	[[ -f "$nd/pid" ]] || return 0
	pid="$(cat "$nd/pid")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	is_alive "$pid" || return 0
	if [[ -r "/proc/$pid/cmdline" ]]; then
		cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
		[[ "$cmdline" == *kafka.Kafka*"$nd/server.properties"* ]] || return 0
	fi
	printf '%s\n' "$pid"
}

write_nodes_file() {
	local n nd pid
	{
		printf '# node port controller_port pid ("-" = not running)\n'
		for n in $(existing_nodes); do
			nd="$(node_dir "$n")"
			pid="$(node_pid "$n")"
			printf '%s %s %s %s\n' "$n" "$(cat "$nd/port")" "$(cat "$nd/controller_port")" "${pid:--}"
		done
	} >"$DIR/nodes.tmp"
	mv "$DIR/nodes.tmp" "$DIR/nodes"
}

# pick_ports COUNT prints COUNT distinct free TCP ports on 127.0.0.1, chosen
# below the kernel's ephemeral range so outgoing connections cannot take them
# between now and the broker binding them.
pick_ports() {
	local count="$1" lo=20000 hi=32767 eph_lo
	eph_lo="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
	if ((eph_lo - 1 < hi)); then hi=$((eph_lo - 1)); fi
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$count" "$lo" "$hi" <<'PY'
import random, socket, sys
count, lo, hi = (int(a) for a in sys.argv[1:4])
held, ports = [], []
def try_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s
attempts = 0
while len(ports) < count and hi - lo > 100 and attempts < 2000:
    attempts += 1
    p = random.randint(lo, hi)
    if p in ports:
        continue
    s = try_bind(p)
    if s:
        held.append(s)
        ports.append(p)
while len(ports) < count:  # fall back to kernel-chosen ports
    s = try_bind(0)
    held.append(s)
    ports.append(s.getsockname()[1])
print(" ".join(str(p) for p in ports))
for s in held:
    s.close()
PY
	else
		local -a ports=()
		local p tries=0
		while ((${#ports[@]} < count)); do
			((tries++ < 5000)) || die "could not find $count free ports on 127.0.0.1"
			p=$((lo + RANDOM % (hi - lo)))
			[[ " ${ports[*]} " == *" $p "* ]] && continue
			# A refused connect means nothing listens there.
			if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
			ports+=("$p")
		done
		printf '%s\n' "${ports[*]}"
	fi
}

new_cluster_id() {
	local id
	while :; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" != -* && "$id" != AAAAAAAAAAAAAAAAAAAAAA ]] && break
	done
	printf '%s\n' "$id"
}

# write_config N NODES CLUSTER_VOTERS: server.properties of node N.
write_config() {
	local n="$1" nodes="$2" voters="$3" nd rf isr heap
	nd="$(node_dir "$n")"
	if ((nodes == 1)); then rf=1 isr=1; else rf=3 isr=2; fi
	mkdir -p "$nd/data"
	{
		printf '# Written by scripts/kafka.sh for a %s-node test cluster.\n' "$nodes"
		printf 'process.roles=broker,controller\n'
		printf 'node.id=%s\n' "$n"
		printf 'listeners=PLAINTEXT://127.0.0.1:%s,CONTROLLER://127.0.0.1:%s\n' "$(cat "$nd/port")" "$(cat "$nd/controller_port")"
		printf 'advertised.listeners=PLAINTEXT://127.0.0.1:%s\n' "$(cat "$nd/port")"
		printf 'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n'
		printf 'inter.broker.listener.name=PLAINTEXT\n'
		printf 'controller.listener.names=CONTROLLER\n'
		if ((nodes == 1)); then
			printf 'controller.quorum.bootstrap.servers=%s\n' "$voters"
		else
			printf 'controller.quorum.voters=%s\n' "$voters"
		fi
		printf 'log.dirs=%s/data\n' "$nd"
		printf '\n# Topics are created by the pipeline, never implicitly.\n'
		printf 'auto.create.topics.enable=false\n'
		printf 'num.partitions=1\n'
		printf 'default.replication.factor=%s\n' "$rf"
		printf 'min.insync.replicas=%s\n' "$isr"
		printf '\n# Internal topics: few partitions so first use is fast.\n'
		printf 'offsets.topic.num.partitions=3\n'
		printf 'offsets.topic.replication.factor=%s\n' "$rf"
		printf 'transaction.state.log.num.partitions=3\n'
		printf 'transaction.state.log.replication.factor=%s\n' "$rf"
		printf 'transaction.state.log.min.isr=%s\n' "$isr"
		printf 'share.coordinator.state.topic.num.partitions=3\n'
		printf 'share.coordinator.state.topic.replication.factor=%s\n' "$rf"
		printf 'share.coordinator.state.topic.min.isr=%s\n' "$isr"
		printf '\n# Test-friendly timing.\n'
		printf 'group.initial.rebalance.delay.ms=0\n'
		printf '# A crashed node is fenced (and leaves the ISR) after 6 s instead of 9 s.\n'
		printf 'broker.heartbeat.interval.ms=1000\n'
		printf 'broker.session.timeout.ms=6000\n'
		printf '\n# Small footprint on a 2-core machine.\n'
		printf 'num.network.threads=2\n'
		printf 'num.io.threads=4\n'
		printf 'num.recovery.threads.per.data.dir=1\n'
		printf 'background.threads=4\n'
		printf 'log.cleaner.threads=1\n'
		printf 'log.cleaner.dedupe.buffer.size=8388608\n'
		printf '\n# Index files of 1 MiB instead of 10 MiB. Each segment maps its offset and\n'
		printf '# time index; the first write to such a sparse mapping costs about 0.34 ms\n'
		printf '# per MiB mapped on this kind of VM (3.4 ms for 10 MiB, measured), paid by\n'
		printf '# every new partition and segment. 1 MiB still indexes 512 MiB of log\n'
		printf '# (an entry per 4 KiB); a segment rolls when either fills.\n'
		printf 'log.index.size.max.bytes=1048576\n'
	} >"$nd/server.properties"
	if ((nodes == 1)); then heap="${HOOKSTREAM_KAFKA_HEAP:-512m}"; else heap="${HOOKSTREAM_KAFKA_HEAP:-384m}"; fi
	printf '%s\n' "$heap" >"$nd/heap"
}

# format_nodes CLUSTER_ID NODES: runs StorageTool for every node, in parallel.
format_nodes() {
	local id="$1" nodes="$2" n nd
	local -a pids=() extra=()
	if ((nodes == 1)); then extra=(--standalone); fi
	for n in $(seq 1 "$nodes"); do
		nd="$(node_dir "$n")"
		"$JAVA_BIN" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
			"-Dlog4j2.configurationFile=$DIR/log4j2.xml" -cp "$LIB_DIR/*" kafka.tools.StorageTool \
			format -t "$id" -c "$nd/server.properties" "${extra[@]}" >"$nd/format.log" 2>&1 </dev/null 8>&- 9>&- &
		pids+=("$!")
	done
	local i=0 failed=0
	for n in $(seq 1 "$nodes"); do
		if ! wait "${pids[$i]}"; then
			log "formatting node $n failed:"
			cat "$(node_dir "$n")/format.log" >&2
			failed=1
		fi
		i=$((i + 1))
	done
	((failed == 0)) || die "StorageTool format failed"
}

# check_jit rejects an unknown HOOKSTREAM_KAFKA_JIT before anything starts.
check_jit() {
	case "${HOOKSTREAM_KAFKA_JIT:-quick}" in
	quick | full) ;;
	*) die "HOOKSTREAM_KAFKA_JIT must be quick or full, not '$HOOKSTREAM_KAFKA_JIT'" ;;
	esac
}

# launch_node N starts node N's JVM in its own session (it outlives this
# script) and records its pid.
launch_node() {
	local n="$1" nd heap
	nd="$(node_dir "$n")"
	heap="$(cat "$nd/heap")"
	rm -f "$nd/pid"
	touch "$nd/server.log"
	stat -c %s "$nd/server.log" >"$nd/log.offset"
	local -a jvm=(-Xms64m "-Xmx$heap" -XX:+ExitOnOutOfMemoryError)
	check_jit
	if [[ "${HOOKSTREAM_KAFKA_JIT:-quick}" == quick ]]; then
		jvm+=(-XX:TieredStopAtLevel=1)
	fi
	jvm+=(-Djava.awt.headless=true "-Dlog4j2.configurationFile=$DIR/log4j2.xml" "-Dkafka.logs.dir=$nd")
	if [[ -n "${HOOKSTREAM_KAFKA_JAVA_OPTS:-}" ]]; then
		local -a more
		read -r -a more <<<"$HOOKSTREAM_KAFKA_JAVA_OPTS"
		jvm+=("${more[@]}")
	fi
	printf '\n===== kafka.sh: starting node %s at %s =====\n' "$n" "$(date -Is)" >>"$nd/server.log"
	# bash writes its own pid, then execs java: the pid file holds the JVM's
	# pid whether or not setsid had to fork.
	# shellcheck disable=SC2016
	setsid bash -c 'printf "%s\n" "$$" >"$1.tmp" && mv "$1.tmp" "$1" && shift && exec "$@"' _ "$nd/pid" \
		"$JAVA_BIN" "${jvm[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$nd/server.properties" \
		>>"$nd/server.log" 2>&1 </dev/null 8>&- 9>&- &
	disown # no "Killed" job notice if this script stops it
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "$nd/pid" ]] && return 0
		sleep 0.05
	done
	die "node $n did not record its pid in $nd/pid"
}

tail_logs() {
	local n nd
	for n in "$@"; do
		nd="$(node_dir "$n")"
		log "----- last 50 lines of $nd/server.log -----"
		tail -n 50 "$nd/server.log" >&2 || true
	done
}

# new_log N prints what node N logged since its last launch.
new_log() {
	local nd off
	nd="$(node_dir "$1")"
	off="$(cat "$nd/log.offset" 2>/dev/null || echo 0)"
	tail -c "+$((off + 1))" "$nd/server.log" 2>/dev/null || true
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready N...: waits until every listed node logged that it started and
# accepts connections. Returns 0 when all serve, 1 on timeout or death, 2 when
# a node could not bind its port (the caller may retry with other ports).
WAIT_FAILED=""
wait_ready() {
	local deadline n nd pid
	local -a pending=("$@")
	deadline=$(($(now) + START_TIMEOUT))
	WAIT_FAILED=""
	while ((${#pending[@]} > 0)); do
		local -a still=()
		for n in "${pending[@]}"; do
			nd="$(node_dir "$n")"
			pid="$(cat "$nd/pid" 2>/dev/null || true)"
			if [[ -z "$pid" ]] || ! is_alive "$pid"; then
				WAIT_FAILED="$n"
				if new_log "$n" | grep -E 'BindException|Address already in use' >/dev/null; then
					log "node $n could not bind its port"
					return 2
				fi
				log "node $n exited during startup"
				return 1
			fi
			if new_log "$n" | grep -F "$READY_PATTERN" >/dev/null && port_open "$(cat "$nd/port")"; then
				continue
			fi
			still+=("$n")
		done
		if ((${#still[@]} == 0)); then
			return 0
		fi
		pending=("${still[@]}")
		if (($(now) >= deadline)); then
			WAIT_FAILED="${pending[*]}"
			log "timed out after ${START_TIMEOUT}s waiting for node(s) ${pending[*]} to serve"
			return 1
		fi
		sleep 0.2
	done
	return 0
}

# stop_nodes SIGNAL N...: signals the listed nodes and waits for them to exit;
# after STOP_TIMEOUT seconds (TERM only) escalates to SIGKILL.
stop_nodes() {
	local sig="$1" n pid deadline
	shift
	local -a pids=()
	for n in "$@"; do
		pid="$(node_pid "$n")"
		if [[ -z "$pid" ]]; then
			log "node $n is not running"
			rm -f "$(node_dir "$n")/pid"
			continue
		fi
		log "sending SIG$sig to node $n (pid $pid)"
		kill "-$sig" "$pid" 2>/dev/null || true
		pids+=("$n:$pid")
	done
	deadline=$(($(now) + STOP_TIMEOUT))
	[[ "$sig" == KILL ]] && deadline=$(($(now) + 10))
	local killed=0 entry
	while :; do
		local -a alive=()
		for entry in "${pids[@]}"; do
			is_alive "${entry#*:}" && alive+=("$entry")
		done
		((${#alive[@]} == 0)) && break
		if (($(now) >= deadline)); then
			if ((killed == 0)) && [[ "$sig" != KILL ]]; then
				for entry in "${alive[@]}"; do
					log "node ${entry%%:*} (pid ${entry#*:}) still running after ${STOP_TIMEOUT}s, sending SIGKILL"
					kill -KILL "${entry#*:}" 2>/dev/null || true
				done
				killed=1
				deadline=$(($(now) + 10))
			else
				die "could not stop: ${alive[*]}"
			fi
		fi
		sleep 0.1
	done
	for entry in "${pids[@]}"; do
		rm -f "$(node_dir "${entry%%:*}")/pid"
		# Reap it if it is our own child (start failing part-way).
		wait "${entry#*:}" 2>/dev/null || true
	done
}

stop_watcher() {
	local pid
	[[ -f "$DIR/watcher.pid" ]] || return 0
	pid="$(cat "$DIR/watcher.pid")"
	rm -f "$DIR/watcher.pid"
	if [[ "$pid" =~ ^[0-9]+$ ]] && is_alive "$pid" &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F -- "_watch --dir $DIR " >/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
}

start_watcher() {
	stop_watcher
	setsid bash "$SCRIPT_PATH" _watch --dir "$DIR" --owner-pid "$OWNER_PID" \
		>>"$DIR/watcher.log" 2>&1 </dev/null 8>&- 9>&- &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "$DIR/watcher.pid" ]] && return 0
		sleep 0.05
	done
	log "warning: the owner watcher did not start; the cluster will not be stopped if pid $OWNER_PID dies"
}

require_node() {
	[[ -n "$NODE" ]] || die "--node N is required"
	[[ -f "$(node_dir "$NODE")/server.properties" ]] || die "node $NODE has no config in $DIR"
}

# ---------------------------------------------------------------------------
# Commands

cmd_start() {
	parse_opts "$@"
	check_jit
	if [[ -n "$NODES" && "$NODES" != 1 && "$NODES" != 3 ]]; then
		die "--nodes must be 1 or 3, got '$NODES'"
	fi
	abs_dir create
	lock_dir
	ensure_fetched

	local -a nodes=()
	local n resumed=0
	mapfile -t nodes < <(existing_nodes)
	if ((${#nodes[@]} > 0)) && [[ -f "$DIR/cluster.id" ]]; then
		[[ -z "$NODES" || "$NODES" == "${#nodes[@]}" ]] ||
			die "$DIR already holds a ${#nodes[@]}-node cluster (asked for --nodes $NODES)"
		for n in "${nodes[@]}"; do
			[[ -z "$(node_pid "$n")" ]] || die "node $n in $DIR is already running (pid $(node_pid "$n"))"
		done
		resumed=1
		log "starting the existing ${#nodes[@]}-node cluster in $DIR"
	else
		NODES="${NODES:-1}"
		rm -rf "$DIR"/node-* "$DIR/cluster.id" "$DIR/bootstrap" "$DIR/nodes"
		mapfile -t nodes < <(seq 1 "$NODES")
	fi
	cp "$LOG4J2_XML" "$DIR/log4j2.xml"

	local t0 attempt rc=1 count="${#nodes[@]}"
	t0="$(now)"
	for attempt in 1 2 3; do
		if ((resumed == 0)); then
			local -a ports
			read -r -a ports <<<"$(pick_ports $((2 * count)))"
			((${#ports[@]} == 2 * count)) || die "could not pick free ports"
			local voters="" id
			for n in "${nodes[@]}"; do
				mkdir -p "$(node_dir "$n")"
				printf '%s\n' "${ports[$((2 * (n - 1)))]}" >"$(node_dir "$n")/port"
				printf '%s\n' "${ports[$((2 * (n - 1) + 1))]}" >"$(node_dir "$n")/controller_port"
				if ((count == 1)); then
					voters="127.0.0.1:${ports[1]}"
				else
					voters+="${voters:+,}$n@127.0.0.1:${ports[$((2 * (n - 1) + 1))]}"
				fi
			done
			for n in "${nodes[@]}"; do write_config "$n" "$count" "$voters"; done
			id="$(new_cluster_id)"
			format_nodes "$id" "$count"
			printf '%s\n' "$id" >"$DIR/cluster.id"
		fi
		for n in "${nodes[@]}"; do launch_node "$n"; done
		log "launched ${count} node(s) in $DIR, waiting up to ${START_TIMEOUT}s for them to serve"
		rc=0
		wait_ready "${nodes[@]}" || rc=$?
		((rc == 0)) && break
		tail_logs "${nodes[@]}"
		stop_nodes KILL "${nodes[@]}"
		if ((rc == 2 && resumed == 0 && attempt < 3)); then
			log "retrying with other ports (attempt $((attempt + 1)) of 3)"
			rm -rf "$DIR"/node-* "$DIR/cluster.id"
			continue
		fi
		break
	done
	if ((rc != 0)); then
		write_nodes_file 2>/dev/null || true
		die "Kafka did not start (node(s) ${WAIT_FAILED:-?}); logs are in $DIR/node-*/server.log"
	fi

	local bootstrap=""
	for n in "${nodes[@]}"; do
		bootstrap+="${bootstrap:+,}127.0.0.1:$(cat "$(node_dir "$n")/port")"
	done
	printf '%s\n' "$bootstrap" >"$DIR/bootstrap"
	write_nodes_file
	if [[ -n "$OWNER_PID" ]]; then start_watcher; fi
	log "Kafka $KAFKA_VERSION serving on $bootstrap after $(($(now) - t0))s (logs: $DIR/node-*/server.log)"
	printf '%s\n' "$bootstrap"
}

cmd_stop() {
	parse_opts "$@"
	abs_dir
	lock_dir
	local -a nodes=()
	if [[ -n "$NODE" ]]; then
		require_node
		nodes=("$NODE")
	else
		stop_watcher
		mapfile -t nodes < <(existing_nodes)
	fi
	((${#nodes[@]} > 0)) || {
		log "no nodes in $DIR"
		return 0
	}
	stop_nodes TERM "${nodes[@]}"
	write_nodes_file
}

cmd_kill() {
	parse_opts "$@"
	abs_dir
	lock_dir
	require_node
	stop_nodes KILL "$NODE"
	write_nodes_file
}

cmd_restart_node() {
	parse_opts "$@"
	abs_dir
	lock_dir
	require_node
	[[ -z "$(node_pid "$NODE")" ]] || die "node $NODE is already running (pid $(node_pid "$NODE"))"
	ensure_fetched
	[[ -f "$DIR/log4j2.xml" ]] || cp "$LOG4J2_XML" "$DIR/log4j2.xml"
	local t0 rc=0
	t0="$(now)"
	launch_node "$NODE"
	wait_ready "$NODE" || rc=$?
	if ((rc != 0)); then
		tail_logs "$NODE"
		stop_nodes KILL "$NODE"
		write_nodes_file
		die "node $NODE did not start again"
	fi
	write_nodes_file
	log "node $NODE serving on 127.0.0.1:$(cat "$(node_dir "$NODE")/port") after $(($(now) - t0))s"
}

cmd_status() {
	parse_opts "$@"
	abs_dir
	local n pid all=0 any=0
	for n in $(existing_nodes); do
		any=1
		pid="$(node_pid "$n")"
		if [[ -n "$pid" ]]; then
			printf 'node %s 127.0.0.1:%s pid %s running\n' "$n" "$(cat "$(node_dir "$n")/port")" "$pid"
		else
			printf 'node %s 127.0.0.1:%s stopped\n' "$n" "$(cat "$(node_dir "$n")/port")"
			all=3
		fi
	done
	((any == 1)) || {
		log "no Kafka nodes in $DIR"
		return 3
	}
	[[ -f "$DIR/bootstrap" ]] && printf 'bootstrap %s\n' "$(cat "$DIR/bootstrap")"
	return "$all"
}

# _watch (internal): stops the cluster once the owner process is gone.
cmd_watch() {
	parse_opts "$@"
	abs_dir
	[[ -n "$OWNER_PID" ]] || die "_watch needs --owner-pid"
	trap 'exit 0' TERM
	printf '%s\n' "$$" >"$DIR/watcher.pid.tmp"
	mv "$DIR/watcher.pid.tmp" "$DIR/watcher.pid"
	log "watching owner pid $OWNER_PID for $DIR"
	while is_alive "$OWNER_PID" && [[ -d "$DIR" && -f "$DIR/watcher.pid" ]]; do
		sleep 2
	done
	[[ -f "$DIR/watcher.pid" ]] || exit 0 # stopped by `stop`
	rm -f "$DIR/watcher.pid"
	log "owner process $OWNER_PID is gone; stopping the cluster in $DIR"
	exec bash "$SCRIPT_PATH" stop --dir "$DIR"
}

main() {
	[[ $# -ge 1 ]] || {
		usage
		exit 2
	}
	local cmd="$1"
	shift
	case "$cmd" in
	fetch) cmd_fetch "$@" ;;
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	kill) cmd_kill "$@" ;;
	restart-node) cmd_restart_node "$@" ;;
	status) cmd_status "$@" ;;
	_watch) cmd_watch "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage
		die "unknown command '$cmd'"
		;;
	esac
}

main "$@"
