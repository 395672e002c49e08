import { execFileSync } from 'node:child_process';

/** Runs `rabbitmqctl` against the machine's RabbitMQ (fault tests only: they run one file at a time). */
export const rabbitmqctl = (...args: string[]): string => execFileSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 120_000 });

/** Starts the RabbitMQ application if it is stopped and waits until it serves: fault tests leave it running. */
export function ensureRabbitRunning(): void {
  rabbitmqctl('start_app');
  rabbitmqctl('await_startup');
}
