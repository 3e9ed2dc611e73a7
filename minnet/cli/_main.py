"""The ``minnet`` program: the table of commands, the parser built from it, and ``main`` and ``run``,
which turn errors, the user's code failing, minnet's own bugs, a closed pipe and Ctrl-C into one line (a
traceback too for a bug) and an exit status. The only module that imports the command modules; they import
nothing from here."""
import json
import os
import signal
import sys
import traceback

from . import bench, check, demo, train
from ..check import UserExit, WorkerLost
from ..training import TrainingDiverged
from ._common import (BROKEN_PIPE, FORMATTER, INTERNAL_ERROR, INTERRUPTED, PROG, REPORT_BUG, USAGE_ERROR,
                      TRAINING_DIVERGED, USER_CODE_ERROR, CliError, Parser, did_you_mean, exit_status_line)
from .user_code import users_error

# The commands, in the order 'minnet --help' lists them. Each module has HELP (its line in that
# list), DESCRIPTION, EPILOG, add_arguments(parser) and run(args) -> exit status.
COMMANDS = {"demo": demo, "check": check, "train": train, "bench": bench}

MAIN_EPILOG = """\
examples:
  minnet demo
  minnet check my_assignment.py
  minnet check my_assignment.py --jobs 4
  minnet check --layers 4,20,8,3 --output softmax --lambd 0.7 --keep-prob 0.86
  minnet train --dataset moons --layers 2,16,8,1 --epochs 2000 --plot cost.png
  minnet bench --workloads digits,medium

--layers always gives all layer sizes, input to output.
Run 'minnet COMMAND --help' for a command's options and examples.
""" + exit_status_line(extra=f"'minnet check' gives each verdict its own status, and {USER_CODE_ERROR} to an error "
                              f"in your code (see 'minnet check --help').") + "\n"


def build_parser():
    """The parser of ``minnet`` with one subparser per entry of COMMANDS."""
    from .. import __version__
    parser = Parser(prog=PROG, description="minnet: a from-scratch neural network framework with a fast, "
                                           "parallel gradient check.",
                    epilog=MAIN_EPILOG, formatter_class=FORMATTER)
    parser.add_argument("--version", action="version", version=f"minnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, title="commands")
    parser.commands = {}
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION, epilog=command.EPILOG,
                           formatter_class=FORMATTER)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
        parser.commands[name] = p
    return parser


def main(argv=None):
    """Run the command line and return the exit status (see ``minnet check --help``).

    A usage error prints one ``minnet: error: ...`` line on stderr (and, with --json, a JSON
    object with the error on stdout) and returns 2; an error in the user's code the same,
    returning 5; minnet's own failure the line, the traceback and where to report it, returning
    70; Ctrl-C prints one line and returns 130. No error returns a verdict's status.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    options = argv[:argv.index("--")] if "--" in argv else argv
    as_json = any(word == "--json" or word.startswith("--json=") for word in options)  # as the parser spells it
    try:
        return _run(argv)
    except CliError as exc:  # CliError: a usage error; UserCodeError: the user's code failed
        return _error(str(exc), exc.status, as_json)
    except (UserExit, WorkerLost) as exc:  # the user's code exited, or the worker running it died
        return _error(str(exc), USER_CODE_ERROR, as_json)
    except TrainingDiverged as exc:  # a ValueError, but no usage error: the run went wrong, not the arguments
        return _error(str(exc), TRAINING_DIVERGED, as_json)
    except (ValueError, TypeError) as exc:  # minnet's own checks of what the user gave
        return _error(str(exc), USAGE_ERROR, as_json)
    except MemoryError as exc:
        return _error(f"not enough memory for what was asked ({exc or 'MemoryError'}); ask for less, such as "
                      f"fewer --examples or smaller --layers", USAGE_ERROR, as_json)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return BROKEN_PIPE
    except OSError as exc:
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        return _error(f"cannot access{where}: {exc.strerror or exc}", USAGE_ERROR, as_json)
    except KeyboardInterrupt as exc:
        return _interrupted(as_json, str(exc))
    except SystemExit as exc:  # not argparse's (see _run): an exit from the user's code that got past the guards
        error = users_error(exc)
        if error is not None:
            return _error(str(error), error.status, as_json)
        return _internal_error(exc, as_json)
    except Exception as exc:
        return _internal_error(exc, as_json)


def _run(argv):
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        names = list(COMMANDS)
        raise CliError(f"choose a command: {', '.join(names[:-1])} or {names[-1]} (see '{PROG} --help')")
    if extra:
        options = parser.option_strings() + parser.commands[args.command].option_strings()
        hints = [did_you_mean(word.partition("=")[0], options) for word in extra if word.startswith("-")]
        raise CliError(f"unrecognized arguments: {' '.join(extra)}{''.join(hints[:1])} "
                       f"(see '{PROG} {args.command} --help')")
    return args.run(args)


def _error(message, status, as_json):
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_status": status}))
    return status


def _internal_error(exc, as_json):
    """minnet's own failure: one line, the traceback, where to report it; INTERNAL_ERROR."""
    from .. import __version__
    what = " ".join(f"{type(exc).__name__}: {exc}".split()) if str(exc) else type(exc).__name__
    message = f"minnet failed ({what}); {REPORT_BUG} below"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    text = "".join(traceback.format_exception(exc))
    print(text, end="", file=sys.stderr)
    print(f"{PROG}: {REPORT_BUG} above (minnet {__version__}, Python {sys.version.split()[0]}, "
          f"{sys.platform})", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "exit_status": INTERNAL_ERROR, "traceback": text}))
    return INTERNAL_ERROR


def _interrupted(as_json, where=""):
    """One line for Ctrl-C (with where it stopped, when it says, as ``TrainingInterrupted`` does); a second
    Ctrl-C meanwhile is ignored rather than shown as a traceback."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        message = f"interrupted: {' '.join(where.split())}" if where else "interrupted"
        print(f"{PROG}: {message}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": message, "exit_status": INTERRUPTED}))
    except (OSError, ValueError):  # the terminal may be gone already
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    return INTERRUPTED


def run():
    """The ``minnet`` program: ``main()``, then exit with its status.

    After an interrupt Ctrl-C stays ignored until the process has exited, so that
    a second Ctrl-C cannot print a traceback while Python shuts down.
    """
    try:
        status = main()
    except KeyboardInterrupt:  # in the instant between main's handler and here
        status = INTERRUPTED
    if status == INTERRUPTED:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
