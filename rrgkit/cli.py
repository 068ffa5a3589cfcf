"""The ``rrgkit`` command line: one entry point, subcommands implemented next to their library code.

Each subcommand lives in a module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (or, for a group, a ``SUBCOMMANDS`` table); it is imported only when used, so ``rrgkit info`` stays
fast and a broken optional dependency cannot break every command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("rrgkit.info", "versions, threads and where each bundled asset is"),
    "book": ("rrgkit.book.cli", "execute the notebooks with papermill and build the Jupyter Book"),
    "data": ("rrgkit.data.cli", "build embedded datasets or curate real ones (build | curate)"),
    "label": ("rrgkit.evaluation.label_cli", "label report texts with the 14 CheXpert observations (1 / 0 / -1 / blank)"),
    "score": ("rrgkit.evaluation.score_cli", "score generated reports against references (NLG + clinical, with CIs)"),
    "train": ("rrgkit.training.train_cli", "train a report generator from a config file and key=value overrides"),
    "generate": ("rrgkit.training.generate_cli", "generate reports for a split with a trained run"),
    "pretrain": ("rrgkit.training.pretrain_cli", "pretrain an encoder (image-report contrastive) or a from-scratch LM"),
}


def dispatch(commands: dict[str, tuple[str, str]], argv: list[str], prog: str, description: str) -> int:
    """Pick a subcommand from ``argv[0]``, let its module declare its arguments, and run it."""
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        width = max(len(n) for n in commands)
        lines = [f"usage: {prog} <command> [options]", "", description, "", "commands:"]
        lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in commands.items()]
        text = "\n".join(lines)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"{prog}: error: unknown command {argv[0]!r}\n\n{text}", file=sys.stderr)
            return 2
        print(text)
        return 0 if argv else 2
    name = argv[0]
    module = importlib.import_module(commands[name][0])
    if hasattr(module, "SUBCOMMANDS"):  # a command group such as `rrgkit data build|curate`
        return dispatch(module.SUBCOMMANDS, argv[1:], f"{prog} {name}", commands[name][1])
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=commands[name][1])
    module.add_arguments(parser)
    args = parser.parse_intermixed_args(argv[1:])  # options may sit between positionals: `pretrain lm --config C a=b`
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. User errors print one line (exit 2); RRGKIT_DEBUG=1 shows the traceback."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(COMMANDS, argv, "rrgkit", "rrgkit: reproduce LMM fine-tuning for radiology report generation.")
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
        if os.environ.get("RRGKIT_DEBUG"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rrgkit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's 128 + SIGINT; `rrgkit train` says how to resume
        if os.environ.get("RRGKIT_DEBUG"):
            raise
        print("rrgkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
