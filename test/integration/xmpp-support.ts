import { execFileSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { XmppTransport } from '../../adapters/xmpp/index.ts';

/** The machine's Prosody, run with our own config by scripts/prosody/setup.sh (127.0.0.1:5222, VirtualHost localhost). */
export const XMPP_SERVICE = process.env.XMPP_URL ?? 'xmpp://127.0.0.1:5222';
export const XMPP_DOMAIN = 'localhost';
export const PROSODY_CONFIG = fileURLToPath(new URL('../../scripts/prosody/prosody.cfg.lua', import.meta.url));
/** Accounts setup.sh registers. */
export const PUBLISHER = { jid: 'interchange@localhost', password: 'interchange-secret' } as const;
/** The password of every account the tests register for themselves. */
export const TEST_PASSWORD = 'test-account-secret';

/** Names unique to this run (tag `hx`): parallel runs never share an account. */
export function runTag(label: string): string {
  return `hx-${label}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/** Registers `<name>@localhost` with `TEST_PASSWORD` (prosodyctl writes the account store; the running server sees it at once). Synchronous: ~70 ms. */
export function registerAccount(name: string, config: string = PROSODY_CONFIG): string {
  execFileSync('prosodyctl', ['--config', config, 'register', name, XMPP_DOMAIN, TEST_PASSWORD], { stdio: 'pipe' });
  return `${name}@${XMPP_DOMAIN}`;
}

/** Removes accounts registered by a test (their offline messages with them). */
export function deleteAccounts(jids: Iterable<string>, config: string = PROSODY_CONFIG): void {
  for (const jid of jids) execFileSync('prosodyctl', ['--config', config, 'deluser', jid], { stdio: 'pipe' });
}

/** A transport publishing as `interchange@localhost`; registered test accounts log in with `TEST_PASSWORD`. */
export function testTransport(options: Partial<ConstructorParameters<typeof XmppTransport>[0]> = {}): XmppTransport {
  return new XmppTransport({ service: XMPP_SERVICE, ...PUBLISHER, connectTimeoutMs: 5_000, passwordFor: () => TEST_PASSWORD, ...options });
}

/** Fails loudly (never skips) when Prosody is not listening. */
export async function requireProsody(port = 5222): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (error) => reject(new Error(`Prosody is not listening on 127.0.0.1:${port} (start it: bash scripts/prosody/setup.sh): ${error.message}`)));
  });
}
