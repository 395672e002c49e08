import { describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../adapters/amqp/index.ts';
import { MqttTransport } from '../../adapters/mqtt/index.ts';
import { MemoryTransport } from '../../src/channel/index.ts';
import { isObservableTransport, isProvisionableTransport, isStatusReportingTransport, silentLogger, type ProvisionableTransport, type StatusReportingTransport, type Transport } from '../../src/core/index.ts';

// Optional abilities are small interfaces with a type guard each, not casts to an adapter's class.
describe('optional transport abilities', () => {
  const memory = new MemoryTransport({ logger: silentLogger });
  const mqtt = new MqttTransport({ url: 'mqtt://127.0.0.1:1', persistentSession: false });
  const amqp = new AmqpTransport({ url: 'amqp://127.0.0.1:1' }, silentLogger);

  it('each guard recognises the transports that have the ability, and only those', () => {
    const transports: readonly Transport[] = [memory, mqtt, amqp];
    expect(transports.filter(isObservableTransport)).toEqual([memory]);
    expect(transports.filter(isProvisionableTransport)).toEqual([mqtt]);
    expect(transports.filter(isStatusReportingTransport)).toEqual([mqtt, amqp]);
  });

  it('a narrowed transport is used through the ability, no cast', async () => {
    const transport: Transport = amqp;
    if (!isStatusReportingTransport(transport)) throw new Error('AMQP reports its status');
    const states: string[] = [];
    transport.status$.subscribe((status) => states.push(status.state)).unsubscribe();
    expect(states).toEqual(['idle']);
    // the adapters' classes satisfy the interfaces (checked by the compiler)
    const abilities: [ProvisionableTransport, StatusReportingTransport] = [mqtt, amqp];
    expect(abilities).toHaveLength(2);
  });
});
