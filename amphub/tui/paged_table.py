"""A table of a long list that asks the server for one page at a time.

The first page shows as soon as it arrives; the next is asked for when the cursor or
the view comes near the end of what is loaded. Loading runs in a worker, so the
screen keeps answering keys while a page is on its way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import Any

from textual.binding import Binding
from textual.message import Message

from amphub.tui.client import Page
from amphub.tui.fitted_table import Column, FittedTable, cursor_key

Fetch = Callable[[int, int], Awaitable[Page | None]]
Row = Callable[[dict], tuple[str, Iterable[Any]]]


class PagedTable(FittedTable):
    """Rows of one list, keyed by the item's id, loaded page by page.

    `fetch(page, per_page)` answers a page, or None when the server refused or was not
    there (the app has said so already); `row(item)` makes an item's key and cells.
    """

    class PageLoaded(Message):
        """A page arrived and is on the screen; `seconds` from asking to showing."""

        def __init__(self, table: PagedTable, page: int, rows: int, seconds: float) -> None:
            super().__init__()
            self.table = table
            self.page = page
            self.rows = rows
            self.seconds = seconds

        @property
        def control(self) -> PagedTable:
            """The table the page was loaded into."""
            return self.table

    def __init__(
        self, columns: list[Column], fetch: Fetch, row: Row, *, per_page: int, id: str
    ) -> None:
        super().__init__(columns, id=id)
        self.fetch = fetch
        self.make_row = row
        self.per_page = per_page
        self.items: dict[str, dict] = {}
        self.total: int | None = None
        self.pages = 0
        self._loading: object | None = None

    @property
    def loaded(self) -> bool:
        """Whether a first page ever arrived."""
        return self.total is not None

    @property
    def selected(self) -> dict | None:
        """The item under the cursor, if any."""
        key = cursor_key(self)
        return None if key is None else self.items.get(key)

    def reload(self) -> None:
        """Load the first page again, keeping the cursor on its item where it can."""
        self.run_worker(self._load(1), group="pages", exclusive=True)

    def put(self, item: dict) -> None:
        """Show an item that changed or was added, without loading anything."""
        self._put(item)
        self.fit()

    def _put(self, item: dict) -> None:
        key, cells = self.make_row(item)
        if key not in self.items:
            self.total = (self.total or 0) + 1
        self.set_row(key, cells)
        self.items[key] = item

    def drop(self, key: str) -> None:
        """Remove an item's row."""
        if key in self.items:
            self.drop_row(key)
            del self.items[key]
            self.total = max((self.total or 1) - 1, 0)

    def on_data_table_row_highlighted(self) -> None:
        """The cursor moved: the next page may be due."""
        self._more()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """The view scrolled: the next page may be due."""
        super().watch_scroll_y(old_value, new_value)
        self._more()

    def _more(self) -> None:
        if self._loading is not None or self.total is None or len(self.items) >= self.total:
            return
        near_cursor = self.cursor_row >= self.row_count - self.per_page // 2
        # Before the first layout the table has no height: nothing is in view yet.
        height = self.size.height
        near_view = height > 0 and self.scroll_y + 2 * height >= self.virtual_size.height
        if near_cursor or near_view:
            self._loading = True
            self.run_worker(self._load(self.pages + 1), group="pages")

    async def _load(self, page: int) -> None:
        # A reload cancels the load it replaces; only the latest one clears the flag.
        self._loading = token = object()
        started = perf_counter()
        try:
            found = await self.fetch(page, self.per_page)
        finally:
            if self._loading is token:
                self._loading = None
        if found is None:
            return
        if page == 1:
            self._replace(found.items)
        else:
            for item in found.items:
                self._put(item)
        self.fit()
        self.total, self.pages = found.total, page
        self.post_message(self.PageLoaded(self, page, len(found.items), perf_counter() - started))

    def _replace(self, items: list[dict]) -> None:
        """Show the first page in place of everything, the cursor staying on its item."""
        kept = self.selected
        self.clear_rows()
        self.items.clear()
        for item in items:
            key, cells = self.make_row(item)
            if key not in self.items:
                self.set_row(key, cells)
                self.items[key] = item
        self.fit()
        keys = list(self.items)
        if kept is not None:
            kept_key = self.make_row(kept)[0]
            if kept_key in self.items:
                self.move_cursor(row=keys.index(kept_key), scroll=False)


class OpenableTable(FittedTable):
    """A fitted table whose rows open with enter, as the footer says."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]


class OpenablePagedTable(PagedTable):
    """A paged table whose rows open with enter, as the footer says."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]
