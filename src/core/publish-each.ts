import { PartialPublishError, toError } from './errors.ts';
import type { Message } from './message.ts';

/**
 * The per-message half of a transport's `publish`: encodes each message on its own, sends the ones
 * that encoded, and settles the call by each message's outcome.
 *
 * Contract: when every message encodes, `send`'s own outcome is the call's (its errors unchanged).
 * When some do not, the others are still sent, and once `send` is done the call rejects with a
 * `PartialPublishError` indexed by `messages`: each unencodable message with its encoding error
 * (through `asFailure`), each sent one that failed with its own error from a `PartialPublishError` of
 * `send`, or with `send`'s error.
 * @example await publishEach(messages, (message) => encode(message), (items) => publisher.publish(items))
 */
export async function publishEach<E>(
  messages: readonly Message[],
  encode: (message: Message, index: number) => E,
  send: (encoded: E[]) => Promise<void>,
  asFailure: (error: unknown, message: Message) => Error = toError,
): Promise<void> {
  const encoded: E[] = [];
  let failures: Map<number, Error> | undefined;
  // once a message failed: the index in `messages` of each encoded one
  let origins: number[] | undefined;
  for (let index = 0; index < messages.length; index += 1) {
    const message = messages[index] as Message;
    let item: E;
    try {
      item = encode(message, index);
    } catch (error) {
      (failures ??= new Map()).set(index, asFailure(error, message));
      origins ??= encoded.map((_, at) => at);
      continue;
    }
    origins?.push(index);
    encoded.push(item);
  }
  if (failures === undefined || origins === undefined) return send(encoded);
  if (encoded.length > 0) {
    try {
      await send(encoded);
    } catch (error) {
      if (error instanceof PartialPublishError) for (const [at, own] of error.failures) failures.set(origins[at] as number, own);
      else for (const index of origins) failures.set(index, toError(error));
    }
  }
  throw new PartialPublishError(new Map([...failures].sort(([a], [b]) => a - b)), messages.length);
}
