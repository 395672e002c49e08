import type { Connection, Delivery as AmqpDelivery, EventContext, Message as AmqpMessage, Sender } from 'rhea';
import { PartialPublishError, TimeoutError } from '../../src/core/index.ts';
import type { Amqp10Connection } from './amqp10-connection.ts';
import { terminusDurability } from './amqp10-endpoint.ts';
import { Amqp10LinkError, Amqp10RejectedError, Amqp10ReleasedError } from './amqp10-errors.ts';
import { closeLink } from './amqp10-link-close.ts';

/** One message on its way: sent (or waiting for credit or a connection) until the broker settles it. */
interface Transfer {
  readonly address: string;
  readonly message: AmqpMessage;
  readonly id: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  delivery: AmqpDelivery | undefined;
  done: boolean;
}

interface Link {
  readonly address: string;
  readonly sender: Sender;
  lastUsed: number;
  /** Transfers waiting for credit (or for the link to open), in publish order. */
  readonly queue: Transfer[];
}

/**
 * The sending half: one sender link per address (opened on first use, unsettled transfers =
 * at-least-once), re-created after a reconnect.
 *
 * Contract: `send` resolves when the broker settled every transfer `accepted`; each message fails
 * alone — `rejected` → `Amqp10RejectedError`, `released`/`modified` → `Amqp10ReleasedError`, a
 * refused attach → `Amqp10LinkError` — and the call rejects with `PartialPublishError` when some of
 * several failed (the error itself when all did). A transfer waits for link credit (the broker's flow
 * control). When the connection drops, every transfer not yet settled is sent again on the next
 * connection (the broker may then have it twice: consumers dedupe by message id). A call not settled
 * within `timeoutMs` rejects with `TimeoutError` and its unsent transfers are withdrawn.
 *
 * Links are bounded: at most `maxLinks` (a session each), least recently used closed first, and a link
 * unused for `idleMs` is closed — only links with no transfer in flight (so dynamic addresses, e.g.
 * routing keys, do not grow sessions without limit; a busy link may exceed the bound for a while).
 */
