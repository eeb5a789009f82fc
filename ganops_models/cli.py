"""Shared command-line behaviour of the user tools."""
import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage of a tool with many options would
    bury it): ``<prog>: error: <message> (see --help)``, exit status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
