import type { Channel, ChannelModel } from 'amqplib';
import { NotConnectedError, toError, type Logger } from '../../src/core/index.ts';
import type { AmqpConnectionManager, ConnectionUser } from './amqp-connection.ts';
import { AmqpConfigurationError, channelRefusalOf } from './amqp-errors.ts';
import type { ExchangeType } from './amqp-endpoint.ts';
import { declareTopology, type Topology } from './amqp-topology.ts';

/**
 * Declares the configured topology on every (re)connect — it is the first connection user, so
 * consumers and publishers only start once it is in place — and, on demand, the queues and
 * exchanges that endpoints name but the topology does not (once per connection generation).
 *
 * Contract: a topology declaration failure rejects (the connection manager drops the connection and
 * retries with backoff); `ensureQueue`/`ensureExchange` reject with `AmqpAccessRefusedError` when the
 * user may not declare it (403), `AmqpConfigurationError` when the broker refuses it otherwise, with
 * `NotConnectedError` when there is no connection.
 */
export class AmqpDeclarer implements ConnectionUser {
  private readonly topologyQueues: ReadonlySet<string>;
  private readonly topologyExchanges: ReadonlySet<string>;
  private ensured = new Set<string>();
  private channel: Promise<Channel> | undefined;

  constructor(
    private readonly manager: AmqpConnectionManager,
    private readonly topology: Topology,
    private readonly declareQueues: boolean,
    private readonly log: Logger,
  ) {
    this.topologyQueues = new Set((topology.queues ?? []).map((queue) => queue.name));
    this.topologyExchanges = new Set((topology.exchanges ?? []).map((exchange) => exchange.name));
  }

  async connected(model: ChannelModel): Promise<void> {
    this.ensured = new Set();
    this.channel = undefined;
    const channel = await model.createChannel();
    channel.on('error', (error: unknown) => this.log.warn('amqp: topology channel error', { error: this.manager.redact(toError(error).message) }));
    await declareTopology(channel, this.topology);
    await channel.close().catch(() => undefined);
  }

  lost(): void {
    this.ensured = new Set();
    this.channel = undefined;
  }

  /** Whether `name` is known to exist on this connection (a synchronous fast path for publishers). */
  isEnsured(kind: 'queue' | 'exchange', name: string): boolean {
    if (kind === 'queue' ? this.topologyQueues.has(name) || !this.declareQueues : this.topologyExchanges.has(name)) return true;
    return name === '' || name.startsWith('amq.') || this.ensured.has(`${kind}:${name}`);
  }

  /** Makes sure a queue exists: an existing one is left as it is (passive check), a missing one is declared durable classic. */
  async ensureQueue(name: string): Promise<void> {
    if (this.isEnsured('queue', name)) return;
    try {
      await (await this.openChannel()).checkQueue(name);
    } catch {
      // 404 closed that channel; declare on a fresh one
      this.channel = undefined;
      try {
        await (await this.openChannel()).assertQueue(name, { durable: true });
      } catch (error) {
        this.channel = undefined;
        throw this.refusalOr(error, () => new AmqpConfigurationError(`cannot declare queue '${name}': ${this.manager.redact(toError(error).message)}`, { cause: error }));
      }
    }
    this.ensured.add(`queue:${name}`);
  }

  /** Declares an exchange (durable) of `type`; an existing exchange of another type is an `AmqpConfigurationError`. */
  async ensureExchange(name: string, type: ExchangeType): Promise<void> {
    if (this.isEnsured('exchange', name)) return;
    try {
      await (await this.openChannel()).assertExchange(name, type, { durable: true });
    } catch (error) {
      this.channel = undefined;
      throw this.refusalOr(error, () => new AmqpConfigurationError(`cannot declare exchange '${name}' (${type}): ${this.manager.redact(toError(error).message)}`, { cause: error }));
    }
    this.ensured.add(`exchange:${name}`);
  }

  /** Forgets that a queue or exchange exists (it was deleted under us): the next use checks and declares again. */
  forget(kind: 'queue' | 'exchange', name: string): void {
    this.ensured.delete(`${kind}:${name}`);
  }

  /** Checks (passively) that an exchange exists: `AmqpConfigurationError` if not, instead of a channel error at publish. */
  async checkExchange(name: string): Promise<void> {
    if (this.isEnsured('exchange', name)) return;
    try {
      await (await this.openChannel()).checkExchange(name);
    } catch (error) {
      this.channel = undefined;
      throw new AmqpConfigurationError(`exchange '${name}' does not exist (declare it in the topology, or add ?type= to the endpoint): ${this.manager.redact(toError(error).message)}`, { cause: error });
    }
    this.ensured.add(`exchange:${name}`);
  }

  /** A 403 as `AmqpAccessRefusedError` (which resource, which permission), anything else as `otherwise()`. */
  private refusalOr(error: unknown, otherwise: () => Error): Error {
    return channelRefusalOf(error, (text) => this.manager.redact(text)) ?? otherwise();
  }

  private openChannel(): Promise<Channel> {
    if (this.channel !== undefined) return this.channel;
    const live = this.manager.current;
    if (live === undefined) return Promise.reject(new NotConnectedError(`not connected to ${this.manager.redactedUrl}`));
    const opening = live.model.createChannel().then((channel) => {
      channel.on('error', () => undefined); // 404/406 on passive checks are expected; the caller reports them
      channel.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
      });
      return channel;
    });
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    this.channel = opening;
    return opening;
  }
}
