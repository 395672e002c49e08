import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type IStore, type MqttClient, type Packet } from 'mqtt';
import { BehaviorSubject, type Observable, type Subscription } from 'rxjs';
import { backoffDelay, batchWrites, NotConnectedError, redactText, redactUrl, type Logger, type TransportStatus } from '../../src/core/index.ts';
import { tlsFailureOf, TlsCertificateError, type TlsHandshakeError } from '../../src/core/tls-errors.ts';
import { MqttConnectionRefusedError, type LastWillOptions, type MqttRefusalReason, type MqttTlsOptions } from './mqtt-options.ts';
import { installPublishEncoder } from './publish-encoder.ts';
import { installPublishParser } from './publish-parser.ts';

export interface ConnectionConfig {
  readonly url: string;
  readonly clientId: string;
  /** `clean: false` + session expiry: the broker keeps subscriptions and queued QoS ≥ 1 messages. */
  readonly persistent: boolean;
  readonly protocolVersion: 4 | 5;
  readonly sessionExpirySeconds: number;
  /** MQTT 5 Receive Maximum: unacknowledged QoS ≥ 1 PUBLISHes the broker may have in flight to us. */
  readonly receiveMaximum?: number;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: MqttTlsOptions;
  readonly will?: LastWillOptions;
  readonly keepaliveSeconds: number;
  readonly connectTimeoutMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** QoS 2 inbound state (mqtt.js's `incomingStore`); default mqtt.js's in-memory store. */
  readonly incomingStore?: IStore;
  /**
   * Consumers: payload bytes of an inbound PUBLISH taken whole at most; a larger one is streamed past
   * (hashed, counted, its first 4 KiB kept) and handed on truncated and marked (see `limitPublishSize`).
   * Default: no limit (the publisher's connection).
   */
  readonly maxMessageBytes?: number;
  /**
   * MQTT 5 Maximum Packet Size sent in CONNECT (whole packets, in bytes): the broker then discards
   * larger packets for this client rather than sending them. Default: not sent (no limit but the
   * protocol's). Not sent on MQTT 3.1.1, which has no such property.
   */
  readonly maxPacketBytes?: number;
  /** Takes over acknowledgement of inbound QoS ≥ 1 PUBLISHes (see `AckPipeline`). */
  readonly onPublish?: (packet: IPublishPacket) => void;
}

/**
 * A connection's state, with the AMQP adapter's names: `idle` (not opened), `connecting` (the first
 * connect, not yet acknowledged), `connected` (CONNACK received), `reconnecting` (lost after a first
 * connect; retrying with backoff), `closed` (ended, or refused for good: no more retries).
 */
export type MqttConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** One connection's state (see `MqttConnection.status$`). */
export interface MqttConnectionStatus extends TransportStatus {
  readonly state: MqttConnectionState;
  /** When the state was entered (epoch ms). */
  readonly since: number;
  /** Redacted text of the last connection error (kept after a reconnect, as AMQP's is). */
  readonly lastError?: string;
}

/** Passed to mqtt.js's `customHandleAcks` callback: "not now" — the PUBACK/PUBREC is sent later, in order, by us. */
export const HELD = new Error('acknowledgement held until the delivery settles');

/** The two non-public mqtt.js members the ack pipeline needs: writing a packet, and the QoS 2 incoming store. */
interface PacketWriter {
  _sendPacket(packet: Packet, callback?: (error?: Error) => void): void;
}

/**
 * One MQTT client connection with its session: connect, reconnect with exponential backoff and ±50 %
 * jitter (mqtt.js alone retries at a fixed period), TCP_NODELAY on, and a `generation` that changes on
 * every (re)connect so acknowledgements meant for an earlier connection are never sent on a later
 * one (packet ids are per connection; the broker redelivers what was not acknowledged).
 *
 * Secrets (password, TLS key) are passed to mqtt.js only, never logged.
 *
 * `status$` follows mqtt.js's client events (connect, reconnect, close, offline, error, disconnect, end) — never
 * the message path: it replays the current status, then emits each change of state or of last error.
 */
export class MqttConnection {
  readonly client: MqttClient;
  generation = 0;
  /** Server's Receive Maximum from CONNACK (65,535 when it sets none). */
  serverReceiveMaximum = 65_535;
  /** Server's Maximum Packet Size from CONNACK: the largest packet it takes from us (undefined when it sets none). */
  serverMaximumPacketSize: number | undefined;
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private ending = false;
  private refused = false;
  private started = false;
  private readonly connectListeners = new Set<(sessionPresent: boolean) => void>();
  private readonly closeListeners = new Set<() => void>();
  private readonly refusalListeners = new Set<(error: Error, reason: MqttRefusalReason) => void>();
  /** A TLS connection's handshake is under way (its socket has not emitted `secureConnect` yet). */
  private handshakePending = false;
  private readonly statusSubject = new BehaviorSubject<MqttConnectionStatus>({ state: 'idle', since: Date.now() });

