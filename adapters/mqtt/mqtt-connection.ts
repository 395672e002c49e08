import { Socket } from 'node:net';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type IStore, type MqttClient, type Packet } from 'mqtt';
import { backoffDelay, batchWrites, NotConnectedError, redactUrl, type Logger } from '../../src/core/index.ts';
import { MqttConnectionRefusedError, type LastWillOptions, type MqttTlsOptions } from './mqtt-options.ts';
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
  private readonly refusalListeners = new Set<(error: Error) => void>();

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
      this.log.warn('mqtt client error', { clientId: config.clientId, error: error.message });
      if (isRefusal(error)) for (const listener of this.refusalListeners) listener(error);
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
      for (const listener of this.connectListeners) listener(connack.sessionPresent);
    });
    this.client.on('close', () => {
      for (const listener of this.closeListeners) listener();
      this.scheduleReconnect();
    });
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
      const onRefusal = (error: Error): void => {
        settled();
        this.refused = true; // the same configuration would be refused again: no reconnecting
        clearTimeout(this.timer);
        this.timer = undefined;
        reject(new MqttConnectionRefusedError(`MQTT broker ${redactUrl(this.config.url)} refused client '${this.config.clientId}': ${error.message}`, { cause: error }));
      };
      this.connectListeners.add(onConnect);
      this.refusalListeners.add(onRefusal);
      if (!this.started) {
        this.started = true;
        this.client.connect();
      }
    });
  }

  /** Writes a packet on the current connection (acknowledgements); dropped when not connected. */
  send(packet: Packet): void {
    if (!this.client.connected) return;
    (this.client as unknown as PacketWriter)._sendPacket(packet);
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
  }

  private scheduleReconnect(): void {
    if (this.ending || this.refused || this.timer !== undefined) return;
    const delay = backoffDelay(this.attempts, { initialMs: this.config.initialDelayMs, maxMs: this.config.maxDelayMs });
    this.attempts += 1;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // mqtt.js's reconnect() without stores starts empty ones: in-flight publishes (and their callbacks) would be lost
      if (!this.ending && !this.client.connected) this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore });
    }, delay);
  }
}

/** mqtt.js's logger while `DEBUG` is unset. */
const noLog = (): void => undefined;

/**
 * CONNACK refusals that the same configuration will always get (MQTT 5 reason codes: 0x84 protocol
 * version, 0x85 client id, 0x86 bad user name or password, 0x87 not authorized, 0x8A banned, 0x8C bad
 * authentication method; MQTT 3.1.1 return codes 1, 2, 4, 5), and failed TLS verification. "Server
 * unavailable" and "busy" are not among them: those are retried.
 */
const REFUSED = new Set([1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c]);
function isRefusal(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') return REFUSED.has(code);
  return typeof code === 'string' && /CERT|UNABLE_TO_VERIFY|HOSTNAME|ERR_TLS|ERR_SSL|SELF_SIGNED/.test(code);
}

