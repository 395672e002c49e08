import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { backoffDelay, NotConnectedError, PartialPublishError, TimeoutError, toError, type Logger } from '../../src/core/index.ts';
import type { AmqpConnectionManager, ConnectionUser } from './amqp-connection.ts';
import { channelRefusalOf, type AmqpAccessRefusedError, AmqpUnencodableError, PublishRejectedError, UnroutableError } from './amqp-errors.ts';

/** One message to publish. Allocated per message and reused as the channel's confirm-window entry. */
export class Outbound {
  /** @internal the publish call it belongs to (set when sent) */ batch: PublishBatch | undefined = undefined;
  /** @internal basic.return text, if the broker returned it */ returned: string | undefined = undefined;

  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    readonly content: Buffer,
    readonly properties: Options.Publish,
  ) {}
}

/** The state of one `publish` call: counts outstanding confirms; collects messages to resend after a channel loss. */
class PublishBatch {
  outstanding = 0;
  lost: Outbound[] = [];
  error: Error | undefined = undefined;
  /** Messages that failed alone (amqplib refused them); the others go on. */
  failures: Map<Outbound, Error> | undefined = undefined;
  expired = false;
  private wake: (() => void) | undefined = undefined;

  confirmed(item: Outbound): void {
    if (item.returned !== undefined) this.error ??= new UnroutableError(item.exchange, item.routingKey, item.returned);
    this.settleOne();
  }

  rejected(item: Outbound): void {
    this.error ??= new PublishRejectedError(item.exchange, item.routingKey);
    this.settleOne();
  }

  /** The broker refused the message's exchange for good (403): the call rejects with that, nothing is resent. */
  refused(error: AmqpAccessRefusedError): void {
    this.error ??= error;
    this.settleOne();
  }

  lose(item: Outbound): void {
    this.lost.push(item);
    this.settleOne();
  }

  fail(item: Outbound, error: Error): void {
    (this.failures ??= new Map()).set(item, error);
    this.settleOne();
  }

  expire(): void {
    this.expired = true;
    this.notify();
  }

  /** Resolves at the next change worth looking at (all settled, expiry, a new channel, drain). */
  changed(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private settleOne(): void {
    this.outstanding -= 1;
    if (this.outstanding === 0) this.notify();
  }
}

/**
 * One confirm channel and its window of unconfirmed messages, in delivery-tag order (tags are
 * per channel, from 1). Confirms are taken from the channel's `ack`/`nack` events — not amqplib's
 * per-message callbacks, which have hung on connection loss — and a dead session hands every
 * unconfirmed message back to its batch for a resend.
 */
class PublishSession {
  live = true;
  /** Taken out of service (closed by us or by the broker): a fresh channel is on its way. */
  retired = false;
  /** Why the broker closed the channel, when it was an access refusal (403 on basic.publish). */
  refusal: AmqpAccessRefusedError | undefined = undefined;
  private lwm = 1;
  /** The length of amqplib's own confirm window before the last `send`, to undo a refused publish. */
  private amqplibWindowBefore = 0;
  private readonly window: (Outbound | null)[] = [];
  private readonly drainWaiters = new Set<PublishBatch>();

  private readonly direct: DirectPublish | undefined;

  constructor(
    readonly channel: ConfirmChannel,
    readonly generation: number,
  ) {
    this.direct = directPublishOf(channel);
  }

  /**
   * Publishes; false when the channel's buffer is full (wait for `drain`). Throws if the channel is
   * gone, or if amqplib cannot encode the message — then call `unsend` at once.
   */
  send(item: Outbound): boolean {
    this.window.push(item);
    this.amqplibWindowBefore = amqplibWindow(this.channel)?.length ?? -1;
    const direct = this.direct;
    if (direct === undefined) return this.channel.publish(item.exchange, item.routingKey, item.content, item.properties);
    // what ConfirmChannel.publish does, with the fields built in one fixed shape (see `publishFields`)
    direct.pushConfirmCallback(false);
    const fields = publishFields(item.exchange, item.routingKey, item.properties);
    return direct.sendMessage(fields, fields, item.content);
  }

  /**
   * Undoes the `send` of `item` that has just thrown synchronously (amqplib encodes the whole
   * message before it writes a byte, so nothing reached the broker and no delivery tag was used):
   * takes `item` out of our window, and the confirm slot amqplib's ConfirmChannel pushed before it
   * encoded out of amqplib's. False when either window is not as expected — the tags can no longer
   * be trusted and the channel must be replaced.
   */
  unsend(item: Outbound): boolean {
    if (this.window[this.window.length - 1] !== item) return false;
    this.window.pop();
    const theirs = amqplibWindow(this.channel);
    const before = this.amqplibWindowBefore;
    if (theirs === undefined || before < 0) return false;
    if (theirs.length === before) return true; // refused before it took a slot
    if (theirs.length === before + 1 && theirs[before] === false) {
      theirs.pop();
      return true;
    }
    return false;
  }

