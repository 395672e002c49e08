/** The logging seam: bind your own (pino, winston) in DI; the default writes one line to stderr. */
export interface Logger {
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export const Logger: unique symbol = Symbol.for('interchange.Logger');

const write =
  (level: string) =>
  (message: string, fields?: Readonly<Record<string, unknown>>): void => {
    const extra = fields === undefined ? '' : ` ${JSON.stringify(fields, (_key, value: unknown) => (value instanceof Error ? value.message : value))}`;
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${extra}\n`);
  };

export const consoleLogger: Logger = { info: write('INFO'), warn: write('WARN'), error: write('ERROR') };

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
