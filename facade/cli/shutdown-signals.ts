export interface ShutdownSignals {
  /** Resolves with the first SIGINT/SIGTERM. */
  readonly first: Promise<NodeJS.Signals>;
  /** Removes the handlers (the process gets its default signal behaviour back). */
  dispose(): void;
}

/**
 * Graceful shutdown on the first signal, none on the second: the first SIGINT or SIGTERM resolves
 * `first` (the caller drains and exits); any later one calls `onAgain` (the caller exits at once).
 */
export function shutdownSignals(onAgain: (signal: NodeJS.Signals) => void, signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): ShutdownSignals {
  let received = false;
  let resolveFirst: (signal: NodeJS.Signals) => void = () => {};
  const first = new Promise<NodeJS.Signals>((resolve) => {
    resolveFirst = resolve;
  });
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      onAgain(signal);
      return;
    }
    received = true;
    resolveFirst(signal);
  };
  for (const signal of signals) process.on(signal, handler);
  return {
    first,
    dispose: () => {
      for (const signal of signals) process.off(signal, handler);
    },
  };
}
