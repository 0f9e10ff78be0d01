"""What a comparison leaves behind: summary.json, trajectories.csv and report.md (``report``),
PNG plots (``plots``) and MLflow runs (``tracking``, the only module that imports mlflow).
"""
