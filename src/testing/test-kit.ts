import { createMessage, isTemplate, parseEndpoint, type Headers, type Message } from '../core/index.ts';
import type { Integration } from '../runtime/integration.ts';
import { MockEndpoint, type MockEndpointOptions } from './mock-endpoint.ts';

/**
 * Camel's ProducerTemplate + MockEndpoint for an integration: send messages to endpoints, collect
 * what arrives at others.
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
    const endpoint = parseEndpoint(uri);
    return this.integration.transports.forScheme(endpoint.scheme).publish(endpoint, messages);
  }

  mock<T = unknown>(uri: string, options?: MockEndpointOptions): MockEndpoint<T> {
    const endpoint = parseEndpoint(uri);
    const mock = new MockEndpoint<T>(uri, this.integration.transports.forScheme(endpoint.scheme), options);
    this.mocks.push(mock as MockEndpoint<unknown>);
    return mock;
  }

  /** Closes every mock endpoint this kit created. */
  close(): void {
    for (const mock of this.mocks.splice(0)) mock.close();
  }
}
