"""`notes-assistant` in a real process, with the hand-computable letter embeddings instead of MiniLM.

Tests of locking, concurrent runs and killed runs need real processes; loading MiniLM in each would cost
seconds per process. This swaps the embeddings at the composition root's seam and runs the real CLI:

    python -m tests.letters_cli [--die-after N] [--gate PATH] <notes-assistant arguments>

`--die-after N` SIGKILLs the process (no cleanup, no `finally`) when an embedding call would take it past N
texts, and says first on stderr how many texts it had embedded. `--gate PATH` holds the first embedding call
(so the run is mid-write, holding the index) until PATH exists: a test can then start a second run and see
what it does, with no race against the clock.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from tests.conftest import LetterEmbeddings

GATE_WAIT = 60.0  # a test that never opens the gate must not leave this process behind for long


class ScriptedLetters(LetterEmbeddings):
    """Letters that can wait at a gate, and can die as `kill -9` would, at a chosen text."""

    def __init__(self, die_after: int | None, gate: Path | None) -> None:
        super().__init__()
        self.die_after = die_after
        self.gate = gate

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.die_after is not None and self.texts + len(texts) > self.die_after:
            print(f"letters_cli: killed after {self.texts} texts", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        if self.gate is not None:
            print("letters_cli: at the gate", file=sys.stderr, flush=True)
            deadline = time.monotonic() + GATE_WAIT
            while not self.gate.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.gate = None
        return super().embed_documents(texts)


def main(argv: list[str]) -> int:
    from assistant import cli, embedder

    die_after, gate = None, None
    while argv and argv[0] in ("--die-after", "--gate"):
        flag, value, argv = argv[0], argv[1], argv[2:]
        if flag == "--die-after":
            die_after = int(value)
        else:
            gate = Path(value)
    embeddings = ScriptedLetters(die_after, gate)
    embedder.make_embeddings = lambda settings: embeddings
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
