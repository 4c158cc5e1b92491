// The JavaScript HTTP handler for `nanoproc serve` (componentize-js, fetch-event
// style): answers 200 text/plain `hello from js: <METHOD> <path-with-query>\n`.
addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  event.respondWith(
    new Response(`hello from js: ${event.request.method} ${url.pathname}${url.search}\n`, {
      headers: { "content-type": "text/plain" },
    }),
  );
});
