"""Reporting: HTML views of runs (report, comparison, trends). Pure functions of run directories; everything
shown is escaped."""
