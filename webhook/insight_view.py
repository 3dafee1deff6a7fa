"""The insight page's presentation: the domain's tables (indgang/insight.py, small cells already
suppressed) as texts in the staff member's language, as bar charts drawn here in SVG (no script,
no outside service), and as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from markupsafe import Markup, escape

from indgang.catalogue.taxonomy import offer_types
from indgang.followup import BOOKING_TYPE
from indgang.i18n import t
from indgang.insight import UNKNOWN_THEME, WAIT_BUCKETS, Figures, Shown, Table

SUPPRESSED = "<5"
# Bars: a label column, then the bars, then room for the value. Colours keep 4.5:1 on white.
LABEL_WIDTH, BAR_WIDTH, VALUE_WIDTH = 190, 330, 70
BAR_HEIGHT, BAR_GAP, ROW_GAP, TOP = 14, 2, 8, 8
SERIES_COLOURS = ("#004b87", "#8a4b00", "#2f6b2f")
CSV_UNSAFE = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run a cell that starts so


def text(key: str, lang: str, **values: object) -> str:
    return t(f"staff.insight.{key}", lang, **values)


def row_label(table: Table, label: str, lang: str) -> str:
    if table.label_kind == "week":
        year, week = label.split("-W")
        return text("week", lang, week=int(week), year=year)
    if table.label_kind in ("type", "theme"):
        if label == UNKNOWN_THEME:
            return text("unknown_theme", lang)
        if label == BOOKING_TYPE:
            return text("booking_type", lang)
        known = offer_types().get(label)
        return (known.en if lang == "en" else known.da) if known else label
    return label


def duration(seconds: int, lang: str) -> str:
    if seconds > WAIT_BUCKETS[-1]:
        return text("longer_than_a_day", lang)
    if seconds >= 3600:
        return text("at_most_hours", lang, hours=seconds // 3600)
    return text("at_most_minutes", lang, minutes=seconds // 60)


def value_text(value: Shown, unit: str, lang: str) -> str:
    if value is None:
        return SUPPRESSED
    if unit == "percent":
        return f"{value} %"
    if unit == "seconds":
        return duration(value, lang)
    return str(value)


@dataclass(frozen=True)
class ShownTable:
    """One table as the page shows it: texts, cells and the chart beside it."""

    key: str
    title: str
    intro: str
    row_header: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    chart: Markup


def _chart(table: Table, title: str, columns: list[str], labels: list[str], lang: str) -> Markup:
    """Horizontal bars, one group per row and one bar per charted column; a suppressed cell has
    no bar, only "<5". The numbers are in the table beside it, which screen readers read."""
    series = list(table.charted)
    drawn = [v for row in table.rows for i in series if (v := row.values[i]) is not None]
    top = max(drawn, default=0) or 1
    group = len(series) * (BAR_HEIGHT + BAR_GAP) + ROW_GAP
    legend = 22 if len(series) > 1 else 0
    height = TOP + legend + max(1, len(table.rows)) * group
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    name = escape(text("chart_label", lang, title=title))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{name}">'
    ]
    for n, i in enumerate(series if legend else []):
        x = LABEL_WIDTH + n * 150
        parts.append(f'<rect x="{x}" y="{TOP}" width="12" height="12" fill="{SERIES_COLOURS[n]}"/>')
        parts.append(f'<text x="{x + 16}" y="{TOP + 11}" font-size="13">{escape(columns[i])}</text>')
    if not table.rows:
        none = escape(text("no_rows", lang))
        parts.append(f'<text x="0" y="{TOP + legend + 12}" font-size="13">{none}</text>')
    for r, (row, label) in enumerate(zip(table.rows, labels, strict=True)):
        y = TOP + legend + r * group
        parts.append(f'<text x="0" y="{y + BAR_HEIGHT - 2}" font-size="13">{escape(label)}</text>')
        for n, i in enumerate(series):
            value = row.values[i]
            bar_y = y + n * (BAR_HEIGHT + BAR_GAP)
            length = 0 if value is None else round(BAR_WIDTH * value / top)
            if length:
                parts.append(
                    f'<rect x="{LABEL_WIDTH}" y="{bar_y}" width="{length}" height="{BAR_HEIGHT}" '
                    f'fill="{SERIES_COLOURS[n]}"/>'
                )
            shown = escape(value_text(value, table.units[i], lang))
            x = LABEL_WIDTH + length + 4
            parts.append(f'<text x="{x}" y="{bar_y + BAR_HEIGHT - 2}" font-size="12">{shown}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # nosec B704 - every text in it was escaped above


def shown_tables(found: Figures, lang: str) -> list[ShownTable]:
    tables = []
    for table in found.tables:
        title = text(f"{table.key}.title", lang)
        columns = [text(f"columns.{c}", lang) for c in table.columns]
        labels = [row_label(table, row.label, lang) for row in table.rows]
        rows = [
            (label, [value_text(v, unit, lang) for v, unit in zip(row.values, table.units, strict=True)])
            for label, row in zip(labels, table.rows, strict=True)
        ]
        tables.append(
            ShownTable(
                key=table.key,
                title=title,
                intro=text(f"{table.key}.intro", lang),
                row_header=text(f"rows.{table.label_kind}", lang),
                columns=columns,
                rows=rows,
                chart=_chart(table, title, columns, labels, lang),
            )
        )
    return tables


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(CSV_UNSAFE) else value


def as_csv(found: Figures, lang: str) -> str:
    """The same figures as the page, one cell a line: figure, row, column, value ("<5" where the
    page says so). Waiting times in seconds, shares in percent."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([text(f"csv.{c}", lang) for c in ("figure", "row", "column", "value")])
    for table in found.tables:
        title = text(f"{table.key}.title", lang)
        for row in table.rows:
            label = row_label(table, row.label, lang)
            for column, value in zip(table.columns, row.values, strict=True):
                shown = SUPPRESSED if value is None else str(value)
                writer.writerow([_cell(title), _cell(label), _cell(text(f"columns.{column}", lang)), shown])
    return out.getvalue()
