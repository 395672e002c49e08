import { Observable } from 'rxjs';
import { createDelivery, defineOptions, NotConnectedError, positiveIntegerOption, redeliveryDecision, withHeaders, type ConsumeOptions, type Delivery, type Endpoint, type Message, type Transport } from 'interchange-eip/spi';

// A transport written the way a third party would write one: outside the core, against the
// `interchange-eip/spi` entry only (no relative import into src/), with the adapter toolkit
// (defineOptions, redeliveryDecision). test/contract/third-party.contract.test.ts runs the
// exported contract suite on it.

const echoOptions = defineOptions<{ readonly maxDeliveries?: string }>({
  type: 'object',
  additionalProperties: false,
  properties: { maxDeliveries: positiveIntegerOption('deliveries of a nacked message before it moves to <name>.dead (default 5)', 6) },
});

/** A consumer attached to a queue: takes messages while it has room under its prefetch. */
interface EchoConsumer {
  readonly hasRoom: boolean;
  take(message: Message): void;
}

/** A FIFO with competing consumers, round-robin; a returned message goes back to the front. */
class EchoQueue {
  private readonly messages: Message[] = [];
  private readonly consumers: EchoConsumer[] = [];
  private next = 0;

  offer(messages: readonly Message[]): void {
    this.messages.push(...messages);
    this.pump();
  }

  giveBack(messages: readonly Message[]): void {
    this.messages.unshift(...messages.map((message) => withHeaders(message, { attempt: (message.headers.attempt ?? 1) + 1 })));
    this.pump();
  }

  attach(consumer: EchoConsumer): void {
    this.consumers.push(consumer);
    this.pump();
  }

  detach(consumer: EchoConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  pump(): void {
    let idle = 0;
    while (this.messages.length > 0 && idle < this.consumers.length) {
      const consumer = this.consumers[this.next++ % this.consumers.length] as EchoConsumer;
      if (!consumer.hasRoom) {
        idle += 1;
        continue;
      }
      idle = 0;
      consumer.take(this.messages.shift() as Message);
    }
  }
}

/**
 * `echo:<name>`: in-process point-to-point queues (competing consumers, publish order, nothing
 * bounded). A nacked delivery comes back with `attempt + 1`, at most `maxDeliveries` times, then
 * moves to `echo:<name>.dead`; unsettled deliveries of a consumer that unsubscribes go back to the
 * front of the queue; aborting `signal` stops the intake only. Queues survive `close`/`connect`.
 */
export class EchoTransport implements Transport {
  readonly scheme = 'echo';
  private readonly queues = new Map<string, EchoQueue>();
  private readonly intakes = new Set<() => void>();
  private closed = true;

  async connect(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stopIntake of this.intakes) stopIntake();
  }

  async publish(endpoint: Endpoint, messages: readonly Message[]): Promise<void> {
    echoOptions.validate(endpoint.options, endpoint);
    if (this.closed) throw new NotConnectedError(`echo transport is closed; cannot publish to '${endpoint.uri}'`);
    this.queue(endpoint.path).offer(messages);
  }

  consume(endpoint: Endpoint, { prefetch = 100, signal }: ConsumeOptions = {}): Observable<Delivery> {
    return new Observable<Delivery>((subscriber) => {
      const { maxDeliveries = '5' } = echoOptions.validate(endpoint.options, endpoint);
      if (signal?.aborted === true) return subscriber.complete();
      const queue = this.queue(endpoint.path);
      const unsettled = new Set<Message>();
      const settled = (message: Message): boolean => unsettled.delete(message);
      const consumer: EchoConsumer = {
        get hasRoom() {
          return unsettled.size < prefetch;
        },
        take: (message) => {
          unsettled.add(message);
          subscriber.next(
            createDelivery(message, {
              ack: () => {
                if (settled(message)) queue.pump();
              },
              nack: (reason) => {
                if (!settled(message)) return;
                const decision = redeliveryDecision({ attempt: message.headers.attempt ?? 1, maxDeliveries: Number(maxDeliveries), reason });
                if (decision.action === 'deadLetter') this.queue(`${endpoint.path}.dead`).offer([withHeaders(message, { 'x-interchange-error': reason.message })]);
                else queue.giveBack([message]);
                queue.pump();
              },
            }),
          );
        },
      };
      const stopIntake = (): void => queue.detach(consumer);
      signal?.addEventListener('abort', stopIntake, { once: true });
      this.intakes.add(stopIntake);
      queue.attach(consumer);
      return () => {
        signal?.removeEventListener('abort', stopIntake);
        this.intakes.delete(stopIntake);
        stopIntake();
        const handedBack = [...unsettled];
        unsettled.clear();
        queue.giveBack(handedBack);
      };
    });
  }

  private queue(name: string): EchoQueue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new EchoQueue();
      this.queues.set(name, queue);
    }
    return queue;
  }
}
