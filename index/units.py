"""Unit vectors (sentences and list items), embedded when a question first needs a section's, and kept.

The index embeds chunks only. Units were embedded at index time too, once: they were 82% of the texts and more
than half the tokens a full index embedded (the bundled notes: 189 of 250 texts; ../shared/notes-sdp: 1,775 of
2,161), which put a full index at 1.2-1.3x the time of LangChain's recipe on the same notes. A question reads the
units of eight sections (`index.retrieve.UNIT_SECTIONS`), so they are embedded then, for those sections
only, and kept by content hash: a section asked about again costs nothing, an edited one gets a new hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.chunking import section_units
from corpus.types import Section, Unit

# Sections whose unit vectors are kept: at about 6 units a section (../shared/notes-sdp averages 6.1), 4,096
# sections are about 25,000 vectors of 384 floats, 38 MB, and hundreds of questions' worth of sections.
KEPT_SECTIONS = 4096

UnitRows = list[tuple[int, np.ndarray]]  # (unit ordinal, unit vector), in reading order


def unit_embed_text(section: Section, unit: Unit) -> str:
    """What is embedded for a unit: the section's title, the label the unit hangs under, then its text.

    The title goes in front: "Fully managed messaging service." alone does not say it is SNS; a list item keeps
    the label it hangs under: "Cons: higher latency between regions"; text under a commented-out heading says
    what it is about by that heading ("Storage Gateway: Your on-premise data can be backed up").
    """
    label = unit.context or (unit.heading if not unit.text.startswith(unit.heading) else "")
    context = f"{label}: " if label else ""
    return f"{section.title}: {context}{unit.text}"


class UnitVectors:
    """Unit vectors by section, embedded on first use and kept (least recently used dropped past `capacity`)."""

    def __init__(self, embeddings: Embeddings, capacity: int = KEPT_SECTIONS) -> None:
        self.embeddings = embeddings
        self.capacity = capacity
        self._kept: OrderedDict[str, UnitRows] = OrderedDict()  # content hash -> its units' rows
        # A question and the app's background index may ask from two threads; one embeds at a time.
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every kept vector (a benchmark's cold question)."""
        with self._lock:
            self._kept.clear()

    def of(self, sections: Sequence[tuple[Section, str]]) -> dict[str, UnitRows]:
        """`{section key: [(ordinal, vector), ...]}` for `(section, content hash)` pairs; the units of every
        section not kept are embedded in one call, so the model batches them by length."""
        with self._lock:
            kept = self._kept
            todo = [(s, h) for s, h in dict(((h, (s, h)) for s, h in sections)).values() if h not in kept]
            if todo:
                units = [(h, u, unit_embed_text(s, u)) for s, h in todo for u in section_units(s)]
                vectors = self.embeddings.embed_documents([text for _, _, text in units]) if units else []
                for _, h in todo:
                    kept[h] = []
                for (h, unit, _), vector in zip(units, vectors, strict=True):
                    kept[h].append((unit.ordinal, np.asarray(vector, dtype=np.float32)))
            out: dict[str, UnitRows] = {}
            for s, h in sections:
                kept.move_to_end(h)
                if kept[h]:
                    out[s.key] = kept[h]
            while len(kept) > self.capacity:
                kept.popitem(last=False)
            return out