  constructor(
    readonly config: ConnectionConfig,
    private readonly log: Logger,
  ) {
    const options: IClientOptions = {
      clientId: config.clientId,
      clean: !config.persistent,
      protocolVersion: config.protocolVersion,
      keepalive: config.keepaliveSeconds,
      connectTimeout: config.connectTimeoutMs,
      reconnectPeriod: 0, // our own backoff below
      resubscribe: false, // subscriptions live in the session, or are made again by their owner on connect
      manualConnect: true,
    };
    // mqtt.js formats ~15 debug calls per message through the `debug` package (~5 % of a publisher's
    // CPU here) even when debugging is off; with DEBUG set it logs as usual.
    if (process.env.DEBUG === undefined) options.log = noLog;
    if (config.protocolVersion === 5) {
      options.properties = { sessionExpiryInterval: config.persistent ? config.sessionExpirySeconds : 0 };
      if (config.receiveMaximum !== undefined) options.properties.receiveMaximum = config.receiveMaximum;
      if (config.maxPacketBytes !== undefined) options.properties.maximumPacketSize = config.maxPacketBytes;
    }
    if (config.incomingStore !== undefined) options.incomingStore = config.incomingStore;
    if (config.username !== undefined) options.username = config.username;
    if (config.password !== undefined) options.password = config.password;
    if (config.tls !== undefined) Object.assign(options, config.tls);
    if (config.will !== undefined) options.will = { topic: config.will.topic, payload: Buffer.from(config.will.payload ?? 'offline'), qos: config.will.qos ?? 1, retain: config.will.retain ?? true };
    this.client = mqtt.connect(config.url, options);
    installPublishEncoder(this.client);
    installPublishParser(this.client, config.maxMessageBytes);
    const onPublish = config.onPublish;
    if (onPublish !== undefined) {
      // Set after construction: mqtt.js drops the `customHandleAcks` option unless protocolVersion is 5,
      // yet its handler path is the same for 3.1.1.
      this.client.options.customHandleAcks = (_topic, _payload, packet, done) => {
        onPublish(packet);
        done(HELD);
      };
    }
    this.client.on('error', (error) => {
      if (error === HELD) return;
      const text = redactText(error.message, secretsOf(config));
      this.log.warn('mqtt client error', { clientId: config.clientId, error: text });
      const refusal = this.refusalOf(error);
      if (refusal !== undefined) for (const listener of this.refusalListeners) listener(refusal.error, refusal.reason);
      this.setState(this.refused ? 'closed' : this.status.state, text);
    });
    this.client.on('connect', (connack: IConnackPacket) => {
      this.attempts = 0;
      this.generation += 1;
      if (this.client.stream instanceof Socket) {
        this.client.stream.setNoDelay(true);
        batchWrites(this.client.stream); // PUBLISHes leave as one buffer each (publish-encoder.ts): a turn's go out in one write
      }
      this.serverReceiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
      this.serverMaximumPacketSize = connack.properties?.maximumPacketSize;
      this.setState('connected');
      for (const listener of this.connectListeners) listener(connack.sessionPresent);
    });
    this.client.on('close', () => {
      for (const listener of this.closeListeners) listener();
      this.scheduleReconnect();
      this.setRetrying();
    });
    this.client.on('reconnect', () => this.setRetrying());
    this.client.on('offline', () => this.setRetrying()); // not emitted while mqtt.js's own reconnecting is off (ours is used)
    this.client.on('end', () => this.setState('closed'));
    this.client.on('disconnect', (packet) => {
      const reason = packet.properties?.reasonString;
      this.setState(this.status.state, `the broker disconnected the client (reason code 0x${(packet.reasonCode ?? 0).toString(16)}${reason === undefined ? '' : `: ${reason}`})`);
    });
  }

  /** State changes and new errors, the current status first. Never errors; completes never. */
  get status$(): Observable<MqttConnectionStatus> {
    return this.statusSubject.asObservable();
  }

  get status(): MqttConnectionStatus {
    return this.statusSubject.value;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  onConnect(listener: (sessionPresent: boolean) => void): void {
    this.connectListeners.add(listener);
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener);
  }

