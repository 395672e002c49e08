import { Settlement, type Message } from '../core/index.ts';

/** A delivery's settlement that is also a node of its consumer's list of unsettled deliveries. */
export abstract class UnsettledNode extends Settlement {
  /** @internal */ prev: UnsettledNode | undefined = undefined;
  /** @internal */ next: UnsettledNode | undefined = undefined;
  /** @internal */ listed = false;

  /** @param seq the message's place in its queue, for a redelivery at the same place */
  constructor(
    message: Message,
    readonly seq: number,
  ) {
    super(message);
  }
}

/**
 * The deliveries a consumer holds unsettled, as an intrusive doubly linked list: O(1) add and remove
 * without hashing (a Set cost ~130 ns per message here), in delivery order for hand-back.
 */
export class UnsettledList {
  private head: UnsettledNode | undefined;
  private tail: UnsettledNode | undefined;
  size = 0;

  add(node: UnsettledNode): void {
    node.listed = true;
    node.prev = this.tail;
    node.next = undefined;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size += 1;
  }

  /** Removes the node; false if it was not in the list (already settled, or handed back). */
  remove(node: UnsettledNode): boolean {
    if (!node.listed) return false;
    node.listed = false;
    if (node.prev === undefined) this.head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = undefined;
    this.size -= 1;
    return true;
  }

  /** Empties the list, returning its nodes (message and queue place) in delivery order. */
  drain(): UnsettledNode[] {
    const nodes: UnsettledNode[] = [];
    for (let node = this.head; node !== undefined; ) {
      const next = node.next;
      node.listed = false;
      node.prev = node.next = undefined;
      nodes.push(node);
      node = next;
    }
    this.head = this.tail = undefined;
    this.size = 0;
    return nodes;
  }
}
