import { ContainerModule } from 'inversify';
import { describe, expect, it } from 'vitest';
import { createIntegration, from, MemoryTransport, RouteDefinitionError } from '../../facade/index.ts';
import { Transport } from '../../src/spi.ts';

function errorOf(build: () => unknown): RouteDefinitionError {
  try {
    build();
  } catch (error) {
    if (error instanceof RouteDefinitionError) return error;
    throw error;
  }
  throw new Error('expected a RouteDefinitionError');
}

describe('route definitions', () => {
  it('gives routes and steps stable default ids', () => {
    const definition = from('memory:in')
      .filter(() => true)
      .transform((m) => m.body)
      .filter(() => true)
      .choice((c) => c.when(() => true, (b) => b.to('memory:a')).otherwise((b) => b.to('memory:b')))
      .definition();
    expect(definition.id).toBe('memory:in');
    expect(definition.steps.map((s) => s.id)).toEqual(['filter-1', 'transform-1', 'filter-2', 'choice-1']);
    expect(definition.steps[3]?.branches.map((b) => b.map((s) => s.id))).toEqual([['to-1'], ['to-2']]);
    expect(definition.steps[0]?.declaredAt).toMatch(/^test\/unit\/route-definition\.test\.ts:\d+$/);
  });

  it('refuses an unknown scheme, naming route, step and line', () => {
    const error = errorOf(() => createIntegration({ routes: [from('memory:in', { id: 'orders' }).to('kafka:orders', { id: 'publish' })] }));
    expect(error.message).toMatch(/unknown scheme 'kafka'/);
    expect(error.message).toMatch(/route 'orders'/);
    expect(error.message).toMatch(/step 'publish'/);
    expect(error.message).toMatch(/route-definition\.test\.ts:\d+/);
    expect(error.code).toBe('ROUTE_DEFINITION');
    expect(errorOf(() => createIntegration({ routes: [from('nope:in').to('memory:out')] })).message).toMatch(/unknown scheme 'nope'/);
    expect(errorOf(() => createIntegration({ routes: [from('memory:in').deadLetterChannel('nope:dlq').to('memory:out')] })).message).toMatch(/unknown scheme 'nope'/);
  });

  it('refuses a route without a to()', () => {
    expect(errorOf(() => createIntegration({ routes: [from('memory:in', { id: 'sink' }).filter(() => true)] })).message).toMatch(/route 'sink'.*|no \.to\(\)/);
    expect(() => createIntegration({ routes: [from('memory:in').choice((c) => c.when(() => true, (b) => b.to('memory:x')))] })).not.toThrow();
  });

  it('refuses duplicate route ids and duplicate step ids', () => {
    expect(errorOf(() => createIntegration({ routes: [from('memory:a', { id: 'x' }).to('memory:b'), from('memory:c', { id: 'x' }).to('memory:d')] })).message).toMatch(/duplicate route id/);
    expect(errorOf(() => createIntegration({ routes: [from('memory:a').to('memory:b', { id: 's' }).to('memory:c', { id: 's' })] })).message).toMatch(/duplicate step id.*step 's'/);
  });

  it('refuses route-level settings inside a branch', () => {
    expect(() => from('memory:a').choice((c) => c.when(() => true, (b) => b.deadLetterChannel('memory:dlq').to('memory:x')))).toThrow(RouteDefinitionError);
  });

  it('refuses two transports for one scheme', () => {
    const twice = new ContainerModule(({ bind }) => void bind<Transport>(Transport).toConstantValue(new MemoryTransport()));
    expect(() => createIntegration({ routes: [], modules: [twice] })).toThrow(/two transports bound for scheme 'memory'/);
  });
});