  /**
   * Connects; resolves on the first CONNACK, rejects with `NotConnectedError` if none comes within
   * the connect timeout (reconnecting goes on in the background until `end`), and at once with
   * `MqttConnectionRefusedError` when the broker refuses the client for good or TLS verification
   * fails (reconnecting stops: the caller ends the connection).
   */
  open(): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settled = (): void => {
        clearTimeout(timer);
        this.connectListeners.delete(onConnect);
        this.refusalListeners.delete(onRefusal);
      };
      const timer = setTimeout(() => {
        settled();
        reject(new NotConnectedError(`MQTT broker ${redactUrl(this.config.url)} not reachable within ${this.config.connectTimeoutMs} ms (client '${this.config.clientId}')`));
      }, this.config.connectTimeoutMs);
      const onConnect = (): void => {
        settled();
        resolve();
      };
      const onRefusal = (error: Error, reason: MqttRefusalReason): void => {
        settled();
        this.refused = true; // the same configuration would be refused again: no reconnecting
        clearTimeout(this.timer);
        this.timer = undefined;
        this.setState('closed');
        const text = redactText(error.message, secretsOf(this.config));
        this.log.error('mqtt connection refused; not retrying', { clientId: this.config.clientId, url: redactUrl(this.config.url), reason, error: text });
        reject(new MqttConnectionRefusedError(`MQTT broker ${redactUrl(this.config.url)} refused client '${this.config.clientId}' (${reason}): ${text}`, { cause: error, reason }));
      };
      this.connectListeners.add(onConnect);
      this.refusalListeners.add(onRefusal);
      if (!this.started) {
        this.started = true;
        this.setState('connecting');
        this.client.connect();
        this.watchHandshake();
      }
    });
  }

  /** Writes a packet on the current connection (acknowledgements); dropped when not connected. */
  send(packet: Packet): void {
    if (!this.client.connected) return;
    (this.client as unknown as PacketWriter)._sendPacket(packet);
  }

  /**
   * Writes already encoded packets (acknowledgements) to the current connection's stream, as mqtt.js's
   * own writes go (mqtt.js tracks nothing about sent acknowledgements; keepalive counts received packets).
   * Dropped when not connected, like `send`.
   */
  sendBytes(bytes: Buffer): void {
    if (!this.client.connected) return;
    this.client.stream.write(bytes);
  }

  /** Disconnects gracefully (pending writes first, session kept per its expiry); stops reconnecting. */
  async end(): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await new Promise<void>((resolve) => {
      const giveUp = setTimeout(() => this.client.end(true, () => resolve()), 2_000);
      this.client.end(false, () => {
        clearTimeout(giveUp);
        resolve();
      });
    });
    this.setState('closed');
  }

  /** Follows the TLS handshake of the stream mqtt.js has just created (synchronously, in connect/reconnect). */
  private watchHandshake(): void {
    const stream: unknown = this.client.stream;
    if (!(stream instanceof TLSSocket)) return;
    this.handshakePending = true;
    stream.once('secureConnect', () => {
      if (this.client.stream === stream) this.handshakePending = false;
    });
  }

  /**
   * The permanent refusal `error` is, with its reason: a CONNACK refusal (see `REFUSED`), or a typed
   * TLS failure (`TlsCertificateError`, `TlsHandshakeError`); undefined for what retrying may cure.
   */
  private refusalOf(error: Error): { error: Error; reason: MqttRefusalReason } | undefined {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') {
      const reason = REFUSED.get(code);
      return reason === undefined ? undefined : { error, reason };
    }
    if (!/^(mqtts|tls|wss):/i.test(this.config.url)) return undefined;
    const tls: TlsCertificateError | TlsHandshakeError | undefined = tlsFailureOf(error, { broker: redactUrl(this.config.url), secrets: secretsOf(this.config), handshakePending: this.handshakePending });
    if (tls === undefined) return undefined;
    return { error: tls, reason: tls instanceof TlsCertificateError ? 'tls-certificate' : 'tls-handshake' };
  }

  /** Not connected and retrying: `reconnecting` after a first connect, `connecting` before; `closed` once ended or refused. */
  private setRetrying(): void {
    if (this.ending || this.refused) this.setState('closed');
    else if (!this.client.connected) this.setState(this.generation === 0 ? 'connecting' : 'reconnecting');
  }

  /** Emits when the state or the last error changes; `since` moves with the state only. */
  private setState(state: MqttConnectionState, lastError?: string): void {
    const previous = this.status;
    const error = lastError ?? previous.lastError;
    if (previous.state === state && previous.lastError === error) return;
    const since = previous.state === state ? previous.since : Date.now();
    this.statusSubject.next(error === undefined ? { state, since } : { state, since, lastError: error });
  }

  private scheduleReconnect(): void {
    if (this.ending || this.refused || this.timer !== undefined) return;
    const delay = backoffDelay(this.attempts, { initialMs: this.config.initialDelayMs, maxMs: this.config.maxDelayMs });
    this.attempts += 1;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // mqtt.js's reconnect() without stores starts empty ones: in-flight publishes (and their callbacks) would be lost
      if (!this.ending && !this.client.connected) {
        this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
        this.watchHandshake();
      }
    }, delay);
  }
}

