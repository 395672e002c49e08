#!/usr/bin/env bash
# Interchange's own Prosody for the xmpp: transport (called by scripts/services.sh; idempotent).
# Installs Debian's prosody if missing, runs it with scripts/prosody/prosody.cfg.lua (loopback
# 127.0.0.1:5222, VirtualHost `localhost`, data in /var/lib/prosody-interchange), registers the test
# accounts, starts it if :5222 is closed and waits until it listens. Debian's own prosody service
# (/etc/prosody/prosody.cfg.lua) is left alone and not started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
config="$here/prosody.cfg.lua"
data=/var/lib/prosody-interchange
port=5222
# Test accounts: name and password (loopback only; the tests and benches use these).
accounts=(interchange:interchange-secret device-a:device-secret device-b:device-secret bench-a:bench-secret bench-b:bench-secret bench-c:bench-secret)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! command -v prosodyctl >/dev/null; then
  echo "prosody: installing Debian's prosody"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody
fi

mkdir -p "$data"
chown prosody:prosody "$data"
chmod 750 "$data"

ctl() { prosodyctl --config "$config" "$@"; }

for account in "${accounts[@]}"; do
  # register overwrites the password of an existing account: the same result every run
  ctl register "${account%%:*}" localhost "${account#*:}" >/dev/null
done

if port_open "$port"; then echo "prosody: up on :$port"; exit 0; fi
echo "prosody: down on :$port, starting it with $config"
ctl start >/dev/null 2>&1 || true
for _ in $(seq 1 60); do port_open "$port" && { echo "prosody: up on :$port"; exit 0; }; sleep 0.5; done
echo "prosody: did not come up on :$port (see $data/prosody.err)" >&2
exit 1
