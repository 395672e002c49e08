import { isTemplate, parseEndpoint, withHeaders, type Headers, type Message } from '../../src/core/index.ts';
import type { SchemaRegistry } from '../../src/schema/index.ts';
import type { Queryable } from './database.ts';
import { resolveTables, type ResolvedTables, type TableNames } from './migrations.ts';
import { OutboxMessageError, PostgresConfigurationError } from './postgres-errors.ts';

export interface OutboxAddOptions {
  /** Endpoint URI the relay publishes to (`amqp:exchange/orders?routingKey=order.placed`, `mqtt:…`, `memory:…`); no `{placeholders}`. */
  readonly destination: string;
  /**
   * Messages with the same key are published in the order they were added, one after another;
   * different keys are published in parallel. Use the aggregate's id (`order-42`). Default: the
   * destination (one ordered stream per destination, as a single publisher would do).
   */
  readonly partitionKey?: string;
  /** The body's contract, `subject@version`; default: the message's `schema` header. */
  readonly contract?: string;
}

export interface OutboxOptions extends TableNames {
  /** Validates bodies against their contract before insert; needed as soon as a message names one. */
  readonly registry?: SchemaRegistry;
  /** Refuse messages that name no contract (default false). */
  readonly requireContract?: boolean;
  /**
   * The W3C trace context to stamp on a message added without a `traceparent` header, so the route
   * that consumes the published row continues the caller's trace: pass `activeTraceHeaders` (the
   * active OpenTelemetry span's `traceparent`/`tracestate`, from `interchange-eip`). Called once per
   * such message, in `add`; undefined (its default, or what it returns) stamps nothing. A message's
   * own `traceparent` is always kept: headers are stored and published as they are.
   */
  readonly traceHeaders?: () => { readonly traceparent: string; readonly tracestate?: string } | undefined;
}

/** A message as stored in (and read back from) the outbox table. */
export interface OutboxRow {
  readonly position: string | number;
  readonly message_id: string;
  readonly destination: string;
  readonly partition_key: string;
  readonly headers: Record<string, unknown>;
  readonly body: unknown;
  readonly body_bytes: Uint8Array | null;
  readonly attempts: number;
}

/**
 * The service side of the transactional outbox (Debezium's / MassTransit's outbox): `add` inserts a
 * message into the outbox table *inside the caller's transaction*, so the message exists if and only
 * if the transaction commits; the `OutboxRelay` publishes it afterwards, at least once, keeping its id
 * (consumers deduplicate with an inbox).
 *
 * Contract: `add` validates the body against its contract first (`SchemaValidationError`, nothing
 * inserted); refuses a destination that is not a concrete endpoint URI (`EndpointError`), a body that
 * is neither JSON nor bytes (`OutboxMessageError`) and a contract without a registry
 * (`PostgresConfigurationError`). It runs one `INSERT` on `tx` and never commits or rolls back.
 * Headers are stored and published as they are — a `traceparent` included, so a trace goes on
 * through the outbox; option `traceHeaders` stamps the caller's on messages created without one.
 * The tables must exist (`migrate`).
 * @example
 * await db.transaction(async (tx) => {
 *   await tx.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [order.id, order.total]);
 *   await outbox.add(tx, createMessage(order, { headers: { schema: 'order.placed@1' } }), { destination: 'amqp:exchange/orders', partitionKey: order.id });
 * });
 */
export class Outbox {
  readonly tables: ResolvedTables;
  private readonly registry: SchemaRegistry | undefined;
  private readonly requireContract: boolean;
  private readonly traceHeaders: OutboxOptions['traceHeaders'];

  constructor({ registry, requireContract = false, traceHeaders, ...names }: OutboxOptions = {}) {
    this.tables = resolveTables(names);
    this.registry = registry;
    this.requireContract = requireContract;
    this.traceHeaders = traceHeaders;
  }

  /** Inserts one message in the caller's transaction `tx`. */
  async add(tx: Queryable, message: Message, options: OutboxAddOptions): Promise<void> {
    await this.addAll(tx, [message], options);
  }

  /** Inserts several messages with one statement, in this order (positions ascending). */
  async addAll(tx: Queryable, messages: readonly Message[], options: OutboxAddOptions | ((message: Message) => OutboxAddOptions)): Promise<void> {
    if (messages.length === 0) return;
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const message of messages) {
      const row = this.encode(message, typeof options === 'function' ? options(message) : options);
      const base = params.length;
      tuples.push(`($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}::text::jsonb, $${base + 5}::text::jsonb, $${base + 6}::bytea)`);
      params.push(...row);
    }
    await tx.query(`INSERT INTO ${this.tables.outbox} (message_id, destination, partition_key, headers, body, body_bytes) VALUES ${tuples.join(', ')}`, params);
  }

  private encode(message: Message, { destination, partitionKey, contract }: OutboxAddOptions): unknown[] {
    if (isTemplate(destination)) throw new OutboxMessageError(`outbox destination must be a concrete endpoint URI, got the template '${destination}'`);
    parseEndpoint(destination);
    const checked = this.validated(message, contract ?? message.headers.schema);
    const { attempt: _attempt, ...headers } = this.traced(checked).headers;
    const body: unknown = checked.body;
    let json: string | null = null;
    let bytes: Uint8Array | null = null;
    if (body instanceof Uint8Array) bytes = body;
    else {
      try {
        json = JSON.stringify(body) ?? null;
      } catch (cause) {
        throw new OutboxMessageError(`message ${message.id}: body is not JSON-serialisable: ${(cause as Error).message}`, { cause });
      }
      if (json === null) throw new OutboxMessageError(`message ${message.id}: body is not JSON-serialisable (${typeof body})`);
    }
    return [message.id, destination, partitionKey ?? destination, JSON.stringify(headers), json, bytes];
  }

  /** The message with the caller's trace context (`traceHeaders`) when it carries none of its own. */
  private traced(message: Message): Message {
    if (this.traceHeaders === undefined || message.headers.traceparent !== undefined) return message;
    const trace = this.traceHeaders();
    return trace === undefined ? message : withHeaders(message, trace.tracestate === undefined ? { traceparent: trace.traceparent } : { traceparent: trace.traceparent, tracestate: trace.tracestate });
  }

  private validated(message: Message, contract: string | undefined): Message {
    if (contract === undefined) {
      if (this.requireContract) throw new OutboxMessageError(`message ${message.id} names no contract (schema header or { contract }) and this outbox requires one`);
      return message;
    }
    if (this.registry === undefined) throw new PostgresConfigurationError(`message ${message.id} names contract ${contract} but the outbox has no schema registry: pass { registry }`);
    const body = this.registry.validate(contract, message.body, 'outbound');
    const withBody = body === message.body ? message : { ...message, body };
    return message.headers.schema === contract ? withBody : withHeaders(withBody, { schema: contract });
  }
}

/** Reads a claimed row back into the message that was added (same id, headers and body). */
export function decodeOutboxRow(row: OutboxRow): Message {
  const body = row.body_bytes === null ? row.body : Buffer.from(row.body_bytes);
  return { id: row.message_id, headers: row.headers as Headers, body };
}
