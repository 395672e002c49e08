import { defineOptions } from '../../src/core/index.ts';
import type { OutboxRelayOptions } from './outbox-relay.ts';
import { PostgresConfigurationError } from './postgres-errors.ts';

const identifier = { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,50}$' } as const;

/** The options of `postgresModule` and `OutboxRelay` as JSON Schema (draft 2020-12): the one source for validation and docs. */
export const postgresOptionsSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'PostgreSQL outbox/inbox options',
  type: 'object',
  additionalProperties: false,
  properties: {
    schema: { ...identifier, default: 'public', description: 'Schema of the outbox and inbox tables (created if missing).' },
    outboxTable: { ...identifier, default: 'interchange_outbox', description: 'Outbox table name.' },
    inboxTable: { ...identifier, default: 'interchange_inbox', description: 'Inbox table name.' },
    relay: {
      description: 'Outbox relay settings; false binds no relay.',
      oneOf: [
        { const: false },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            relayId: { type: 'string', minLength: 1, description: 'Names the relay\'s leases; unique per running relay (default host:pid:random).' },
            batchSize: { type: 'integer', minimum: 1, maximum: 10000, default: 200, description: 'Rows claimed per round.' },
            concurrency: { type: 'integer', minimum: 1, maximum: 64, default: 2, description: 'Rounds in flight at once in one relay (claims overlap publishes).' },
            scanSize: { type: 'integer', minimum: 1, maximum: 100000, default: 1000, description: 'Oldest pending rows looked at to choose partitions.' },
            pollIntervalMs: { type: 'integer', minimum: 1, default: 1000, description: 'Polling period when no NOTIFY arrives, ms.' },
            leaseMs: { type: 'integer', minimum: 100, default: 120000, description: 'How long a claim holds its rows, ms; keep above the publish timeout.' },
            maxAttempts: { type: 'integer', minimum: 1, default: 10, description: 'Failed attempts before a row is parked.' },
            backoff: {
              type: 'object',
              additionalProperties: false,
              properties: {
                initialMs: { type: 'integer', minimum: 0, default: 500, description: 'Delay before the second attempt, ms.' },
                maxMs: { type: 'integer', minimum: 0, default: 60000, description: 'Ceiling of the delay, ms.' },
              },
            },
            retention: {
              description: '"delete" published rows (default), or keep them marked sent for keepSentMs.',
              oneOf: [
                { const: 'delete' },
                {
                  type: 'object',
                  additionalProperties: false,
                  required: ['keepSentMs'],
                  properties: {
                    keepSentMs: { type: 'integer', minimum: 0, description: 'How long sent rows are kept, ms.' },
                    cleanupIntervalMs: { type: 'integer', minimum: 1, default: 60000, description: 'How often sent rows past retention are deleted, ms.' },
                  },
                },
              ],
            },
            migrate: { type: 'boolean', default: true, description: 'Create the tables at start (idempotent).' },
          },
        },
      ],
    },
  },
} as const;

/** The JSON part of the options (no logger, database or registry). */
export interface PostgresJsonOptions {
  readonly schema?: string;
  readonly outboxTable?: string;
  readonly inboxTable?: string;
  readonly relay?: false | Omit<OutboxRelayOptions, 'log' | 'schema' | 'outboxTable' | 'inboxTable'>;
}

const postgresOptions = defineOptions<PostgresJsonOptions>(postgresOptionsSchema, { error: (message) => new PostgresConfigurationError(message) });

/** Checks options against `postgresOptionsSchema`; throws `PostgresConfigurationError` listing every problem. */
export function validatePostgresOptions(options: PostgresJsonOptions): void {
  postgresOptions.validate(options, 'PostgreSQL options');
}

