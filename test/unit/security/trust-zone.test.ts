import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, from, schemaModule, silentLogger, type Message, type RouteSource } from '../../../facade/index.ts';
import type { RouteDefinition } from '../../../src/dsl/route-definition.ts';
import { validate } from '../../../patterns/validate.ts';
import { decryptBody, isEnvelope, Keyring, trustZone, trustZoneFlows } from '../../../facade/security/index.ts';
import type { MemoryTransport } from '../../../src/channel/memory-transport.ts';
import { parseEndpoint } from '../../../src/core/index.ts';
import type { Integration } from '../../../src/runtime/integration.ts';
import { JsonSchemaRegistry } from '../../../src/schema/index.ts';

const schema = {
  $id: 'urn:test:zone.customer:1',
  type: 'object',
  properties: {
    name: { type: 'string' },
    email: { type: 'string', 'x-classification': 'personal' },
    accounts: { type: 'array', items: { type: 'object', properties: { iban: { type: 'string', 'x-classification': 'secret' }, bank: { type: 'string' } } } },
  },
};
const registry = new JsonSchemaRegistry({ contracts: [{ subject: 'zone.customer', version: 1, schema }] });
const keys = new Keyring([{ id: 'k1', key: randomBytes(32) }]);
const body = { name: 'Ada', email: 'ada@example.org', accounts: [{ iban: 'DE89370400440532013000', bank: 'A' }, { iban: 'GB29NWBK60161331926819', bank: 'B' }] };

const apps: Integration[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
});

async function received(routes: RouteSource[], send: unknown, outputs: readonly string[]): Promise<Record<string, Message[]>> {
  const app = createIntegration({ routes, modules: [schemaModule({ registry })], logger: silentLogger });
  apps.push(app);
  await app.start();
  const memory = app.transport<MemoryTransport>('memory');
  const got: Record<string, Message[]> = {};
  for (const uri of outputs) {
    const list: Message[] = (got[uri] = []);
    memory.consume(parseEndpoint(uri), { prefetch: 100 }).subscribe((delivery) => {
      list.push(delivery.message);
      delivery.ack();
    });
  }
  await memory.publish(parseEndpoint('memory:customers'), [createMessage(send)]);
  const deadline = Date.now() + 10_000;
  while (outputs.some((uri) => (got[uri] ?? []).length === 0)) {
    if (Date.now() > deadline) throw new Error('nothing arrived');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return got;
}

describe('.protect() before an endpoint outside the trust zone', () => {
  it('encrypts the classified fields for the external endpoint, leaves the internal copy as it is', async () => {
    const route = from('memory:customers', { id: 'customers' })
      .step('validate', validate('zone.customer@1'), { contract: 'zone.customer@1' })
      .multicast([(branch) => branch.to('memory:crm'), (branch) => branch.protect({ keys }).to('memory:partner')]);
    const got = await received([route], body, ['memory:crm', 'memory:partner']);
    expect(got['memory:crm']?.[0]?.body).toEqual(body);
    const sent = got['memory:partner']?.[0] as Message<typeof body>;
    expect(sent.body.name).toBe('Ada');
    expect(sent.body.accounts.map((account) => account.bank)).toEqual(['A', 'B']);
    expect(isEnvelope(sent.body.email)).toBe(true);
    expect(isEnvelope(sent.body.accounts[1]?.iban)).toBe(true);
    expect(JSON.stringify(sent.body)).not.toMatch(/ada@example\.org|DE89370400440532013000|GB29NWBK60161331926819/);
    expect(sent.headers.schema).toBeUndefined();
    // the partner holding the key gets the values back
    const opened = decryptBody<typeof body>(sent, { keys, fields: ['/email', '/accounts/0/iban', '/accounts/1/iban'] });
    expect(opened.body).toEqual(body);
  });

  it('drops them for an endpoint that must not see them (content filter)', async () => {
    const route = from('memory:customers', { id: 'customers' }).step('validate', validate('zone.customer@1'), { contract: 'zone.customer@1' }).protect({ drop: true }).to('memory:analytics');
    const got = await received([route], body, ['memory:analytics']);
    expect(got['memory:analytics']?.[0]?.body).toEqual({ name: 'Ada', accounts: [{ bank: 'A' }, { bank: 'B' }] });
  });

  it('fails a message with no contract to go by instead of sending it in clear', async () => {
    const route = from('memory:customers', { id: 'customers' }).protect({ drop: true }).to('memory:analytics').deadLetterChannel('memory:customers.dlq');
    const got = await received([route], body, ['memory:customers.dlq']);
    expect(got['memory:customers.dlq']?.[0]?.headers['x-interchange-error-code']).toBe('SCHEMA_MISSING');
  });

  it('needs exactly one of keys and drop', () => {
    expect(() => from('memory:customers').protect({})).toThrow(/either keys/);
    expect(() => from('memory:customers').protect({ keys, drop: true })).toThrow(/either keys/);
  });
});

describe('trustZone and trustZoneFlows', () => {
  const zone = trustZone({ internal: ['memory:', 'amqp:queue/internal.'] });

  it('matches URIs by prefix', () => {
    expect(zone.contains('memory:crm')).toBe(true);
    expect(zone.contains('amqp:queue/internal.billing')).toBe(true);
    expect(zone.contains('amqp:exchange/partner')).toBe(false);
  });

  it('reports where classified fields flow, and which flows leave the zone unprotected', () => {
    const route = (build: { definition(): RouteDefinition }): RouteDefinition => build.definition();
    const definitions = [
      route(from('memory:customers', { id: 'leaky' }).step('validate', validate('zone.customer@1'), { contract: 'zone.customer@1' }).to('memory:crm').to('amqp:exchange/partner')),
      route(from('memory:customers', { id: 'guarded' }).step('validate', validate('zone.customer@1'), { contract: 'zone.customer@1' }).protect({ keys }).to('amqp:exchange/partner')),
    ];
    const flows = trustZoneFlows(definitions, zone, registry);
    expect(flows.map(({ route: id, destination, inside, protected: guarded, leaks }) => ({ id, destination, inside, guarded, leaks }))).toEqual([
      { id: 'leaky', destination: 'memory:crm', inside: true, guarded: false, leaks: false },
      { id: 'leaky', destination: 'amqp:exchange/partner', inside: false, guarded: false, leaks: true },
      { id: 'guarded', destination: 'amqp:exchange/partner', inside: false, guarded: true, leaks: false },
    ]);
    expect(flows[0]?.fields.map((field) => field.pointer)).toEqual(['/accounts/*/iban', '/email']);
  });
});
