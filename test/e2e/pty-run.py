#!/usr/bin/env python3
"""Run a command on a pseudo-terminal of a given size, as a user at a terminal would.

    pty-run.py ROWS COLS SCRIPT.json -- COMMAND [ARGS...]

SCRIPT.json is a list of steps: {"wait": "text"} waits (up to 60 s) until the
output contains that text since the previous wait, {"send": "text"} types it,
{"resize": [rows, cols]} changes the window size (the kernel signals SIGWINCH).
Prints the whole output, then "EXIT <code>" with the command's exit status.
"""
import fcntl, json, os, pty, select, signal, struct, sys, termios, time

def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

def main():
    rows, cols, script_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    argv = sys.argv[sys.argv.index("--") + 1:]
    steps = json.load(open(script_file))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    set_size(fd, rows, cols)
    out = b""
    mark = 0
    def pump(timeout):
        nonlocal out
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        out += data
        return True
    alive = True
    for step in steps:
        if "wait" in step:
            deadline = time.time() + 60
            needle = step["wait"].encode()
            while alive and needle not in out[mark:] and time.time() < deadline:
                alive = pump(0.2)
            if needle not in out[mark:]:
                sys.stdout.write(out.decode("utf-8", "replace"))
                sys.stdout.write("\nTIMEOUT waiting for %r\n" % step["wait"])
                os.kill(pid, signal.SIGKILL)
                sys.exit(3)
            mark = out.index(needle, mark) + len(needle)
        elif "send" in step:
            os.write(fd, step["send"].encode())
        elif "resize" in step:
            set_size(fd, step["resize"][0], step["resize"][1])
            os.kill(pid, signal.SIGWINCH)
        elif "sleep" in step:
            end = time.time() + step["sleep"]
            while alive and time.time() < end:
                alive = pump(0.1)
    deadline = time.time() + 60
    while alive and time.time() < deadline:
        alive = pump(0.2)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode("utf-8", "replace"))
    sys.stdout.write("\nEXIT %d\n" % (os.waitstatus_to_exitcode(status)))

main()
