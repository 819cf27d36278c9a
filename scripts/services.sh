#!/usr/bin/env bash
# Starts, stops and reports the console's backing services without Docker:
# a private PostgreSQL cluster, a private Redis and a single-node Apache Kafka
# broker in KRaft mode. Each service is skipped when the user points the
# matching variable (DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS) at a
# server of their own. Everything lives under .run/ and listens on 127.0.0.1.
#
#   scripts/services.sh up      start what is not running, wait until ready
#   scripts/services.sh down    stop what this script started
#   scripts/services.sh status  one line per service
#   scripts/services.sh stop NAME   stop one service (postgres|redis|kafka), wait until it is gone
#   scripts/services.sh start NAME  start one service, wait until ready (as `up` does)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

# Service URLs the user put in .env count as set (the environment still wins).
if [ -f "$ROOT/.env" ]; then
  while IFS='=' read -r key value; do
    case "$key" in
      DATABASE_URL|REDIS_URL|KAFKA_BOOTSTRAP_SERVERS) [ -n "${!key:-}" ] || export "$key=$value" ;;
    esac
  done <"$ROOT/.env"
fi

PG_PORT="${CONSOLE_PG_PORT:-55432}"
REDIS_PORT="${CONSOLE_REDIS_PORT:-56379}"
KAFKA_PORT="${CONSOLE_KAFKA_PORT:-59092}"
KAFKA_CONTROLLER_PORT="${CONSOLE_KAFKA_CONTROLLER_PORT:-59093}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml")"
KAFKA_LIBS="${CONSOLE_KAFKA_CACHE:-$HOME/.cache/console-kafka}/$KAFKA_VERSION/libs"

PRIVATE_DATABASE_URL="postgres://console:console@127.0.0.1:$PG_PORT/console"
PRIVATE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
PRIVATE_KAFKA="127.0.0.1:$KAFKA_PORT"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $* with apt-get"
  if [ ! -f "$RUN/.apt-updated" ]; then
    as_root apt-get update -qq >/dev/null || die "apt-get update failed"
    mkdir -p "$RUN" && touch "$RUN/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# A service is ours to manage when its variable is unset or names our port.
managed() { local var="$1" private="$2"; [ -z "${!var:-}" ] || [ "${!var}" = "$private" ]; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not become ready within ${seconds}s"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  return 1
}

pg_user_run() {  # PostgreSQL refuses to run as root: use the postgres account.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
  if ! managed DATABASE_URL "$PRIVATE_DATABASE_URL"; then
    log "postgres: using DATABASE_URL from the environment"; return
  fi
  local bin; bin="$(pg_bin)" || { apt_install postgresql; bin="$(pg_bin)"; }
  local data="$RUN/pg/data" sock="$RUN/pg/sock"
  if [ ! -s "$data/PG_VERSION" ]; then
    log "postgres: initialising a private cluster in $data"
    mkdir -p "$data" "$sock"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$RUN/pg"
    pg_user_run "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
fsync = on
synchronous_commit = on
shared_buffers = 256MB
max_connections = 200
max_wal_size = 2GB
EOF
  fi
  if pg_user_run "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    port_open "$PG_PORT" && die "port $PG_PORT is taken by another program; set CONSOLE_PG_PORT"
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    pg_user_run "$bin/pg_ctl" -D "$data" -l "$RUN/pg/postgres.log" -w -t 60 start >/dev/null
  fi
  wait_for 60 postgres "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ -z "$("${psql[@]}" -c "select 1 from pg_roles where rolname='console'")" ]; then
    "${psql[@]}" -c "create role console login superuser password 'console'" >/dev/null
  fi
  if [ -z "$("${psql[@]}" -c "select 1 from pg_database where datname='console'")" ]; then
    "${psql[@]}" -c "create database console owner console" >/dev/null
  fi
}

