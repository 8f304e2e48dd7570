"""Components that worker processes in tests host (named in tree files)."""

from __future__ import annotations

import os

import hedgerow as hr

adder = hr.Component(name="adder")


@adder.register("com.example.worker.add")
def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b, "pid": os.getpid()}


greeter = hr.Component(name="greeter")


@greeter.register("com.example.worker.greet")
def greet(name: str) -> str:
    return f"hello {name}"