  waitDrain(batch: PublishBatch): void {
    this.drainWaiters.add(batch);
  }

  drained(): void {
    for (const batch of this.drainWaiters) batch.notify();
    this.drainWaiters.clear();
  }

  confirm(tag: number, multiple: boolean, ok: boolean): void {
    const settle = (item: Outbound | null | undefined): void => {
      if (item === null || item === undefined) return;
      const batch = item.batch;
      if (batch === undefined) return;
      if (ok) batch.confirmed(item);
      else batch.rejected(item);
    };
    if (multiple) {
      const done = this.window.splice(0, tag - this.lwm + 1);
      this.lwm = tag + 1;
      for (const item of done) settle(item);
      return;
    }
    const index = tag - this.lwm;
    const item = this.window[index];
    this.window[index] = null;
    while (this.window.length > 0 && this.window[0] === null) {
      this.window.shift();
      this.lwm += 1;
    }
    settle(item);
  }

  /** basic.return precedes the confirm of the same message: mark the oldest matching unconfirmed one. */
  returned(exchange: string, routingKey: string, messageId: unknown, text: string): void {
    for (const item of this.window) {
      if (item !== null && item.returned === undefined && item.exchange === exchange && item.routingKey === routingKey && item.properties.messageId === messageId) {
        item.returned = text;
        return;
      }
    }
  }

  /**
   * The channel is gone: its unconfirmed messages go back to their calls for a resend — except those
   * for the exchange the broker refused (`refusal`), which fail with it (a resend would be refused again).
   */
  die(): void {
    if (!this.live) return;
    this.live = false;
    const unconfirmed = this.window.splice(0);
    const refusal = this.refusal;
    for (const item of unconfirmed) {
      if (item === null) continue;
      if (refusal !== undefined && refusedFor(refusal, item)) item.batch?.refused(refusal);
      else item.batch?.lose(item);
    }
    this.drained();
  }
}

export interface PublisherSettings {
  readonly timeoutMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly log: Logger;
}

/**
 * Publishes on one confirm channel per connection.
 *
 * Contract: `publish` resolves once the broker has confirmed every message; it rejects with
 * `UnroutableError` (mandatory and returned), `PublishRejectedError` (nacked), `AmqpAccessRefusedError`
 * (the user may not write to the exchange: the broker closed the channel with 403 — not resent),
 * `NotConnectedError` (publisher closed) or `TimeoutError` when not everything is confirmed within `timeoutMs`, which
 * bounds every call even on a dead link. Messages whose channel dies before their confirm are sent
 * again on the next channel (at-least-once: a resend may duplicate). While the connection is
 * blocked or down, sending waits. A full channel buffer waits for `drain`.
 *
 * One message never wedges the publisher: should amqplib still refuse one synchronously with the
 * channel open (`encodeMessage` validates first, so this is defence in depth), that message fails
 * alone with `AmqpUnencodableError` — the call rejects with `PartialPublishError` once the others
 * are confirmed — and the channel stays in use, or is replaced when its tag accounting cannot be
 * restored.
 */
export class AmqpPublisher implements ConnectionUser {
  private session: PublishSession | undefined;
  private readonly waiting = new Set<PublishBatch>();
  private closed = false;
  private reopenFailures = 0;

  constructor(
    private readonly manager: AmqpConnectionManager,
    private readonly settings: PublisherSettings,
  ) {}

  async connected(model: ChannelModel, generation: number): Promise<void> {
    if (this.closed) return;
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (error) {
      this.settings.log.warn('amqp: cannot open the confirm channel', { error: this.manager.redact(toError(error).message) });
      return;
    }
    const session = new PublishSession(channel, generation);
    channel.on('ack', (fields: { deliveryTag: number; multiple: boolean }) => session.confirm(fields.deliveryTag, fields.multiple, true));
    channel.on('nack', (fields: { deliveryTag: number; multiple: boolean }) => session.confirm(fields.deliveryTag, fields.multiple, false));
    channel.on('return', (message: { fields: { exchange: string; routingKey: string; replyText: string }; properties: { messageId?: unknown } }) =>
      session.returned(message.fields.exchange, message.fields.routingKey, message.properties.messageId, message.fields.replyText),
    );
    channel.on('drain', () => session.drained());
    channel.on('error', (error: unknown) => {
      const refusal = channelRefusalOf(error, (text) => this.manager.redact(text));
      if (refusal === undefined) this.settings.log.warn('amqp: publish channel error', { error: this.manager.redact(toError(error).message) });
      else {
        session.refusal = refusal;
        this.settings.log.error('amqp: the broker refused a publish; not retrying it', { code: refusal.code, error: refusal.message });
      }
    });
    channel.on('close', () => {
      session.die();
      if (this.session === session) this.session = undefined;
      if (session.retired) return; // retire() already asked for a fresh channel
      session.retired = true;
      this.reopen(generation);
    });
    this.session = session;
    this.reopenFailures = 0;
    this.wakeAll();
  }