pg_down() {
  local bin data="$RUN/pg/data"
  bin="$(pg_bin)" || return 0
  [ -s "$data/PG_VERSION" ] || return 0
  if pg_user_run "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "postgres: stopping"
    pg_user_run "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

# --------------------------------------------------------------------- Redis
redis_up() {
  if ! managed REDIS_URL "$PRIVATE_REDIS_URL"; then
    log "redis: using REDIS_URL from the environment"; return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$RUN/redis"
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    log "redis: already running on 127.0.0.1:$REDIS_PORT"; return
  fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another program; set CONSOLE_REDIS_PORT"
  log "redis: starting on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN/redis" \
    --daemonize yes --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" \
    --appendonly yes --save "" >/dev/null
  wait_for 30 redis sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG"
}

redis_down() {
  if [ -f "$RUN/redis/redis.pid" ] && kill -0 "$(cat "$RUN/redis/redis.pid")" 2>/dev/null; then
    log "redis: stopping"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$RUN/redis/redis.pid")"
  fi
  rm -f "$RUN/redis/redis.pid"
}

# --------------------------------------------------------------------- Kafka
java_ok() { command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; }

kafka_jars() {
  if [ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then return; fi
  command -v mvn >/dev/null || apt_install maven
  log "kafka: fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" >"$RUN/maven.log" 2>&1 || die "could not resolve the Kafka jars with Maven"
}

kafka_pid() { [ -f "$RUN/kafka/kafka.pid" ] && kill -0 "$(cat "$RUN/kafka/kafka.pid")" 2>/dev/null && cat "$RUN/kafka/kafka.pid"; }

kafka_ready() {
  "$PY" - "$PRIVATE_KAFKA" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=3)
EOF
}

kafka_up() {
  if ! managed KAFKA_BOOTSTRAP_SERVERS "$PRIVATE_KAFKA"; then
    log "kafka: using KAFKA_BOOTSTRAP_SERVERS from the environment"; return
  fi
  java_ok || apt_install openjdk-17-jre-headless
  kafka_jars
  local dir="$RUN/kafka" props="$RUN/kafka/server.properties"
  mkdir -p "$dir"
  if kafka_pid >/dev/null; then
    log "kafka: already running on $PRIVATE_KAFKA"
  else
    port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another program; set CONSOLE_KAFKA_PORT"
    cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
    local cp="$KAFKA_LIBS/*"
    if [ ! -f "$dir/data/meta.properties" ]; then
      local cluster_id
      cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
      log "kafka: formatting KRaft storage (cluster $cluster_id)"
      java -cp "$cp" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" >"$dir/format.log" 2>&1 \
        || { cat "$dir/format.log" >&2; die "kafka storage format failed"; }
    fi
    log "kafka: starting Apache Kafka $KAFKA_VERSION (KRaft) on $PRIVATE_KAFKA"
    # Every partition holds several open files: raise the limit as far as allowed.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
      -cp "$cp" kafka.Kafka "$props" >"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
  fi
  wait_for 120 kafka kafka_ready || true
  kafka_ready || { tail -n 30 "$dir/kafka.log" >&2; die "kafka did not become ready"; }
}

kafka_down() {
  local pid
  if pid="$(kafka_pid)"; then
    log "kafka: stopping"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/kafka/kafka.pid"
}

status() {
  local bin; bin="$(pg_bin 2>/dev/null || true)"
  if [ -n "$bin" ] && "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1; then
    echo "postgres  up    127.0.0.1:$PG_PORT"; else echo "postgres  down  127.0.0.1:$PG_PORT"; fi
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    echo "redis     up    127.0.0.1:$REDIS_PORT"; else echo "redis     down  127.0.0.1:$REDIS_PORT"; fi
  if kafka_pid >/dev/null && kafka_ready >/dev/null 2>&1; then
    echo "kafka     up    $PRIVATE_KAFKA"; else echo "kafka     down  $PRIVATE_KAFKA"; fi
}

# ------------------------------------------------- one service (fault injection)
check_name() {
  case "${1:-}" in
    postgres|redis|kafka) ;;
    *) echo "usage: $0 stop|start postgres|redis|kafka" >&2; exit 2 ;;
  esac
}

wait_closed() {  # wait_closed SECONDS PORT: until nothing listens on PORT
  local deadline=$((SECONDS + $1))
  while port_open "$2"; do
    [ $SECONDS -lt $deadline ] || die "port $2 is still open after ${1}s"
    sleep 0.2
  done
}

stop_one() {
  check_name "$@"
  case "$1" in
    postgres) pg_down; wait_closed 60 "$PG_PORT" ;;
    redis)
      local pid=""
      [ -f "$RUN/redis/redis.pid" ] && pid="$(cat "$RUN/redis/redis.pid")"
      redis_down
      if [ -n "$pid" ]; then
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      wait_closed 30 "$REDIS_PORT" ;;
    kafka) kafka_down; wait_closed 60 "$KAFKA_PORT" ;;
  esac
  log "$1: stopped"
}

start_one() {
  check_name "$@"
  mkdir -p "$RUN"
  case "$1" in
    postgres) pg_up ;;
    redis) redis_up ;;
    kafka) kafka_up ;;
  esac
  log "$1: ready"
}

case "${1:-}" in
  stop) stop_one "${2:-}" ;;
  start) start_one "${2:-}" ;;
  up) mkdir -p "$RUN"; pg_up; redis_up; kafka_up; log "all services ready" ;;
  down) kafka_down; redis_down; pg_down ;;
  status) status ;;
  urls)
    echo "DATABASE_URL=${DATABASE_URL:-$PRIVATE_DATABASE_URL}"
    echo "REDIS_URL=${REDIS_URL:-$PRIVATE_REDIS_URL}"
    echo "KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$PRIVATE_KAFKA}" ;;
  *) echo "usage: $0 up|down|status|urls|stop NAME|start NAME" >&2; exit 2 ;;
esac
