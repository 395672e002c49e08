#!/usr/bin/env bash
# Interchange's own Prosody for the xmpp: transport (called by scripts/services.sh; idempotent).
# Installs Debian's prosody if missing, runs it with scripts/prosody/prosody.cfg.lua (loopback
# 127.0.0.1:5222, VirtualHost `localhost`, data in /var/lib/prosody-interchange), registers the test
# accounts, starts it unless it already listens on :5222 and waits until it listens. Debian's own
# prosody service (/etc/prosody/prosody.cfg.lua) must not hold :5222: it is kept from starting at
# install (policy-rc.d), and stopped and disabled if it runs (no systemd assumed: init.d/service, else
# its pid file). Whatever else holds :5222 is an error: this script never kills a foreign process.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
config="$here/prosody.cfg.lua"
data=/var/lib/prosody-interchange
port=5222
# Test accounts: name and password (loopback only; the tests and benches use these).
accounts=(interchange:interchange-secret device-a:device-secret device-b:device-secret bench-a:bench-secret bench-b:bench-secret bench-c:bench-secret)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
default_pidfile=/run/prosody/prosody.pid

# Debian's default instance (/etc/prosody, all interfaces): stopped and kept from starting at boot.
stop_default_instance() {
  local pid
  pid=$(cat "$default_pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "prosody: stopping Debian's default instance (pid $pid)"
    service prosody stop >/dev/null 2>&1 || invoke-rc.d prosody stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  update-rc.d prosody disable >/dev/null 2>&1 || true
}

# Our instance is the one listening on :$port: the pid in our data directory's pid file is alive and
# (where ss can tell) owns the listener.
ours_listening() {
  local pid
  pid=$(cat "$data/prosody.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if command -v ss >/dev/null && [ "$(id -u)" = 0 ]; then
    ss -ltnpH "sport = :$port" | grep -q "pid=$pid,"
  else
    port_open "$port"
  fi
}

if ! command -v prosodyctl >/dev/null; then
  echo "prosody: installing Debian's prosody"
  # without a policy-rc.d, installing starts Debian's default instance (listening on every interface)
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created_policy=1
  fi
  status=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody; } || status=$?
  if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$status" = 0 ] || exit "$status"
  stop_default_instance
fi

mkdir -p "$data"
chown prosody:prosody "$data"
chmod 750 "$data"

ctl() { prosodyctl --config "$config" "$@"; }

for account in "${accounts[@]}"; do
  # register overwrites the password of an existing account: the same result every run
  ctl register "${account%%:*}" localhost "${account#*:}" >/dev/null
done

if port_open "$port"; then
  if ours_listening; then echo "prosody: up on :$port"; exit 0; fi
  echo "prosody: :$port is held by another process than our instance ($data/prosody.pid)"
  stop_default_instance
  for _ in $(seq 1 20); do port_open "$port" || break; sleep 0.5; done
  if port_open "$port"; then
    echo "prosody: something else listens on :$port (not Debian's default instance): stop it, then run this again" >&2
    ss -ltnpH "sport = :$port" >&2 2>/dev/null || true
    exit 1
  fi
fi
echo "prosody: down on :$port, starting it with $config"
ctl start >/dev/null 2>&1 || true
for _ in $(seq 1 60); do port_open "$port" && { echo "prosody: up on :$port"; exit 0; }; sleep 0.5; done
echo "prosody: did not come up on :$port (see $data/prosody.err)" >&2
exit 1
