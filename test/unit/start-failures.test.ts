import { ContainerModule } from 'inversify';
import { NEVER, Observable, throwError } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, createMessage, EndpointError, from, NotStartedError, RouteDefinitionError, silentLogger, type Integration, type RouteSource } from '../../facade/index.ts';
import { Transport, type Delivery, type RouteFailure } from '../../src/spi.ts';

/** A `broken:` source: its consume fails when subscribed to, or `failLater()` fails it while running. */
class BrokenTransport implements Transport {
  readonly scheme = 'broken';
  private fail: ((error: Error) => void) | undefined;
  constructor(private readonly atOnce: Error | undefined) {}
  async connect(): Promise<void> {}
  async close(): Promise<void> {}
  async publish(): Promise<void> {}
  consume(): Observable<Delivery> {
    if (this.atOnce !== undefined) return throwError(() => this.atOnce);
    return new Observable<Delivery>((subscriber) => {
      this.fail = (error) => subscriber.error(error);
      return NEVER.subscribe();
    });
  }
  failLater(error: Error): void {
    this.fail?.(error);
  }
}

const running: Integration[] = [];
afterEach(async () => {
  for (const app of running.splice(0)) await app.stop({ drainTimeoutMs: 100 });
});

function create(routes: RouteSource[], broken?: BrokenTransport): Integration {
  const modules = broken === undefined ? [] : [new ContainerModule(({ bind }) => void bind<Transport>(Transport).toConstantValue(broken))];
  const app = createIntegration({ routes, modules, logger: silentLogger });
  running.push(app);
  return app;
}

function errorOf(build: () => unknown): Error {
  try {
    build();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('a route that fails to start fails start()', () => {
  it('rejects with the error of an endpoint its transport refuses, and stops the routes already running', async () => {
    const app = create([from('memory:healthy', { id: 'healthy' }).to('memory:out'), from('memory:in?capacity=zero', { id: 'bad' }).to('memory:out')]);
    const failure = await app.start().then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(EndpointError);
    expect((failure as Error).message).toBe("invalid options in 'memory:in?capacity=zero': capacity must be a positive integer, got 'zero'");
    expect(app.route('bad').failure).toBe(failure);
    expect(app.routes.map((route) => route.status)).toEqual(['stopped', 'stopped']);
    await expect(app.transports.publish('memory:healthy', [createMessage(1)])).rejects.toThrow(NotStartedError);
  });

  it('rejects with the error of a transport that fails at consume', async () => {
    const app = create([from('memory:a', { id: 'a' }).to('memory:out'), from('broken:x', { id: 'b' }).to('memory:out')], new BrokenTransport(new Error('access refused to queue x')));
    await expect(app.start()).rejects.toThrow('access refused to queue x');
    expect(app.route('a').status).toBe('stopped');
  });

  it('reports a route whose source fails later on failures$, and the route is failed', async () => {
    const broken = new BrokenTransport(undefined);
    const app = create([from('broken:x', { id: 'b' }).to('memory:out')], broken);
    const failures: RouteFailure[] = [];
    app.failures$.subscribe((failure) => failures.push(failure));
    await app.start();
    const error = new Error('connection lost for good');
    broken.failLater(error);
    expect(failures).toEqual([{ routeId: 'b', error }]);
    expect(app.route('b').status).toBe('failed');
    expect(app.route('b').failure).toBe(error);
  });
});

describe('publishing before start()', () => {
  it('rejects with NotStartedError saying so, and works once started', async () => {
    const app = create([from('memory:in').to('memory:out')]);
    const error = await app.transports.publish('memory:in', [createMessage(1)]).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(NotStartedError);
    expect(error).toMatchObject({ code: 'NOT_STARTED', message: "integration not started: await integration.start() first; cannot publish to 'memory:in'" });
    await app.start();
    await app.transports.publish('memory:in', [createMessage(2)]);
  });
});

describe('ids', () => {
  it.each([
    ['an empty route id', () => from('memory:in', { id: '' }).to('memory:out'), /^route id is empty/],
    ['a blank route id', () => from('memory:in', { id: ' \t' }).to('memory:out'), /^route id is empty/],
    ['an empty step id', () => from('memory:in', { id: 'r' }).to('memory:out', { id: '' }), /^step id is empty: name the to step.* — route 'r' — at test\/unit\/start-failures\.test\.ts:\d+$/],
    ['a blank step id in a branch', () => from('memory:in', { id: 'r' }).choice((c) => c.otherwise((b) => b.filter(() => true, { id: '  ' }).to('memory:out'))), /^step id is empty: name the filter step/],
  ])('refuses %s at build time', (_name, route, message) => {
    const error = errorOf(() => create([route()]));
    expect(error).toBeInstanceOf(RouteDefinitionError);
    expect(error.message).toMatch(message);
  });
});

describe('a scheme with no transport bound', () => {
  it('says which variable and module bind amqp:', () => {
    const error = errorOf(() => create([from('memory:in', { id: 'r' }).to('amqp:queue/orders')]));
    expect(error).toBeInstanceOf(RouteDefinitionError);
    expect(error.message).toContain("unknown scheme 'amqp' in 'amqp:queue/orders' (known: memory); set AMQP_URL=amqp://user:password@host:5672 for `interchange run`, or pass modules: [amqpModule({ url })] (from 'interchange-eip/adapters/amqp') to createIntegration");
  });

  it('says which variable and module bind mqtt:, also when publishing', async () => {
    const app = create([from('memory:in').to('memory:out')]);
    await app.start();
    const error = errorOf(() => app.transports.forScheme('mqtt'));
    expect(error).toBeInstanceOf(EndpointError);
    expect(error.message).toContain("no transport for scheme 'mqtt' (known: memory); set MQTT_URL=mqtt://host:1883 for `interchange run`");
    expect(error.message).toContain('mqttModule({ url })');
  });
});
