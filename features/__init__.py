"""Source data: the table contract, its validator and the synthetic world generator."""
