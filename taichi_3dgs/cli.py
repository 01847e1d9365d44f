"""Command-line conventions shared by every script and tool.

One vocabulary across the scripts (each `--help` lists its options):

    --scene        a trained scene to read (.parquet, .ply or a web format, see `read_scene`)
    --cameras      a camera JSON (train.json / val.json), or a poses.pt camera path where one is read
    --output_dir   a folder to write
    --output       a file to write
    --val_every N / --no_val   the validation split of every dataset converter

Every option can be spelt with underscores or hyphens (`--output_dir` = `--output-dir`; `--help`
shows the first), like the trainer's config overrides. Older names stay accepted as deprecated
aliases that print a one-line notice. Every `--help` shows the defaults; every tool has `--version`.
Taichi's start-up banner ("[Taichi] version ...") is switched off for the tools (set
ENABLE_TAICHI_HEADER_PRINT=1 to see it). This module imports the standard library only, and the scripts import the
rest of the package after parsing, so `--help` answers before torch, Taichi or pandas load.

Errors: a bad input (ValueError, OSError; the package's errors name the file, field or key) is
one line `<prog>: error: ...` on stderr and exit code 1; any other exception is the same one line
naming its type, with the traceback only under `--debug` or `TAICHI_3DGS_DEBUG=1`; Ctrl-C is
`<prog>: interrupted` and exit code 130. Warnings print once each as `<prog>: warning: ...`.
"""
from __future__ import annotations

import argparse
import copy
import errno
import os
import socket
import sys
import traceback
import warnings
from typing import Any, Callable, Optional, Sequence

from taichi_3dgs import __version__

# Read by taichi when it is first imported, which every tool does after this module.
os.environ.setdefault("ENABLE_TAICHI_HEADER_PRINT", "False")
DEBUG_ENV = "TAICHI_3DGS_DEBUG"
DEFAULT_WEB_HOST = "127.0.0.1"
"""The web viewer's page is open to this machine only by default; reach it from elsewhere by SSH
port forwarding (README), or pass --host 0.0.0.0 to serve every network interface."""
DEFAULT_WEB_PORT = 8080
EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks, appends each option's default and hides deprecated
    names (they still parse)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        shown = action.option_strings and not hidden
        if shown and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "hidden_names", ())
        if hidden:
            action = copy.copy(action)
            action.option_strings = [name for name in action.option_strings if name not in hidden]
        return super()._format_action_invocation(action)


class ToolParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with the project's conventions: defaults in `--help`, no
    abbreviated options, `--debug` and `--version` flags, each option's hyphenated spelling
    (`--output-dir` for `--output_dir`, hidden from `--help`) and deprecated aliases
    (`add_argument(..., deprecated=("--old_name",))`) that print `<prog>: warning: --old_name is
    deprecated; use --new_name` when used."""

    def __init__(self, prog: str, description: str, epilog: str | None = None) -> None:
        super().__init__(prog=prog, description=description, epilog=epilog,
                         formatter_class=_HelpFormatter, allow_abbrev=False)
        self._renamed: dict[str, str] = {}
        self.add_argument("--debug", action="store_true",
                          help=f"print the traceback of an unexpected error (or set {DEBUG_ENV}=1)")
        self.add_argument("--version", action="version", version=f"%(prog)s (taichi_3dgs) {__version__}")

    def add_argument(self, *names: str, deprecated: Sequence[str] = (), **kwargs: Any) -> argparse.Action:
        """`ArgumentParser.add_argument`, plus `deprecated`: older option names of the same
        argument, accepted with a notice and hidden from `--help`."""
        action = super().add_argument(*names, *deprecated, **kwargs)
        action.hidden_names = (*action.hidden_names, *deprecated)
        for old in deprecated:
            self.deprecate(old, names[0])
            if _hyphenated(old) != old:
                self.deprecate(_hyphenated(old), names[0])
        return action

    def _add_action(self, action: argparse.Action) -> argparse.Action:
        # Every option, also those added through argument groups, gets its hyphenated spelling.
        spellings = [_hyphenated(name) for name in action.option_strings]
        spellings = [name for name in dict.fromkeys(spellings) if name not in action.option_strings]
        action.option_strings = [*action.option_strings, *spellings]
        action.hidden_names = tuple(spellings)
        return super()._add_action(action)

    def deprecate(self, old: str, replacement: str) -> None:
        """Print `<prog>: warning: <old> is deprecated; use <replacement>` when `old` is used."""
        self._renamed[old] = replacement

    def parse_known_args(self, args: Optional[Sequence[str]] = None,
                         namespace: Optional[argparse.Namespace] = None):
        argv = list(sys.argv[1:] if args is None else args)
        for token in argv:
            old = token.split("=", 1)[0]
            if old in self._renamed:
                print(f"{self.prog}: warning: {old} is deprecated; use {self._renamed[old]}", file=sys.stderr)
        return super().parse_known_args(argv, namespace)


def _hyphenated(name: str) -> str:
    """`--output_dir` -> `--output-dir` (short options and positionals unchanged)."""
    return "--" + name[2:].replace("_", "-") if name.startswith("--") else name


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, downscale factors, strides)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (rates, sizes)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number > 0")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0..65535 (0: any free port, the printed URL tells which)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (an integer in 0..65535)")
    return value


def check_port_free(host: str, port: int, host_option: str = "--host", port_option: str = "--port") -> None:
    """Raise if a TCP server could not listen on `host`:`port` now.

    viser itself silently moves on to the next free port when the requested one is taken, so the
    port is tried here first. SO_REUSEADDR is set as servers set it, so a port still in TIME_WAIT
    after a previous viewer stopped counts as free.

    Args:
        host: address or host name to bind ("127.0.0.1", "0.0.0.0", "localhost", ...).
        port: TCP port, 0..65535 (0: the system picks a free port; always free).
        host_option, port_option: the command-line options that set them, named in the messages
            (the trainer's are --viewer_host / --viewer_port).

    Raises:
        ValueError: the port is out of range, the host cannot be resolved or is not an address of
            this machine, or the port is in use (the message names the option to change).
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"{port_option}: expected a TCP port in 0..65535, got {port}")
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ValueError(f"{host_option} {host}: cannot resolve this address ({error.strerror})") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRNOTAVAIL:
                    raise ValueError(f"{host_option} {host}: this machine has no such address ({error.strerror}); "
                                     "use one of its own, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every "
                                     "network interface)") from None
                raise ValueError(f"{port_option} {port}: the port is not available on {host} ({error.strerror}); "
                                 f"another program (or viewer) uses it: choose another {port_option}") from None


def debug_requested(flag: bool = False) -> bool:
    """True when `--debug` was given or TAICHI_3DGS_DEBUG is set to anything but '' or '0'."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_tool(prog: str, work: Callable[[], Optional[int]], debug: bool = False) -> int:
    """Run `work()` as the body of the command-line tool `prog` and return its exit code.

    `work` returns an exit code (None means 0). Warnings raised inside print once each as
    `<prog>: warning: <message>`; errors become one line on stderr (module docstring).

    Returns:
        work's exit code; 1 after an error; 130 after Ctrl-C.
    """
    debug = debug_requested(debug)

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings API)
        print(f"{prog}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # Deprecation notices of the libraries underneath (taichi, torch) are for developers.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.showwarning = show
        try:
            code = work()
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            print(f"{prog}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (ValueError, OSError) as error:
            if debug:
                traceback.print_exc()
            print(f"{prog}: error: {_describe(error)}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as error:  # noqa: BLE001 (the one place that turns any fault into one line)
            if debug:
                traceback.print_exc()
                print(f"{prog}: error: unexpected {type(error).__name__}: {error}", file=sys.stderr)
            else:
                print(f"{prog}: error: unexpected {type(error).__name__}: {error} (rerun with --debug "
                      f"for the traceback)", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK if code is None else code


def _describe(error: BaseException) -> str:
    """The message of a bad-input error; OSErrors name their file as 'path: reason'."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        target = f"{error.filename} -> {error.filename2}" if error.filename2 else str(error.filename)
        return f"{target}: {error.strerror.lower()}"
    return str(error) or type(error).__name__
