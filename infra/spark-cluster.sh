#!/usr/bin/env bash
# A Spark standalone cluster (one master, N workers) on 127.0.0.1, from the pip-installed pyspark.
#
#   infra/spark-cluster.sh start [N_WORKERS=2]   start master + workers, wait until registered
#   infra/spark-cluster.sh stop                  TERM the recorded pids, KILL after STOP_TIMEOUT s
#   infra/spark-cluster.sh status                each recorded process and whether it is alive
#   infra/spark-cluster.sh kill-worker I         SIGKILL worker I (fault injection)
#   infra/spark-cluster.sh url                   the master URL (spark://127.0.0.1:PORT)
#
# Environment (defaults in brackets):
#   VENV [<repo>/.venv]  LAKEWATCH_CLUSTER_DIR [<repo>/.cache/cluster]
#   MASTER_PORT [7077]  MASTER_UI_PORT [8081]  WORKER_UI_PORT [8091: worker I gets WORKER_UI_PORT+I-1]
#   WORKER_CORES [1]  WORKER_MEMORY [1g]  SPARK_DAEMON_MEMORY [512m]
#   START_TIMEOUT [60]  STOP_TIMEOUT [15]
#
# Processes are only ever found through the pid files in the state dir: never by name.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
STATE="${LAKEWATCH_CLUSTER_DIR:-$REPO/.cache/cluster}"
HOST=127.0.0.1
MASTER_PORT="${MASTER_PORT:-7077}"
MASTER_UI_PORT="${MASTER_UI_PORT:-8081}"
WORKER_UI_PORT="${WORKER_UI_PORT:-8091}"
WORKER_CORES="${WORKER_CORES:-1}"
WORKER_MEMORY="${WORKER_MEMORY:-1g}"
START_TIMEOUT="${START_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-15}"

LOGS="$STATE/logs"
PIDS="$STATE/pids"

die() { echo "spark-cluster: $*" >&2; exit 1; }

# True when the recorded pid is alive and is still the Spark daemon we started (guards against pid reuse).
is_ours() {
    local pid="$1" class="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 0   # no procfs: trust kill -0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$class"
}

class_of() {  # pid-file name -> the Java main class it must run
    case "$1" in
        master) echo org.apache.spark.deploy.master.Master ;;
        worker-*) echo org.apache.spark.deploy.worker.Worker ;;
        *) echo "?" ;;
    esac
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

master_url() {
    if [[ -f "$STATE/master.url" ]]; then cat "$STATE/master.url"; else echo "spark://$HOST:$MASTER_PORT"; fi
}

pid_files() { compgen -G "$PIDS/*.pid" | sort -V || true; }

spark_env() {
    [[ -x "$VENV/bin/spark-class" ]] || die "no $VENV/bin/spark-class: run 'make setup' (or set VENV)"
    SPARK_HOME="$("$VENV/bin/python" -c 'import pyspark,os;print(os.path.dirname(pyspark.__file__))')"
    export SPARK_HOME
    export SPARK_LOCAL_IP="$HOST"
    export SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"
    # executors run the driver's Python (spark.pyspark.python); this only sets the default to the venv's
    export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$VENV/bin/python}"
    export SPARK_NO_DAEMONIZE=1
}

