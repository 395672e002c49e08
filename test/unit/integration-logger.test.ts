import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import { createIntegration, from, Logger, silentLogger } from '../../src/index.ts';

describe('createIntegration({ logger })', () => {
  it('makes the given logger the container\'s, so adapters resolved from DI log through it', () => {
    const Probe = Symbol('Probe');
    const probe = new ContainerModule(({ bind }) => {
      bind(Probe).toDynamicValue((context) => context.get<Logger>(Logger));
    });
    const app = createIntegration({ routes: [from('memory:in').to('memory:out')], modules: [probe], logger: silentLogger });
    expect(app.container.get(Probe)).toBe(silentLogger);
  });
});
