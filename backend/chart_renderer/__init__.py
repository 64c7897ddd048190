"""The chart renderer function: Vega-Lite spec in, PNG and SVG out (app.handler)."""
