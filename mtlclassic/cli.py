"""The ``mtlclassic`` command (also ``python -m mtlclassic``)."""

import argparse
import json
import sys


def _cmd_info(args):
    from .backend import format_info, info

    d = info()
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mtlclassic",
        description="Multi-task learning on images with classic ML.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="versions, native modules, GPUs and BLAS threads")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        print(f"mtlclassic {args.command}: error: {exc}", file=sys.stderr)
        return 1
