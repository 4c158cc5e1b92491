// A JavaScript command built with componentize-js's HTTP support on (the
// default): it imports `wasi:http`, which nanoproc cannot grant yet. It exists to
// be inspected, not run.
export const run = {
  async run() {
    const response = await fetch("https://example.com/");
    console.log(`fetched example.com: status ${response.status}`);
  },
};
