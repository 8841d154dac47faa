"""The lakehouse: table declarations, writes, the Spark session, files, the runs log, queries; delta-rs access."""
