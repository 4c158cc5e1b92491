// echo.ts, exporting a `cabi_realloc` for the adapter: it runs.
export { cabi_realloc } from "./realloc";
import "./echo";
