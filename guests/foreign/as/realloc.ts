// A `cabi_realloc` for wasmtime's component adapter, from AssemblyScript's own
// allocator: with it, the adapter takes its stack and state from the heap
// instead of growing memory behind the allocator's back (docs/preview1.md).
// The adapter only ever asks for new memory.
export function cabi_realloc(oldPtr: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (oldPtr != 0 || oldSize != 0 || align > 16) unreachable();
  return heap.alloc(newSize);
}
