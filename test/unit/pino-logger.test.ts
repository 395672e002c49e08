import { afterEach, describe, expect, it } from 'vitest';
import { createIntegration, type Integration } from '../../src/runtime/integration.ts';
import { createMessage, from, InterchangeError } from '../../facade/index.ts';
import { createPinoLogger, type PinoLoggerOptions } from '../../facade/observability/pino-logger.ts';
import { LOG_LEVELS, parseLogLevel } from '../../facade/observability/log-level.ts';

/** A destination that keeps what is written, and the lines parsed as JSON. */
function capture(): { write(chunk: string): void; readonly text: () => string; readonly lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const text = (): string => chunks.join('');
  return {
    write: (chunk) => void chunks.push(chunk),
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

function logger(options: PinoLoggerOptions = {}) {
  const out = capture();
  return { log: createPinoLogger({ pretty: false, level: 'info', ...options, destination: out }), out };
}

describe('createPinoLogger: JSON lines', () => {
  it('writes one JSON object a line with level, time, msg and the fields (route, step, messageId kept)', () => {
    const { log, out } = logger();
    log.info('route started', { route: 'orders' });
    log.warn('message dead-lettered', { route: 'orders', step: 'reserve', messageId: 'm-1', attempt: 2 });
    log.error('route failed');
    const lines = out.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'route started', route: 'orders', pid: process.pid });
    expect(lines[1]).toMatchObject({ level: 40, msg: 'message dead-lettered', route: 'orders', step: 'reserve', messageId: 'm-1', attempt: 2 });
    expect(lines[2]).toMatchObject({ level: 50, msg: 'route failed' });
    for (const line of lines) expect(typeof line.time).toBe('number');
  });

  it('adds the base fields to every line', () => {
    const { log, out } = logger({ base: { service: 'orders-service' } });
    log.info('a');
    log.warn('b');
    expect(out.lines().map((line) => line.service)).toEqual(['orders-service', 'orders-service']);
  });

  it('writes an Error field with pino’s err serializer: type, message, stack', () => {
    const { log, out } = logger();
    class StockError extends Error {}
    log.error('step failed', { route: 'r', error: new StockError('sku 42 is out of stock') });
    const [line] = out.lines();
    expect(line?.error).toMatchObject({ type: 'StockError', message: 'sku 42 is out of stock' });
    expect((line?.error as { stack: string }).stack).toContain('sku 42 is out of stock');
  });

  it('leaves the caller’s fields unchanged', () => {
    const { log } = logger();
    const fields = { password: 'hunter2', connection: { url: 'amqp://guest:s3cret@host' } };
    log.info('x', fields);
    expect(fields).toEqual({ password: 'hunter2', connection: { url: 'amqp://guest:s3cret@host' } });
  });
});

