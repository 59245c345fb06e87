"""GNU `time -v -o FILE CMD...` for machines without it (the lent GPU machine has no GNU time and no network):
runs CMD, writes the two lines export/perf/table.py reads — wall clock and the children's peak resident set —
in GNU time's format, and exits with CMD's status.

    python -m export.perf.timev -o FILE CMD [ARGS...]
"""
import resource
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 3 or argv[0] != "-o":
        sys.exit("usage: python -m export.perf.timev -o FILE CMD [ARGS...]")
    out, cmd = argv[1], argv[2:]
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    wall = time.monotonic() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    m, s = divmod(wall, 60)
    with open(out, "w") as f:
        f.write(f'\tCommand being timed: "{" ".join(cmd)}"\n')
        f.write(f"\tElapsed (wall clock) time (h:mm:ss or m:ss): {int(m)}:{s:05.2f}\n")
        f.write(f"\tMaximum resident set size (kbytes): {rss_kb}\n")
        f.write(f"\tExit status: {rc}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
