import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import { createIntegration, from, Logger, silentLogger } from '../../facade/index.ts';
import { Lifecycle, Transport } from '../../src/spi.ts';
import { MemoryTransport } from '../../src/channel/index.ts';

describe('createIntegration wiring', () => {
  it('makes the given logger the container\'s, so adapters resolved from DI log through it', () => {
    const Probe = Symbol('Probe');
    const probe = new ContainerModule(({ bind }) => {
      bind(Probe).toDynamicValue((context) => context.get<Logger>(Logger));
    });
    const app = createIntegration({ routes: [from('memory:in').to('memory:out')], modules: [probe], logger: silentLogger });
    expect(app.container.get(Probe)).toBe(silentLogger);
  });

  it('starts Lifecycle components after the transports and routes, and stops them before the routes and transports', async () => {
    const events: string[] = [];
    class RecordingTransport extends MemoryTransport {
      override async connect(): Promise<void> {
        events.push('transport connect');
        await super.connect();
      }
      override async close(): Promise<void> {
        events.push('transport close');
        await super.close();
      }
    }
    const component: Lifecycle = {
      start: async () => {
        events.push(`component start (route ${app.route('in').status})`);
      },
      stop: async () => {
        events.push(`component stop (route ${app.route('in').status})`);
      },
    };
    const modules = new ContainerModule(({ bind }) => {
      bind(MemoryTransport).toConstantValue(new RecordingTransport());
      bind<Transport>(Transport).toService(MemoryTransport);
      bind<Lifecycle>(Lifecycle).toConstantValue(component);
    });
    const app = createIntegration({ routes: [from('memory:in', { id: 'in' }).to('memory:out')], modules: [modules], logger: silentLogger });
    await app.start();
    await app.stop({ drainTimeoutMs: 100 });
    expect(events).toEqual(['transport connect', 'component start (route started)', 'component stop (route started)', 'transport close']);
  });
});
