// heap.ts, exporting a `cabi_realloc` for the adapter: nothing changes.
export { cabi_realloc } from "./realloc";
import "./heap";
