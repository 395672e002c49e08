import type { ExchangeType } from './amqp-endpoint.ts';

type Table = Readonly<Record<string, unknown>>;

/**
 * Whether a binding takes a message, as RabbitMQ decides per exchange type: `direct` — the binding
 * key equals the routing key; `fanout` — always; `topic` — see `topicMatches`; `headers` — see
 * `headersMatch` (the binding's arguments against the message's headers table).
 * @example bindingMatches('topic', 'reading.#', 'reading.d-1') // true
 */
export function bindingMatches(type: ExchangeType, bindingKey: string, routingKey: string, headers: Table = {}, args: Table = {}): boolean {
  switch (type) {
    case 'fanout':
      return true;
    case 'direct':
      return bindingKey === routingKey;
    case 'topic':
      return topicMatches(bindingKey, routingKey);
    case 'headers':
      return headersMatch(args, headers);
  }
}

/** A topic key's words: `''` has none (as RabbitMQ splits it), `a..b` has an empty middle one. */
function words(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/**
 * Topic matching: keys are dot-separated words; in the binding key `*` takes exactly one word and `#`
 * zero or more. Linear in the product of the two keys' word counts (no backtracking blow-up on `#.#.#`).
 * @example topicMatches('a.*.c', 'a.b.c') // true; topicMatches('#.c', 'c') // true
 */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  const pattern = words(bindingKey);
  const key = words(routingKey);
  // reach[j]: the pattern's words so far can take exactly the routing key's first j words
  let reach: boolean[] = Array.from({ length: key.length + 1 }, (_, j) => j === 0);
  for (const token of pattern) {
    const next = new Array<boolean>(key.length + 1).fill(false);
    if (token === '#') {
      let open = false;
      for (let j = 0; j <= key.length; j += 1) next[j] = open ||= reach[j] === true;
    } else {
      for (let j = 0; j < key.length; j += 1) if (reach[j] === true && (token === '*' || token === key[j])) next[j + 1] = true;
    }
    reach = next;
  }
  return reach[key.length] === true;
}

/**
 * Headers-exchange matching: `x-match` `all` (default) — every binding argument is in the headers with
 * an equal value (none at all: a match); `any` — at least one is. Arguments whose names start with `x-` take no part, except
 * with `all-with-x` / `any-with-x`.
 */
export function headersMatch(args: Table, headers: Table): boolean {
  const mode = typeof args['x-match'] === 'string' ? args['x-match'] : 'all';
  const withX = mode.endsWith('-with-x');
  const any = mode.startsWith('any');
  for (const name in args) {
    if (name === 'x-match' || (!withX && name.startsWith('x-'))) continue;
    const matches = name in headers && headers[name] === args[name];
    if (any && matches) return true;
    if (!any && !matches) return false;
  }
  return !any;
}
