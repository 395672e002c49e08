import { randomUUID } from 'node:crypto';
import type { Subscriber } from 'rxjs';
import { redeliveryDecision, Settlement, toError, type Delivery, type Logger, type Message } from '../../src/core/index.ts';
import { xml, type XmlElement } from './xmpp-client.ts';
import { decodeStanza, encodeStanza, nestedDeeperThan } from './xmpp-codec.ts';
import type { XmppTarget } from './xmpp-endpoint.ts';
import { XmppDecodeError } from './xmpp-errors.ts';
import type { XmppSession } from './xmpp-session.ts';

export interface XmppSubscriptionSettings {
  readonly target: XmppTarget;
  /** At most this many emitted deliveries unsettled; later messages wait in a local queue. */
  readonly prefetch: number;
  /** Messages waiting beyond `prefetch` at most; more are dropped (counted in `dropped`, logged). */
  readonly maxWaiting: number;
  /** …and their stanzas' bytes at most. */
  readonly maxWaitingBytes: number;
  readonly maxMessageBytes: number;
  readonly maxStanzaBytes: number;
  readonly maxDeliveries: number;
  readonly publishTimeoutMs: number;
  readonly log: Logger;
}

/** A message element nested deeper than this is refused at intake (ours nest 2 deep). */
const MAX_STANZA_DEPTH = 32;

/** Nacks past `maxDeliveries` without a deadLetter JID: redelivered after 200 ms, doubling to 30 s (±50 %). */
const NACK_BACKOFF = { initialMs: 200, maxMs: 30_000 };

interface Waiting {
  readonly message: Message;
  readonly intakeError: Error | undefined;
  /** The stanza's size when it came from the server (counted in `waitingBytes`); 0 for nacked messages re-queued from memory. */
  readonly bytes?: number;
}

/**
 * One consumer of an account (`xmpp:<jid>`): its own XMPP session (resource `<prefix>-<random>`,
 * presence priority 0), so the server delivers to it the messages sent to the account — first those
 * it stored offline (mod_offline) while no session was available.
 *
 * XMPP has no consumer acknowledgement: a stanza the server delivered is the client's. So:
 * - the server pushes without flow control; this subscription emits at most `prefetch` unsettled
 *   deliveries and queues the rest in memory, up to `maxWaiting` messages and `maxWaitingBytes`
 *   (beyond: dropped, counted, logged);
 * - a stanza nested deeper than 32 elements or over `maxMessageBytes` is refused at intake
 *   (`XmppDecodeError`, a fresh id; measured without recursion);
 * - `ack` frees a window slot (the next waiting message is emitted on a fresh microtask);
 * - `nack` sends the message back to the server, addressed to this session (from the account itself,
 *   so its envelope and `attempt` + 1 are trusted), until `maxDeliveries`; then to the endpoint's
 *   `deadLetter` JID, or it is dropped and logged;
 * - stopping (abort, unsubscribe) first makes the session unavailable, then sends every queued
 *   message and every unsettled delivery back to the account's bare JID — stored offline for the next
 *   consumer (or delivered to another available session of the account) — and waits for the server's
 *   acks; a delivery settled after it was handed back is ignored. A crash loses what was in memory.
 * Senders: the account itself and `trust=` peers are trusted (their envelope is taken); with `from=`
 * only those senders and the trusted ones are taken, others dropped and counted (`refused`).
 */
export class XmppSubscription {
  private readonly waiting: Waiting[] = [];
  /** Bytes of the stanzas in `waiting`. */
  private waitingBytes = 0;
  private readonly unsettled = new Set<XmppDelivery>();
  /** Nacked messages waiting for their redelivery delay: handed back at once when the subscription stops. */
  private readonly delayed = new Map<NodeJS.Timeout, Waiting>();
  private intake = true;
  private closed = false;
  /** Hand-backs and nacks on their way to the server: `close` waits for them. */
  private readonly sending = new Set<Promise<void>>();
  /** Messages dropped because the local queue was full. */
  dropped = 0;
  /** Stanzas refused because their sender is not allowed (`from=`). */
  refused = 0;

  constructor(
    private readonly settings: XmppSubscriptionSettings,
    private readonly session: XmppSession,
    private readonly subscriber: Subscriber<Delivery>,
  ) {}

  /** (Re)announces availability: a new server session gets the account's offline messages now. */
  announce(): void {
    void (async () => {
      // confirmed by the server (XEP-0198), retried while the session is up: without it the account's offline messages never come
      for (let attempt = 1; this.intake && !this.closed; attempt += 1) {
        try {
          await this.session.send([xml('presence', {}, xml('priority', {}, '0'))], this.settings.publishTimeoutMs);
          return;
        } catch (error) {
          if (!this.session.isOnline && this.session.status.state !== 'connected') return; // a new session announces again
          this.settings.log.warn('xmpp: presence not confirmed, sending it again', { account: this.session.bare, attempt, error: toError(error).message });
          await new Promise((resolve) => setTimeout(resolve, Math.min(1_000 * attempt, 5_000)));
        }
      }
    })();
  }

