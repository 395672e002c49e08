import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttTransportStatus } from '../../adapters/mqtt/mqtt-connection.ts';
import { isStatusReportingTransport, parseEndpoint } from '../../src/core/index.ts';
import { OwnMosquitto } from '../fault/mqtt-broker-fixture.ts';
import { runClientId, testTransport, waitFor } from './mqtt-helpers.ts';
import { freePort } from '../support/free-port.ts';

// The MQTT transport's status$ against a Mosquitto of this test's own (its own loopback port and
// config), stopped and started again by the test: the machine's broker on 1883 is never touched.


let broker: OwnMosquitto;
beforeAll(async () => {
  broker = new OwnMosquitto(await freePort(), false);
  await broker.start();
});
afterAll(async () => {
  await broker.dispose();
});

/** Consecutive duplicates dropped: the states a status stream went through. */
function statesOf(statuses: readonly MqttTransportStatus[]): string[] {
  return statuses.map((status) => status.state).filter((state, i, all) => i === 0 || all[i - 1] !== state);
}

describe('MQTT transport status$', () => {
  it('idle → connecting → connected; broker killed → reconnecting; restarted → connected; close → closed', async () => {
    const transport = testTransport({ url: broker.url, clientId: runClientId('status') });
    expect(isStatusReportingTransport(transport)).toBe(true);
    const seen: MqttTransportStatus[] = [];
    const watching = transport.status$.subscribe((status) => seen.push(status));
    expect(transport.status.state).toBe('idle');
    try {
      await transport.connect();
      expect(transport.status).toMatchObject({ state: 'connected', connections: 1, connected: 1 });
      // two consumers of one shared subscription, and a plain one: four connections in all
      const consumers = [
        transport.consume(parseEndpoint('mqtt:status/shared?qos=1&group=g')).subscribe(),
        transport.consume(parseEndpoint('mqtt:status/shared?qos=1&group=g')).subscribe(),
        transport.consume(parseEndpoint('mqtt:status/plain?qos=1')).subscribe(),
      ];
      await waitFor(() => transport.status.connections === 4, () => JSON.stringify(transport.status));
      expect(transport.status).toMatchObject({ state: 'connected', connected: 4 });

      const killedAt = Date.now();
      await broker.stop();
      await waitFor(() => transport.status.state === 'reconnecting', () => JSON.stringify(transport.status), 5_000);
      const lost = transport.status;
      expect(lost.since).toBeGreaterThanOrEqual(killedAt);
      // each connection was lost (none counted connected) and the error says which client and why
      await waitFor(() => transport.status.connected === 0 && transport.status.lastError !== undefined, () => JSON.stringify(transport.status), 5_000);
      expect(transport.status.lastError).toMatch(/^client '.+': /);

      await broker.start();
      await waitFor(() => transport.status.state === 'connected', () => JSON.stringify(transport.status), 10_000);
      expect(transport.status).toMatchObject({ connections: 4, connected: 4 });

      // a stopped consumer is no longer counted
      consumers[2]?.unsubscribe();
      await waitFor(() => transport.status.connections === 3, () => JSON.stringify(transport.status));
      expect(transport.status.state).toBe('connected');
      for (const consumer of consumers) consumer.unsubscribe();
    } finally {
      await transport.close();
    }
    expect(transport.status.state).toBe('closed');
    watching.unsubscribe();
    // a consumer's first connect never took the connected transport back to `connecting`
    expect(statesOf(seen)).toEqual(['idle', 'connecting', 'connected', 'reconnecting', 'connected', 'closed']);
  });

  it('reports a broker that is not there as connecting, then closed when connect gives up', async () => {
    const transport = testTransport({ url: `mqtt://127.0.0.1:${await freePort()}`, clientId: runClientId('status-down'), connectTimeoutMs: 1_000 });
    const seen: MqttTransportStatus[] = [];
    const watching = transport.status$.subscribe((status) => seen.push(status));
    await expect(transport.connect()).rejects.toThrow(/not reachable/);
    watching.unsubscribe();
    expect(statesOf(seen)).toEqual(['idle', 'connecting', 'closed']);
    expect(seen.find((status) => status.state === 'connecting' && status.lastError !== undefined)?.lastError).toMatch(/ECONNREFUSED/);
  });
});
