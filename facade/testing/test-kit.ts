import { createMessage, isObservableTransport, isTemplate, parseEndpoint, type Headers, type Message } from '../../src/core/index.ts';
import type { Integration } from '../../src/runtime/integration.ts';
import { MockEndpoint, type MockEndpointOptions } from './mock-endpoint.ts';

/**
 * Camel's ProducerTemplate + MockEndpoint for an integration: send messages to endpoints, collect
 * what arrives at others — or watch a channel a route consumes, without taking its messages.
 * @example
 * const kit = new TestKit(app);
 * const out = kit.mock('memory:out');
 * await kit.send('memory:in', { orderId: 1 });
 * await out.expect(1);
 */
export class TestKit {
  private readonly mocks: MockEndpoint<unknown>[] = [];

  constructor(private readonly integration: Integration) {}

  /** Sends one body as a new message and resolves when the endpoint has confirmed it. */
  send<T>(uri: string, body: T, headers?: Headers): Promise<void> {
    return this.sendAll(uri, [body], headers);
  }

  /** Sends each body as a new message, in one publish. */
  sendAll<T>(uri: string, bodies: readonly T[], headers?: Headers): Promise<void> {
    return this.sendMessages(
      uri,
      bodies.map((body) => createMessage(body, { headers })),
    );
  }

  /** Sends ready-made messages (ids and headers as given). */
  sendMessages(uri: string, messages: readonly Message[]): Promise<void> {
    if (isTemplate(uri)) throw new TypeError(`send needs a concrete endpoint URI, got the template '${uri}'`);
    // through the registry: before start() that is a NotStartedError, not a mock waiting in vain
    return this.integration.transports.publish(uri, messages);
  }

  /**
   * A mock endpoint collecting what arrives at `uri` from now on. On an endpoint a route of the
   * integration consumes, the mock observes (sees every message published there, takes none), so the
   * route's own consumption is untouched; elsewhere it consumes, as the endpoint's only consumer.
   * `options.mode` overrides the choice. Throws `TypeError` when a route consumes the endpoint and its
   * transport cannot be observed (a consuming mock would silently steal the route's messages): mock
   * what the route sends to instead, or ask for `mode: 'consume'` explicitly.
   * @example const audit = kit.mock('memory:orders'); // a route consumes memory:orders: the mock only watches
   */
  mock<T = unknown>(uri: string, options: MockEndpointOptions = {}): MockEndpoint<T> {
    const endpoint = parseEndpoint(uri);
    const transport = this.integration.transports.forScheme(endpoint.scheme);
    const consumer = this.integration.routes.find((route) => {
      const source = parseEndpoint(route.definition.source);
      return source.scheme === endpoint.scheme && source.path === endpoint.path;
    });
    if (options.mode === undefined && consumer !== undefined && !isObservableTransport(transport)) {
      throw new TypeError(`${uri} is consumed by route '${consumer.id}' and the '${endpoint.scheme}' transport cannot be observed: a mock would compete with the route for its messages. Mock a destination instead, or pass { mode: 'consume' }`);
    }
    const mode = options.mode ?? (consumer === undefined ? 'consume' : 'observe');
    const mock = new MockEndpoint<T>(uri, transport, { ...options, mode });
    this.mocks.push(mock as MockEndpoint<unknown>);
    return mock;
  }

  /** Closes every mock endpoint this kit created. */
  close(): void {
    for (const mock of this.mocks.splice(0)) mock.close();
  }
}
