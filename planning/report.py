"""PDF reports for a plan or a scenario: maps, coverage tables and per-agency tables, in Chinese or English.

Built with reportlab. Chinese text uses reportlab's built-in CID font ``STSong-Light`` (the Adobe-GB1 character
collection, rendered by the PDF viewer), so no font file has to be downloaded or shipped. Maps are drawn with
matplotlib from the region's own layers, so the report needs no tiles and no internet.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
_MAX_TABLE_ROWS = 60


@dataclass
class ReportSection:
    """One heading with an optional paragraph, map image (PNG bytes) and tables (title, DataFrame)."""

    heading: str
    text: str = ""
    image_png: bytes | None = None
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def build_pdf(title: str, sections: list[ReportSection], *, subtitle: str = "", attribution: str = "") -> bytes:
    """Render sections into one A4 PDF and return its bytes."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_fonts()
    base = ParagraphStyle("base", fontName=CJK_FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    h1 = ParagraphStyle("h1", parent=base, fontSize=18, leading=24, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=base, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4)
    small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=10, textColor=colors.grey)
    cell = ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=title, author="LTCI planner")
    width = A4[0] - 30 * mm
    story = [Paragraph(_escape(title), h1)]
    stamp = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M")
    story.append(Paragraph(_escape(f"{subtitle}  ·  {stamp}" if subtitle else stamp), small))
    story.append(Spacer(1, 4 * mm))
    for i, section in enumerate(sections):
        story.append(Paragraph(_escape(section.heading), h2))
        if section.text:
            for para in section.text.split("\n"):
                story.append(Paragraph(_escape(para), base))
        if section.image_png:
            img = Image(io.BytesIO(section.image_png))
            scale = min(width / img.drawWidth, 120 * mm / img.drawHeight)
            img.drawWidth, img.drawHeight = img.drawWidth * scale, img.drawHeight * scale
            story.append(img)
        for caption, frame in section.tables:
            story.append(Spacer(1, 2 * mm))
            story.append(Paragraph(_escape(caption), base))
            shown = frame.head(_MAX_TABLE_ROWS)
            data = [[Paragraph(_escape(str(c)), cell) for c in shown.columns]]
            data += [[Paragraph(_escape(_fmt(v)), cell) for v in row] for row in shown.itertuples(index=False)]
            table = Table(data, repeatRows=1, colWidths=[width / max(len(shown.columns), 1)] * len(shown.columns))
            table.setStyle(TableStyle([
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b7c3")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]))
            story.append(table)
            if len(frame) > _MAX_TABLE_ROWS:
                story.append(Paragraph(_escape(f"… {len(frame) - _MAX_TABLE_ROWS} more rows in the XLSX export"), small))
        if i < len(sections) - 1 and section.image_png:
            story.append(PageBreak())
    if attribution:
        story.append(Spacer(1, 6 * mm))
        story.append(Paragraph(_escape(attribution), small))
    doc.build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "—"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def map_png(
    *,
    units=None,
    unit_column: str | None = None,
    categorical: bool = False,
    townships=None,
    agencies=None,
    points=None,
    title: str = "",
    legend_title: str = "",
    bins: list[float] | None = None,
    attribution: str = "© OpenStreetMap contributors (ODbL)",
) -> bytes:
    """A static map (PNG bytes) of units coloured by a column, township borders and agency points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geo.schema import CARE_TYPE_COLORS

    fig, ax = plt.subplots(figsize=(7.5, 6.0), dpi=110)
    if units is not None and len(units):
        if unit_column is None:
            units.plot(ax=ax, color="#eef2f7", edgecolor="#9aa5b1", linewidth=0.3)
        elif categorical:
            units.plot(ax=ax, column=unit_column, categorical=True, cmap="tab20", edgecolor="white", linewidth=0.3,
                       legend=False, missing_kwds={"color": "#dddddd", "hatch": "///", "edgecolor": "#999999"})
        else:
            values = units[unit_column].replace([np.inf, -np.inf], np.nan)
            shown = units.assign(_v=values)
            kwargs = {"scheme": "user_defined", "classification_kwds": {"bins": bins}} if bins else {}
            shown.plot(ax=ax, column="_v", cmap="YlOrRd", edgecolor="white", linewidth=0.3, legend=True,
                       legend_kwds={"title": legend_title, "fontsize": 7} if bins else {"label": legend_title},
                       missing_kwds={"color": "#dddddd", "hatch": "///", "edgecolor": "#999999"}, **kwargs)
    if townships is not None and len(townships):
        townships.boundary.plot(ax=ax, color="#33415c", linewidth=0.9)
    if agencies is not None and len(agencies):
        colours = agencies.get("care_type", pd.Series("home", index=agencies.index)).map(CARE_TYPE_COLORS).fillna("#555")
        ax.scatter(agencies.geometry.x, agencies.geometry.y, c=list(colours), s=36, edgecolors="black", linewidths=0.6,
                   zorder=5)
    if points is not None and len(points):
        ax.scatter(points.geometry.x, points.geometry.y, marker="*", c="#7b2cbf", s=120, edgecolors="white", zorder=6)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    ax.text(0.01, 0.01, attribution, transform=ax.transAxes, fontsize=6, color="#555")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


Translate = Callable[[str], str]


def coverage_sections(model, region, *, t: Translate, thresholds=None) -> list[ReportSection]:
    """Sections for a coverage report: the travel-time map, the coverage table and the uncovered units."""
    from geo import settings

    thresholds = list(thresholds or settings.coverage_thresholds_min)
    units = model.unit_metrics(thresholds=thresholds)
    image = map_png(units=units, unit_column="nearest_minutes",
                    townships=region.townships, agencies=region.agencies[region.agencies["agency_id"].isin(model.active_agency_ids)],
                    legend_title="min", bins=[15, 30, 45, 60, 1e9])
    table = model.table(thresholds=thresholds)
    uncovered = model.uncovered_units(threshold=thresholds[0])[
        ["unit_id", "name", "township", "population", "demand", "nearest_minutes", "nearest_agency_name"]]
    return [
        ReportSection(t("report.coverage_map"), model.message or "", image),
        ReportSection(t("report.coverage_table"), tables=[(t("report.coverage_table"), table)]),
        ReportSection(t("report.uncovered"), tables=[(t("report.uncovered"), uncovered)]),
    ]
