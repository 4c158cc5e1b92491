"""A Python command (componentize-py): prints a greeting read from the
environment. componentize-py imports all of `wasi:sockets` and reads random
bytes as it starts, whatever the program does."""

import os

import wit_world.exports


class Run(wit_world.exports.Run):
    def run(self) -> None:
        greeting = os.environ.get("GREETING", "(GREETING is not set)")
        print(f"hello from Python: {greeting}")
