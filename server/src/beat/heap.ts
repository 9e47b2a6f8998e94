/**
 * The due-time heap: the beat looks only at its top, so 10,000 entries cost nothing while none is
 * due. Entries are replaced by pushing again; stale items are dropped when they surface.
 */
export interface HeapItem {
  due: number;
  id: string;
  /** Matches the entry's generation while the item is current. */
  gen: number;
}

export class DueHeap {
  private items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: HeapItem): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as HeapItem).due <= item.due) break;
      a[i] = a[parent] as HeapItem;
      i = parent;
    }
    a[i] = item;
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  pop(): HeapItem | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const child = r < a.length && (a[r] as HeapItem).due < (a[l] as HeapItem).due ? r : l;
        if ((a[child] as HeapItem).due >= last.due) break;
        a[i] = a[child] as HeapItem;
        i = child;
      }
      a[i] = last;
    }
    return top;
  }

  clear(): void {
    this.items = [];
  }
}
