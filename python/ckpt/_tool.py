"""The ``ckpt`` command of the installed package: runs the ckpt tool the
wheel carries (``ckpt/_lib/bin/ckpt``) with this command's arguments."""
import os
import sys


def main() -> None:
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib",
                        "bin", "ckpt")
    if not os.access(tool, os.X_OK):
        sys.exit(f"ckpt: the tool is not installed at {tool} (this package "
                 "was not installed from a wheel; build/tools/ckpt is the "
                 "tool of a build)")
    os.execv(tool, ["ckpt"] + sys.argv[1:])


if __name__ == "__main__":
    main()
