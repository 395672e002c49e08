-- Interchange's own Prosody (Debian's prosody 0.12) for the xmpp: transport's tests and benches.
-- Started by scripts/prosody/setup.sh (`prosodyctl --config <this file> start`); see docs/transports/xmpp.md.
--
-- Loopback only: client-to-server on 127.0.0.1:5222, no server-to-server, no HTTP. Accounts are
-- registered by setup.sh (and by tests, with `prosodyctl --config … register`); in-band registration
-- is off. Authentication: internal_hashed, so SASL SCRAM-SHA-1 (the password never crosses the
-- wire); plaintext (PLAIN) authentication stays refused on the unencrypted loopback stream — there is
-- no TLS certificate here, c2s_require_encryption is off for that reason (loopback only).

-- Paths are absolute: this file is read in place from the repository. Data, log and pid live in a
-- directory of their own (owned by the prosody user), apart from Debian's default instance.
data_path = "/var/lib/prosody-interchange"
pidfile = "/var/lib/prosody-interchange/prosody.pid"
log = { info = "/var/lib/prosody-interchange/prosody.log"; error = "/var/lib/prosody-interchange/prosody.err" }
-- no certificates: nothing here speaks TLS (loopback only)
certificates = "/var/lib/prosody-interchange"

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { 5222 }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}

modules_enabled = {
  "roster";          -- clients ask for it; required by the presence logic
  "saslauth";        -- SCRAM-SHA-1 with internal_hashed
  "disco";
  "smacks";          -- XEP-0198 stream management: <a h=…/> acks confirm publishes; unacked stanzas of a dead session go to offline storage
  "ping";            -- XEP-0199: @xmpp/client answers, and may ask
  "posix";           -- daemonize and pidfile
  "admin_shell";     -- prosodyctl shell (admin socket in the data directory)
}
-- Auto-loaded modules we keep: c2s, presence, message, iq, offline (mod_offline: a message to an
-- account with no available session is stored and delivered at its next initial presence — a JID is a queue).
modules_disabled = { "s2s"; "carbons"; "limits"; "register"; "tls" }
-- mod_limits is not loaded: a test or bench burst is never throttled.
allow_registration = false

authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = false
s2s_require_encryption = false

-- Stanzas up to 256 KiB (the c2s default, said explicitly: the adapter's default maxStanzaBytes matches it).
c2s_stanza_size_limit = 256 * 1024
-- Stream management: resumable for 60 s after a broken link; a queue deep enough for a bench burst.
smacks_hibernation_time = 60
smacks_max_queue_size = 10000
smacks_max_unacked_stanzas = 0

VirtualHost "localhost"