  onStanza(stanza: XmlElement): void {
    // after `close` began, until the session is stopped, what still arrives (sent before the server saw our unavailable presence) is handed back below
    if (!stanza.is('message')) return;
    const type = stanza.attrs.type ?? 'normal';
    if (type !== 'chat' && type !== 'normal') {
      if (type === 'error') this.settings.log.warn('xmpp: a message bounced', { account: this.session.bare, from: (stanza.attrs.from ?? '').slice(0, 300) });
      return;
    }
    const from = stanza.attrs.from ?? this.settings.target.domain;
    const sender = bareOf(from);
    const own = sender === this.session.bare;
    const trusted = own || this.settings.target.trust.has(sender);
    if (!trusted && this.settings.target.from !== undefined && !this.settings.target.from.has(sender)) {
      this.refused += 1;
      if (this.refused === 1 || this.refused % 1_000 === 0) this.settings.log.warn('xmpp: message from a sender not allowed (from=) dropped', { account: this.session.bare, sender: sender.slice(0, 300), refused: this.refused });
      return;
    }
    // ltx's toString recurses: measure the depth without recursion first (a hostile stanza nested 20,000 deep overflows the stack)
    const tooDeep = nestedDeeperThan(stanza, MAX_STANZA_DEPTH);
    const size = tooDeep ? 0 : Buffer.byteLength(stanza.toString());
    let message: Message;
    let intakeError: Error | undefined;
    if (tooDeep) {
      message = { id: randomUUID(), headers: { xmppFrom: from.slice(0, 3071) }, body: '' };
      intakeError = new XmppDecodeError(`message from ${sender.slice(0, 200)} is nested deeper than ${MAX_STANZA_DEPTH} elements`);
    } else if (size > this.settings.maxMessageBytes) {
      message = { id: randomUUID(), headers: { xmppFrom: from.slice(0, 3071) }, body: '' };
      intakeError = new XmppDecodeError(`message from ${sender.slice(0, 200)} is a ${size}-byte stanza, over maxMessageBytes ${this.settings.maxMessageBytes}`);
    } else {
      const decoded = decodeStanza(stanza, { from, trusted, own });
      if (decoded === undefined) return; // no body: a chat state, a receipt
      ({ message } = decoded);
      intakeError = decoded.intakeError;
    }
    if (!this.intake) {
      this.handBack(message, false);
      return;
    }
    if (this.unsettled.size < this.settings.prefetch) {
      this.emit(message, intakeError);
      return;
    }
    if (this.waiting.length >= this.settings.maxWaiting || this.waitingBytes + size > this.settings.maxWaitingBytes) {
      this.dropped += 1;
      if (this.dropped === 1 || this.dropped % 1_000 === 0) this.settings.log.warn('xmpp: local queue full, message dropped', { account: this.session.bare, dropped: this.dropped, waiting: this.waiting.length, waitingBytes: this.waitingBytes });
      return;
    }
    this.waitingBytes += size;
    this.waiting.push({ message, intakeError, bytes: size });
  }

  /** Stops taking messages: the session goes unavailable and the queued messages go back to the account. */
  stopIntake(): void {
    if (!this.intake) return;
    this.intake = false;
    this.session.sendNow(xml('presence', { type: 'unavailable' })).catch(() => undefined);
    this.waitingBytes = 0;
    for (const waiting of this.waiting.splice(0)) this.handBack(waiting.message, false);
  }

  /** Stops intake, hands back every unsettled delivery, waits for the server's acks (bounded), closes the session. */
  async close(): Promise<void> {
    this.stopIntake();
    this.closed = true;
    for (const delivery of this.unsettled) {
      delivery.handedBack = true;
      this.handBack(delivery.message, true);
    }
    this.unsettled.clear();
    for (const [timer, waiting] of this.delayed) {
      clearTimeout(timer);
      this.track(this.send(waiting.message, this.session.bare, waiting.message.headers.attempt), 'hand-back');
    }
    this.delayed.clear();
    await Promise.allSettled([...this.sending]);
    await this.session.stop();
  }

  /** A delivery of this subscription was acked (or nacked and dealt with). */
  settled(delivery: XmppDelivery): void {
    if (!this.unsettled.delete(delivery) || this.closed || !this.intake) return;
    const next = this.takeWaiting();
    if (next === undefined) return;
    const reserved = new XmppDelivery(next.message, this, next.intakeError);
    this.unsettled.add(reserved);
    queueMicrotask(() => {
      if (this.closed || !this.intake) return; // stopIntake/close hand it back: still in `unsettled`
      this.subscriber.next(reserved);
    });
  }

