import { ContainerModule } from 'inversify';
import { EMPTY, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMessage, EndpointError, from, silentLogger, type Message, type RouteSource } from '../../facade/index.ts';
import { createPrometheusMetrics } from '../../facade/observability/prometheus-metrics.ts';
import { deliveryStep } from '../../src/core/index.ts';
import { createIntegration, type Integration } from '../../src/runtime/integration.ts';
import { Transport, type Delivery, type Endpoint, type RequestOptions } from '../../src/spi.ts';
import { parse, value } from '../support/prometheus-text.ts';
import { until } from '../support/wait.ts';

// A step's own figures (StepContext.count / gauge) and its requests (StepContext.request → Transport.request).

const running: Integration[] = [];
afterEach(async () => {
  for (const app of running.splice(0)) await app.stop({ drainTimeoutMs: 1_000 });
});

function start(routes: RouteSource[], transports: Transport[] = []): Integration {
  const app = createIntegration({ routes, logger: silentLogger, modules: [new ContainerModule(({ bind }) => transports.forEach((t) => void bind<Transport>(Transport).toConstantValue(t)))] });
  running.push(app);
  return app;
}

/** A transport with request-reply only: each request is answered with its body doubled, after recording it. */
class EchoTransport implements Transport {
  readonly scheme = 'echo';
  readonly requests: { readonly uri: string; readonly message: Message; readonly timeoutMs: number }[] = [];
  connect(): Promise<void> {
    return Promise.resolve();
  }
  consume(): Observable<Delivery> {
    return EMPTY;
  }
  publish(): Promise<void> {
    return Promise.resolve();
  }
  request(endpoint: Endpoint, message: Message, options: RequestOptions): Promise<Message> {
    this.requests.push({ uri: endpoint.uri, message, timeoutMs: options.timeoutMs });
    return Promise.resolve(createMessage({ doubled: (message.body as { n: number }).n * 2 }, { headers: { correlationId: message.id } }));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A transport without request-reply. */
class SilentTransport implements Transport {
  readonly scheme = 'silent';
  connect(): Promise<void> {
    return Promise.resolve();
  }
  consume(): Observable<Delivery> {
    return EMPTY;
  }
  publish(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('a step’s own figures', () => {
  it('counts and gauges land in the route metrics and in Prometheus, labelled with route, step, kind and name', async () => {
    const route = from<{ n: number }>('memory:figures-in', { id: 'figures' })
      .step<{ n: number }>('custom', (context) =>
        deliveryStep(context, (delivery, emit) => {
          context.count('seen');
          if (delivery.message.body.n % 2 === 0) context.count('even', 2);
          context.gauge('last', delivery.message.body.n);
          emit(delivery);
        }),
        { id: 'counting' },
      )
      .to('memory:figures-out');
    const app = start([route]);
    const metrics = createPrometheusMetrics(app, { defaultMetrics: false });
    await app.start();
    await app.transports.publish('memory:figures-in', [1, 2, 3, 4, 5].map((n) => createMessage({ n })));
    const counters = app.route('figures').metrics;
    await until(() => counters.completed === 5, () => JSON.stringify(counters));
    expect(counters.steps.counting?.counts).toEqual({ seen: 5, even: 4 });
    expect(counters.steps.counting?.gauges).toEqual({ last: 5 });
    const samples = parse(await metrics.scrape());
    const labels = (name: string): Record<string, string> => ({ route: 'figures', step: 'counting', kind: 'custom', name });
    expect(value(samples, 'interchange_step_counter_total', labels('seen'))).toBe(5);
    expect(value(samples, 'interchange_step_counter_total', labels('even'))).toBe(4);
    expect(value(samples, 'interchange_step_gauge', labels('last'))).toBe(5);
    metrics.close();
  });
});

describe('a step’s requests', () => {
  it('go to the endpoint’s transport, which answers', async () => {
    const echo = new EchoTransport();
    const route = from<{ n: number }>('memory:ask-in', { id: 'ask' })
      .step<{ doubled: number }>('ask', (context) =>
        deliveryStep(context, async (delivery, emit) => {
          const reply = await context.request('echo:double', delivery.message, { timeoutMs: 500 });
          emit(delivery.with(reply as Message<{ doubled: number }>));
        }),
      )
      .to('memory:ask-out');
    const sent: unknown[] = [];
    const collect = from<{ doubled: number }>('memory:ask-out', { id: 'collect' }).step(
      'sink',
      (context) =>
        deliveryStep<{ doubled: number }, { doubled: number }>(context, (delivery, emit) => {
          sent.push(delivery.message.body);
          emit(delivery);
        }),
      { sends: true },
    );
    const app = start([route, collect], [echo]);
    await app.start();
    await app.transports.publish('memory:ask-in', [createMessage({ n: 21 })]);
    const counters = app.route('ask').metrics;
    await until(() => counters.completed === 1 && sent.length === 1, () => JSON.stringify(counters));
    expect(sent).toEqual([{ doubled: 42 }]);
    expect(echo.requests).toEqual([{ uri: 'echo:double', message: expect.objectContaining({ body: { n: 21 } }) as unknown, timeoutMs: 500 }]);
  });

  it('to a transport without request-reply fail with EndpointError naming the scheme', async () => {
    const app = start([], [new SilentTransport()]);
    await app.start();
    await expect(app.transports.request('silent:nowhere', createMessage({ n: 1 }), { timeoutMs: 100 })).rejects.toThrow(EndpointError);
    await expect(app.transports.request('silent:nowhere', createMessage({ n: 1 }), { timeoutMs: 100 })).rejects.toThrow(/'silent' transport has no request-reply/);
  });
});
