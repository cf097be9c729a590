"""Answering a chat's questions in the background, one after another, so a question sent while another is
being answered waits its turn in plain view instead of interrupting it, and Stop ends the one being answered.

The questions live in the `ChatStore` from the moment they are sent; a `ChatWorker` answers the turns that have
no reply yet, in order, and saves each reply. What the page shows of the answer being written is `live`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from assistant.chats import ChatStore, Reply, Turn


@dataclass(frozen=True)
class Live:
    """The answer being written: its turn, the text so far, and whether it waits for the index (held by a step
    of indexing or another chat's answer) before it can start."""

    turn: int
    text: str
    queued: bool = False


class Stopped(Exception):
    """Raised by `ChatWorker.piece` when the user pressed Stop; the responder lets it through."""


# respond(question, history, worker) -> Reply: answers one question, calling `worker.piece(text)` for each piece
# written (which raises `Stopped` after Stop) and `worker.queued(True)` while it waits for the index.
Respond = Callable[[str, list[Turn], "ChatWorker"], Reply]


class ChatWorker:
    """Answers the unanswered turns of one chat in a thread of its own."""

    def __init__(self, store: ChatStore, chat_id: str, respond: Respond) -> None:
        self.store = store
        self.chat_id = chat_id
        self.respond = respond
        self._guard = threading.Lock()
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.options: dict = {}  # the answerer and top-k the user chose, read by `respond`
        self.practice = None  # a practice run under way in this chat (`practice.chat`), kept by `respond`

    @property
    def live(self) -> Live | None:
        with self._guard:
            return self._live

    @property
    def busy(self) -> bool:
        with self._guard:
            return self._thread is not None and self._thread.is_alive()

    def kick(self) -> None:
        """Make sure the chat's waiting questions get answered: start the thread unless it runs."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=f"chat-{self.chat_id}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the answer being written; what it wrote so far is kept, marked as stopped."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def queued(self, on: bool) -> None:
        """Say whether the answer being written waits for the index (the page shows why nothing comes yet)."""
        with self._guard:
            if self._live is not None:
                self._live = Live(self._live.turn, self._live.text, on)

    def piece(self, text: str) -> None:
        """One more piece of the live answer; raises `Stopped` once Stop was pressed."""
        if self._stop.is_set():
            raise Stopped
        with self._guard:
            if self._live is not None:
                self._live = Live(self._live.turn, self._live.text + text)

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _next(self) -> tuple[Turn, list[Turn]] | None:
        turns = self.store.turns(self.chat_id)
        for i, turn in enumerate(turns):
            if turn.reply is None:
                return turn, [t for t in turns[:i] if t.reply is not None]
        return None

    def _run(self) -> None:
        while True:
            with self._guard:
                found = self._next()
                if found is None:
                    self._live = None
                    # The thread ends under the guard, so a `kick` after this sees it gone and starts another.
                    self._thread = None
                    return
                turn, history = found
                self._live = Live(turn.id, "")
                self._stop.clear()
            try:
                reply = self.respond(turn.question, history, self)
            except Stopped:
                reply = Reply(stopped=self.live.text if self.live else "")
            except Exception as err:  # noqa: BLE001 - the chat shows why, and the next question still gets answered
                reply = Reply(error=f"could not answer: {err}")
            if reply.answer is not None and reply.answer.refused:
                # A refusal the model decided on at its end arrives as one last piece: taken off the page before
                # the reply is saved, so it is never drawn as an answer first.
                with self._guard:
                    self._live = Live(turn.id, "")
            self.store.answer(turn.id, reply)


class Workers:
    """The worker of every chat, shared by the server's sessions: a reload finds the answer still being written."""

    def __init__(self, store: ChatStore, respond: Respond) -> None:
        self.store = store
        self.respond = respond
        self._workers: dict[str, ChatWorker] = {}
        self._guard = threading.Lock()

    def of(self, chat_id: str) -> ChatWorker:
        with self._guard:
            worker = self._workers.get(chat_id)
            if worker is None:
                worker = self._workers[chat_id] = ChatWorker(self.store, chat_id, self.respond)
            return worker
