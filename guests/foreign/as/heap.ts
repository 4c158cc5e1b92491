// How many bytes of a heap block one WASI call changes. The block spans the
// memory wasmtime's component adapter grew for its stack before the program
// started, which AssemblyScript's allocator takes as its own at its first
// allocation: natively nothing changes (docs/preview1.md).
const pages = memory.size();
const size: usize = 100000;
const block = heap.alloc(size);
memory.fill(block, 0xAA, size);
console.log("pages at start=" + pages.toString());
let changed = 0;
for (let i: usize = 0; i < size; i++) {
  if (load<u8>(block + i) != 0xAA) changed++;
}
console.log("bytes changed by one fd_write=" + changed.toString());
