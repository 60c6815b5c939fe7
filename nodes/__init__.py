"""A regional node: owns one region's public credit records and answers over gRPC."""
