import type { OutgoingMessage } from 'coap';
import { Settlement, type Message } from '../../src/core/index.ts';
import type { InboundRequest } from './coap-codec.ts';

/** The answer an exchange got, kept to answer a retransmission of the same request the same way. */
export interface Answer {
  readonly code: string;
  readonly payload: string;
  readonly maxAgeSeconds?: number;
  /** Size1 (RFC 7959): with 4.13, the largest payload taken. */
  readonly size1?: number;
}

/** What an emitted delivery reports to when it settles. */
export interface ExchangeOwner {
  acked(delivery: CoapDelivery): void;
  nacked(delivery: CoapDelivery, reason: Error): void;
}

/**
 * One device request held by the embedded server until it is answered: waiting for a consumer, in a
 * route, or being redelivered. Its response (node-coap's) is written once, by `answer`.
 */
export class Exchange {
  /** Emissions so far (the next delivery's `attempt` is `emissions + 1`). */
  emissions = 0;
  /** The consumer holding the current emission, if any. */
  owner: object | undefined = undefined;
  answered = false;
  /** Set while the request waits for a consumer to appear (`holdMs`). */
  holdTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    /** `peer/messageId/token`: a retransmission has the same key. */
    readonly key: string,
    readonly request: InboundRequest,
    private readonly response: OutgoingMessage,
    private readonly onAnswer: (exchange: Exchange, answer: Answer) => void,
  ) {}

  /** Writes the response (once): piggy-backed on the ACK when still in time, else node-coap's separate response. */
  answer(answer: Answer): void {
    if (this.answered) return;
    this.answered = true;
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.onAnswer(this, answer);
    writeAnswer(this.response, answer);
  }
}

/** Writes `answer` to a node-coap response. */
export function writeAnswer(response: OutgoingMessage, answer: Answer): void {
  response.code = answer.code;
  response.statusCode = answer.code; // what node-coap's ObserveWriteStream sends (it ignores `code`)
  if (answer.maxAgeSeconds !== undefined) response.setOption('Max-Age', answer.maxAgeSeconds);
  if (answer.size1 !== undefined) response.setOption('Size1', answer.size1);
  if (answer.payload !== '') response.setOption('Content-Format', 'text/plain');
  response.end(answer.payload === '' ? undefined : Buffer.from(answer.payload));
}

/** One emission of an exchange as a delivery: its ack answers 2.04, its nack as `Ingress` says. */
export class CoapDelivery extends Settlement {
  constructor(
    message: Message,
    readonly exchange: Exchange,
    /** Which emission of the exchange this is: settling an older one does nothing. */
    readonly emission: number,
    readonly consumer: object,
    private readonly target: ExchangeOwner,
    readonly intakeError: Error | undefined,
  ) {
    super(message);
  }

  protected onAck(): void {
    this.target.acked(this);
  }

  protected onNack(reason: Error): void {
    this.target.nacked(this, reason);
  }
}
