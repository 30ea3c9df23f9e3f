#!/usr/bin/env python3
"""unit_argv.py - the command line systemd would run for a unit's ExecStart.

    unit_argv.py UNIT BINDIR MOUNTPOINT [KEY=VALUE...]

Prints ExecStart's arguments, each ended by a NUL byte, after the
expansions systemd makes (systemd.service(5) "Command lines"): @BINDIR@
(what `make install` substitutes), %f (here MOUNTPOINT itself), the
Environment= lines of the unit and then KEY=VALUE (what an EnvironmentFile=
sets); "${KEY}" is one argument, a lone "$KEY" word one argument per
whitespace-separated word of its value (none when empty).
"""
import re
import shlex
import sys

unit, bindir, mountpoint, *sets = sys.argv[1:]
env, exec_start = {}, None
for line in open(unit):
    line = line.strip()
    if line.startswith("Environment="):
        k, _, v = line[len("Environment="):].partition("=")
        env[k] = v
    elif line.startswith("ExecStart="):
        exec_start = line[len("ExecStart="):]
for kv in sets:
    k, _, v = kv.partition("=")
    env[k] = v
if exec_start is None:
    sys.exit(f"{unit}: no ExecStart=")
argv = []
for word in shlex.split(exec_start.replace("@BINDIR@", bindir)):
    word = word.replace("%f", mountpoint)
    lone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if lone:
        argv += env.get(lone.group(1), "").split()
    else:
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
sys.stdout.write("".join(a + "\0" for a in argv))
