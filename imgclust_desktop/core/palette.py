"""Cluster colours shared by the window and the report: noise grey, 50 distinct colours, then cycling."""

# Matplotlib's first nine category colours, then a greedy max-min (Glasbey-style) extension in CIELAB
# over colours of medium lightness and chroma, so neighbouring cluster ids stay tellable apart on white
# and grey (the noise colour) is never reused. Qt-free so core/report.py and gui/colors.py share it.
PALETTE_HEX: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#ffbc85", "#596416", "#90d39b", "#e9006f", "#0b6f59", "#007aff", "#a6009b", "#ff8590", "#9b5900",
    "#bcbcff", "#00e990", "#de7aff", "#f4b10b", "#9b3764", "#6f43c8", "#b1b164", "#9bde4e", "#e9a6c8",
    "#00bcff", "#ff8559", "#a62c37", "#00debc", "#009b64", "#ff43b1", "#9b850b", "#6f900b", "#9b7a43",
    "#439bff", "#2c59b1", "#855985", "#216f21", "#f4b1ff", "#f44e64", "#c84e0b", "#d3856f", "#ffa64e",
    "#6f9059", "#9b85ff", "#b1167a", "#4eb19b", "#00859b",
)  # fmt: skip
NOISE_HEX = "#a0a0a0"
