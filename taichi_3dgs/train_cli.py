"""Command line of `gaussian_point_train.py` (the original project's script name and arguments),
plus config overrides: any YAML key as `--key value`, nested keys joined with dots.

Under torchrun (`torchrun --nproc_per_node N gaussian_point_train.py ...`) every process runs this
same command line; messages name the process (`gaussian_point_train.py [rank 1/2]: error: ...`),
warnings come from rank 0 only, and a process that fails ends at once after its error line, so
torchrun stops the others instead of their waiting for it (`training.distributed`).

With `--viewer` this command line wires the live web viewer (`viewer.web.WebViewer`) into the
training: `train` receives a factory and never imports the viewer itself. When the training ends,
the page goes on showing the final scene until Ctrl-C (exit code 0), as gsplat's trainer does,
unless `--viewer_exit_when_done`; a run stopped by Ctrl-C stops serving too (exit code 130).
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Optional, Sequence

from taichi_3dgs.cli import (
    DEFAULT_WEB_HOST, DEFAULT_WEB_PORT, EXIT_INTERRUPTED, ToolParser, check_port_free, port_number, run_tool,
)

PROG = "gaussian_point_train.py"
EPILOG = """config overrides:
  Any key of the YAML file can be set on the command line after the options above, as --KEY VALUE
  or --KEY=VALUE: kebab-case or snake_case, nested keys joined with dots, values in YAML syntax
  (the options above may likewise be spelt with hyphens: --train-config).
  They are checked like the file's keys and written into the effective train_config.yaml:

    python gaussian_point_train.py --train_config config/demo.yaml --num-iterations 5 \\
        --adaptive-controller-config.densify-until-iteration 1000 --background-color [1,1,1]

  Every key, its type and default: docs/FORMATS.md, or --gen_template_only.

several processes (one per GPU), with PyTorch's launcher:
  torchrun --standalone --nproc_per_node N gaussian_point_train.py --train_config x.yaml --batch-size N
  batch-size is the global batch (B views per step, 1..9), split evenly over the N processes."""


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> int:
    """Parse arguments, then train, or write the config template; return the exit code.

    Exit codes: 0 done (with `--viewer`: also after the Ctrl-C that ends serving the final scene),
    1 bad input (one line on stderr, no traceback), 130 training stopped by Ctrl-C (after saving a
    checkpoint; a second Ctrl-C aborts without one).
    """
    parser = ToolParser(prog, "Train a 3D Gaussian Splatting scene from a YAML config (see config/*.yaml).",
                        EPILOG)
    parser.add_argument("--train_config", required=True, help="YAML training config")
    parser.add_argument("--gen_template_only", action="store_true",
                        help="write the full default config to --train_config (which must not exist) and exit")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in the config's output-model-dir")
    parser.add_argument("--viewer", action="store_true",
                        help="serve the training live as a web page (visualizer.py --web's page, plus step, loss, "
                             "Gaussian count, steps/s and a pause button); under torchrun rank 0 serves it")
    parser.add_argument("--viewer_port", type=port_number, default=DEFAULT_WEB_PORT,
                        help="--viewer: TCP port of the page (0: any free port)")
    parser.add_argument("--viewer_host", default=DEFAULT_WEB_HOST,
                        help="--viewer: address to listen on (0.0.0.0: every network interface)")
    parser.add_argument("--viewer_exit_when_done", action="store_true",
                        help="--viewer: exit when the training ends (default: go on serving the final scene "
                             "until Ctrl-C)")
    args, overrides = parser.parse_known_args(argv)
    if args.gen_template_only and overrides:
        parser.error(f"--gen_template_only writes the defaults and takes no config overrides "
                     f"(got {' '.join(overrides)})")

    from taichi_3dgs.training.distributed import joined_world, rank_label

    label = rank_label()

    def work() -> int:
        from taichi_3dgs.training.config import apply_overrides, load_train_config, write_config_template

        if args.gen_template_only:
            write_config_template(args.train_config)
            print(f"wrote the default config to {args.train_config}")
            return 0
        served = []  # the viewer `train` built: this function stops it
        try:
            # Before the config: joining picks this process's GPU, which must precede any CUDA use.
            with joined_world() as world:
                if not world.is_main:
                    warnings.simplefilter("ignore")  # every rank would repeat rank 0's warnings
                config = apply_overrides(load_train_config(args.train_config), overrides)
                from taichi_3dgs.training.trainer import train

                viewer = None
                if args.viewer and world.is_main:
                    check_port_free(args.viewer_host, args.viewer_port,  # before the run writes anything
                                    host_option="--viewer_host", port_option="--viewer_port")

                    def viewer(cameras):
                        from taichi_3dgs.viewer.web import WebViewer  # viser loads only for --viewer

                        served.append(WebViewer(cameras=list(cameras), host=args.viewer_host,
                                                port=args.viewer_port))
                        return served[0]

                result = train(config, resume=args.resume, config_source=args.train_config, world=world,
                               viewer=viewer)
            if result.interrupted:
                return EXIT_INTERRUPTED
            if served and not args.viewer_exit_when_done:
                _serve_until_ctrl_c(served[0])
            return 0
        finally:
            for page in served:
                page.stop()

    code = run_tool(f"{prog} [{label}]" if label else prog, work, args.debug)
    if label and code != 0:
        # The other ranks may wait for this one in a collective, and leaving the process group
        # could wait for them: end the process now; torchrun then stops the others.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _serve_until_ctrl_c(page) -> None:
    """Go on serving the web viewer `page` (showing the trained scene) until Ctrl-C."""
    print(f"training done: serving the final scene at {page.url} until Ctrl-C "
          "(--viewer_exit_when_done exits at once)", flush=True)
    try:
        page.serve_forever()
    except KeyboardInterrupt:
        print("stopped serving", flush=True)


if __name__ == "__main__":
    sys.exit(main())