describe('createPinoLogger: level', () => {
  it('hides debug at info and shows it at debug', () => {
    const atInfo = logger({ level: 'info' });
    atInfo.log.debug('hidden');
    atInfo.log.info('shown');
    expect(atInfo.out.lines().map((line) => line.msg)).toEqual(['shown']);
    const atDebug = logger({ level: 'debug' });
    atDebug.log.debug('shown');
    expect(atDebug.out.lines()).toMatchObject([{ level: 20, msg: 'shown' }]);
  });

  it('writes nothing at silent, and only errors at error', () => {
    const silent = logger({ level: 'silent' });
    silent.log.error('x');
    expect(silent.out.text()).toBe('');
    const errors = logger({ level: 'error' });
    errors.log.warn('no');
    errors.log.error('yes');
    expect(errors.out.lines().map((line) => line.msg)).toEqual(['yes']);
  });

  it('takes the level from LOG_LEVEL when none is given, case ignored', () => {
    const saved = process.env.LOG_LEVEL;
    try {
      process.env.LOG_LEVEL = 'DEBUG';
      const out = capture();
      createPinoLogger({ pretty: false, destination: out }).debug('from env');
      expect(out.lines()).toMatchObject([{ msg: 'from env' }]);
      process.env.LOG_LEVEL = 'warn';
      const warnOut = capture();
      createPinoLogger({ pretty: false, destination: warnOut }).info('hidden');
      expect(warnOut.text()).toBe('');
    } finally {
      if (saved === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = saved;
    }
  });

  it('refuses an invalid LOG_LEVEL with a RangeError naming the valid levels', () => {
    const saved = process.env.LOG_LEVEL;
    try {
      process.env.LOG_LEVEL = 'verbose';
      expect(() => createPinoLogger({ destination: capture() })).toThrow(RangeError);
      expect(() => createPinoLogger({ destination: capture() })).toThrow("LOG_LEVEL 'verbose' is not a log level: use one of trace, debug, info, warn, error, fatal, silent");
    } finally {
      if (saved === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = saved;
    }
  });

  it('parseLogLevel: unset or blank is the fallback; every level parses', () => {
    expect(parseLogLevel(undefined)).toBe('info');
    expect(parseLogLevel('  ', { fallback: 'warn' })).toBe('warn');
    for (const level of LOG_LEVELS) expect(parseLogLevel(` ${level.toUpperCase()} `)).toBe(level);
    expect(() => parseLogLevel('loud', { source: 'INTERCHANGE_LOG' })).toThrow(/^INTERCHANGE_LOG 'loud' is not a log level/);
  });
});

describe('createPinoLogger: pretty', () => {
  it('writes human text, not JSON, with the message and fields', () => {
    const { log, out } = logger({ pretty: true, colorize: false });
    log.warn('message dead-lettered', { route: 'orders', messageId: 'm-1' });
    const text = out.text();
    expect(text).toContain('WARN');
    expect(text).toContain('message dead-lettered');
    expect(text).toContain('route: "orders"');
    expect(text).toContain('messageId: "m-1"');
    expect(() => JSON.parse(text.split('\n')[0] ?? '') as unknown).toThrow();
    expect(text).not.toContain('\u001b['); // no colours when asked for none
  });

  it('redacts in pretty mode too', () => {
    const { log, out } = logger({ pretty: true, colorize: false });
    log.error('connect to amqp://guest:s3cret@host:5672/vh failed', { password: 'hunter2', error: new Error('amqp://guest:s3cret@host refused') });
    expect(out.text()).toContain('amqp://guest:***@host:5672/vh failed');
    expect(out.text()).not.toMatch(/s3cret|hunter2/);
  });
});

describe('createPinoLogger: secrets are never written', () => {
  it('hides secret-named fields at the top level and nested, keeping the rest of the line', () => {
    const { log, out } = logger();
    log.info('connecting', {
      route: 'orders',
      password: 'hunter2',
      connection: { host: 'rabbit', password: 'hunter2', tls: { passphrase: 'hunter2', privateKey: 'hunter2' } },
      authorization: 'Bearer abc',
      headers: { Authorization: 'Bearer abc', Cookie: 'session=abc', 'x-api-key': 'abc' },
      api_key: 'abc',
      apiKey: 'abc',
      token: 'abc',
    });
    const raw = out.text();
    expect(raw).not.toMatch(/hunter2|abc/);
    expect(out.lines()[0]).toEqual(
      expect.objectContaining({
        msg: 'connecting',
        route: 'orders',
        password: '[redacted]',
        connection: { host: 'rabbit', password: '[redacted]', tls: { passphrase: '[redacted]', privateKey: '[redacted]' } },
        authorization: '[redacted]',
        headers: { Authorization: '[redacted]', Cookie: '[redacted]', 'x-api-key': '[redacted]' },
      }),
    );
  });

  it('hides URL passwords in the message, in string fields and in error messages and stacks', () => {
    const { log, out } = logger();
    const url = 'amqp://guest:s3cret@host:5672/vh';
    log.error(`cannot connect to ${url}: refused`, { route: 'r', url, endpoints: [`mqtts://device:s3cret@broker:8883`], error: new Error(`connect ECONNREFUSED ${url}`) });
    const raw = out.text();
    expect(raw).not.toContain('s3cret');
    const [line] = out.lines();
    expect(line?.msg).toBe('cannot connect to amqp://guest:***@host:5672/vh: refused');
    expect(line?.url).toBe('amqp://guest:***@host:5672/vh');
    expect(line?.endpoints).toEqual(['mqtts://device:***@broker:8883']);
    expect(line?.error).toMatchObject({ type: 'Error', message: 'connect ECONNREFUSED amqp://guest:***@host:5672/vh' });
    expect((line?.error as { stack: string }).stack).toMatch(/^Error: connect ECONNREFUSED amqp:\/\/guest:\*\*\*@host:5672\/vh\n\s+at /);
  });

  it('hides secrets in an error’s cause, its own properties and secret query parameters', () => {
    const { log, out } = logger();
    const cause = new Error('redis://:s3cret@cache:6379 unreachable');
    const error = Object.assign(new Error('lookup failed', { cause }), { password: 'hunter2', target: 'postgres://db/orders?user=app&password=hunter2' });
    log.warn('enrich failed', { step: 'lookup', reason: error });
    expect(out.text()).not.toMatch(/s3cret|hunter2/);
    const [line] = out.lines();
    expect(line).toMatchObject({ step: 'lookup', reason: { message: 'lookup failed: redis://:***@cache:6379 unreachable', password: '[redacted]', target: 'postgres://db/orders?user=app&password=***' } });
  });

  it('hides a URL object’s password (written as its href)', () => {
    const { log, out } = logger();
    log.info('using', { broker: new URL('amqp://guest:s3cret@host:5672/vh') });
    expect(out.text()).not.toContain('s3cret');
    expect(out.lines()[0]?.broker).toBe('amqp://guest:***@host:5672/vh');
  });

  it('redacts what is logged through the pino instance itself: child bindings, an error as the only argument, interpolation', () => {
    const { log, out } = logger({ base: { broker: 'amqp://guest:s3cret@host' } });
    const child = log.pino.child({ connection: { password: 'hunter2' } });
    child.info('child line');
    child.child({ route: 'orders', upstream: 'mqtts://device:s3cret@broker' }).info('grandchild line');
    child.setBindings({ token: 'hunter2' });
    child.info('rebound line');
    log.pino.error(new Error('amqp://guest:s3cret@host: ACCESS_REFUSED'));
    log.pino.info('connecting to %s', 'amqp://guest:s3cret@host');
    expect(out.text()).not.toMatch(/s3cret|hunter2/);
    const lines = out.lines();
    expect(lines[0]).toMatchObject({ broker: 'amqp://guest:***@host', connection: { password: '[redacted]' }, msg: 'child line' });
    expect(lines[1]).toMatchObject({ route: 'orders', upstream: 'mqtts://device:***@broker', msg: 'grandchild line' });
    expect(lines[2]).toMatchObject({ token: '[redacted]', msg: 'rebound line' });
    expect(lines[3]).toMatchObject({ msg: 'amqp://guest:***@host: ACCESS_REFUSED', error: { type: 'Error' } });
    expect(lines[4]).toMatchObject({ msg: 'connecting to amqp://guest:***@host' });
  });

  it('keeps stack frames whole: redaction runs line by line', () => {
    const { log, out } = logger();
    const error = new Error('boom');
    error.stack = 'Error: boom\n    at f (file:///app/node_modules/@scope/pkg/index.js:10:5)\n    at g (file:///app/main.js:3:1)';
    log.error('failed', { error });
    expect((out.lines()[0]?.error as { stack: string }).stack).toBe(error.stack);
  });

  it('does not loop on a cycle', () => {
    const { log, out } = logger();
    const looped: Record<string, unknown> = { name: 'a' };
    looped.self = looped;
    log.info('cycle', { looped });
    expect(out.lines()[0]?.msg).toBe('cycle');
  });
});

describe('createPinoLogger as the integration’s Logger', () => {
  let app: Integration | undefined;
  afterEach(async () => {
    await app?.stop({ drainTimeoutMs: 100 });
    app = undefined;
  });

  it('a dead-lettered message writes a WARN JSON line with route, step and messageId', async () => {
    const out = capture();
    const created = createIntegration({
      routes: [
        from('memory:in', { id: 'orders' })
          .deadLetterChannel('memory:dlq')
          .process(
            () => {
              throw new InterchangeError('OUT_OF_STOCK', 'sku 42 is out of stock at amqp://guest:s3cret@stock');
            },
            { id: 'reserve' },
          )
          .to('memory:out'),
      ],
      logger: createPinoLogger({ pretty: false, level: 'info', destination: out }),
    });
    app = created;
    await created.start();
    const message = createMessage({ sku: 42 });
    await created.transports.publish('memory:in', [message]);
    const deadline = Date.now() + 3_000;
    while (created.metrics().orders?.deadLettered !== 1) {
      if (Date.now() > deadline) throw new Error('the message was not dead-lettered in time');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const warning = out.lines().find((line) => line.msg === 'message dead-lettered');
    expect(warning).toMatchObject({ level: 40, route: 'orders', step: 'reserve', messageId: message.id, code: 'OUT_OF_STOCK', to: 'memory:dlq', reason: 'sku 42 is out of stock at amqp://guest:***@stock' });
    expect(out.text()).not.toContain('s3cret');
  });
});
