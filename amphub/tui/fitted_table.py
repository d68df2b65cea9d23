"""A table whose columns fit its width, the least important left out first.

Each column is as wide as its widest cell. When they do not all fit, the columns
with the highest `drop` go first (0: never), so the table never cuts a column off at
its right edge; the detail line under a table shows the whole selected item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from amphub.tui.formatting import plain


@dataclass(frozen=True)
class Column:
    """A column: its key, its heading, and its turn to be left out (0: never)."""

    key: str
    label: str
    drop: int = 0


def cursor_key(table: DataTable) -> str | None:
    """The key of the row under the cursor, if there is a row."""
    if not table.row_count:
        return None
    return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value


def _width(cell: Any) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    return cell_len(str(cell))


def fitting(columns: Sequence[Column], widths: dict[str, int], room: int) -> list[Column]:
    """The columns that fit in `room` cells, leaving out the highest `drop` first."""
    shown = list(columns)
    for column in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if sum(widths[c.key] for c in shown) <= room:
            break
        shown.remove(column)
    return shown


class FittedTable(DataTable):
    """Rows keyed by id, their cells for every column; those that fit are shown."""

    def __init__(self, columns: list[Column], *, id: str) -> None:
        super().__init__(cursor_type="row", id=id)
        self.column_list = columns
        self.rows_cells: dict[str, list[Any]] = {}
        self.widths = {c.key: _width(c.label) for c in columns}
        self.shown: list[Column] = []
        self._shown_widths: list[int] = []

    @property
    def shown_keys(self) -> list[str]:
        """The keys of the columns shown, in order."""
        return [c.key for c in self.shown]

    def on_mount(self) -> None:
        """Show the columns that fit."""
        self.fit()

    def on_resize(self) -> None:
        """The width changed: other columns may fit."""
        self.fit()

    def set_row(self, key: str, cells: Iterable[Any]) -> None:
        """Show a row, new or changed; call `fit` after a batch of them."""
        cells = [plain(cell) for cell in cells]
        for column, cell in zip(self.column_list, cells, strict=True):
            self.widths[column.key] = max(self.widths[column.key], _width(cell))
        if key in self.rows_cells:
            old = self.rows_cells[key]
            for index, column in enumerate(self.column_list):
                if column in self.shown and old[index] != cells[index]:
                    self.update_cell(key, column.key, cells[index])
        elif self.shown:
            self.add_row(*self._shown_cells(cells), key=key)
        self.rows_cells[key] = cells

    def drop_row(self, key: str) -> None:
        """Take a row away."""
        if key in self.rows_cells:
            del self.rows_cells[key]
            if self.shown:
                self.remove_row(key)

    def clear_rows(self) -> None:
        """Take every row away; the columns' widths start again from their headings."""
        self.rows_cells.clear()
        self.widths = {c.key: _width(c.label) for c in self.column_list}
        self.clear()

    def fit(self) -> None:
        """Show the columns that fit the width, each as wide as its widest cell."""
        padding = 2 * self.cell_padding
        room = self.size.width - self.styles.scrollbar_size_vertical
        if room <= 0:
            return
        padded = {key: width + padding for key, width in self.widths.items()}
        shown = fitting(self.column_list, padded, room)
        widths = [self.widths[c.key] for c in shown]
        if shown == self.shown and widths == self._shown_widths:
            return
        self.shown, self._shown_widths = shown, widths
        kept = cursor_key(self)
        self.clear(columns=True)
        for column, width in zip(shown, widths, strict=True):
            self.add_column(column.label, key=column.key, width=width)
        for key, cells in self.rows_cells.items():
            self.add_row(*self._shown_cells(cells), key=key)
        if kept is not None and kept in self.rows_cells:
            self.move_cursor(row=list(self.rows_cells).index(kept), scroll=False)

    def _shown_cells(self, cells: list[Any]) -> list[Any]:
        return [
            cell
            for column, cell in zip(self.column_list, cells, strict=True)
            if column in self.shown
        ]