export class Amqp10Publisher {
  private readonly links = new Map<string, Link>();
  private readonly unsettled = new Set<Transfer>();
  private readonly offLost: () => void;
  private readonly offOpen: () => void;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly connection: Amqp10Connection,
    private readonly timeoutMs: number,
    private readonly maxLinks = 64,
    private readonly idleMs = 60_000,
  ) {
    this.offLost = connection.onLost(() => this.lost());
    this.offOpen = connection.onOpen((open) => this.resend(open));
    this.sweeper = setInterval(() => this.sweep(Date.now() - this.idleMs), Math.max(1, Math.floor(idleMs / 2)));
    this.sweeper.unref();
  }

  get inFlight(): number {
    return this.unsettled.size;
  }

  /** Sender links open (or opening) now. */
  get linkCount(): number {
    return this.links.size;
  }

  dispose(): void {
    this.offLost();
    this.offOpen();
    clearInterval(this.sweeper);
    for (const link of this.links.values()) closeLink(link.sender);
    this.links.clear();
  }

  /** Closes the links unused since `before` with nothing in flight. */
  private sweep(before: number): void {
    for (const link of [...this.links.values()]) if (link.lastUsed < before && this.idle(link)) this.evict(link);
  }

  private idle(link: Link): boolean {
    if (link.queue.some((transfer) => !transfer.done)) return false;
    for (const transfer of this.unsettled) if (transfer.address === link.address) return false;
    return true;
  }

  private evict(link: Link): void {
    if (this.links.get(link.address) !== link) return;
    this.links.delete(link.address);
    closeLink(link.sender);
  }

  async send(address: string, uri: string, messages: readonly AmqpMessage[]): Promise<void> {
    const transfers = messages.map((message) => this.transfer(address, message));
    const outcomes = Promise.allSettled(transfers.map(({ promise }) => promise));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const settled = await Promise.race([outcomes, timedOut]);
    clearTimeout(timer);
    if (settled === 'timeout') {
      for (const { transfer } of transfers) this.withdraw(transfer);
      throw new TimeoutError(`amqp10: publish to '${uri}' not settled by the broker within ${this.timeoutMs} ms`);
    }
    let failures: Map<number, Error> | undefined;
    settled.forEach((outcome, index) => {
      if (outcome.status === 'rejected') (failures ??= new Map()).set(index, outcome.reason as Error);
    });
    if (failures === undefined) return;
    if (failures.size === messages.length && messages.length === 1) throw failures.get(0) as Error;
    throw new PartialPublishError(failures, messages.length);
  }

  private transfer(address: string, message: AmqpMessage): { transfer: Transfer; promise: Promise<void> } {
    let transfer!: Transfer;
    const promise = new Promise<void>((resolve, reject) => {
      transfer = { address, message, id: String(message.message_id), resolve, reject, delivery: undefined, done: false };
    });
    this.unsettled.add(transfer);
    const link = this.link(address);
    if (link === undefined) return { transfer, promise }; // no connection: sent by `resend` after the reconnect
    link.queue.push(transfer);
    this.flush(link);
    return { transfer, promise };
  }

  private link(address: string): Link | undefined {
    const existing = this.links.get(address);
    if (existing !== undefined) {
      // most recently used last: `open` evicts from the front
      this.links.delete(address);
      this.links.set(address, existing);
      existing.lastUsed = Date.now();
      return existing;
    }
    const connection = this.connection.current;
    if (connection === undefined) return undefined;
    return this.open(connection, address);
  }

  private open(connection: Connection, address: string): Link {
    // a session per address: RabbitMQ 3.10 ends the whole session when an attach fails (no such exchange)
    if (this.links.size >= this.maxLinks) {
      for (const candidate of this.links.values()) {
        if (!this.idle(candidate)) continue;
        this.evict(candidate);
        break;
      }
    }
    const session = connection.create_session();
    session.begin();
    const sender: Sender = session.open_sender({ target: { address, durable: terminusDurability(address) }, autosettle: true });
    const link: Link = { address, sender, queue: [], lastUsed: Date.now() };
    this.links.set(address, link);
    sender.on('sendable', () => this.flush(link));
    sender.on('accepted', (context: EventContext) => this.settle(context.delivery, undefined));
    sender.on('rejected', (context: EventContext) => {
      const state = context.delivery?.remote_state as { error?: { condition?: unknown; description?: unknown } } | undefined;
      const transfer = this.of(context.delivery);
      this.settle(context.delivery, new Amqp10RejectedError(transfer?.id ?? '?', state?.error?.condition === undefined ? undefined : String(state.error.condition), state?.error?.description === undefined ? undefined : String(state.error.description)));
    });
    sender.on('released', (context: EventContext) => this.settle(context.delivery, new Amqp10ReleasedError(this.of(context.delivery)?.id ?? '?', 'released')));
    sender.on('modified', (context: EventContext) => this.settle(context.delivery, new Amqp10ReleasedError(this.of(context.delivery)?.id ?? '?', 'modified')));
    const refused = (error: { condition?: unknown; description?: unknown } | undefined): void => {
      if (this.links.get(address) !== link) return;
      this.links.delete(address);
      const failure = new Amqp10LinkError(address, error?.condition === undefined ? undefined : String(error.condition), String(error?.description ?? 'detached'));
      for (const transfer of [...this.unsettled]) if (transfer.address === address && (transfer.delivery === undefined || transfer.delivery.link === sender)) this.finish(transfer, failure);
      link.queue.length = 0;
      closeLink(sender, true);
    };
    sender.on('sender_error', (context: EventContext) => refused(context.sender?.error as { condition?: unknown } | undefined));
    session.on('session_error', (context: EventContext) => refused(context.session?.error as { condition?: unknown } | undefined));
    return link;
  }

  private readonly byDelivery = new WeakMap<AmqpDelivery, Transfer>();

  private of(delivery: AmqpDelivery | undefined): Transfer | undefined {
    return delivery === undefined ? undefined : this.byDelivery.get(delivery);
  }

  private settle(delivery: AmqpDelivery | undefined, error: Error | undefined): void {
    const transfer = this.of(delivery);
    if (transfer !== undefined) this.finish(transfer, error);
  }

  private finish(transfer: Transfer, error: Error | undefined): void {
    if (transfer.done) return;
    transfer.done = true;
    this.unsettled.delete(transfer);
    if (error === undefined) transfer.resolve();
    else transfer.reject(error);
  }

  /** Sends what the link's credit allows, in order. */
  private flush(link: Link): void {
    const { sender, queue } = link;
    while (queue.length > 0 && sender.sendable()) {
      const transfer = queue.shift() as Transfer;
      if (transfer.done) continue;
      const delivery = sender.send(transfer.message);
      transfer.delivery = delivery;
      this.byDelivery.set(delivery, transfer);
    }
  }

  /** A timed-out transfer: withdrawn when not sent yet; a sent one may still reach the queue. */
  private withdraw(transfer: Transfer): void {
    this.finish(transfer, new TimeoutError('withdrawn'));
  }

  private lost(): void {
    this.links.clear();
    for (const transfer of this.unsettled) transfer.delivery = undefined;
  }

  /** After a reconnect: every transfer not settled yet, sent again in the order of the first publish. */
  private resend(connection: Connection): void {
    this.links.clear();
    for (const transfer of this.unsettled) {
      if (transfer.done) continue;
      transfer.delivery = undefined;
      const link = this.links.get(transfer.address) ?? this.open(connection, transfer.address);
      link.queue.push(transfer);
    }
    for (const link of this.links.values()) this.flush(link);
  }
}
