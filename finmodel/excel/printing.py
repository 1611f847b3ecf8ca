"""Print setup: every sheet prints landscape with its titles repeated and a header and
footer naming the case, the sheet, the page and the run date.

Monthly sheets print on 11 x 17 in (tabloid, the usual paper for printed models) in blocks
of whole years (a page break every ``YEARS_PER_PRINT_BLOCK`` years), scaled so that one
block and the label columns fill the page width; other sheets print on US Letter, one
page wide.
"""

from __future__ import annotations

import datetime as dt

#: Whole years of monthly columns on one printed page width.
YEARS_PER_PRINT_BLOCK = 3
LETTER, TABLOID = 1, 3  # XlsxWriter's paper codes; landscape widths 11 and 17 inches
_WIDTH_IN = {LETTER: 11.0, TABLOID: 17.0}
_MARGIN_SIDE, _MARGIN_TOP = 0.3, 0.45  # inches
_MARGIN_HEADER = 0.2  # the 8 pt header and footer sit this far from the paper's edge
#: The smallest print scale of a monthly sheet: tabloid at 45 % prints the 9 pt cells at
#: about 4 pt, the size of a printed model's fine print; below it a page stops reading.
MIN_PRINT_SCALE = 0.45
#: Row height of the monthly sheets in points (their cells are 9 pt): tight but not
#: clipped, so that a long calculation sheet prints on fewer pages down.
MONTHLY_ROW_PT = 11.0
#: LibreOffice prints an 11 pt row 11.33 pt tall (measured on its PDF export, rows 6.12 pt
#: apart at 54 %); 1 % more keeps a sheet that just fits from spilling a row.
_ROW_STRETCH = 1.03 * 1.01


def _px(width: float) -> float:
    """Printed width (96 dpi pixels) of a column ``width`` characters wide.

    Excel draws a character of the default font (Calibri 11) 7 px wide; LibreOffice, which
    substitutes the font, prints columns about 35 % wider (measured on its PDF export), so
    the wider figure is used and a block fits the page in both.
    """
    return 1.35 * (width * 7 + 5)


def _escape(text: str) -> str:
    # '&' starts a header code; the header of an xlsx is limited to 255 characters.
    return text.replace("&", "&&")[:90]


def page_setup(ws, case_name: str, *, repeat_rows: tuple[int, int] | None = None,
               repeat_cols: tuple[int, int] | None = None, fit_width: bool = True,
               run_date: dt.date | None = None, paper: int = LETTER,
               fit_height: bool = False) -> None:
    """Landscape Letter, narrow margins, header and footer, titles repeated.

    ``fit_width`` scales the sheet to one page wide (any number of pages tall, or one with
    ``fit_height``).
    """
    ws.set_landscape()
    ws.set_paper(paper)
    ws.set_margins(left=_MARGIN_SIDE, right=_MARGIN_SIDE, top=_MARGIN_TOP,
                   bottom=_MARGIN_TOP)
    day = (run_date or dt.date.today()).isoformat()
    # The font size code goes before the font name: "&8100 MW" would be size 8100.
    ws.set_header(f'&L&8&"Arial"{_escape(case_name)}&C&9&"Arial,Bold"&A'
                  f'&R&8&"Arial"Run {day}', {"margin": _MARGIN_HEADER})
    ws.set_footer('&L&8&"Arial"finmodel: live workbook&C&8&"Arial"Page &P of &N'
                  f'&R&8&"Arial"&A | {day}', {"margin": _MARGIN_HEADER})
    if repeat_rows is not None:
        ws.repeat_rows(*repeat_rows)
    if repeat_cols is not None:
        ws.repeat_columns(*repeat_cols)
    if fit_width:
        ws.fit_to_pages(1, 1 if fit_height else 0)


def year_blocks(ws, label_widths: list[float], period_width: float, first_col: int,
                n_periods: int, n_rows: int = 0, row_height: float = MONTHLY_ROW_PT,
                repeat_rows: int = 2) -> int:
    """Page breaks between blocks of whole years, and the scale that fits one block.

    ``label_widths`` are the widths of the repeated label columns, ``period_width`` that of
    every monthly column; the monthly columns start at ``first_col``. The scale is the one
    that fits one block and the label columns across the page, lowered (never below
    ``MIN_PRINT_SCALE``) when that lets the sheet's ``n_rows`` rows of ``row_height`` points
    print on fewer pages down: a 273-row sheet that would take three pages down at the
    width's 54 % prints on two at 47 %. ``repeat_rows`` is how many title rows every page
    after the first repeats. Returns the scale set, in percent.
    """
    block = 12 * YEARS_PER_PRINT_BLOCK
    breaks = [first_col + k for k in range(block, n_periods, block)]
    if breaks:
        ws.set_v_pagebreaks(breaks)
    need = sum(_px(w) for w in label_widths) + min(block, n_periods) * _px(period_width)
    printable = (_WIDTH_IN[TABLOID] - 2 * _MARGIN_SIDE) * 96
    scale = min(1.0, printable / need)
    height_pt = (11.0 - 2 * _MARGIN_TOP) * 72  # landscape tabloid is 11 in tall
    row_pt = row_height * _ROW_STRETCH

    def pages_down(s: float) -> int:
        per_page = max(int(height_pt / (row_pt * s)) - repeat_rows, 1)
        return -(-max(n_rows - repeat_rows, 1) // per_page)

    pages = pages_down(scale)
    while pages > 1:
        # The largest scale that prints the rows on one page fewer.
        fewer = height_pt / (row_pt * (-(-max(n_rows - repeat_rows, 1) // (pages - 1))
                                       + repeat_rows))
        if fewer < MIN_PRINT_SCALE:
            break
        scale, pages = fewer, pages - 1
    ws.set_paper(TABLOID)
    # Never above the width's scale (a block cut at the page edge would print on two).
    percent = min(100, int(100 * scale))
    ws.set_print_scale(percent)
    return percent
