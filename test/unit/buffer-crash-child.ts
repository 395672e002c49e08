/**
 * Child of buffer-crash.test.ts: publishes batches to `buffer:crash` in the directory given as its
 * argument, from two concurrent publishers, forever, and prints `<publisher> <batch>` on stdout once
 * that batch's publish resolved (fsync'd). The parent SIGKILLs it mid-stream.
 */
import { BufferTransport } from '../../adapters/buffer/index.ts';
import { createMessage, parseEndpoint } from '../../src/core/index.ts';

const directory = process.argv[2];
if (directory === undefined) throw new Error('usage: buffer-crash-child.ts <directory>');
const transport = new BufferTransport({ directory, segmentBytes: 16 * 1024 });
await transport.connect();
const to = parseEndpoint('buffer:crash');

async function publisher(name: string): Promise<void> {
  for (let batch = 0; ; batch += 1) {
    const messages = Array.from({ length: 10 }, (_, index) => createMessage({ publisher: name, batch, index, padding: 'x'.repeat(index * 20) }, { id: `${name}-${batch}-${index}` }));
    await transport.publish(to, messages);
    process.stdout.write(`${name} ${batch}\n`);
  }
}

await Promise.all([publisher('a'), publisher('b')]);
