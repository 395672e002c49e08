import { execFile, type ChildProcess } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import type { Logger } from '../../src/core/index.ts';
import { freePort } from '../support/free-port.ts';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';
import { generateCa, generateLeaf, type Pem } from './mqtt-tls-fixture.ts';

// For the auth-errors tests (issue #20): certificates made here with openssl, a proxy that counts
// connection attempts (plain TCP, or TLS-terminating with a chosen certificate) in front of a broker,
// and a Mosquitto of the tests' own with a password and a dynamic-security ACL.

const exec = promisify(execFile);

/**
 * A CA, a second CA the clients do not trust, and three server certificates signed by the first:
 * `server` for 127.0.0.1/localhost, `wrongName` for `elsewhere.example` only, `expired` (for
 * 127.0.0.1, its validity ended yesterday).
 */
export interface TestPki {
  readonly dir: string;
  readonly ca: Pem;
  readonly otherCa: Pem;
  readonly server: Pem;
  readonly wrongName: Pem;
  readonly expired: Pem;
  dispose(): void;
}

export async function createPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'ic-auth-pki-'));
  const [ca, otherCa] = await Promise.all([generateCa(dir, 'ca'), generateCa(dir, 'other-ca')]);
  const [server, wrongName, expired] = await Promise.all([
    generateLeaf(dir, ca, 'server', 'server'),
    leaf(dir, ca, 'wrong-name', 'subjectAltName=DNS:elsewhere.example', 2),
    leaf(dir, ca, 'expired', 'subjectAltName=IP:127.0.0.1,DNS:localhost', -1), // notAfter = yesterday
  ]);
  return { dir, ca, otherCa, server, wrongName, expired, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

async function leaf(dir: string, ca: Pem, name: string, san: string, days: number): Promise<Pem> {
  writeFileSync(join(dir, `${name}.ext`), `${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  const run = async (args: readonly string[]): Promise<void> => {
    try {
      await exec('/usr/bin/openssl', args, { cwd: dir });
    } catch (error) {
      throw new Error(`openssl ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
    }
  };
  await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  await run(['x509', '-req', '-in', `${name}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', `${name}.crt`, '-days', String(days), '-extfile', `${name}.ext`]);
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8'), certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

/**
 * A proxy on 127.0.0.1 to `upstreamPort` that counts the TCP connections made to it — a client's
 * connection attempts. With `tls` it terminates TLS with that certificate (the upstream is plaintext).
 */
export class CountingProxy {
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
  ) {}

  static async start(upstreamPort: number, tls?: Pem): Promise<CountingProxy> {
    const sockets = new Set<Socket>();
    const pipe = (client: Socket): void => {
      const upstream = tcpConnect(upstreamPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => sockets.delete(socket));
      }
      // a close (or reset) on either side closes the other, as a direct connection would
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    };
    const server: Server = tls === undefined ? createServer(pipe) : createTlsServer({ cert: tls.cert, key: tls.key }, pipe);
    server.on('tlsClientError', () => undefined); // the client refusing our certificate is what the tests provoke
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const proxy = new CountingProxy(server, (server.address() as { port: number }).port, sockets);
    server.on('connection', (socket: Socket) => {
      proxy.connections += 1;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    return proxy;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A Mosquitto of the tests' own: plaintext listener, no anonymous access, one user whose
 * dynamic-security role may publish to and subscribe to `<allowed>/#` only (default ACL access:
 * publish and subscribe denied), so a forbidden SUBSCRIBE gets SUBACK 0x87 and a forbidden MQTT 5
 * publish PUBACK 0x87.
 */
export class AuthMosquitto {
  readonly url: string;

  private constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly process: ChildProcess,
  ) {
    this.url = `mqtt://127.0.0.1:${port}`;
  }

  static async start(options: { readonly username: string; readonly password: string; readonly allowed: string }): Promise<AuthMosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'ic-auth-mosquitto-'));
    try {
      const salt = randomBytes(12);
      const security = {
        clients: [
          {
            username: options.username,
            textName: '',
            password: pbkdf2Sync(options.password, salt, 101, 64, 'sha512').toString('base64'),
            salt: salt.toString('base64'),
            iterations: 101,
            roles: [{ rolename: 'allowed' }],
          },
        ],
        roles: [
          {
            rolename: 'allowed',
            acls: [
              { acltype: 'publishClientSend', topic: `${options.allowed}/#`, allow: true },
              { acltype: 'subscribePattern', topic: `${options.allowed}/#`, allow: true },
            ],
          },
        ],
        defaultACLAccess: { publishClientSend: false, publishClientReceive: true, subscribe: false, unsubscribe: true },
      };
      const securityFile = join(dir, 'dynamic-security.json');
      writeFileSync(securityFile, JSON.stringify(security));
      const port = await freePort();
      const config = join(dir, 'mosquitto.conf');
      writeFileSync(
        config,
        [
          `listener ${port} 127.0.0.1`,
          'allow_anonymous false',
          'plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
          `plugin_opt_config_file ${securityFile}`,
          'persistence false',
          'log_dest none',
          '',
        ].join('\n'),
      );
      // Mosquitto started as root runs as the user `mosquitto`: it must be able to read (and rewrite) the files
      chmodSync(dir, 0o777);
      chmodSync(securityFile, 0o666);
      chmodSync(config, 0o644);
      return new AuthMosquitto(dir, port, await launchMosquitto(config, [port]));
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  async dispose(): Promise<void> {
    await terminate(this.process);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A logger that keeps every line as text (to look for secrets in). */
export function capturingLogger(lines: string[]): Logger {
  const capture =
    (level: string) =>
    (message: string, fields?: Readonly<Record<string, unknown>>): void => {
      lines.push(`${level} ${message} ${fields === undefined ? '' : JSON.stringify(fields, (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack, cause: String(value.cause) } : value))}`);
    };
  return { info: capture('INFO'), warn: capture('WARN'), error: capture('ERROR') };
}

/** Every text form of an error a user or a log might show: String, message, stack, JSON, and the same of its causes. */
export function textsOf(error: unknown): string[] {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    texts.push(String(current));
    if (current instanceof Error) texts.push(current.message, current.stack ?? '', JSON.stringify(current), JSON.stringify({ ...current }));
    current = current instanceof Error ? current.cause : undefined;
  }
  return texts;
}
