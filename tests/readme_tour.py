#!/usr/bin/env python3
"""Writes the C++ of README.md's five-minute tour as a function.

Usage: readme_tour.py README.md OUT.cpp

The first ```cpp block after the "## A five-minute tour" heading becomes
the body of `void readme_tour()`, its #include lines go above it, and
tests/readme_tour_support.h supplies only what the tour leaves to the
reader (a message type, a StatefulCheckpointable, a path and its items).
A tour that no longer compiles fails the build.
"""
import sys


def tour_block(text):
    start = text.index("## A five-minute tour")
    begin = text.index("```cpp\n", start) + len("```cpp\n")
    end = text.index("```", begin)
    return text[begin:end]


def main(readme, out):
    with open(readme, encoding="utf-8") as f:
        block = tour_block(f.read())
    includes, body = [], []
    for line in block.splitlines():
        (includes if line.startswith("#include") else body).append(line)
    with open(out, "w", encoding="utf-8") as f:
        f.write("// Generated from README.md by tests/readme_tour.py.\n")
        f.write("#include \"readme_tour_support.h\"\n")
        f.write("\n".join(includes) + "\n\n")
        f.write("void readme_tour() {\n")
        f.write("\n".join("  " + l if l else "" for l in body) + "\n}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
