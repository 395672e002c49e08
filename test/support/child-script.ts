import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A TypeScript file run in a child process (`node --import tsx file …args`), for tests that kill a
 * consumer or a relay mid-work: its stdout lines are collected as they come (and passed to `onLine`),
 * stderr goes to the test's, stdin is open when asked for.
 */
export class ChildScript {
  readonly lines: string[] = [];
  readonly process: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;

  constructor(file: string, args: readonly string[], { stdin = false, onLine }: { stdin?: boolean; onLine?: (line: string) => void } = {}) {
    this.process = spawn(process.execPath, ['--conditions=interchange-source', '--import', 'tsx', file, ...args], { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
    createInterface({ input: this.process.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      this.lines.push(line);
      onLine?.(line);
    });
  }

  /** Sends a line to its stdin (`stdin: true`). */
  write(line: string): void {
    this.process.stdin?.write(`${line}\n`);
  }

  /** Kills it (SIGKILL unless told otherwise) if it still runs; resolves once it has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill(signal);
    await this.exited;
  }
}
