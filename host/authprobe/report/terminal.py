"""Tables that fit the terminal without cutting what users copy.

Run ids, board names, ports, client ids, root-cause ids and codes go into the next command, so a
table never cuts, folds or wraps them. When the console is too narrow (80 columns, or a pipe, which
rich treats as 80 unless COLUMNS says otherwise) the table first wraps the prose columns at spaces,
then leaves out its least important columns, and says which. When even the identifiers alone do not
fit, every row is printed as `header: value` lines instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # rich is imported where a table is made: importing this module stays cheap
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

Cell = Union[str, "Text"]


@dataclass(frozen=True)
class Col:
    """One column. `identifier` cells are never cut or wrapped; `drop` orders what goes when the
    table does not fit (highest first; 0 is never left out)."""

    header: str
    identifier: bool = False
    drop: int = 0
    justify: str = "left"
    style: str | None = None


# A prose column is never made narrower than its longest word up to this many cells (beyond it, a
# long word such as a path is folded rather than crowding out whole columns).
PROSE_WORD_CAP = 32


def _lines(cell: Cell) -> list[str]:
    return (cell if isinstance(cell, str) else cell.plain).split("\n")


def _natural(col: Col, cells: list[Cell]) -> int:
    from rich.cells import cell_len

    return max(cell_len(line) for cell in [col.header, *cells] for line in _lines(cell))


def _narrowest(col: Col, cells: list[Cell]) -> int:
    """The narrowest a column may be: an identifier's whole width, else its longest word (capped)."""
    from rich.cells import cell_len

    if col.identifier:
        return _natural(col, cells)
    words = [cell_len(w) for cell in [col.header, *cells] for line in _lines(cell) for w in line.split()]
    return max(1, min(max(words, default=1), PROSE_WORD_CAP))


def _table(columns: Sequence[Col], rows: Sequence[Sequence[Cell]], keep: list[int], widths: list[int] | None,
           table_args: dict[str, Any]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(**table_args)
    for n, i in enumerate(keep):
        col = columns[i]
        table.add_column(col.header, justify=col.justify, style=col.style,  # type: ignore[arg-type]
                         no_wrap=col.identifier, overflow="fold", width=None if widths is None else widths[n])
    for row in rows:
        # Plain strings are data, never markup: `ca=[Amazon Root CA 1]` must not read as a style tag.
        table.add_row(*(Text(row[i]) if isinstance(row[i], str) else row[i] for i in keep))
    return table


def _overhead(table: Table) -> int:
    # Borders and padding: rich's own arithmetic (private helpers, pinned rich version).
    return table._extra_width + sum(table._get_padding_width(i) for i in range(len(table.columns)))


def _layout(naturals: list[int], narrowest: list[int], room: int) -> list[int]:
    """Widths: every column at its narrowest, then the room left shared out, always to the column
    furthest from its natural width, so prose wraps as little as possible."""
    widths = list(narrowest)
    spare = room - sum(widths)
    while spare > 0:
        gaps = [n - w for n, w in zip(naturals, widths, strict=True)]
        i = max(range(len(gaps)), key=lambda k: gaps[k])
        if gaps[i] <= 0:
            break
        widths[i] += 1
        spare -= 1
    return widths


def fit(columns: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, table_args: dict[str, Any],
        note_dropped: bool = True) -> RenderableType:
    """The table of `rows` laid out for `width` cells, every identifier whole (see the module)."""
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    keep = list(range(len(columns)))
    order = sorted((i for i, c in enumerate(columns) if c.drop > 0), key=lambda i: (-columns[i].drop, -i))

    def room(kept: list[int]) -> int:
        return width - _overhead(_table(columns, [], kept, None, table_args))

    def fits(kept: list[int]) -> bool:
        return sum(_narrowest(columns[i], cells[i]) for i in kept) <= room(kept)

    dropped: list[int] = []
    while not fits(keep):
        if not order:
            return _as_list(columns, rows, table_args.get("title"))
        i = order.pop(0)
        keep.remove(i)
        dropped.append(i)
    # One very wide column (a long /dev/serial/by-id path) may have pushed out narrower ones that
    # were dropped before it: take back, most important first, whatever still fits.
    for i in reversed(dropped[:-1]):
        trial = sorted([*keep, i])
        if fits(trial):
            keep = trial
            dropped.remove(i)
    widths = _layout([_natural(columns[i], cells[i]) for i in keep],
                     [_narrowest(columns[i], cells[i]) for i in keep], room(keep))
    table = _table(columns, rows, keep, widths, table_args)
    if dropped and note_dropped:
        names = ", ".join(columns[i].header for i in sorted(dropped))
        table.caption = f"left out at {width} columns: {names} (a wider terminal or --json shows them)"
    return table


class FittedTable:
    """A rich renderable laid out when printed, for the width it gets there (a whole console, or
    the inside of a panel), so the same report fits a terminal, a pipe or a log."""

    def __init__(self, columns: Sequence[Col], rows: Sequence[Sequence[Cell]], note_dropped: bool,
                 table_args: dict[str, Any]):
        self.columns = columns
        self.rows = rows
        self.note_dropped = note_dropped
        self.table_args = table_args

    def __rich_console__(self, console: Console, options: Any) -> Any:
        yield fit(self.columns, self.rows, options.max_width, self.table_args, self.note_dropped)


def fitted_table(columns: Sequence[Col], rows: Sequence[Sequence[Cell]], *, note_dropped: bool = True,
                 **table_args: Any) -> FittedTable:
    """A table of `rows` that fits wherever it is printed, with every identifier whole.

    Args:
        columns: the columns, in order; each row holds one cell per column.
        rows: str or rich Text cells.
        note_dropped: add a caption naming the columns left out for want of width.
        **table_args: rich.table.Table keywords (title, show_edge, ...).
    """
    return FittedTable(columns, rows, note_dropped, table_args)


def _as_list(columns: Sequence[Col], rows: Sequence[Sequence[Cell]], title: Any) -> RenderableType:
    """The narrow-terminal fallback: each row as `header: value` lines, nothing cut."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = []
    if title:
        parts.append(Text(str(title), style="italic"))
    for row in rows:
        for col, cell in zip(columns, row, strict=True):
            line = Text(f"{col.header}: ", style="dim")
            line.append(cell if isinstance(cell, Text) else Text(str(cell)))
            parts.append(line)
        parts.append(Text(""))
    return Group(*parts)
