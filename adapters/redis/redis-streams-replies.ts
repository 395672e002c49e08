/** One stream entry as XREAD, XREADGROUP, XCLAIM and XAUTOCLAIM return it (raw, as Buffers); `fields` is null for an entry deleted since it was delivered. */
export interface RawEntry {
  readonly id: string;
  readonly fields: Buffer[] | null;
}

function entries(list: unknown): RawEntry[] {
  if (!Array.isArray(list)) return [];
  const out: RawEntry[] = [];
  for (const item of list as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [id, fields] = item as [unknown, unknown];
    out.push({ id: String(id), fields: Array.isArray(fields) ? (fields as Buffer[]) : null });
  }
  return out;
}

/**
 * The entries of an XREAD/XREADGROUP reply on one stream (`null`, a timeout, gives none): RESP2's
 * `[[key, entries]]` or the flattened map `[key, entries]` of a RESP3 connection.
 */
export function readReply(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  const first = reply[0] as unknown;
  if (Array.isArray(first)) return entries(first[1]);
  return entries(reply[1]);
}

/** The entries of an XCLAIM reply (without JUSTID). */
export function claimReply(reply: unknown): RawEntry[] {
  return entries(reply);
}

/** An XAUTOCLAIM reply: the next cursor (`0-0` once the whole pending list was scanned) and the entries claimed. */
export function autoclaimReply(reply: unknown): { readonly cursor: string; readonly claimed: RawEntry[] } {
  if (!Array.isArray(reply)) return { cursor: '0-0', claimed: [] };
  return { cursor: String(reply[0]), claimed: entries(reply[1]) };
}

/** An XPENDING (extended form) reply: the delivery count of each entry id. */
export function pendingCounts(reply: unknown): Map<string, number> {
  const counts = new Map<string, number>();
  if (!Array.isArray(reply)) return counts;
  for (const item of reply as unknown[]) {
    if (Array.isArray(item)) counts.set(String(item[0]), Number(item[3]));
  }
  return counts;
}

/** Whether Redis answered that the consumer group (or the stream) does not exist (deleted, or a restart without persistence). */
export function isNoGroup(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOGROUP');
}
