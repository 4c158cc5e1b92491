// The JavaScript plugin of examples/plugin-host (guests/wit/plugins.wit, world
// `text-plugin`), built with componentize-js with HTTP disabled: markdown emphasis
// becomes capitals, `**loud**` and `*loud*` and `_loud_` all give `LOUD`.
//
// It counts what it emphasised in the host's key-value store, under `js/`, the
// prefix its manifest grants it. A refused store call throws; the count is then
// skipped, and the text is still transformed.
import { get, set } from "nanoproc:plugins/kv@0.1.0";

const KEY = "js/emphasized";
const EMPHASIS = /(\*\*|\*|_)(?=\S)(.+?)(?<=\S)\1/g;

export const transform = {
  transform(input) {
    let found = 0;
    const output = input.replace(EMPHASIS, (_, _marker, text) => {
      found += 1;
      return text.toUpperCase();
    });
    if (found > 0) {
      try {
        const before = Number.parseInt(get(KEY) ?? "0", 10) || 0;
        set(KEY, String(before + found));
      } catch (_refused) {
        // The host said no (the error's payload says why): keep going without the count.
      }
    }
    return output;
  },
};
