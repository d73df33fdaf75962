#!/usr/bin/env bash
# Airflow for ktrec as users run it: `infra/airflow.sh init|start|stop|status`.
#   init   create the Postgres database if missing, migrate it, create the `gpu` pool, generate secrets
#   start  start api-server, scheduler and dag-processor, each in its own process group (add `triggerer`
#          to SERVICES when a DAG uses deferrable operators; ktrec's do not), and with the CeleryExecutor
#          one Celery worker per KTREC_CELERY_WORKERS entry (name=queues)
#   stop   stop every process group `start` recorded
# Settings: infra/airflow-servers.env (or AIRFLOW_ENV_FILE), overridable by the caller's environment;
# KTREC_AIRFLOW_PROFILE=celery adds infra/airflow-celery.env on top (CeleryExecutor, Redis broker, 2 workers).
# AIRFLOW_HOME defaults to $KTREC_HOME/airflow. Logs and pid files live under $AIRFLOW_HOME/run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_FILE=${AIRFLOW_ENV_FILE:-$ROOT/infra/airflow-servers.env}

# The files give defaults; variables already set by the caller win, then the profile's file, then the base.
load_env() {
  while IFS='=' read -r key value; do
    [[ -z "$key" || "$key" == \#* ]] && continue
    if [[ -z "${!key:-}" ]]; then export "$key=$value"; fi
  done < "$1"
}
[[ -n "${KTREC_AIRFLOW_PROFILE:-}" ]] && load_env "$ROOT/infra/airflow-$KTREC_AIRFLOW_PROFILE.env"
load_env "$ENV_FILE"

export AIRFLOW_HOME=${AIRFLOW_HOME:-${KTREC_HOME:-$ROOT/.ktrec}/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}
export AIRFLOW__API__BASE_URL=${AIRFLOW__API__BASE_URL:-http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$AIRFLOW__API__BASE_URL/execution/}
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if [[ "$AIRFLOW__CORE__EXECUTOR" == CeleryExecutor ]]; then
  # Results and task state on the metadata Postgres, same driver (SQLAlchemy 2.1's default for a bare
  # postgresql:// is psycopg 3, which is not installed); the broker is the local Redis.
  export AIRFLOW__CELERY__RESULT_BACKEND=${AIRFLOW__CELERY__RESULT_BACKEND:-db+$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}
fi
RUN=$AIRFLOW_HOME/run
SERVICES=(api-server scheduler dag-processor)
mkdir -p "$RUN"

start_workers() {
  [[ "$AIRFLOW__CORE__EXECUTOR" == CeleryExecutor ]] || return 0
  for spec in ${KTREC_CELERY_WORKERS:-default=default}; do
    local name=${spec%%=*} queues=${spec#*=}
    # One worker per name; --skip-serve-logs: workers share this disk with the api-server, which reads the
    # logs there (a log server per worker would listen on every interface and clash on one port).
    KTREC_WORKER_NAME=$name setsid airflow celery worker --queues "$queues" --celery-hostname "$name@%h" \
      --concurrency "${KTREC_CELERY_CONCURRENCY:-1}" --skip-serve-logs >"$RUN/worker-$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/worker-$name.pid"
  done
}

load_secrets() {
  # Every service must share the JWT secret (tasks authenticate to the API with it).
  [[ -s "$AIRFLOW_HOME/secrets.env" ]] || {
    umask 077
    printf 'AIRFLOW__API_AUTH__JWT_SECRET=%s\nAIRFLOW__API__SECRET_KEY=%s\n' \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" \
      "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" > "$AIRFLOW_HOME/secrets.env"
  }
  set -a; source "$AIRFLOW_HOME/secrets.env"; set +a
}

create_database() {
  local url=$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  [[ "$url" == postgresql* ]] || return 0
  local db=${url##*/}; db=${db%%\?*}
  local hostport=${url#*@}; hostport=${hostport%%/*}
  local host=${hostport%%:*} port=${hostport##*:}
  if ! psql -h "$host" -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    createdb -h "$host" -p "$port" -U postgres "$db"
  fi
}

case "${1:-}" in
  init)
    load_secrets
    create_database
    airflow db migrate >"$RUN/migrate.log" 2>&1 || { tail -20 "$RUN/migrate.log" >&2; exit 1; }
    airflow pools set gpu "${KTREC_GPU_POOL_SLOTS:-1}" "Profile generation and training (1 slot per GPU)" >/dev/null
    echo "airflow initialised in $AIRFLOW_HOME ($AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
    ;;
  start)
    load_secrets
    for service in "${SERVICES[@]}"; do
      args=()
      # LocalExecutor logs are on this disk and the api-server reads them there; the scheduler's log
      # server would listen on every interface, so it stays off.
      [[ "$service" == scheduler ]] && args=(--skip-serve-logs)
      setsid airflow "$service" "${args[@]}" >"$RUN/$service.log" 2>&1 < /dev/null &
      echo $! > "$RUN/$service.pid"
    done
    start_workers
    echo "started ${SERVICES[*]} ($AIRFLOW__CORE__EXECUTOR); UI at $AIRFLOW__API__BASE_URL (user admin, password in" \
         "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
    ;;
  stop)
    for pidfile in "$RUN"/*.pid; do
      [[ -f "$pidfile" ]] || continue
      pgid=$(cat "$pidfile")
      kill -TERM -- "-$pgid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pgid" 2>/dev/null || true
      rm -f "$pidfile"
    done
    ;;
  status)
    for pidfile in "$RUN"/*.pid; do
      [[ -f "$pidfile" ]] || continue
      service=$(basename "$pidfile" .pid)
      if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$service running"; else echo "$service stopped"; fi
    done
    ;;
  *) echo "usage: $0 init|start|stop|status" >&2; exit 2 ;;
esac
