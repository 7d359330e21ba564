"""`python -m bigram` and the `bigram` command: a Ctrl-C at any moment, even while the CLI's own
modules import, ends with one line and exit status 130."""

import signal
import sys


def main() -> None:
    try:
        from bigram.safety.interrupt import held_ctrl_c

        with held_ctrl_c():
            from bigram.cli import main as cli_main
        cli_main()
    except KeyboardInterrupt:  # before or after the commands' own handler (bigram.cli_shared.friendly)
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:  # the command is over: a Ctrl-C now would only break torch's exit-time clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    main()
