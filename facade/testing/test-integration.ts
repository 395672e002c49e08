import { silentLogger } from '../../src/core/index.ts';
import { createIntegration, type Integration, type IntegrationOptions } from '../../src/runtime/integration.ts';
import { TestKit } from './test-kit.ts';

export interface TestIntegration {
  readonly app: ReturnType<typeof createIntegration>;
  readonly kit: TestKit;
  /** Closes the kit's mock endpoints and stops the integration (drain deadline 100 ms by default). */
  stop(options?: { drainTimeoutMs?: number }): Promise<void>;
}

/**
 * Creates and starts an integration for a test, with a `TestKit` on it and a quiet logger
 * (Camel's CamelTestSupport).
 * @example
 * const { app, kit, stop } = await startTestIntegration({ routes: [from('memory:in').to('memory:out')] });
 * const out = kit.mock('memory:out');
 * await kit.send('memory:in', 'hello');
 * await out.expect(1);
 * await stop();
 */
export async function startTestIntegration(options: IntegrationOptions): Promise<TestIntegration> {
  const app = createIntegration({ logger: silentLogger, ...options });
  await app.start();
  const kit = new TestKit(app);
  return {
    app,
    kit,
    stop: async ({ drainTimeoutMs = 100 } = {}) => {
      kit.close();
      await (app as Integration).stop({ drainTimeoutMs });
    },
  };
}