/** What the connection's error texts must never show: the password, a TLS key given as text. */
function secretsOf(config: ConnectionConfig): string[] {
  const secrets: string[] = [];
  if (config.password !== undefined) secrets.push(config.password);
  if (typeof config.tls?.key === 'string') secrets.push(config.tls.key);
  return secrets;
}

/** mqtt.js's logger while `DEBUG` is unset. */
const noLog = (): void => undefined;

/**
 * CONNACK refusals that the same configuration will always get, and why (MQTT 5 reason codes: 0x84
 * protocol version, 0x85 client id, 0x86 bad user name or password, 0x87 not authorized, 0x8A banned,
 * 0x8C bad authentication method; MQTT 3.1.1 return codes 1, 2, 4, 5). "Server unavailable" and
 * "busy" are not among them: those are retried.
 */
const REFUSED = new Map<number, MqttRefusalReason>([
  [1, 'protocol-version'],
  [2, 'client-id-rejected'],
  [4, 'bad-credentials'],
  [5, 'not-authorized'],
  [0x84, 'protocol-version'],
  [0x85, 'client-id-rejected'],
  [0x86, 'bad-credentials'],
  [0x87, 'not-authorized'],
  [0x8a, 'banned'],
  [0x8c, 'bad-authentication-method'],
]);


/** A transport's status over its connections (see `MqttConnections`). */
export interface MqttTransportStatus extends MqttConnectionStatus {
  /** Connections counted: the publisher's and each consumer's, once established and until ended. */
  readonly connections: number;
  /** Of those, connected now. */
  readonly connected: number;
}

/**
 * One status over the connections of a transport (the publisher's, one per consumer — several for
 * the consumers of one shared subscription): `connected` only when every counted connection is;
 * `reconnecting` as soon as one is lost. A connection is counted from its first CONNACK until it
 * ends: a consumer still making its first connect does not turn a connected transport back to
 * `connecting` (as an AMQP consumer opening a channel does not) — if it never connects, its route
 * fails (`NotConnectedError` after the connect timeout), which readiness sees. Before any counted
 * connection the transport is `connecting`; `idle` before it opens, `closed` once closed.
 * `lastError` is the latest error of any connection, prefixed with its client id.
 */
export class MqttConnections {
  private readonly subject = new BehaviorSubject<MqttTransportStatus>({ state: 'idle', since: Date.now(), connections: 0, connected: 0 });
  private readonly followed = new Map<MqttConnection, Subscription>();
  private phase: 'idle' | 'open' | 'closed' = 'idle';
  private lastError: string | undefined;

  get status$(): Observable<MqttTransportStatus> {
    return this.subject.asObservable();
  }

  get status(): MqttTransportStatus {
    return this.subject.value;
  }

  /** The transport connects (again). */
  open(): void {
    this.phase = 'open';
    this.update();
  }

  /** Counts `connection` from its first CONNACK; its errors become the transport's `lastError`. */
  follow(connection: MqttConnection): void {
    if (this.followed.has(connection)) return;
    let seenError = connection.status.lastError;
    const subscription = connection.status$.subscribe((status) => {
      if (status.lastError !== undefined && status.lastError !== seenError) this.lastError = `client '${connection.config.clientId}': ${status.lastError}`;
      seenError = status.lastError;
      this.update();
    });
    this.followed.set(connection, subscription);
    if (this.phase === 'idle') this.phase = 'open';
    this.update();
  }

  /** Stops counting `connection` (its consumer was stopped). */
  unfollow(connection: MqttConnection): void {
    this.followed.get(connection)?.unsubscribe();
    if (this.followed.delete(connection)) this.update();
  }

  /** The transport closes: `closed` from now on, whatever its connections do while they end. */
  close(): void {
    for (const subscription of this.followed.values()) subscription.unsubscribe();
    this.followed.clear();
    this.phase = 'closed';
    this.update();
  }

  private update(): void {
    let connections = 0;
    let connected = 0;
    for (const connection of this.followed.keys()) {
      const state = connection.status.state;
      if (state !== 'connected' && state !== 'reconnecting') continue; // idle or in its first connect; or ended
      connections += 1;
      if (state === 'connected') connected += 1;
    }
    const state: MqttConnectionState =
      this.phase !== 'open' ? this.phase : connections === 0 ? 'connecting' : connected === connections ? 'connected' : 'reconnecting';
    const previous = this.status;
    if (previous.state === state && previous.lastError === this.lastError && previous.connections === connections && previous.connected === connected) return;
    const since = previous.state === state ? previous.since : Date.now();
    this.subject.next({ state, since, connections, connected, ...(this.lastError === undefined ? {} : { lastError: this.lastError }) });
  }
}
