#!/usr/bin/env bash
# What `npm test` needs on this machine, started or installed if missing (CI runs it first: .ci/run).
# Services: RabbitMQ, Mosquitto, PostgreSQL, Redis, NATS — each started with the README's command if its
# port is closed; RabbitMQ's STOMP and AMQP 1.0 plugins enabled; ActiveMQ (Debian's activemq, instance
# `interchange` from scripts/activemq/activemq.xml: OpenWire 61616, STOMP 61623) installed and started. Tools: mosquitto_pub/_sub (MQTT interop tests), openssl (TLS tests), Debian's chromium
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

# RabbitMQ's STOMP (61613) and AMQP 1.0 (on 5672) plugins: enabled once, kept across restarts.
enabled=$(rabbitmq-plugins list -e -m 2>/dev/null || true)
if ! grep -qx rabbitmq_stomp <<<"$enabled" || ! grep -qx rabbitmq_amqp1_0 <<<"$enabled"; then
  echo "services: enabling RabbitMQ's rabbitmq_stomp and rabbitmq_amqp1_0 plugins"
  rabbitmq-plugins enable rabbitmq_stomp rabbitmq_amqp1_0
fi
ensure 'RabbitMQ STOMP' 61613 true

# ActiveMQ: Debian's package, our own instance (its config is this repository's).
if [ ! -x /etc/init.d/activemq ]; then
  echo "services: installing activemq"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq activemq
fi
instance=/etc/activemq/instances-enabled/interchange
if ! cmp -s scripts/activemq/activemq.xml "$instance/activemq.xml"; then
  mkdir -p "$instance"
  cp scripts/activemq/activemq.xml "$instance/activemq.xml"
  cp /etc/activemq/instances-available/main/log4j2.properties "$instance/log4j2.properties"
  if port_open 61616; then /etc/init.d/activemq restart; fi
fi
ensure ActiveMQ 61623 /etc/init.d/activemq start
bash scripts/prosody/setup.sh

missing=()
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