  lost(generation: number): void {
    if (this.session?.generation === generation) {
      this.session.die();
      this.session = undefined;
    }
  }

  /** Publisher status changed (blocked/unblocked): waiting publishes look again. */
  wakeAll(): void {
    for (const batch of this.waiting) batch.notify();
  }

  /** Accepts publishes again (after `close`, on a new `connect`). */
  reopenForPublishing(): void {
    this.closed = false;
  }

  /** Pending publishes are refused from now on; waiting ones reject with `NotConnectedError`. */
  close(): void {
    this.closed = true;
    this.wakeAll();
  }

  async publish(items: readonly Outbound[]): Promise<void> {
    if (this.closed) throw new NotConnectedError(`publisher closed (${this.manager.redactedUrl})`);
    if (items.length === 0) return;
    const batch = new PublishBatch();
    const timer = setTimeout(() => batch.expire(), this.settings.timeoutMs);
    let toSend: readonly Outbound[] = items;
    try {
      while (toSend.length > 0) {
        const session = await this.sessionFor(batch);
        batch.outstanding += toSend.length;
        batch.lost = [];
        for (let index = 0; index < toSend.length; index += 1) {
          const item = toSend[index] as Outbound;
          if (!session.live) {
            for (let rest = index; rest < toSend.length; rest += 1) batch.lose(toSend[rest] as Outbound);
            break;
          }
          item.batch = batch;
          item.returned = undefined;
          let ok: boolean;
          try {
            ok = session.send(item);
          } catch (error) {
            const undone = session.unsend(item);
            if (isChannelClosed(error)) {
              // closing or closed under us: this one was not sent; the others go again on a fresh channel
              this.retire(session);
              batch.lose(item);
              continue;
            }
            // amqplib refused this message itself with the channel open (encodeMessage should have
            // caught it): it fails alone. When amqplib's confirm window could not be put back as it was,
            // its delivery-tag accounting is off: that channel is replaced (its unconfirmed go again).
            batch.fail(item, new AmqpUnencodableError(String(item.properties.messageId), 'properties', `were refused by amqplib: ${toError(error).message}`, { cause: error }));
            if (!undone) this.retire(session);
            continue;
          }
          if (!ok && session.live) {
            session.waitDrain(batch);
            await batch.changed();
            if (batch.expired) throw this.outcome(items, batch, this.timeout(items.length));
          }
        }
        while (batch.outstanding > 0 && !batch.expired) await batch.changed();
        if (batch.expired) throw this.outcome(items, batch, this.timeout(items.length));
        if (batch.error !== undefined) throw this.outcome(items, batch, batch.error);
        toSend = batch.lost;
      }
      if (batch.failures !== undefined) throw this.outcome(items, batch, undefined);
    } finally {
      clearTimeout(timer);
      for (const item of items) item.batch = undefined;
    }
  }

  /**
   * The error a call rejects with: `error` when every message shares it; when some failed alone, a
   * `PartialPublishError` naming each failed message (by its index in `items`) with its own error,
   * and the others with `error` if there is one (none: they were all confirmed).
   */
  private outcome(items: readonly Outbound[], batch: PublishBatch, error: Error | undefined): Error {
    const own = batch.failures;
    if (own === undefined) return error as Error;
    const failures = new Map<number, Error>();
    for (let index = 0; index < items.length; index += 1) {
      const failure = own.get(items[index] as Outbound) ?? error;
      if (failure !== undefined) failures.set(index, failure);
    }
    return new PartialPublishError(failures, items.length);
  }

  /**
   * Takes a session out of service: hands its unconfirmed messages back for a resend, stops it being
   * the current session, closes its channel and opens a fresh one. A dead session must never stay
   * current with an open channel: every later publish would wait for a live one and time out.
   */
  private retire(session: PublishSession): void {
    session.die();
    if (this.session === session) this.session = undefined;
    if (session.retired) return;
    session.retired = true;
    try {
      session.channel.close().catch(() => undefined);
    } catch {
      // already closing: its close event comes anyway
    }
    this.reopen(session.generation);
  }

  private timeout(count: number): TimeoutError {
    return new TimeoutError(`${count} message(s) not confirmed by ${this.manager.redactedUrl} within ${this.settings.timeoutMs} ms (state: ${this.manager.status.state})`);
  }

