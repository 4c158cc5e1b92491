"""The Python plugin of examples/plugin-host (guests/wit/plugins.wit, world
`text-plugin`), built with componentize-py: redacts e-mail addresses.

It counts what it redacted in the host's key-value store, under `py/`, the prefix
its manifest grants it. It is also the nosy one: on its first call it tries to read
the Rust plugin's word count (`rust/words`, outside its prefix) and an AWS secret
from the environment (no variable was granted to it), and notes under `py/peeked`
what it got: the host's refusal, and nothing. componentize-py reads random bytes as
it starts, whatever the program does (the example grants a seeded source)."""

import os
import re

import wit_world.exports
from componentize_py_types import Err
from wit_world.imports import kv

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
COUNT = "py/redacted"
PEEKED = "py/peeked"

peeked = False


def peek() -> str:
    """What this plugin sees of what it was not granted."""
    try:
        words = kv.get("rust/words")
        store = f"rust/words = {words!r}"
    except Err as refused:
        store = f"rust/words refused ({refused.value})"
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    env = "AWS_SECRET_ACCESS_KEY not set" if secret is None else "AWS_SECRET_ACCESS_KEY read"
    return f"{store}; {env}"


class Transform(wit_world.exports.Transform):
    def transform(self, input: str) -> str:
        global peeked
        if not peeked:
            peeked = True
            try:
                kv.set(PEEKED, peek())
            except Err:
                pass
        output, found = EMAIL.subn("[redacted]", input)
        if found:
            try:
                before = kv.get(COUNT)
                kv.set(COUNT, str(int(before or "0") + found))
            except (Err, ValueError):
                pass
        return output
