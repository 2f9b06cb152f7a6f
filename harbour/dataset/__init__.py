"""
The dataset: every downloaded OASIS answer as Parquet, in a Hive layout any
engine reads as it is, and the DuckDB views over it.

    <data-dir>/tables/<report>/trading_date=YYYY-MM-DD/part-<window label>.parquet
    <data-dir>/tables/harbour.duckdb

L{harbour.dataset.columns} names and types the columns,
L{harbour.dataset.parse} turns a zip's CSV and XML members into record
batches, L{harbour.dataset.write} writes one window's files,
L{harbour.dataset.views} builds the views, and
L{harbour.dataset.inventory} says what the tables hold and checks them
against the zips they came from.
"""
