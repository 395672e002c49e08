#!/usr/bin/env bash
# What `npm test` needs on this machine, started or installed if missing (CI runs it first: .ci/run).
# Services: RabbitMQ, Mosquitto, PostgreSQL, Redis — each started with the README's command if its port
# is closed. Tools: mosquitto_pub/_sub (MQTT interop tests), openssl (TLS tests), Debian's chromium
# (the console's browser tests drive it with playwright-core; no browser is downloaded).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure() { # name port start-command...
  local name=$1 port=$2; shift 2
  if port_open "$port"; then echo "services: $name is up on :$port"; return; fi
  echo "services: $name is down on :$port, starting it: $*"
  "$@" || true
  for _ in $(seq 1 60); do port_open "$port" && { echo "services: $name is up on :$port"; return; }; sleep 1; done
  echo "services: $name did not come up on :$port" >&2
  exit 1
}

ensure RabbitMQ 5672 rabbitmq-server -detached
ensure Mosquitto 1883 mosquitto -d -c /etc/mosquitto/mosquitto.conf
ensure PostgreSQL 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start'
ensure Redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

missing=()
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
