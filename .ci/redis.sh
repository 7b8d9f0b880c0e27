# .ci/redis.sh: sourced by .ci/run. Starts the Redis servers the redisstore
# tests run against, from Debian's redis-server (installed when missing):
#
#   a standalone server on 127.0.0.1:6390 (AOF on)   -> LIVECTX_REDIS_ADDR
#   a 3-master cluster on 127.0.0.1:7001-7003         -> LIVECTX_REDIS_CLUSTER
#   LIVECTX_REDIS_FAULTS=1: tests start redis-server processes of their own (faults, Sentinel)
#
# It works under set -euo pipefail. It defines livectx_redis_down, which stops what this script started and
# removes its files; call it from a trap. It never touches other servers
# (such as one on 6379).

livectx_redis_port=6390
livectx_redis_cluster_ports="7001 7002 7003"

livectx_redis_install() {
	if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
		return 0
	fi
	echo "redis.sh: installing redis-server" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

# livectx_redis_wait PORT: wait until the server on PORT answers PING.
livectx_redis_wait() {
	local i
	for i in $(seq 100); do
		if [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "redis.sh: no server answers on port $1" >&2
	return 1
}

# livectx_redis_start PORT DIR [ARGS...]: start a daemonized server.
livectx_redis_start() {
	local port=$1 dir=$2
	shift 2
	if redis-cli -p "$port" ping >/dev/null 2>&1; then
		echo "redis.sh: port $port is already taken" >&2
		return 1
	fi
	mkdir -p "$dir" &&
		redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
			--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' "$@" &&
		livectx_redis_wait "$port"
}

livectx_redis_up() {
	livectx_redis_install || return 1
	livectx_redis_dir=$(mktemp -d /tmp/livectx-redis.XXXXXX) || return 1
	livectx_redis_start "$livectx_redis_port" "$livectx_redis_dir/standalone" \
		--appendonly yes --appendfsync everysec || return 1
	local port addrs=""
	for port in $livectx_redis_cluster_ports; do
		livectx_redis_start "$port" "$livectx_redis_dir/cluster-$port" \
			--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
			--appendonly no || return 1
		addrs="$addrs 127.0.0.1:$port"
	done
	# shellcheck disable=SC2086 # addrs is a list
	redis-cli --cluster create $addrs --cluster-replicas 0 --cluster-yes >/dev/null || return 1
	local i info
	for i in $(seq 100); do
		info=$(redis-cli -p "${livectx_redis_cluster_ports%% *}" cluster info 2>/dev/null || true)
		if [[ $info == *cluster_state:ok* ]]; then
			export LIVECTX_REDIS_ADDR="127.0.0.1:$livectx_redis_port"
			export LIVECTX_REDIS_CLUSTER
			LIVECTX_REDIS_CLUSTER=$(echo $addrs | tr ' ' ,)
			export LIVECTX_REDIS_FAULTS=1
			return 0
		fi
		sleep 0.1
	done
	echo "redis.sh: the cluster never reached cluster_state:ok" >&2
	return 1
}

# livectx_redis_down stops the servers livectx_redis_up started (by the
# pids they wrote) and removes their files. Safe to call more than once.
livectx_redis_down() {
	[ -n "${livectx_redis_dir:-}" ] || return 0
	local pidfile pid
	for pidfile in "$livectx_redis_dir"/*/redis.pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
	rm -rf "$livectx_redis_dir"
	unset livectx_redis_dir LIVECTX_REDIS_ADDR LIVECTX_REDIS_CLUSTER LIVECTX_REDIS_FAULTS
}

if ! livectx_redis_up; then
	echo "redis.sh: could not start the Redis servers" >&2
	livectx_redis_down
	return 1 2>/dev/null || exit 1
fi
