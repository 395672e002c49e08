import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

/** Runs `rabbitmqctl` against the machine's RabbitMQ (fault tests only: they run one file at a time). */
export const rabbitmqctl = (...args: string[]): string => execFileSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 120_000 });

/** Starts the RabbitMQ application if it is stopped and waits until it serves: fault tests leave it running. */
export function ensureRabbitRunning(): void {
  rabbitmqctl('start_app');
  rabbitmqctl('await_startup');
}

const execFileAsync = promisify(execFile);

/**
 * `rabbitmqctl` without blocking this process: for tests whose devices publish on their own clock in
 * this very process (a blocking call would pause them for seconds, then they would catch up in one burst).
 */
export async function rabbitmqctlAsync(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('rabbitmqctl', args, { encoding: 'utf8', timeout: 120_000 });
  return stdout;
}

/** `ensureRabbitRunning`, without blocking this process. */
export async function ensureRabbitRunningAsync(): Promise<void> {
  await rabbitmqctlAsync('start_app');
  await rabbitmqctlAsync('await_startup');
}
