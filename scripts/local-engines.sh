#!/bin/sh
# Start or stop a Spark standalone cluster (master + one worker) or a Spark Connect
# server on this machine, from the pyspark package custseg is installed with.
#
#   sh scripts/local-engines.sh standalone start   # prints spark://127.0.0.1:7077
#   custseg run --input data/raw --master spark://127.0.0.1:7077
#   sh scripts/local-engines.sh standalone stop
#
#   sh scripts/local-engines.sh connect start      # prints sc://127.0.0.1:15002
#   custseg run --input data/raw --remote sc://127.0.0.1:15002
#   sh scripts/local-engines.sh connect stop
#
# Environment: PYTHON (default .venv/bin/python), SPARK_MASTER_PORT (7077),
# SPARK_CONNECT_PORT (15002), WORKER_CORES (1), WORKER_MEMORY (1g),
# ENGINES_DIR (.engines: logs and pid files).
set -eu
PYTHON=${PYTHON:-.venv/bin/python}
SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
ENGINES_DIR=${ENGINES_DIR:-.engines}
MASTER_PORT=${SPARK_MASTER_PORT:-7077}
CONNECT_PORT=${SPARK_CONNECT_PORT:-15002}
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"
mkdir -p "$ENGINES_DIR"

launch() {  # name, command...: run in its own session, remember the pid
    name=$1; shift
    if [ -f "$ENGINES_DIR/$name.pid" ] && kill -0 "$(cat "$ENGINES_DIR/$name.pid")" 2>/dev/null; then
        echo "$name already running (pid $(cat "$ENGINES_DIR/$name.pid"))"; return
    fi
    setsid "$@" >"$ENGINES_DIR/$name.log" 2>&1 &
    echo $! >"$ENGINES_DIR/$name.pid"
}

halt() {  # name: TERM the process group, then KILL it
    pidfile="$ENGINES_DIR/$1.pid"
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill -TERM "-$pid" 2>/dev/null || true
    sleep 3
    kill -KILL "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "stopped $1"
}

case "${1:-}/${2:-}" in
standalone/start)
    launch master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
        --host 127.0.0.1 --port "$MASTER_PORT" --webui-port 0
    sleep 5
    mkdir -p "$ENGINES_DIR/work"
    launch worker "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        "spark://127.0.0.1:$MASTER_PORT" --host 127.0.0.1 --cores "${WORKER_CORES:-1}" \
        --memory "${WORKER_MEMORY:-1g}" --webui-port 0 --work-dir "$ENGINES_DIR/work"
    echo "spark://127.0.0.1:$MASTER_PORT  (logs in $ENGINES_DIR)" ;;
standalone/stop)
    halt worker; halt master ;;
connect/start)
    SPARK_NO_DAEMONIZE=1 SPARK_LOG_DIR="$ENGINES_DIR" SPARK_PID_DIR="$ENGINES_DIR" \
        launch connect "$SPARK_HOME/sbin/start-connect-server.sh" --master "local[*]" \
        --conf "spark.connect.grpc.binding.port=$CONNECT_PORT" \
        --conf spark.connect.grpc.binding.address=127.0.0.1 --conf spark.sql.session.timeZone=UTC
    echo "sc://127.0.0.1:$CONNECT_PORT  (logs in $ENGINES_DIR)" ;;
connect/stop)
    halt connect ;;
*)
    echo "usage: $0 standalone|connect start|stop" >&2; exit 2 ;;
esac
