#!/usr/bin/env python3
"""tty_check.py - checks what a command wrote about its progress.

    tty_check.py tty FILE PREFIX    FILE (a pseudo-terminal's transcript)
                                    draws at least one progress line starting
                                    with PREFIX ("\\r" PREFIX ... "\\x1b[K"),
                                    every drawn line is redrawn or erased
                                    ("\\r\\x1b[K") before anything else is
                                    written and at the end, and without the
                                    lines nothing of them is left
    tty_check.py none FILE PREFIX   FILE (stderr on a pipe or file) holds no
                                    progress at all: no PREFIX, "\\r" or escape
"""
import re
import sys

DRAW = re.compile(r"\r([^\r\n\x1b]*)\x1b\[K")
# What `nix` (run by import-nix) writes to a terminal when it exits: the
# erase of its own progress bar.
NIX_ERASE = "\r\x1b[0m\x1b[K"


def fail(msg, text):
    sys.exit(f"FAIL: {msg}\n--- transcript ---\n{text!r}")


def check_tty(text, prefix):
    pending = None  # a drawn line not yet redrawn or erased
    pos, drawn, rest = 0, 0, []
    for m in DRAW.finditer(text):
        gap = text[pos:m.start()]
        if gap and pending is not None:
            fail(f"{gap[:60]!r} written over the progress line {pending!r}", text)
        rest.append(gap)
        line = m.group(1)
        if line:
            if not line.startswith(prefix):
                fail(f"a progress line {line!r} does not start with {prefix!r}", text)
            drawn += 1
        pending = line or None
        pos = m.end()
    rest.append(text[pos:])
    if rest[-1] and pending is not None:
        fail(f"{rest[-1][:60]!r} written over the progress line {pending!r}", text)
    if drawn == 0:
        fail(f"no progress line starting with {prefix!r} was drawn", text)
    if pending is not None:
        fail(f"the progress line {pending!r} was left on the terminal", text)
    left = "".join(rest).replace("\r\n", "\n")
    if "\r" in left or "\x1b" in left or prefix in left:
        fail("a piece of a progress line is left outside the drawn lines", left)
    sys.stdout.write(left)


def check_none(text, prefix):
    if "\r" in text or "\x1b" in text or prefix in text:
        fail("progress written though standard error is not a terminal", text)


def main():
    mode, path, prefix = sys.argv[1:4]
    text = open(path, encoding="utf-8", errors="replace", newline="").read()
    text = text.replace(NIX_ERASE, "")
    {"tty": check_tty, "none": check_none}[mode](text, prefix)


if __name__ == "__main__":
    main()