  /** The live session once the connection is up and not blocked; rejects on expiry or close. */
  private async sessionFor(batch: PublishBatch): Promise<PublishSession> {
    this.waiting.add(batch);
    try {
      for (;;) {
        if (this.closed) throw new NotConnectedError(`publisher closed (${this.manager.redactedUrl})`);
        if (batch.expired) throw this.timeout(batch.outstanding);
        const session = this.session;
        if (session !== undefined && session.live && this.manager.status.state === 'connected') return session;
        await batch.changed();
      }
    } finally {
      this.waiting.delete(batch);
    }
  }

  /** A channel-level close while the connection lives on (e.g. a 404 on a missing exchange): open a new one. */
  private reopen(generation: number): void {
    if (this.closed) return;
    const delay = backoffDelay(this.reopenFailures++, { initialMs: this.settings.initialDelayMs, maxMs: this.settings.maxDelayMs });
    setTimeout(() => {
      const live = this.manager.current;
      if (this.closed || this.session !== undefined || live === undefined || live.generation !== generation) return;
      void this.connected(live.model, generation);
    }, delay).unref();
  }
}

/**
 * The two steps of amqplib's `ConfirmChannel.publish` (0.10): reserve the message's confirm slot, then
 * encode and write the method, header and body frames. Internal API, checked for at each channel.
 */
interface DirectPublish {
  pushConfirmCallback(callback: false): void;
  sendMessage(fields: PublishFields, properties: PublishFields, content: Buffer): boolean;
}

/** A channel's `DirectPublish`, or undefined when this amqplib has not both methods (then `publish` is used). */
function directPublishOf(channel: ConfirmChannel): DirectPublish | undefined {
  const internal = channel as unknown as Partial<DirectPublish>;
  if (typeof internal.pushConfirmCallback !== 'function' || typeof internal.sendMessage !== 'function') return undefined;
  return internal as DirectPublish;
}

/** basic.publish's method fields and content properties in one object, as amqplib's encoder reads them. */
export interface PublishFields {
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  readonly immediate: false;
  readonly ticket: undefined;
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly headers: object;
  readonly deliveryMode: 1 | 2 | undefined;
  readonly priority: number | undefined;
  readonly correlationId: string | undefined;
  readonly replyTo: string | undefined;
  readonly expiration: string | undefined;
  readonly messageId: string | undefined;
  readonly timestamp: number | undefined;
  readonly type: string | undefined;
  readonly userId: string | undefined;
  readonly appId: string | undefined;
  readonly clusterId: undefined;
}

/**
 * What amqplib's `Args.publish` makes of publish options, as one object literal of one shape. amqplib's
 * own wraps the headers table in `Object.create(headers)`, so its encoder walks a prototype chain with
 * `for…in` for every message: ~2.5 µs a message with a one-entry table, a fifth of a bridge's CPU per
 * message (issue 17, measured). Same bytes on the wire: a table always (empty when there are no headers),
 * `persistent` → deliveryMode 2/1, `expiration` as a string. `CC`/`BCC` options are not used here:
 * `encodeMessage` puts allowed ones in the headers table already.
 */
export function publishFields(exchange: string, routingKey: string, options: Options.Publish): PublishFields {
  return {
    exchange,
    routingKey,
    mandatory: options.mandatory === true,
    immediate: false,
    ticket: undefined,
    contentType: options.contentType,
    contentEncoding: options.contentEncoding,
    headers: (options.headers as object | undefined) ?? {},
    deliveryMode: options.persistent !== undefined ? (options.persistent ? 2 : 1) : options.deliveryMode === undefined || options.deliveryMode === false ? undefined : typeof options.deliveryMode === 'number' ? (options.deliveryMode as 1 | 2) : 2,
    priority: options.priority,
    correlationId: options.correlationId,
    replyTo: options.replyTo,
    expiration: options.expiration === undefined ? undefined : String(options.expiration),
    messageId: options.messageId,
    timestamp: options.timestamp,
    type: options.type,
    userId: options.userId,
    appId: options.appId,
    clusterId: undefined,
  };
}

/** Whether `item` is one the refusal concerns: its exchange (`amq.default` is the default exchange, ''); any, when the broker named none. */
function refusedFor(refusal: AmqpAccessRefusedError, item: Outbound): boolean {
  const resource = refusal.resource;
  if (resource === undefined || resource.kind !== 'exchange') return true;
  return item.exchange === (resource.name === 'amq.default' ? '' : resource.name);
}

/** amqplib's own confirm window of a ConfirmChannel (internal: `unconfirmed`), if it still has one. */
function amqplibWindow(channel: ConfirmChannel): unknown[] | undefined {
  const window = (channel as unknown as { unconfirmed?: unknown }).unconfirmed;
  return Array.isArray(window) ? window : undefined;
}

/** amqplib's `IllegalOperationError` ('Channel closed', 'Channel closing'): the channel is gone, not the message at fault. */
function isChannelClosed(error: unknown): boolean {
  return error instanceof Error && error.name === 'IllegalOperationError';
}