# wait_for NAME PATTERN: until the log has PATTERN; fails if the process dies or the timeout passes
wait_for() {
    local name="$1" pattern="$2" log="$LOGS/$1.log" pid deadline=$((SECONDS + START_TIMEOUT))
    pid="$(cat "$PIDS/$name.pid")"
    while ! grep -q -- "$pattern" "$log" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "spark-cluster: $name (pid $pid) exited before it was ready; last lines of $log:" >&2
            tail -n 40 "$log" >&2 || true
            return 1
        fi
        if (( SECONDS >= deadline )); then
            echo "spark-cluster: $name not ready after ${START_TIMEOUT}s; last lines of $log:" >&2
            tail -n 40 "$log" >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

launch() {  # launch NAME ARGS...: spark-class in the background, its own session, pid recorded
    local name="$1"; shift
    : >"$LOGS/$name.log"
    setsid "$VENV/bin/spark-class" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"   # spark-class execs java: this pid is the JVM's
}

cmd_start() {
    local n="${1:-2}" i t0=$SECONDS
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N_WORKERS must be a positive integer, got '$n'"
    mkdir -p "$LOGS" "$PIDS"
    local f
    for f in $(pid_files); do
        local name; name="$(basename "$f" .pid)"
        if is_ours "$(cat "$f")" "$(class_of "$name")"; then
            die "already running ($name, pid $(cat "$f")): '$0 stop' first"
        fi
        rm -f "$f"
    done
    port_in_use "$MASTER_PORT" && die "port $MASTER_PORT is in use: set MASTER_PORT"
    port_in_use "$MASTER_UI_PORT" && die "port $MASTER_UI_PORT is in use: set MASTER_UI_PORT"
    for ((i = 1; i <= n; i++)); do
        port_in_use $((WORKER_UI_PORT + i - 1)) && die "port $((WORKER_UI_PORT + i - 1)) is in use: set WORKER_UI_PORT"
    done
    spark_env

    local url="spark://$HOST:$MASTER_PORT"
    echo "$url" >"$STATE/master.url"
    launch master org.apache.spark.deploy.master.Master \
        --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
    wait_for master "New state: ALIVE" || { cmd_stop >&2; exit 1; }

    for ((i = 1; i <= n; i++)); do
        mkdir -p "$STATE/worker-$i/work"
        SPARK_WORKER_DIR="$STATE/worker-$i/work" launch "worker-$i" org.apache.spark.deploy.worker.Worker "$url" \
            --host "$HOST" --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" \
            --webui-port $((WORKER_UI_PORT + i - 1)) --work-dir "$STATE/worker-$i/work"
    done
    for ((i = 1; i <= n; i++)); do
        wait_for "worker-$i" "Successfully registered with master" || { cmd_stop >&2; exit 1; }
    done
    echo "spark-cluster: $url up with $n worker(s) x ${WORKER_CORES} core(s), ${WORKER_MEMORY} in $((SECONDS - t0))s" \
         "(master UI http://$HOST:$MASTER_UI_PORT, state $STATE)"
}

cmd_stop() {
    local f name pid class pending=()
    for f in $(pid_files); do
        name="$(basename "$f" .pid)"; pid="$(cat "$f")"; class="$(class_of "$name")"
        if is_ours "$pid" "$class"; then
            kill -TERM "$pid" 2>/dev/null || true
            pending+=("$name:$pid")
        fi
    done
    local deadline=$((SECONDS + STOP_TIMEOUT)) entry still
    while ((${#pending[@]})); do
        still=()
        for entry in "${pending[@]}"; do
            is_ours "${entry#*:}" "$(class_of "${entry%%:*}")" && still+=("$entry")
        done
        pending=(${still[@]+"${still[@]}"})
        ((${#pending[@]})) || break
        if (( SECONDS >= deadline )); then
            for entry in "${pending[@]}"; do
                echo "spark-cluster: ${entry%%:*} (pid ${entry#*:}) ignored TERM for ${STOP_TIMEOUT}s: KILL" >&2
                kill -KILL "${entry#*:}" 2>/dev/null || true
            done
            sleep 0.5
            break
        fi
        sleep 0.3
    done
    for f in $(pid_files); do rm -f "$f"; done
    rm -f "$STATE/master.url"
    echo "spark-cluster: stopped"
}

cmd_status() {
    local f name pid any=0 down=0
    echo "master $(master_url)"
    for f in $(pid_files); do
        any=1; name="$(basename "$f" .pid)"; pid="$(cat "$f")"
        if is_ours "$pid" "$(class_of "$name")"; then
            printf '%-10s pid %-8s running\n' "$name" "$pid"
        else
            printf '%-10s pid %-8s not running\n' "$name" "$pid"; down=1
        fi
    done
    ((any)) || { echo "no cluster recorded in $STATE"; return 3; }
    return $((down ? 1 : 0))
}

cmd_kill_worker() {
    local i="${1:-}" f
    [[ "$i" =~ ^[0-9]+$ ]] || die "usage: $0 kill-worker I"
    f="$PIDS/worker-$i.pid"
    [[ -f "$f" ]] || die "no worker $i recorded in $PIDS"
    local pid; pid="$(cat "$f")"
    is_ours "$pid" org.apache.spark.deploy.worker.Worker || die "worker $i (pid $pid) is not running"
    kill -KILL "$pid"
    echo "spark-cluster: killed worker-$i (pid $pid)"
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill-worker) shift; cmd_kill_worker "$@" ;;
    url) master_url ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
