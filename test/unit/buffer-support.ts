import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observable } from 'rxjs';
import { Probe } from '../../facade/testing/contract-probe.ts';
import { BufferTransport, type BufferTransportOptions } from '../../adapters/buffer/index.ts';
import { createMessage, parseEndpoint, type Delivery, type Endpoint, type Logger, type Message } from '../../src/core/index.ts';

export { Probe };

/** A logger that keeps every line, for assertions on what the buffer said. */
export class RecordingLogger implements Logger {
  readonly lines: { level: 'info' | 'warn' | 'error'; message: string; fields?: Readonly<Record<string, unknown>> | undefined }[] = [];
  info(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.lines.push({ level: 'error', message, fields });
  }
  at(level: 'info' | 'warn' | 'error'): string[] {
    return this.lines.filter((line) => line.level === level).map((line) => line.message);
  }
}

/** A fresh temp directory per test, and the transports opened on it (closed, then the directory removed, by `cleanup`). */
export class BufferFixture {
  directory = '';
  readonly logger = new RecordingLogger();
  private readonly transports: BufferTransport[] = [];

  async setUp(): Promise<void> {
    this.logger.lines.length = 0;
    this.directory = await mkdtemp(join(tmpdir(), 'interchange-buffer-'));
  }

  async transport(options: Partial<BufferTransportOptions> = {}): Promise<BufferTransport> {
    const transport = new BufferTransport({ directory: this.directory, logger: this.logger, cursorIntervalMs: 5, redelivery: { initialMs: 10, maxMs: 40 }, ...options });
    await transport.connect();
    this.transports.push(transport);
    return transport;
  }

  async cleanup(): Promise<void> {
    for (const transport of this.transports.splice(0)) await transport.close();
    await rm(this.directory, { recursive: true, force: true });
  }
}

export const endpoint = (name: string, query = ''): Endpoint => parseEndpoint(`buffer:${name}${query}`);

/** `count` messages with ids `<prefix>-0`… and a numbered JSON body. */
export function numbered(count: number, prefix = 'm', from = 0): Message[] {
  return Array.from({ length: count }, (_, index) => createMessage({ n: from + index, text: `message ${from + index}` }, { id: `${prefix}-${from + index}` }));
}

/** Consumes `source`, settling each delivery as `onDelivery` says (default: ack at once); see `Probe`. */
export function consume(source: Observable<Delivery>, onDelivery: 'ack' | 'hold' | ((delivery: Delivery) => void) = 'ack'): Probe {
  return new Probe(source, onDelivery === 'ack' ? (delivery) => delivery.ack() : onDelivery === 'hold' ? () => undefined : onDelivery);
}

export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const settle = (ms = 50): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
