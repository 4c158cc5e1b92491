// An AssemblyScript program (WASI through @assemblyscript/wasi-shim, a WASI
// preview 1 core module): prints its arguments and the environment variable X.
// Through wasmtime's component adapter it traps at its first line, whatever it
// is given (docs/preview1.md).
const args = process.argv;
console.log("argc=" + args.length.toString());
for (let i = 0; i < args.length; i++) {
  console.log("arg[" + i.toString() + "]=" + args[i]);
}
const env = process.env;
console.log("X=" + (env.has("X") ? env.get("X") : "(unset)"));
