// A JavaScript command built with HTTP disabled (`-d http -d fetch-event`), so
// that nanoproc can run it: it reads the wall clock (Date.now), draws random
// numbers (Math.random) and prints. The engine reads the monotonic clock as it
// starts, whatever the script does.
export const run = {
  run() {
    const now = Date.now();
    const roll = Math.floor(Math.random() * 6) + 1;
    console.log(`hello from JavaScript: rolled ${roll}, the clock says ${now > 0 ? "after" : "at"} 1970`);
  },
};
