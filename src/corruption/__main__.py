"""``python -m src.corruption FOLDER [--check]``: write or check the Hydra mirror of the corruption presets
(``conf/corruption/*.yaml``, generated from :mod:`src.corruption.presets`)."""

from __future__ import annotations

import argparse
import sys

from src.corruption.presets import write_mirror


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write or check the Hydra mirror of the corruption presets.")
    ap.add_argument("folder", help="the conf/corruption folder")
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    args = ap.parse_args(argv)
    changed = write_mirror(args.folder, check=args.check)
    verb = "differ from" if args.check else "written from"
    print(f"{len(changed)} file(s) {verb} src/corruption/presets.py: {', '.join(changed) or '-'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
