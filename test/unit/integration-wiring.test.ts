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

  it("gives a route without a prefetch its source transport's defaultPrefetch, else 100; a route's own wins", async () => {
    const asked: (number | undefined)[] = [];
    class RecordingTransport extends MemoryTransport {
      override consume(...args: Parameters<MemoryTransport['consume']>): ReturnType<MemoryTransport['consume']> {
        asked.push(args[1]?.prefetch);
        return super.consume(...args);
      }
    }
    const run = async (transport: MemoryTransport, prefetch?: number): Promise<void> => {
      const modules = new ContainerModule(({ bind }) => {
        bind(MemoryTransport).toConstantValue(transport);
        bind<Transport>(Transport).toService(MemoryTransport);
      });
      const app = createIntegration({ routes: [from('memory:in', prefetch === undefined ? {} : { prefetch }).to('memory:out')], modules: [modules], logger: silentLogger });
      await app.start();
      await app.stop({ drainTimeoutMs: 100 });
    };
    await run(new RecordingTransport()); // a transport that declares nothing (third-party adapters before defaultPrefetch)
    const wide = new RecordingTransport();
    Object.defineProperty(wide, 'defaultPrefetch', { value: 1_000 });
    await run(wide);
    await run(wide, 7);
    expect(asked).toEqual([100, 1_000, 7]);
  });
});
