#!/usr/bin/env bash
# What Redis itself spends per PUBLISH under the channel layouts a backplane could use,
# for three nodes: one channel for every room (what tinywss does), one channel per room
# (each room on one node, or on all three), and a pattern subscription. The subscribers
# are redis-cli processes writing to /dev/null; the figure is redis-server's CPU time
# (/proc/PID/stat, 10 ms ticks) divided by the PUBLISH count. Needs redis-server,
# redis-cli and redis-benchmark (Debian: redis-server, redis-tools). N=600000 by default.
set -euo pipefail
N=${N:-600000}
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >"$DIR/redis.log" 2>&1 &
REDIS=$!
SUBSCRIBERS=()
stop_subscribers() {
    for pid in "${SUBSCRIBERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    SUBSCRIBERS=()
    sleep 0.3
}
trap 'stop_subscribers; kill $REDIS 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$REDIS/stat"; }
subscribe() { # node, command, channels...
    redis-cli -p "$PORT" "${@:2}" >/dev/null &
    SUBSCRIBERS+=($!)
}
rooms() { # node (0-2) or "all": the 1000 room channels that node subscribes to
    python3 -c "import sys; k = sys.argv[1]; print(' '.join('t:room:%012d' % n for n in range(1000) if k == 'all' or n % 3 == int(k)))" "$1"
}
measure() { # name, channel (redis-benchmark replaces __rand_int__ with 0..999)
    sleep 0.5
    local before after
    before=$(cpu_ticks)
    redis-benchmark -p "$PORT" -n "$N" -c 4 -P 32 -r 1000 -q PUBLISH "$2" "$(head -c 48 /dev/zero | tr '\0' x)" >/dev/null
    after=$(cpu_ticks)
    printf '%-44s %s us per PUBLISH\n' "$1" "$(python3 -c "print(round(($after - $before) * 10000 / $N, 2))")"
    stop_subscribers
}

for node in 0 1 2; do subscribe $node SUBSCRIBE t:messages; done
measure "one channel, 3 nodes subscribed" t:messages
for node in 0 1 2; do subscribe $node PSUBSCRIBE 't:room:*'; done
measure "pattern t:room:*, 3 nodes" 't:room:__rand_int__'
for node in 0 1 2; do subscribe $node SUBSCRIBE $(rooms $node); done
measure "channel per room, each room on 1 node" 't:room:__rand_int__'
for node in 0 1 2; do subscribe $node SUBSCRIBE $(rooms all); done
measure "channel per room, every room on 3 nodes" 't:room:__rand_int__'
measure "no subscriber (the floor)" 't:room:__rand_int__'
