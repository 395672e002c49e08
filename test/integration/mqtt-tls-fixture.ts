import { execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { launchMosquitto, terminate } from '../support/mosquitto-process.ts';

const exec = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

/** A certificate with its private key, as PEM text and as files in the fixture's directory. */
export interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  try {
    await exec(OPENSSL, args, { cwd: dir });
  } catch (error) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}

function read(dir: string, certFile: string, keyFile: string): Pem {
  return { cert: readFileSync(join(dir, certFile), 'utf8'), key: readFileSync(join(dir, keyFile), 'utf8'), certFile: join(dir, certFile), keyFile: join(dir, keyFile) };
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA (P-256, valid 2 days) named `name` in `dir`. */
export async function generateCa(dir: string, name: string): Promise<Pem> {
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=Interchange test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return read(dir, `${name}.crt`, `${name}.key`);
}

/** A leaf certificate signed by `ca`: `server` for 127.0.0.1/localhost, or a `client` certificate. */
export async function generateLeaf(dir: string, ca: Pem, name: string, usage: 'server' | 'client'): Promise<Pem> {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    usage === 'server'
      ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n'
      : 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n',
  );
  await openssl(dir, ['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${usage === 'server' ? 'localhost' : name}`]);
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', ext]);
  return read(dir, `${name}.crt`, `${name}.key`);
}

export interface TlsMosquittoOptions {
  readonly username: string;
  readonly password: string;
  /** TLS listener, server certificate only (default 18851). */
  readonly port?: number;
  /** TLS listener with `require_certificate true` (default 18852). */
  readonly mutualPort?: number;
}

/**
 * A Mosquitto of the test's own with TLS only, `allow_anonymous false` and a password file:
 * - `url` (`mqtts://127.0.0.1:18851`): server certificate signed by `ca`, for 127.0.0.1 and localhost;
 * - `mutualUrl` (`mqtts://127.0.0.1:18852`): the same, plus `require_certificate`: clients must present
 *   a certificate signed by `ca` (`client`), and still a username/password.
 * `otherCa` is a CA the server's certificate is not signed by, `strangerClient` a client certificate
 * signed by it. Everything lives in a temp dir that `dispose` removes.
 */
export class TlsMosquitto {
  readonly url: string;
  readonly mutualUrl: string;
  private process: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly mutualPort: number,
    readonly ca: Pem,
    readonly server: Pem,
    readonly client: Pem,
    readonly otherCa: Pem,
    readonly strangerClient: Pem,
    private readonly config: string,
  ) {
    this.url = `mqtts://127.0.0.1:${port}`;
    this.mutualUrl = `mqtts://127.0.0.1:${mutualPort}`;
  }

  static async start(options: TlsMosquittoOptions): Promise<TlsMosquitto> {
    const port = options.port ?? 18851;
    const mutualPort = options.mutualPort ?? 18852;
    const dir = mkdtempSync(join(tmpdir(), 'mosquitto-tls-'));
    try {
      const [ca, otherCa] = await Promise.all([generateCa(dir, 'ca'), generateCa(dir, 'other-ca')]);
      const [server, client, strangerClient] = await Promise.all([generateLeaf(dir, ca, 'server', 'server'), generateLeaf(dir, ca, 'client', 'client'), generateLeaf(dir, otherCa, 'stranger', 'client')]);
      const passwordFile = join(dir, 'passwd');
      await exec(MOSQUITTO_PASSWD, ['-b', '-c', passwordFile, options.username, options.password]);
      chmodSync(passwordFile, 0o600);
      const tls = [`cafile ${ca.certFile}`, `certfile ${server.certFile}`, `keyfile ${server.keyFile}`];
      const config = join(dir, 'mosquitto.conf');
      writeFileSync(
        config,
        [
          'per_listener_settings false',
          'allow_anonymous false',
          `password_file ${passwordFile}`,
          'user root',
          'persistence false',
          'log_dest none',
          `listener ${port} 127.0.0.1`,
          ...tls,
          `listener ${mutualPort} 127.0.0.1`,
          ...tls,
          'require_certificate true',
        ].join('\n') + '\n',
      );
      const broker = new TlsMosquitto(dir, port, mutualPort, ca, server, client, otherCa, strangerClient, config);
      await broker.launch();
      return broker;
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  private async launch(): Promise<void> {
    this.process = await launchMosquitto(this.config, [this.port, this.mutualPort]);
  }

  /** SIGTERM; resolves when Mosquitto has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    await terminate(child);
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
