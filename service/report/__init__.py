"""The audit report: one self-contained HTML file and a PNG summary."""
