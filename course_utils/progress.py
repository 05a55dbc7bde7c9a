"""Progress bars that leave plain text behind, so a saved and reopened notebook shows no broken widget.

In a notebook tqdm draws an ipywidgets bar. The widget's model lives in the kernel: once the bar is
closed (``leave=False``) or the kernel is gone, a reopened notebook can only say "Error displaying
widget: model not found" where the bar was. Here the bar is displayed with a display id, and when it
closes its output is replaced by the bar's last state as text (``desc: 100%|...| 10/10 [00:03, ...]``),
which is what the notebook file keeps. Outside a notebook this is tqdm's ordinary text bar.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import auto, std
from tqdm.notebook import tqdm as notebook_tqdm


class NotebookBar(notebook_tqdm):
    """tqdm's notebook bar whose output becomes its final text line when it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, display=False, **kwargs)
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)

    def close(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is None:  # disabled, or already closed
            super().close()
            return
        text = str(self)
        super().close()
        handle.update({"text/plain": text}, raw=True)


def progress_bar(iterable: Iterable, *, desc: str | None = None, show: bool = True) -> std.tqdm:
    """A bar over ``iterable`` that disappears into one text line when done (none if not ``show``)."""
    if show and issubclass(auto.tqdm, notebook_tqdm):
        return NotebookBar(iterable, desc=desc, leave=False)
    return std.tqdm(iterable, desc=desc, disable=not show, leave=False)