  nacked(delivery: XmppDelivery, reason: Error): void {
    const attempt = delivery.message.headers.attempt ?? 1;
    const deadLetter = this.settings.target.deadLetter;
    // with a deadLetter JID: bounded (maxDeliveries, then the dead letter); without: never given up —
    // redelivered later and later (a server outage must not drop messages) — unless retrying cannot help
    const decision = redeliveryDecision({ attempt, maxDeliveries: this.settings.maxDeliveries, reason, permanentAtOnce: true, ...(deadLetter === undefined ? { backoff: NACK_BACKOFF } : {}) });
    if (decision.action === 'deadLetter') {
      if (deadLetter === undefined) {
        this.settings.log.warn('xmpp: message nacked with a permanent reason and no deadLetter JID: dropped', { account: this.session.bare, id: delivery.message.id, attempts: attempt, reason: reason.message.slice(0, 500) });
      } else {
        const headers = { ...delivery.message.headers, 'x-interchange-reason': reason.message.slice(0, 1_000), 'x-interchange-attempts': attempt };
        this.track(this.send({ ...delivery.message, headers }, deadLetter, undefined), 'dead-letter');
      }
    } else if (decision.delayMs > 0) {
      const timer = setTimeout(() => {
        this.delayed.delete(timer);
        this.redeliver(delivery, attempt + 1);
      }, decision.delayMs);
      this.delayed.set(timer, { message: withAttempt(delivery.message, attempt + 1), intakeError: delivery.intakeError });
    } else {
      this.redeliver(delivery, attempt + 1);
    }
    this.settled(delivery);
  }

  /**
   * Back to the server, addressed to this very session while it is available (to the account — its
   * offline store — once it is not); from memory while the server is away or when the resend is not
   * confirmed (the stream broke meanwhile).
   */
  private redeliver(delivery: XmppDelivery, attempt: number): void {
    if (this.intake && !this.session.isOnline) {
      this.waiting.unshift({ message: withAttempt(delivery.message, attempt), intakeError: delivery.intakeError });
      queueMicrotask(() => this.pump());
      return;
    }
    const sending = this.send(delivery.message, this.intake ? this.session.jid : this.session.bare, attempt).catch((error: unknown) => {
      if (this.closed || !this.intake) throw error;
      this.settings.log.warn('xmpp: a nacked message could not go back to the server; redelivered from memory', { account: this.session.bare, error: toError(error).message });
      this.waiting.unshift({ message: withAttempt(delivery.message, attempt), intakeError: delivery.intakeError });
      this.pump();
    });
    this.track(sending, 'nack');
  }

  /** Emits waiting messages into free window slots (after a message was queued outside an intake). */
  private pump(): void {
    while (!this.closed && this.intake && this.unsettled.size < this.settings.prefetch) {
      const next = this.takeWaiting();
      if (next === undefined) return;
      this.emit(next.message, next.intakeError);
    }
  }

  private takeWaiting(): Waiting | undefined {
    const next = this.waiting.shift();
    this.waitingBytes -= next?.bytes ?? 0;
    return next;
  }

  private emit(message: Message, intakeError: Error | undefined): void {
    const delivery = new XmppDelivery(message, this, intakeError);
    this.unsettled.add(delivery);
    this.subscriber.next(delivery);
  }

  /** Back to the account's bare JID: `delivered` = the route had it (attempt + 1), else the same attempt. */
  private handBack(message: Message, delivered: boolean): void {
    const attempt = (message.headers.attempt ?? 1) + (delivered ? 1 : 0);
    this.track(this.send(message, this.session.bare, attempt), 'hand-back');
  }

  private async send(message: Message, to: string, attempt: number | undefined): Promise<void> {
    const stanza = encodeStanza(message, to, { envelope: 'interchange', maxStanzaBytes: this.settings.maxStanzaBytes, ...(attempt === undefined ? {} : { attempt }) });
    return this.session.send([stanza], this.settings.publishTimeoutMs);
  }

  private track(sending: Promise<void>, what: string): void {
    const tracked = sending.catch((error: unknown) => {
      this.settings.log.error(`xmpp: ${what} not confirmed by the server: the message may be lost`, { account: this.session.bare, error: toError(error).message });
    });
    this.sending.add(tracked);
    void tracked.finally(() => this.sending.delete(tracked));
  }
}

class XmppDelivery extends Settlement {
  /** Handed back to the server when its subscription closed: settling it does nothing. */
  handedBack = false;

  constructor(
    message: Message,
    private readonly owner: XmppSubscription,
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  protected onAck(): void {
    if (!this.handedBack) this.owner.settled(this);
  }

  protected onNack(reason: Error): void {
    if (!this.handedBack) this.owner.nacked(this, reason);
  }
}

function withAttempt(message: Message, attempt: number): Message {
  return { ...message, headers: { ...message.headers, attempt } };
}

function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return (slash < 0 ? jid : jid.slice(0, slash)).toLowerCase();
}
